"""The fastrim command line: app.py assembles the parser from one module per
command; each imports what it needs (pyarrow, cryptography, cbor2,
multiprocessing) only when it runs, so that a one-log command starts fast."""

import sys


def main(argv=None):
    """The console entry point: see app.main. Ctrl-C while the command line
    itself loads is an interrupted run too, not a traceback."""
    try:
        from .app import main as run
    except KeyboardInterrupt:
        print("fastrim: interrupted; no results were written", file=sys.stderr)
        return 3
    return run(argv)


__all__ = ["main"]

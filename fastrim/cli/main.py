"""fastrim's entry point: the parser, logging, and exit statuses."""

import argparse
import logging
import sys

from .. import __version__
from ..backend import select
from ..errors import FastrimError, ResultsNotWritten
from . import batch, bench, fleet, index, parse, replay, verify
from .common import EXIT_FAILED, EXIT_INTERNAL, EXIT_OK


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastrim",
        description="Verify Arm CCA realm measurement logs: replay the Realm Initial Measurement "
        "(RIM) from a TCG2 event log and known-good images, and compare it with the attested one.",
        epilog="Exit status: 0 pass/unverified, 1 fail or error, 2 usage error, "
        "3 internal error or incomplete results.",
    )
    parser.add_argument("--version", action="version", version=f"fastrim {__version__} (backend {select.active.NAME})")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log messages on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (parse, replay, verify, batch, index):
        command.add_parser(sub)
    fleet.add_parsers(sub)
    bench.add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), stream=sys.stderr,
                        format="fastrim: %(message)s")
    try:
        return args.run(args)
    except ResultsNotWritten as exc:
        print(f"fastrim: {exc.args[0]}; no results were written", file=sys.stderr)
        return EXIT_INTERNAL
    except FastrimError as exc:
        print(f"fastrim: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        print("fastrim: interrupted; no results were written", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # an internal error: one line, no traceback for users
        print(f"fastrim: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())

"""The parser, logging, signals and exit statuses of the fastrim command."""

import argparse
import logging
import signal
import sys

from .. import __version__
from ..backend import select
from ..errors import FastrimError, ResultsNotWritten
from . import batch, bench, explain, fleet, index, parse, refvals, replay, report, verify
from .common import EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, EXIT_TABLE


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastrim",
        description="Verify Arm CCA realm measurement logs: replay the Realm Initial Measurement "
        "(RIM) from a TCG2 event log and known-good images, and compare it with the attested one. "
        "`fastrim COMMAND --help` explains each command, with examples.",
        epilog=EXIT_TABLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fastrim {__version__} (backend {select.active.NAME})")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="say more on stderr: which backend, hash kernel, cache and index (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", default=False,
                        help="print only errors on stderr (no progress, summary or warnings)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (parse, replay, verify, batch, index, refvals, report, explain):
        command.add_parser(sub)
    fleet.add_parsers(sub)
    bench.add_parser(sub)
    return parser


def _terminated(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (timeout, systemd, a cron wrapper) stops the run as Ctrl-C does


def main(argv=None):
    signal.signal(signal.SIGTERM, _terminated)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        level = logging.ERROR if args.quiet else logging.WARNING - 10 * min(args.verbose, 2)
        logging.basicConfig(level=level, stream=sys.stderr, format="fastrim: %(message)s")
        return args.run(args)
    except ResultsNotWritten as exc:
        written = f"written: {', '.join(exc.written)}" if exc.written else "no results were written"
        print(f"fastrim: {exc.args[0]}; {written}", file=sys.stderr)
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

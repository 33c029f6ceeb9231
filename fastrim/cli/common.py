"""What the commands share: exit statuses, checked option types (every
number is range-checked here, before any backend sees it), the option
groups, and building the verification settings from them."""

import argparse
import math
import os

from ..errors import FastrimError, ResultsNotWritten
from ..log.tcg import DEFAULT_MAX_EVENT_SIZE, MAX_EVENT_SIZE_LIMIT
from ..rim.replay import DEFAULT_MAX_MEASURED_BYTES, DEFAULT_MAX_RIPAS_BLOCKS, MAX_LIMIT, PROFILES, ReplayOptions
from ..store import default_cache_dir
from ..store.files import write_atomic

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
MAX_JOBS = 4 * (os.cpu_count() or 1)


def int_in(low, high):
    """An argparse type: a whole number in [low, high]."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range: give a whole number from {low} to {high}")
        return value
    return parse


def float_in(low, high, low_open=False):
    """An argparse type: a finite number in [low, high] ((low, high] with low_open)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"{text} is out of range: give {'more than ' if low_open else ''}"
                                             f"{low} to {high}")
        return value
    return parse


def csv_choice(choices):
    """An argparse type: a comma-separated list drawn from choices."""
    def parse(text):
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)} (comma-separated)")
        return values
    return parse


def add_max_event_size(p):
    p.add_argument("--max-event-size", type=int_in(1, MAX_EVENT_SIZE_LIMIT), default=DEFAULT_MAX_EVENT_SIZE,
                   metavar="BYTES", help="refuse events larger than this, 1 to 2^32-1 (default %(default)s)")


def add_log_argument(p):
    p.add_argument("log", help="the TCG2 event log (binary)")
    add_max_event_size(p)


def add_replay_options(p, refs_required):
    p.add_argument("--refs", required=refs_required, metavar="DIR",
                   help="directory of known-good images, found by the digest the log records")
    p.add_argument("--profile", choices=PROFILES, default="1.0-rel0",
                   help="RMM measurement profile (default %(default)s)")
    p.add_argument("--force-lpa2", action="store_true",
                   help="set the LPA2 flag in the realm parameters (LPA2 hosts; QEMU never logs it)")
    p.add_argument("--bps-wps-as-counts", action="store_true",
                   help="the log holds breakpoint/watchpoint counts, not count - 1 (an older kernel)")
    p.add_argument("--max-measured-bytes", type=int_in(0, MAX_LIMIT), default=DEFAULT_MAX_MEASURED_BYTES,
                   metavar="BYTES", help="refuse a log whose images (measured or not) add up to more "
                   "(default %(default)s)")
    p.add_argument("--max-ripas-blocks", type=int_in(0, MAX_LIMIT), default=DEFAULT_MAX_RIPAS_BLOCKS, metavar="N",
                   help="refuse a log whose INIT_RIPAS events split into more RTT blocks (default %(default)s)")
    p.add_argument("--no-cache", action="store_true",
                   help="do not read or write the content-hash cache and step memo")
    p.add_argument("--cache-dir", default=default_cache_dir(), metavar="DIR",
                   help="cache directory (default: $FASTRIM_CACHE_DIR or %(default)s)")


def add_jobs_option(p, what):
    p.add_argument("--jobs", type=int_in(1, MAX_JOBS), default=os.cpu_count() or 1, metavar="N",
                   help=f"{what}, at most {MAX_JOBS} (default: one per CPU, %(default)s here)")


def add_attestation_options(p):
    p.add_argument("--platform-key", action="append", default=[], metavar="FILE",
                   help="a trust anchor for CCA platform tokens: PEM (public or private) key or EC JWK; "
                   "repeatable. A token no configured key verifies never passes")
    p.add_argument("--ear", metavar="FILE", help="also write each verdict as a Veraison EAR claims set (JSON lines)")


def replay_options(args):
    return ReplayOptions(
        profile=args.profile, force_lpa2=args.force_lpa2, bps_wps_as_counts=args.bps_wps_as_counts,
        max_measured_bytes=args.max_measured_bytes, max_ripas_blocks=args.max_ripas_blocks,
    )


def platform_keys(args):
    """(name, bytes) of each --platform-key, each checked here so that a bad
    file is a usage error before any work."""
    if not args.platform_key:
        return ()
    from ..evidence import token

    try:
        keys = tuple((path, token.read_platform_key(path)) for path in args.platform_key)
        for name, raw in keys:
            token.parse_platform_key(name, raw)
    except FastrimError as exc:
        args.parser.error(str(exc))
    return keys


def write_ear(path, rows):
    from ..output import ear

    try:
        write_atomic(path, lambda f: f.write(ear.json_lines(rows).encode()))
    except OSError as exc:
        raise ResultsNotWritten(f"cannot write the EAR claims to {path}: {exc.strerror or exc}") from None

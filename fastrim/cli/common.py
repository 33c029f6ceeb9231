"""What the commands share: exit statuses, checked option types (every
number is range-checked here, before any backend sees it), checks of the
paths given before any work, the option groups, and building the
verification settings from them."""

import argparse
import math
import os
import stat

from ..errors import FastrimError, ResultsNotWritten
from ..log.tcg import DEFAULT_MAX_EVENT_SIZE, DEFAULT_MAX_LOG_SIZE, MAX_EVENT_SIZE_LIMIT, MAX_LOG_SIZE_LIMIT
from ..rim import DEFAULT_MAX_MEASURED_BYTES, DEFAULT_MAX_RIPAS_BLOCKS, MAX_LIMIT, PROFILES
from ..store import default_cache_dir
from ..store.files import output_problem, same_file

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_TABLE = """exit status:
  0  every log pass or unverified (with --strict: every log pass)
  1  some log fail or error (the results are still written)
  2  usage error: a bad option, a missing or unreadable input, an output that
     cannot be written, no logs found; nothing was verified
  3  internal error, a worker crash, an output that failed to write, a closed
     stdout, or interrupted (Ctrl-C, SIGTERM: nothing is written)"""
CPUS = os.cpu_count() or 1
MAX_JOBS = 4 * CPUS  # more workers than that only thrash; --force-jobs lifts it
MAX_FORCED_JOBS = 1024

# -v and -q, accepted before or after the command (SUPPRESS: the command's
# parser leaves what the main parser read alone unless they are given again).
VERBOSITY = argparse.ArgumentParser(add_help=False)
VERBOSITY.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                       help="say more on stderr: which backend, hash kernel, cache and index (-vv: debug)")
VERBOSITY.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="print only errors on stderr (no progress, summary or warnings)")


def command(sub, name, summary, description, examples):
    """A command's parser: its one-line summary for the command list, a
    paragraph of purpose, examples, and the exit statuses."""
    epilog = "examples:\n" + "".join(f"  {line}\n" for line in examples) + "\n" + EXIT_TABLE
    return sub.add_parser(name, help=summary, description=description, epilog=epilog, parents=[VERBOSITY],
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def input_dir(parser, option, path):
    """Refuse (usage error) a directory option naming something missing or unreadable."""
    if not os.path.exists(path):
        parser.error(f"{option} {path}: no such directory")
    if not os.path.isdir(path):
        parser.error(f"{option} {path}: not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        parser.error(f"{option} {path}: unreadable (permission denied)")


def input_file(parser, option, path):
    """Refuse (usage error) a file option naming something missing, unreadable or not a regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        parser.error(f"{option} {path}: no such file")
    except OSError as exc:
        parser.error(f"{option} {path}: unreadable ({exc.strerror or exc})")
    if not stat.S_ISREG(st.st_mode):
        parser.error(f"{option} {path}: not a regular file")
    if not os.access(path, os.R_OK):
        parser.error(f"{option} {path}: unreadable (permission denied)")


def check_outputs(parser, outputs):
    """Refuse (usage error), before any work, outputs that cannot be written
    or that name one file twice; outputs: (option, path or None) pairs."""
    given = [(option, path) for option, path in outputs if path]
    for option, path in given:
        problem = output_problem(path)
        if problem is not None:
            parser.error(f"{option} {path} {problem}")
    for i, (option, path) in enumerate(given):
        for other, other_path in given[i + 1:]:
            if same_file(path, other_path):
                parser.error(f"{option} and {other} name the same file, {path}")


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


def add_log_limits(p):
    p.add_argument("--max-event-size", type=int_in(1, MAX_EVENT_SIZE_LIMIT), default=DEFAULT_MAX_EVENT_SIZE,
                   metavar="BYTES", help="refuse events larger than this, 1 to 2^32-1 (default %(default)s)")
    p.add_argument("--max-log-size", type=int_in(1, MAX_LOG_SIZE_LIMIT), default=DEFAULT_MAX_LOG_SIZE,
                   metavar="BYTES", help="refuse, before reading it, a log larger than this: log.too_large "
                   "(default %(default)s)")


def limits(args):
    from ..verifier import Limits

    return Limits(args.max_event_size, args.max_log_size)


def add_log_argument(p):
    p.add_argument("log", help="the TCG2 event log (binary)")
    add_log_limits(p)


def add_replay_options(p, refs_required):
    p.add_argument("--refs", required=refs_required, metavar="DIR",
                   help="directory of known-good images, found by the digest the log records")
    p.add_argument("--profile", choices=PROFILES, default="1.0-rel0",
                   help="RMM measurement profile: 1.0-rel0 (RMM 1.0), 1.0-eac2 (params: hash_algo only; every REC "
                   "measured), 2.0 (INIT_RIPAS not measured; flag bits DA and MEC policy allowed); under the 1.0 "
                   "profiles any reserved flag bit is log.bad_realm_params (default %(default)s)")
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
                   help="no cache at all: no reference index, content-hash cache or step memo is read or written; "
                   "every image is hashed (default: off)")
    p.add_argument("--cache-dir", default=default_cache_dir(), metavar="DIR",
                   help="cache directory, private to this user (made with mode 0700); its records are "
                   "authenticated with the key in $FASTRIM_CACHE_KEY_FILE or ~/.config/fastrim/cache.key "
                   "(default: $FASTRIM_CACHE_DIR or %(default)s)")


def cache_dir(args, directory=None):
    """The cache directory to use, or None: --no-cache, or one that cannot be
    made private or whose key cannot be had (said once: the run goes on
    without a cache, slower but as correct)."""
    if getattr(args, "no_cache", False):
        return None
    from ..errors import FileError
    from ..store import usable_cache_dir

    try:
        return usable_cache_dir(directory or args.cache_dir)
    except FileError as exc:
        import logging

        logging.getLogger("fastrim").warning("%s: running without a cache", exc.args[0])
        return None


def add_jobs_option(p, what):
    p.add_argument("--jobs", type=int_in(1, MAX_FORCED_JOBS), default=CPUS, metavar="N",
                   help=f"{what}, at most 4 per CPU ({MAX_JOBS} here) unless --force-jobs "
                   "(default: one per CPU, %(default)s here)")
    p.add_argument("--force-jobs", action="store_true",
                   help=f"allow --jobs above 4 per CPU, up to {MAX_FORCED_JOBS} (default: off)")


def check_jobs(args):
    if args.jobs > MAX_JOBS and not args.force_jobs:
        args.parser.error(f"--jobs {args.jobs} is more than 4 per CPU ({MAX_JOBS} here): give --force-jobs "
                          "if you mean it")


def add_attestation_options(p):
    p.add_argument("--platform-key", action="append", default=[], metavar="FILE",
                   help="a trust anchor for CCA platform tokens: PEM (public or private) key or EC JWK; "
                   "repeatable. A token no configured key verifies never passes")
    p.add_argument("--ear", metavar="FILE", help="also write each verdict as a Veraison EAR claims set (JSON lines)")
    p.add_argument("--refvals", action="append", default=[], metavar="FILE",
                   help="endorsed reference values: a CCA realm CoRIM (CBOR, tag 501 or signed) or CoMID JSON; "
                   "repeatable. A replayed RIM in none of them fails with rim.not_endorsed, even when the "
                   "attested RIM agrees; rows say which file endorsed it (default: no endorsement check)")
    p.add_argument("--refvals-key", action="append", default=[], metavar="FILE",
                   help="with it, every CBOR --refvals file must be a signed CoRIM that this key (PEM or EC "
                   "JWK; repeatable) verifies (default: signatures not checked)")


def replay_options(args):
    from ..rim.replay import ReplayOptions

    return ReplayOptions(
        profile=args.profile, force_lpa2=args.force_lpa2, bps_wps_as_counts=args.bps_wps_as_counts,
        max_measured_bytes=args.max_measured_bytes, max_ripas_blocks=args.max_ripas_blocks,
    )


def endorsements(args):
    """The RIMs the --refvals files endorse (evidence.refvals.Endorsements),
    or None without any; a file that cannot be read or is not a CCA realm
    CoRIM/CoMID is a usage error naming it, before any work."""
    if not args.refvals:
        if args.refvals_key:
            args.parser.error("--refvals-key checks --refvals files: give them too")
        return None
    from ..evidence import refvals, token

    try:
        keys = [token.load_platform_key(path) for path in args.refvals_key]
        found = refvals.Endorsements()
        for path in args.refvals:
            found.add(refvals.read_refvals(path, keys), path)
    except FastrimError as exc:
        args.parser.error(str(exc))
    return found


def platform_keys(args):
    """(name, bytes) of each --platform-key, each checked here so that a bad
    file is a usage error before any work."""
    if not args.platform_key:
        return ()
    from ..evidence import token

    for path in args.platform_key:
        input_file(args.parser, "--platform-key", path)
    try:
        keys = tuple((path, token.read_platform_key(path)) for path in args.platform_key)
        for name, raw in keys:
            token.parse_platform_key(name, raw)
    except FastrimError as exc:
        args.parser.error(str(exc))
    return keys


def write_ear(path, row):
    """Write the EAR claims set of one result row to path."""
    from ..output.ear import EarLines

    try:
        ear = EarLines(path)
        try:
            ear.add(row)
        except BaseException:
            ear.abort()
            raise
        ear.close()
    except OSError as exc:
        raise ResultsNotWritten(f"cannot write the EAR claims to {path}: {exc.strerror or exc}") from None

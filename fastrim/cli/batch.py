"""fastrim batch: every log under some directories, in worker processes,
one result row per log; and run_batch, which `demo` runs too."""

import datetime
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Optional

from .. import __version__
from ..algorithms import RIM_ALGORITHMS
from ..backend import select
from ..errors import ResultsNotWritten
from .common import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_OK,
    add_attestation_options,
    add_jobs_option,
    add_max_event_size,
    add_replay_options,
    platform_keys,
    replay_options,
    write_ear,
)


def add_parser(sub):
    p = sub.add_parser(
        "batch", help="verify every log under some directories, in parallel",
        description="Verify every *.log and *.bin file under LOGS against its expected RIM (a row of "
        "--expected, else the sidecar X.rim) in worker processes, and write one result row per log. "
        "A bad log is an 'error' row, never a stopped batch.",
        epilog="Exit status: 0 all pass/unverified, 1 some fail or error (results still written), "
        "2 usage error, 3 internal error (e.g. a worker crashed) or interrupted (nothing written).",
    )
    p.add_argument("logs", nargs="+", metavar="LOGS", help="directories of logs (or single log files)")
    add_replay_options(p, refs_required=True)
    add_max_event_size(p)
    p.add_argument("--out", metavar="FILE", help="Parquet results file, written atomically")
    p.add_argument("--jsonl", action="store_true", help="also stream each row to stdout as a JSON line")
    add_jobs_option(p, "worker processes")
    p.add_argument("--expected", metavar="FILE",
                   help="expected RIMs: CSV with a header, or JSON lines, with columns log and rim; "
                   "log is the name relative to LOGS; beats the X.token and X.rim sidecars")
    add_attestation_options(p)
    p.set_defaults(parser=p, run=run)


@dataclass(frozen=True)
class Outputs:
    """Where a batch's rows go, and the argv recorded with them."""

    out: Optional[str] = None  # Parquet file
    jsonl: bool = False  # rows on stdout as they come
    ear: Optional[str] = None  # EAR claims sets, JSON lines
    argv: tuple = ()


def run_batch(roots, settings, executor, outputs, expected=None):
    """Verify every log under roots with settings through executor and
    write the outputs; returns (rows, summary)."""
    from ..run import batch
    from ..run.progress import Progress

    logs = batch.discover(roots)
    if not logs:
        logging.getLogger("fastrim").warning("no *.log or *.bin files under %s", ", ".join(roots))
    progress = Progress(len(logs))

    def on_row(row):
        progress.advance()
        if outputs.jsonl:
            from ..output.jsonl import json_line

            print(json_line(row), flush=True)

    try:
        rows, summary = batch.run(logs, settings, executor, expected, on_row)
    finally:
        progress.close()
    if outputs.out:
        _write_results(outputs, settings, rows)
    if outputs.ear:
        write_ear(outputs.ear, rows)
    return rows, summary


def _write_results(outputs, settings, rows):
    from ..output.parquet import write_parquet

    impl = select.load(settings.backend) if settings.backend else select.active
    metadata = {
        "fastrim.version": __version__,
        "fastrim.backend": impl.NAME,
        "fastrim.hash_kernel": json.dumps({a.name: impl.hash_kernel(a.tcg_id) for a in RIM_ALGORITHMS}),
        "fastrim.argv": json.dumps(list(outputs.argv)),
        "fastrim.refs": settings.refs.root,
        "fastrim.profile": settings.options.profile,
        "fastrim.created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        write_parquet(outputs.out, rows, metadata)
    except OSError as exc:
        raise ResultsNotWritten(f"cannot write the results to {outputs.out}: {exc.strerror or exc}") from None


def _check_writable(parser, out):
    """Refuse an output that cannot be written before verifying anything."""
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        parser.error(f"{out}: its directory does not exist")
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        parser.error(f"{out}: cannot write in {directory}: {exc.strerror or exc}")


def exit_status(summary, rows):
    from ..verifier import ERROR, FAIL

    if any((row["error_code"] or "").startswith("internal.") for row in rows):  # worker crashes included
        return EXIT_INTERNAL
    return EXIT_FAILED if summary.counts[FAIL] or summary.counts[ERROR] else EXIT_OK


def run(args):
    from ..evidence.expected import read_expected_file
    from ..run.local import LocalExecutor
    from ..store.refs import RefStore
    from ..verifier import Settings

    if not args.out and not args.jsonl:
        args.parser.error("give --out FILE, --jsonl or both")
    for path in (args.out, args.ear):
        if path:
            _check_writable(args.parser, path)
    keys = platform_keys(args)
    expected = read_expected_file(args.expected) if args.expected else {}
    for root in args.logs:
        if not os.path.exists(root):
            args.parser.error(f"{root}: no such directory or file")
    cache_dir = None if args.no_cache else args.cache_dir
    refs = RefStore(args.refs, cache_dir=args.cache_dir, jobs=args.jobs)
    settings = Settings(refs, replay_options(args), cache_dir, args.max_event_size, platform_keys=keys)
    outputs = Outputs(args.out, args.jsonl, args.ear, tuple(args.argv))
    rows, summary = run_batch(args.logs, settings, LocalExecutor(args.jobs), outputs, expected)
    where = f"; results in {args.out}" if args.out else ""
    print(f"fastrim: {summary.line()}{where}", file=sys.stderr)
    return exit_status(summary, rows)

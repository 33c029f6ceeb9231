"""fastrim batch: every log under some directories, in worker processes,
one result row per log; and run_batch, which `demo` runs too."""

import json
import logging
import os
import sys
import time

from .. import __version__
from ..algorithms import RIM_ALGORITHMS
from ..errors import FastrimError
from .common import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_OK,
    add_attestation_options,
    add_jobs_option,
    add_log_limits,
    add_replay_options,
    cache_dir,
    check_jobs,
    check_outputs,
    command,
    endorsements,
    input_dir,
    input_file,
    int_in,
    limits,
    platform_keys,
    replay_options,
)

log = logging.getLogger("fastrim")


def add_parser(sub):
    p = command(
        sub, "batch", "verify every log under some directories, in parallel",
        "Verify every *.log and *.bin file under LOGS against its attested RIM (a row of --expected, else "
        "the sidecar X.token checked against --platform-key, else X.rim) in worker processes, and write one "
        "result row per log: to a Parquet file or dataset (--out), as JSON lines on stdout (--jsonl), or both. "
        "A bad log is an 'error' row, never a stopped batch. Rows are written as logs finish, so memory does "
        "not grow with the fleet; each names its log by (root, log): the LOGS root as given and the path "
        "relative to it, so that nights compare by key. --jsonl prints them sorted by that key.",
        ["fastrim batch /srv/launch-logs --refs /srv/known-good --out results.parquet",
         "fastrim batch hostA/ hostB/ --refs refs/ --out r.parquet --platform-key cca_platform.pem --strict",
         "fastrim batch logs/ --refs refs/ --jsonl -q | jq -c 'select(.status != \"pass\")'",
         "fastrim batch s3://audit/logs/ --refs s3://audit/refs/ --out s3://audit/nights/2026-12-01/ "
         "--scheduler tcp://10.0.0.5:8786"],
    )
    p.add_argument("logs", nargs="+", metavar="LOGS",
                   help="directories of logs (or single log files); the same directory given twice counts once")
    add_replay_options(p, refs_required=True)
    add_log_limits(p)
    p.add_argument("--out", metavar="FILE",
                   help="Parquet results file, written atomically; a new file or a regular file it replaces "
                   "(keeping its mode), never a directory, device or symbolic link. A name ending in / is a "
                   "dataset: a new or empty directory (or object prefix) that gets part-NNNNN.parquet files "
                   "as rows come, each whole once there (default: none)")
    p.add_argument("--jsonl", action="store_true",
                   help="also stream each row to stdout as a JSON line, in the stable order (default: off)")
    add_jobs_option(p, "worker processes")
    p.add_argument("--expected", metavar="FILE",
                   help="attested RIMs: CSV with a header, or JSON lines, with columns log and rim; log is the "
                   "name relative to its LOGS root; beats the X.token and X.rim sidecars (default: none)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask cluster: tcp://HOST:PORT of a running `dask scheduler`, or local:N for N "
                   "worker processes on this machine (servers on 127.0.0.1); needs pip install 'fastrim[dask]' "
                   "(default: the local worker pool, --jobs)")
    p.add_argument("--storage-options", metavar="JSON", type=_storage_options, default=None,
                   help="fsspec options for LOGS, --refs, --expected, --out and --ear given as URLs (s3://bucket/"
                   "prefix): e.g. '{\"endpoint_url\": \"http://127.0.0.1:9000\", \"key\": \"...\", "
                   "\"secret\": \"...\"}'; s3:// needs pip install 'fastrim[s3]' (default: none)")
    p.add_argument("--log-timeout", type=int_in(1, 7 * 24 * 3600), default=600, metavar="SECONDS",
                   help="a worker that makes no progress on a log for this long is killed, and the log's row "
                   "says internal.timeout; the other logs finish (default %(default)s)")
    p.add_argument("--golden", metavar="DIR",
                   help="golden logs (*.log, *.bin), one per configuration: every failing log's row gets an explain "
                   "column naming its first divergence from the golden log with the same VMM and image "
                   "descriptions, when there is one (default: none)")
    p.add_argument("--report", metavar="OUT.html",
                   help="also write the run's report page (as `fastrim report` would from --out); needs --out, a local "
                   "file (default: none)")
    p.add_argument("--strict", action="store_true",
                   help="an 'unverified' log (no attested RIM) fails the run: exit 1 (default: off)")
    add_attestation_options(p)
    p.set_defaults(parser=p, run=run)


class Outputs:
    """Where a batch's rows go (a Parquet file, JSON lines on stdout in the
    stable order, EAR claims sets), the argv recorded with them, and what the
    run has to say once (warnings, also kept in the results' metadata)."""

    def __init__(self, out=None, jsonl=False, ear=None, argv=(), show_progress=True):
        self.out, self.jsonl, self.ear, self.argv, self.show_progress = out, jsonl, ear, argv, show_progress
        self.metadata = {}  # more facts of the run for the results' metadata (the cluster it ran on)
        self.warnings = []
        self.stdout_closed = False

    def warn(self, message):
        self.warnings.append(message)
        log.warning("%s", message)


def _storage_options(text):
    import argparse

    from ..evidence import jsontext

    try:
        options = jsontext.loads(text, "--storage-options", "input.bad_option")
    except FastrimError as exc:
        raise argparse.ArgumentTypeError(exc.args[0]) from None
    if not isinstance(options, dict):
        raise argparse.ArgumentTypeError("--storage-options must be a JSON object")
    return options


def run_batch(logs, settings, executor, outputs, expected=None):
    """Verify logs (run.batch.discover's) with settings through executor,
    writing each row to the outputs as it comes; returns the Summary."""
    from ..output.sinks import Sinks
    from ..run import batch
    from ..run.progress import Progress

    _warn_without_attested_rim(logs, expected or {}, settings.platform_keys, outputs)
    impl = settings.backend_module()
    impl.choose_kernels(settings.cache_dir)  # here first: the workers read the choice, and the metadata names it
    log.info("backend %s, hash kernels %s; content cache and step memo: %s", impl.NAME,
             ", ".join(f"{a.name} {impl.hash_kernel(a.tcg_id)}" for a in RIM_ALGORITHMS),
             settings.cache_dir or "off")
    sinks = Sinks(outputs.out, outputs.ear, _metadata(outputs, settings), settings.objects)
    progress = Progress(len(logs)) if outputs.show_progress else None
    in_order = batch.InOrder(logs) if outputs.jsonl else None

    def on_row(row):
        sinks.add(row)
        if progress is not None:
            progress.advance(row["status"])
        if in_order is not None:
            for ready in in_order.add(row):
                _print_row(outputs, ready)

    try:
        summary = batch.run(logs, settings, executor, on_row, expected)
    except BaseException:
        sinks.abort()
        raise
    finally:
        if progress is not None:
            progress.close()
    sinks.close()
    return summary


def _print_row(outputs, row):
    """One JSON line on stdout, unless stdout was closed (| head): then the
    run goes on to write its files, and ends with exit 3."""
    from ..output.jsonl import json_line

    if outputs.stdout_closed:
        return
    try:
        print(json_line(row), flush=True)
    except BrokenPipeError:
        outputs.stdout_closed = True
        devnull = os.open(os.devnull, os.O_WRONLY)  # so that the interpreter's own last flush cannot fail
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _metadata(outputs, settings):
    """The results' metadata: the facts of the run, known before its first row."""
    import datetime

    impl = settings.backend_module()
    return {
        "fastrim.version": __version__,
        "fastrim.backend": impl.NAME,
        "fastrim.hash_kernel": json.dumps({a.name: impl.hash_kernel(a.tcg_id) for a in RIM_ALGORITHMS}),
        "fastrim.argv": json.dumps(list(outputs.argv)),
        "fastrim.refs": settings.refs.root,
        "fastrim.profile": settings.options.profile,
        "fastrim.created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "fastrim.warnings": json.dumps(outputs.warnings),
        **outputs.metadata,
    }


def exit_status(summary, strict=False, stdout_closed=False):
    """What a cron job reads: see common.EXIT_TABLE."""
    if stdout_closed or summary.internal:
        return EXIT_INTERNAL
    if summary.counts["fail"] or summary.counts["error"] or (strict and summary.counts["unverified"]):
        return EXIT_FAILED
    return EXIT_OK


def _index(args, directory, outputs, objects):
    """The reference store, indexed (with progress on a terminal); says what was hashed now."""
    from ..run.progress import file_progress
    from ..store.objects import is_url
    from ..store.refs import ObjectRefStore, RefStore

    started = time.perf_counter()
    bar = file_progress if outputs.show_progress else None
    if is_url(args.refs):
        refs = ObjectRefStore(args.refs, objects, cache_dir=directory, progress=bar)
    else:
        refs = RefStore(args.refs, cache_dir=directory, jobs=args.jobs, progress=bar)
    took = time.perf_counter() - started
    if refs.hashed:
        outputs.warn(f"indexed {refs.hashed} new or changed reference images ({refs.hashed_bytes / 1e6:,.0f} MB) "
                     f"in {took:.1f} s")
    log.info("reference store %s: %d images, index %s", refs.root, len(refs), refs.index_path)
    return refs, took


def _warn_without_attested_rim(logs, expected, keys, outputs):
    """Say, before any work, which logs cannot pass: those with no attested
    RIM (no --expected row, X.token or X.rim found beside them), and those
    whose token no --platform-key can trust."""
    without = sum(1 for log_file in logs if not log_file.sidecars and log_file.name not in expected)
    if without:
        outputs.warn(f"{without} logs have no attested RIM (no --expected row, X.token or X.rim sidecar): "
                     "they can be 'unverified' at best")
    tokens = 0 if keys else sum(1 for log_file in logs if ".token" in log_file.sidecars)
    if tokens:
        outputs.warn(f"{tokens} logs come with an X.token sidecar but no --platform-key was given: "
                     "no token can be trusted, those logs fail with token.untrusted_platform")


def run(args):
    from ..evidence.expected import read_expected_file
    from ..run.batch import discover, unique_roots
    from ..store.objects import ObjectStore, is_url

    started = time.perf_counter()
    objects = ObjectStore(args.storage_options)
    if not args.out and not args.jsonl:
        args.parser.error("give --out FILE, --jsonl or both")
    if args.report and (not args.out or is_url(args.out)):
        args.parser.error("--report reads the results back: give --out FILE too, a local file or directory")
    _check_outputs(args, objects)
    check_jobs(args)
    roots = unique_roots(args.logs)
    try:
        for root in roots:
            if not (objects.exists(root) if is_url(root) else os.path.exists(root)):
                args.parser.error(f"{root}: no such directory or file")
        if is_url(args.refs):
            if not objects.exists(args.refs):
                args.parser.error(f"--refs {args.refs}: no such objects")
        else:
            input_dir(args.parser, "--refs", args.refs)
        if args.expected and not is_url(args.expected):
            input_file(args.parser, "--expected", args.expected)
        keys, endorsed = platform_keys(args), endorsements(args)
        golden = _golden(args)
        logs = discover(roots, objects)
        if not logs:
            args.parser.error(f"no *.log or *.bin files under {', '.join(roots)}: nothing to verify")
        expected = read_expected_file(args.expected, objects) if args.expected else {}
        _refuse_ambiguous_names(args, logs, expected)
    except FastrimError as exc:  # an input the operator gave wrong (or cannot reach): nothing was verified
        args.parser.error(str(exc))
    outputs = Outputs(args.out, args.jsonl, args.ear, tuple(args.argv), show_progress=not args.quiet)
    executor = _executor(args, outputs)
    try:
        return _verify_all(args, logs, (keys, endorsed, golden, expected, started, objects), executor, outputs)
    finally:
        executor.close()


def _check_outputs(args, objects):
    """Refuse, before any work, outputs that cannot be written (usage errors)."""
    from ..output.sinks import dataset_problem, is_dataset
    from ..store.objects import is_url

    if args.out and is_dataset(args.out):
        try:
            problem = dataset_problem(args.out, objects)
        except FastrimError as exc:
            problem = f"cannot be listed: {exc}"
        if problem is not None:
            args.parser.error(f"--out {args.out} {problem}")
    files = [(option, path) for option, path in (("--out", args.out), ("--ear", args.ear), ("--report", args.report))
             if path and not is_url(path) and not (option == "--out" and is_dataset(path))]
    check_outputs(args.parser, files)


def _golden(args):
    """The --golden logs (rim.explain.GoldenLogs), each checked to decode; None without the option."""
    if not args.golden:
        return None
    from ..log import cca, tcg
    from ..rim.explain import GoldenLogs
    from ..run.batch import discover

    input_dir(args.parser, "--golden", args.golden)
    logs = []
    for log_file in discover([args.golden]):
        try:
            data = tcg.read_log(log_file.path, args.max_log_size)
            cca.decode(tcg.parse(data, max_event_size=args.max_event_size))
        except FastrimError as exc:
            args.parser.error(f"--golden {log_file.path} does not decode: {exc}")
        logs.append((log_file.name, data))
    if not logs:
        args.parser.error(f"--golden {args.golden}: no *.log or *.bin files")
    return GoldenLogs(logs, args.max_event_size)


def _refuse_ambiguous_names(args, logs, expected):
    """An --expected row names a log relative to its root: a name found under
    two roots would give both logs one attested value."""
    roots_of = {}
    for log_file in logs:
        roots_of.setdefault(log_file.name, []).append(log_file.root)
    for name in sorted(expected):
        if len(roots_of.get(name, ())) > 1:
            args.parser.error(f"--expected names {name}, which is under several LOGS roots "
                              f"({', '.join(roots_of[name])}): give each root its own run")


def _executor(args, outputs):
    """The local worker pool, or a Dask cluster, connected now: an
    unreachable scheduler is a usage error before any work."""
    if not args.scheduler:
        from ..run.local import LocalExecutor

        return LocalExecutor(args.jobs, args.log_timeout)
    from ..errors import OptionError
    from ..run.cluster import ClusterUnavailable, DaskExecutor

    try:
        executor = DaskExecutor(args.scheduler).connect()
    except (ClusterUnavailable, OptionError) as exc:
        args.parser.error(exc.args[0])
    address, workers = executor.description
    outputs.metadata.update({"fastrim.scheduler": address, "fastrim.workers": str(workers)})
    log.info("Dask scheduler %s with %d workers", address, workers)
    return executor


def _verify_all(args, logs, inputs, executor, outputs):
    from ..verifier import Settings

    keys, endorsed, golden, expected, started, objects = inputs
    directory = cache_dir(args)
    refs, indexing = _index(args, directory, outputs, objects)
    settings = Settings(refs, replay_options(args), directory, limits(args), platform_keys=keys, objects=objects,
                        endorsements=endorsed, golden=golden)
    summary = run_batch(logs, settings, executor, outputs, expected)
    if args.report:
        from ..output.report import report
        from .report import write_report

        write_report(args.report, report(args.out))
    whole = time.perf_counter() - started
    where = (f"; results in {args.out}" if args.out else "") + (f", report in {args.report}" if args.report else "")
    if not args.quiet:
        print(f"fastrim: {summary.line()}; the run took {whole:.2f} s, {indexing:.2f} s of it indexing{where}",
              file=sys.stderr)
    if outputs.stdout_closed:
        log.error("stdout was closed before every row was printed: the JSON lines are incomplete%s",
                  f" (results in {args.out} are whole)" if args.out else "")
    return exit_status(summary, args.strict, outputs.stdout_closed)

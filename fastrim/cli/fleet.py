"""fastrim synth (a synthetic fleet with known verdicts) and fastrim demo
(synth + batch cold and warm + every verdict checked against the fleet)."""

import os
import tempfile

from .batch import Outputs, run_batch
from .common import EXIT_FAILED, EXIT_OK, add_jobs_option, check_jobs, check_outputs, command, float_in, int_in

MAX_VMS = 1_000_000
MAX_SCALE = 4.0  # images 4x realistic sizes: a few GiB in memory already


def _add_fleet_options(p, vms, scale):
    p.add_argument("--vms", type=int_in(1, MAX_VMS), default=vms,
                   help=f"how many realms, 1 to {MAX_VMS:,} (default %(default)s)")
    p.add_argument("--seed", type=int_in(0, 2**64 - 1), default=0,
                   help="random seed, 0 to 2^64-1: the same seed gives the same fleet (default 0)")
    p.add_argument("--tamper", type=float_in(0.0, 1.0), default=0.1, metavar="F",
                   help="fraction of tampered or broken cases, 0 to 1 (default %(default)s)")
    p.add_argument("--scale", type=float_in(0.0, MAX_SCALE, low_open=True), default=scale,
                   help=f"image sizes as a fraction of realistic ones, above 0 to {MAX_SCALE:g} (default %(default)s)")


def add_parsers(sub):
    p = command(sub, "synth", "write a synthetic fleet with known verdicts",
                "Write a reference store (OUTDIR/refs), QEMU-layout logs with .rim sidecars (OUTDIR/logs) and "
                "the verdict each log must get (OUTDIR/manifest.jsonl): realms drawn from a few launch "
                "configurations, a fraction of them tampered with (wrong address, unvetted image, wrong RIM, "
                "truncated log, missing sidecar). The same seed gives the same bytes.",
                ["fastrim synth fleet/ --vms 1000 --seed 7", "fastrim synth small/ --vms 40 --scale 0.01 --tamper 0.3"])
    p.add_argument("outdir", metavar="OUTDIR", help="a new or empty directory")
    _add_fleet_options(p, vms=100, scale=1.0)
    p.set_defaults(parser=p, run=run_synth)

    p = command(sub, "demo", "synth + batch + report, in a temporary directory",
                "Generate a synthetic fleet, verify it twice with batch (cold and warm cache), show a row of "
                "each kind, check every verdict against the fleet's manifest, and write the run's report page "
                "(--report). Everything else lives in a temporary directory, removed at the end.",
                ["fastrim demo", "fastrim demo --vms 1000 --scale 1 --jobs 2 --report /tmp/demo.html"])
    _add_fleet_options(p, vms=200, scale=0.25)
    add_jobs_option(p, "worker processes")
    p.add_argument("--report", default="fastrim-demo-report.html", metavar="OUT.html",
                   help="where the report page of the run goes (default: %(default)s, here)")
    p.set_defaults(parser=p, run=run_demo)


def run_synth(args):
    from ..fleetgen import fleet

    if os.path.isdir(args.outdir) and os.listdir(args.outdir):
        args.parser.error(f"{args.outdir} is not empty: give a new directory")
    manifest = fleet.generate(args.outdir, vms=args.vms, seed=args.seed, tamper=args.tamper, scale=args.scale)
    tampered = sum(1 for row in manifest if row["case"] != "clean")
    print(f"{len(manifest)} logs ({tampered} tampered or broken) in {os.path.join(args.outdir, 'logs')}, "
          f"reference images in {os.path.join(args.outdir, 'refs')}, "
          f"expected verdicts in {os.path.join(args.outdir, fleet.MANIFEST)}")
    return EXIT_OK


def _short(value, width):
    text = "-" if value is None else (value.hex() if isinstance(value, bytes) else str(value))
    return text if len(text) <= width else text[: width - 1] + "…"


def _read_rows(path, columns):
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=columns).to_pylist()


def run_demo(args):
    from ..fleetgen import fleet
    from ..rim.replay import ReplayOptions
    from ..run.batch import discover
    from ..run.local import LocalExecutor
    from ..store import usable_cache_dir
    from ..store.refs import RefStore
    from ..verifier import Settings

    check_jobs(args)
    check_outputs(args.parser, [("--report", args.report)])
    with tempfile.TemporaryDirectory(prefix="fastrim-demo-") as work:
        print(f"Generating a synthetic fleet of {args.vms} realms (seed {args.seed}) ...")
        manifest = fleet.generate(work, vms=args.vms, seed=args.seed, tamper=args.tamper, scale=args.scale)
        logs, out, cache_dir = discover([os.path.join(work, "logs")]), os.path.join(work, "results.parquet"), \
            os.path.join(work, "cache")
        cache_dir = usable_cache_dir(cache_dir)
        refs = RefStore(os.path.join(work, "refs"), cache_dir=cache_dir, jobs=args.jobs)
        settings = Settings(refs, ReplayOptions(), cache_dir)
        outputs, executor = Outputs(out, argv=tuple(args.argv), show_progress=False), LocalExecutor(args.jobs)
        print(f"Verifying them with {args.jobs} worker processes (cold cache) ...")
        summary = run_batch(logs, settings, executor, outputs)
        print(f"  {summary.line()}")
        warm = run_batch(logs, settings, executor, outputs)
        print(f"  again, warm cache: {warm.line()}")
        by_case = {}
        for want in manifest:
            by_case.setdefault(want["case"], want["log"])
        by_log = {row["log"]: row for row in _read_rows(out, ["log", "status", "error_code", "rim", "detail"])}
        print(f"\n{'case':<16} {'log':<14} {'status':<10} {'error_code':<18} {'rim':<17} detail")
        for case, name in by_case.items():
            row = by_log[name]
            print(f"{case:<16} {name:<14} {row['status']:<10} {_short(row['error_code'], 18):<18} "
                  f"{_short(row['rim'], 16):<17} {_short(row['detail'], 60)}")
        wrong = [w["log"] for w in manifest
                 if (by_log[w["log"]]["status"], by_log[w["log"]]["error_code"]) != (w["status"], w["error_code"])]
        if wrong:
            print(f"\n{len(wrong)} verdicts differ from the fleet's manifest: {', '.join(wrong[:10])}")
            return EXIT_FAILED
        print(f"\nAll {len(manifest)} verdicts match the fleet's manifest. Results: {len(by_log)} rows written "
              f"to a Parquet file ({os.path.getsize(out):,} bytes), removed with the demo directory.")
        from ..output.report import report
        from .report import write_report

        write_report(args.report, report(out))
        print(f"The run's report page: {os.path.abspath(args.report)} (open it in a browser; "
              f"`fastrim report RESULTS --html OUT.html` makes one from any batch's results).")
    return EXIT_OK

"""The fastrim command line (see --help)."""

import argparse
import dataclasses
import datetime
import json
import logging
import os
import sys
import tempfile

from . import __version__, backends, batch, bench, cca, ear, fleet, pcr, replay, results, tcglog, token, verify
from .contentcache import ContentCache
from .errors import FastrimError, LogFormatError
from .cca import HASH_ALGOS
from .events import alg_name
from .files import map_file, write_atomic
from .progress import Progress
from .refstore import RefStore, default_cache_dir
from .stepmemo import StepMemo

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _record_dict(record):
    fields = {f.name: results.jsonable(getattr(record, f.name)) for f in dataclasses.fields(record)}
    return {"kind": type(record).__name__, **fields}


def _event_dict(log, event):
    out = {
        "index": event.index,
        "offset": event.offset,
        "pcr": event.pcr,
        "type": event.type,
        "type_name": event.type_name,
        "digests": {alg_name(alg): d.hex() for alg, d in event.digests.items()},
        "data_size": len(event.data),
        "data": event.data.hex(),
    }
    if event.index == 0 and log.format == "crypto-agile":
        out["decoded"] = {"kind": "SpecIdEvent03", "algorithms": log.bank_names}
    else:
        try:
            record = cca.decode_event(event, log.algs[0][0])
        except LogFormatError as exc:
            out["decode_error"] = str(exc)
            record = None
        if record is not None:
            out["decoded"] = _record_dict(record)
    return out


def cmd_parse(args):
    log = tcglog.parse(map_file(args.log), max_event_size=args.max_event_size)
    for event in log.events:
        item = _event_dict(log, event)
        if args.json:
            print(json.dumps(item))
        else:
            digests = " ".join(f"{k}:{v}" for k, v in item["digests"].items())
            decoded = item.get("decoded")
            note = f" {decoded}" if decoded else ""
            print(f"{event.offset:>8} pcr={event.pcr:<3} {event.type_name:<32} size={len(event.data)} {digests}{note}")
    return EXIT_OK


def _replay_options(args):
    return replay.ReplayOptions(
        profile=args.profile, force_lpa2=args.force_lpa2, bps_wps_as_counts=args.bps_wps_as_counts,
        max_measured_bytes=args.max_measured_bytes, max_ripas_blocks=args.max_ripas_blocks,
    )


def _cache(args):
    return None if args.no_cache else ContentCache(args.cache_dir)


def _memo(args):
    return StepMemo(None if args.no_cache else args.cache_dir)


def cmd_replay(args):
    log = tcglog.parse(map_file(args.log), max_event_size=args.max_event_size)
    banks = pcr.replay(log)
    out = {
        "format": log.format,
        "banks": log.bank_names,
        "pcrs": {bank: {str(i): v.hex() for i, v in values.items()} for bank, values in banks.items()},
    }
    if cca.is_cca_log(log):
        refs = RefStore(args.refs, cache_dir=args.cache_dir) if args.refs else None
        try:
            decoded = cca.decode(log)
            if decoded.realm is not None:
                out["hash_algo"] = decoded.realm.hash_name
            result = replay.replay(decoded, refs, options=_replay_options(args), cache=_cache(args))
            out["rim"] = result.rim.hex()
            out["steps"] = [[label, value.hex()] for label, value in result.steps]
        except FastrimError as exc:
            out["rim"] = None
            out["rim_error"] = {"code": exc.code, "offset": exc.offset, "detail": exc.args[0]}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"format {out['format']}, banks {', '.join(out['banks'])}")
        for bank, values in out["pcrs"].items():
            for index, value in values.items():
                print(f"{bank} pcr{index:<2} {value}")
        if "rim" in out:
            if out["rim"] is None:
                print(f"RIM cannot be computed: {out['rim_error']['code']}: {out['rim_error']['detail']}")
            else:
                print(f"RIM ({out.get('hash_algo')}) {out['rim']}")
    return EXIT_OK


def _rim_arg(text):
    try:
        return verify.parse_rim_hex(text, "--rim")
    except FastrimError as exc:
        raise argparse.ArgumentTypeError(exc.args[0]) from None


def _platform_keys(args):
    """The trust anchors, loaded once here so that a bad file is a usage error."""
    try:
        return [token.load_platform_key(path) for path in args.platform_key]
    except FastrimError as exc:
        args.parser.error(str(exc))


def _write_ear(path, rows):
    try:
        write_atomic(path, lambda f: f.write(ear.json_lines(rows).encode()))
    except OSError as exc:
        raise ResultsNotWritten(f"cannot write the EAR claims to {path}: {exc.strerror or exc}") from None


def cmd_verify(args):
    refs = RefStore(args.refs, cache_dir=args.cache_dir)
    verdict = verify.verify(
        args.log, refs, args.rim, token_path=args.token, platform_keys=_platform_keys(args),
        options=_replay_options(args), cache=_cache(args), memo=_memo(args), max_event_size=args.max_event_size,
    )
    if args.ear:
        _write_ear(args.ear, [verdict.row()])
    if args.json:
        print(results.json_line(verdict.row()))
    else:
        line = f"{verdict.status}"
        if verdict.error_code:
            line += f" {verdict.error_code}"
        if verdict.rim is not None:
            line += f" rim={verdict.rim.hex()}"
        if verdict.detail:
            line += f": {verdict.detail}"
        print(line)
    return EXIT_OK if verdict.status in (verify.PASS, verify.UNVERIFIED) else EXIT_FAILED


def cmd_index(args):
    store = RefStore(args.refs, cache_dir=args.cache_dir, jobs=args.jobs)
    print(f"{len(store)} reference images in {store.root}, {store.hashed} hashed now; index {store.index_path}")
    return EXIT_OK


class ResultsNotWritten(Exception):
    """The batch ran but its results file could not be written (nothing of it is left)."""


def _batch_exit(summary, rows):
    if any((row["error_code"] or "").startswith("internal.") for row in rows):  # worker crashes included
        return EXIT_INTERNAL
    return EXIT_FAILED if summary.counts[verify.FAIL] or summary.counts[verify.ERROR] else EXIT_OK


def _run_batch(roots, refs_dir, out, *, jobs, expected, options, cache_dir, max_event_size, argv,
               jsonl=False, platform_key_paths=(), ear_path=None):
    """Verify every log under roots and write the results; returns (rows, summary)."""
    logs = batch.discover(roots)
    if not logs:
        logging.getLogger("fastrim").warning("no *.log or *.bin files under %s", ", ".join(roots))
    refs = RefStore(refs_dir, cache_dir=cache_dir or default_cache_dir(), jobs=jobs)
    progress = Progress(len(logs))

    def on_row(row):
        progress.advance()
        if jsonl:
            print(results.json_line(row), flush=True)

    try:
        rows, summary = batch.run(logs, refs, jobs=jobs, expected=expected, options=options, cache_dir=cache_dir,
                                  max_event_size=max_event_size, on_row=on_row,
                                  platform_key_paths=platform_key_paths)
    finally:
        progress.close()
    if out:
        metadata = {
            "fastrim.version": __version__,
            "fastrim.backend": backends.active.NAME,
            "fastrim.hash_kernel": json.dumps({name: backends.active.hash_kernel(alg)
                                               for alg, name in HASH_ALGOS.values()}),
            "fastrim.argv": json.dumps(argv),
            "fastrim.refs": refs.root,
            "fastrim.profile": options.profile,
            "fastrim.created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        try:
            results.write_parquet(out, rows, metadata)
        except OSError as exc:
            raise ResultsNotWritten(f"cannot write the results to {out}: {exc.strerror or exc}") from None
    if ear_path:
        _write_ear(ear_path, rows)
    return rows, summary


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


def cmd_batch(args):
    if not args.out and not args.jsonl:
        args.parser.error("give --out FILE, --jsonl or both")
    for path in (args.out, args.ear):
        if path:
            _check_writable(args.parser, path)
    _platform_keys(args)
    expected = batch.read_expected(args.expected) if args.expected else {}
    for root in args.logs:
        if not os.path.exists(root):
            args.parser.error(f"{root}: no such directory or file")
    rows, summary = _run_batch(
        args.logs, args.refs, args.out, jobs=args.jobs, expected=expected, options=_replay_options(args),
        cache_dir=None if args.no_cache else args.cache_dir, max_event_size=args.max_event_size,
        argv=args.argv, jsonl=args.jsonl, platform_key_paths=args.platform_key, ear_path=args.ear,
    )
    where = f"; results in {args.out}" if args.out else ""
    print(f"fastrim: {summary.line()}{where}", file=sys.stderr)
    return _batch_exit(summary, rows)


def cmd_synth(args):
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


def cmd_demo(args):
    with tempfile.TemporaryDirectory(prefix="fastrim-demo-") as work:
        print(f"Generating a synthetic fleet of {args.vms} realms (seed {args.seed}) ...")
        manifest = fleet.generate(work, vms=args.vms, seed=args.seed, tamper=args.tamper, scale=args.scale)
        roots, refs_dir, out = [os.path.join(work, "logs")], os.path.join(work, "refs"), os.path.join(work, "results.parquet")
        common = dict(jobs=args.jobs, expected={}, options=replay.ReplayOptions(),
                      cache_dir=os.path.join(work, "cache"), max_event_size=tcglog.DEFAULT_MAX_EVENT_SIZE,
                      argv=args.argv)
        print(f"Verifying them with {args.jobs} worker processes (cold cache) ...")
        rows, summary = _run_batch(roots, refs_dir, out, **common)
        print(f"  {summary.line()}")
        _, warm = _run_batch(roots, refs_dir, out, **common)
        print(f"  again, warm cache: {warm.line()}")
        by_case = {}
        for want in manifest:
            by_case.setdefault(want["case"], want["log"])
        by_log = {row["log"]: row for row in rows}
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
        print(f"\nAll {len(manifest)} verdicts match the fleet's manifest. Results: {len(rows)} rows written "
              f"to a Parquet file ({os.path.getsize(out):,} bytes), removed with the demo directory.")
    return EXIT_OK


def cmd_bench(args):
    rows = bench.measure(args.algo, args.backend, mib=args.mib, repeat=args.repeat)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(f"{args.mib} MiB image, best of {args.repeat}; ratio = throughput / hashlib one call on the same bytes")
        print(bench.format_table(rows))
    return EXIT_OK


def _csv_choice(choices):
    def parse(text):
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)} (comma-separated)")
        return values
    return parse


def _add_max_event_size(p):
    p.add_argument("--max-event-size", type=int, default=tcglog.DEFAULT_MAX_EVENT_SIZE, metavar="BYTES",
                   help="refuse events larger than this (default %(default)s)")


def _add_log_options(p):
    p.add_argument("log", help="the TCG2 event log (binary)")
    _add_max_event_size(p)


def _add_replay_options(p, refs_required):
    p.add_argument("--refs", required=refs_required, metavar="DIR",
                   help="directory of known-good images, found by the digest the log records")
    p.add_argument("--profile", choices=replay.PROFILES, default="1.0-rel0",
                   help="RMM measurement profile (default %(default)s)")
    p.add_argument("--force-lpa2", action="store_true",
                   help="set the LPA2 flag in the realm parameters (LPA2 hosts; QEMU never logs it)")
    p.add_argument("--bps-wps-as-counts", action="store_true",
                   help="the log holds breakpoint/watchpoint counts, not count - 1 (an older kernel)")
    p.add_argument("--max-measured-bytes", type=int, default=replay.DEFAULT_MAX_MEASURED_BYTES, metavar="BYTES",
                   help="refuse a log whose images (measured or not) add up to more (default %(default)s)")
    p.add_argument("--max-ripas-blocks", type=int, default=replay.DEFAULT_MAX_RIPAS_BLOCKS, metavar="N",
                   help="refuse a log whose INIT_RIPAS events split into more RTT blocks (default %(default)s)")
    p.add_argument("--no-cache", action="store_true",
                   help="do not read or write the content-hash cache and step memo")
    p.add_argument("--cache-dir", default=default_cache_dir(), metavar="DIR",
                   help="cache directory (default: $FASTRIM_CACHE_DIR or %(default)s)")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _add_jobs_option(p, what):
    p.add_argument("--jobs", type=_positive_int, default=os.cpu_count() or 1, metavar="N",
                   help=f"{what} (default: one per CPU, %(default)s here)")


def _add_attestation_options(p):
    p.add_argument("--platform-key", action="append", default=[], metavar="FILE",
                   help="a trust anchor for CCA platform tokens: PEM (public or private) key or EC JWK; "
                   "repeatable. A token no configured key verifies never passes")
    p.add_argument("--ear", metavar="FILE", help="also write each verdict as a Veraison EAR claims set (JSON lines)")


def _add_fleet_options(p, vms, scale):
    p.add_argument("--vms", type=_positive_int, default=vms, help="how many realms (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same fleet")
    p.add_argument("--tamper", type=float, default=0.1, metavar="F",
                   help="fraction of tampered or broken cases (default %(default)s)")
    p.add_argument("--scale", type=float, default=scale,
                   help="image sizes as a fraction of realistic ones (default %(default)s)")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastrim",
        description="Verify Arm CCA realm measurement logs: replay the Realm Initial Measurement "
        "(RIM) from a TCG2 event log and known-good images, and compare it with the attested one.",
        epilog="Exit status: 0 pass/unverified, 1 fail or error, 2 usage error, "
        "3 internal error or incomplete results.",
    )
    parser.add_argument("--version", action="version",
                        version=f"fastrim {__version__} (backend {backends.active.NAME})")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log messages on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("parse", help="list the events of a log",
                       description="List every event of a TCG2 log (crypto-agile or SHA1-legacy).")
    _add_log_options(p)
    p.add_argument("--json", action="store_true", help="JSON lines, one event each")
    p.set_defaults(parser=p, run=cmd_parse)

    p = sub.add_parser("replay", help="replay PCR banks, and the RIM of a CCA log",
                       description="Replay the logged digests into PCR banks (TPM style); for an Arm CCA "
                       "log also rebuild the RIM when --refs holds every measured image.")
    _add_log_options(p)
    _add_replay_options(p, refs_required=False)
    p.add_argument("--json", action="store_true", help="one JSON object, digests in lower-case hex")
    p.set_defaults(parser=p, run=cmd_replay)

    p = sub.add_parser("verify", help="verify a CCA log against an expected RIM",
                       description="Replay the RIM of an Arm CCA log and compare it with the attested value: "
                       "--rim or --token, else the sidecar X.token (checked against --platform-key), else X.rim. "
                       "Without one the verdict is 'unverified'.")
    _add_log_options(p)
    _add_replay_options(p, refs_required=True)
    attested = p.add_mutually_exclusive_group()
    attested.add_argument("--rim", metavar="HEX", type=_rim_arg, help="the attested RIM (hex); beats any sidecar")
    attested.add_argument("--token", metavar="FILE",
                          help="the realm's CCA attestation token (tag 399 or 907); beats any sidecar")
    _add_attestation_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object, digests in lower-case hex")
    p.set_defaults(parser=p, run=cmd_verify)

    p = sub.add_parser(
        "batch", help="verify every log under some directories, in parallel",
        description="Verify every *.log and *.bin file under LOGS against its expected RIM (a row of "
        "--expected, else the sidecar X.rim) in worker processes, and write one result row per log. "
        "A bad log is an 'error' row, never a stopped batch.",
        epilog="Exit status: 0 all pass/unverified, 1 some fail or error (results still written), "
        "2 usage error, 3 internal error (e.g. a worker crashed) or interrupted (nothing written).",
    )
    p.add_argument("logs", nargs="+", metavar="LOGS", help="directories of logs (or single log files)")
    _add_replay_options(p, refs_required=True)
    _add_max_event_size(p)
    p.add_argument("--out", metavar="FILE", help="Parquet results file, written atomically")
    p.add_argument("--jsonl", action="store_true", help="also stream each row to stdout as a JSON line")
    _add_jobs_option(p, "worker processes")
    p.add_argument("--expected", metavar="FILE",
                   help="expected RIMs: CSV with a header, or JSON lines, with columns log and rim; "
                   "log is the name relative to LOGS; beats the X.token and X.rim sidecars")
    _add_attestation_options(p)
    p.set_defaults(parser=p, run=cmd_batch)

    p = sub.add_parser("index", help="build or refresh the reference image index",
                       description="Hash new or changed files of a reference store and save the index.")
    p.add_argument("refs", metavar="DIR")
    p.add_argument("--cache-dir", default=default_cache_dir(), metavar="DIR")
    _add_jobs_option(p, "processes hashing new or changed images")
    p.set_defaults(parser=p, run=cmd_index)

    p = sub.add_parser("synth", help="write a synthetic fleet with known verdicts",
                       description="Write a reference store (OUTDIR/refs), QEMU-layout logs with .rim sidecars "
                       "(OUTDIR/logs) and the verdict each log must get (OUTDIR/manifest.jsonl).")
    p.add_argument("outdir", metavar="OUTDIR", help="a new or empty directory")
    _add_fleet_options(p, vms=100, scale=1.0)
    p.set_defaults(parser=p, run=cmd_synth)

    p = sub.add_parser("demo", help="synth + batch + summary, in a temporary directory",
                       description="Generate a synthetic fleet, verify it twice (cold and warm cache), "
                       "show a few rows and check every verdict against the fleet's manifest.")
    _add_fleet_options(p, vms=200, scale=0.25)
    _add_jobs_option(p, "worker processes")
    p.set_defaults(parser=p, run=cmd_demo)

    p = sub.add_parser("bench", help="measurement-algorithm throughput table",
                       description="Time RIM replay of one image (cold, warm, descriptor chain only) per "
                       "algorithm and backend, as GB/s and as a ratio to hashlib hashing the same bytes.")
    p.add_argument("--algo", type=_csv_choice(tuple(bench.ALGOS)), default=list(bench.ALGOS),
                   help="comma-separated: sha256,sha512 (default both)")
    p.add_argument("--backend", type=_csv_choice(("cffi", "python")), default=[backends.active.NAME],
                   help="comma-separated: cffi,python (default the active one)")
    p.add_argument("--mib", type=_positive_int, default=64, help="image size in MiB (default %(default)s)")
    p.add_argument("--repeat", type=_positive_int, default=3,
                   help="runs per case; the best counts (default %(default)s)")
    p.add_argument("--json", action="store_true", help="JSON lines, one per row")
    p.set_defaults(parser=p, run=cmd_bench)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), stream=sys.stderr,
                        format="fastrim: %(message)s")
    try:
        return args.run(args)
    except FastrimError as exc:
        print(f"fastrim: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        print("fastrim: interrupted; no results were written", file=sys.stderr)
        return EXIT_INTERNAL
    except ResultsNotWritten as exc:
        print(f"fastrim: {exc}; no results were written", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # an internal error: one line, no traceback for users
        print(f"fastrim: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())

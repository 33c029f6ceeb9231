"""The fastrim command line: parse, replay, verify and index (see --help)."""

import argparse
import dataclasses
import json
import sys

from . import __version__, backends, cca, pcr, replay, tcglog, verify
from .contentcache import ContentCache
from .errors import FastrimError, LogFormatError
from .events import alg_name
from .files import map_file
from .refstore import RefStore, default_cache_dir

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _jsonable(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _record_dict(record):
    fields = {f.name: _jsonable(getattr(record, f.name)) for f in dataclasses.fields(record)}
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
        profile=args.profile, force_lpa2=args.force_lpa2, bps_wps_as_counts=args.bps_wps_as_counts
    )


def _cache(args):
    return None if args.no_cache else ContentCache(args.cache_dir)


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


def cmd_verify(args):
    expected = args.rim if args.rim is not None else verify.sidecar_rim(args.log)
    refs = RefStore(args.refs, cache_dir=args.cache_dir)
    verdict = verify.verify(
        args.log, refs, expected, options=_replay_options(args), cache=_cache(args),
        max_event_size=args.max_event_size,
    )
    if args.json:
        print(json.dumps(verdict.as_dict()))
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
    store = RefStore(args.refs, cache_dir=args.cache_dir)
    print(f"{len(store)} reference images in {store.root}, {store.hashed} hashed now; index {store.index_path}")
    return EXIT_OK


def _add_log_options(p):
    p.add_argument("log", help="the TCG2 event log (binary)")
    p.add_argument("--max-event-size", type=int, default=tcglog.DEFAULT_MAX_EVENT_SIZE, metavar="BYTES",
                   help="refuse events larger than this (default %(default)s)")


def _add_replay_options(p, refs_required):
    p.add_argument("--refs", required=refs_required, metavar="DIR",
                   help="directory of known-good images, found by the digest the log records")
    p.add_argument("--profile", choices=replay.PROFILES, default="1.0-rel0",
                   help="RMM measurement profile (default %(default)s)")
    p.add_argument("--force-lpa2", action="store_true",
                   help="set the LPA2 flag in the realm parameters (LPA2 hosts; QEMU never logs it)")
    p.add_argument("--bps-wps-as-counts", action="store_true",
                   help="the log holds breakpoint/watchpoint counts, not count - 1 (an older kernel)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the content-hash cache")
    p.add_argument("--cache-dir", default=default_cache_dir(), metavar="DIR",
                   help="cache directory (default: $FASTRIM_CACHE_DIR or %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object, digests in lower-case hex")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastrim",
        description="Verify Arm CCA realm measurement logs: replay the Realm Initial Measurement "
        "(RIM) from a TCG2 event log and known-good images, and compare it with the attested one.",
        epilog="Exit status: 0 pass/unverified, 1 fail or error, 2 usage error, 3 internal error.",
    )
    parser.add_argument("--version", action="version",
                        version=f"fastrim {__version__} (backend {backends.active.NAME})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("parse", help="list the events of a log",
                       description="List every event of a TCG2 log (crypto-agile or SHA1-legacy).")
    _add_log_options(p)
    p.add_argument("--json", action="store_true", help="JSON lines, one event each")
    p.set_defaults(run=cmd_parse)

    p = sub.add_parser("replay", help="replay PCR banks, and the RIM of a CCA log",
                       description="Replay the logged digests into PCR banks (TPM style); for an Arm CCA "
                       "log also rebuild the RIM when --refs holds every measured image.")
    _add_log_options(p)
    _add_replay_options(p, refs_required=False)
    p.set_defaults(run=cmd_replay)

    p = sub.add_parser("verify", help="verify a CCA log against an expected RIM",
                       description="Replay the RIM of an Arm CCA log and compare it with the expected value "
                       "(--rim, else the sidecar LOG.rim). Without one the verdict is 'unverified'.")
    _add_log_options(p)
    _add_replay_options(p, refs_required=True)
    p.add_argument("--rim", metavar="HEX", type=_rim_arg, help="the attested RIM (hex); beats a LOG.rim sidecar")
    p.set_defaults(run=cmd_verify)

    p = sub.add_parser("index", help="build or refresh the reference image index",
                       description="Hash new or changed files of a reference store and save the index.")
    p.add_argument("refs", metavar="DIR")
    p.add_argument("--cache-dir", default=default_cache_dir(), metavar="DIR")
    p.set_defaults(run=cmd_index)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except FastrimError as exc:
        print(f"fastrim: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # an internal error: one line, no traceback for users
        print(f"fastrim: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())

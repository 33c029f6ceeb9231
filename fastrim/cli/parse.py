"""fastrim parse: the events of a log, one per line."""

import json

from ..algorithms import tcg_name
from ..errors import LogFormatError
from ..log import cca, tcg
from ..output.jsonl import jsonable
from .common import EXIT_OK, add_log_argument, command


def add_parser(sub):
    p = command(sub, "parse", "list the events of a log",
                "List every event of a TCG2 event log (crypto-agile or SHA1-legacy): offset, PCR, type, digests "
                "and size, with the Arm CCA events QEMU writes decoded. Nothing is verified: a malformed log is "
                "an error with its code and byte offset (exit 1).",
                ["fastrim parse realm.log", "fastrim parse /sys/kernel/security/tpm0/binary_bios_measurements --json"])
    add_log_argument(p)
    p.add_argument("--json", action="store_true", help="JSON lines, one event each, digests in hex (default: text)")
    p.set_defaults(parser=p, run=run)


def _record_dict(record):
    return {"kind": type(record).__name__, **jsonable(record._asdict())}


def _event_dict(log, event):
    out = {
        "index": event.index,
        "offset": event.offset,
        "pcr": event.pcr,
        "type": event.type,
        "type_name": event.type_name,
        "digests": {tcg_name(alg): d.hex() for alg, d in event.digests.items()},
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


def run(args):
    log = tcg.parse(tcg.read_log(args.log, args.max_log_size), max_event_size=args.max_event_size)
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

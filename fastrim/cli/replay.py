"""fastrim replay: PCR banks of any TCG log, and the RIM of a CCA log."""

import json

from ..log import cca, pcr, tcg
from .common import EXIT_OK, add_log_argument, add_replay_options, cache_dir, command, limits, replay_options


def add_parser(sub):
    p = command(sub, "replay", "replay PCR banks, and the RIM of a CCA log",
                "Replay the logged digests into PCR banks (TPM style), for any TCG2 log; for an Arm CCA realm "
                "log also rebuild the RIM, step by step, when --refs holds every measured image (else the "
                "reason there is none). Nothing is compared: use verify for a verdict.",
                ["fastrim replay tpm-eventlog.bin --json", "fastrim replay realm.log --refs /srv/known-good"])
    add_log_argument(p)
    add_replay_options(p, refs_required=False)
    p.add_argument("--json", action="store_true", help="one JSON object, digests in lower-case hex (default: text)")
    p.set_defaults(parser=p, run=run)


def run(args):
    data = tcg.read_log(args.log, args.max_log_size)
    log = tcg.parse(data, max_event_size=args.max_event_size)
    banks = pcr.replay_pcrs(log)
    out = {
        "format": log.format,
        "banks": log.bank_names,
        "pcrs": {bank: {str(i): v.hex() for i, v in values.items()} for bank, values in banks.items()},
    }
    if cca.is_cca_log(log):
        out.update(_rim(args, data))
    if args.json:
        print(json.dumps(out))
    else:
        _print_text(out)
    return EXIT_OK


def _rim(args, data):
    """The RIM part of the output, through the verification pipeline (with no attested value)."""
    from ..evidence.expected import ExpectedSource
    from ..store.refs import RefStore
    from ..verifier import Context, LogSource, Settings, verify

    directory = cache_dir(args)
    refs = RefStore(args.refs, cache_dir=directory, index=()) if args.refs else None  # hashed as the log asks
    settings = Settings(refs, replay_options(args), directory, limits(args))
    verdict = verify(Context.from_settings(settings),
                     LogSource(args.log, data, expected=ExpectedSource(sidecars=False)))
    out = {"hash_algo": verdict.hash_algo} if verdict.hash_algo else {}
    if verdict.error is not None:
        error = verdict.error
        return {**out, "rim": None, "rim_error": {"code": error.code, "offset": error.offset, "detail": error.args[0]}}
    return {**out, "rim": verdict.rim.hex(), "steps": [[label, value.hex()] for label, value in verdict.steps]}


def _print_text(out):
    print(f"format {out['format']}, banks {', '.join(out['banks'])}")
    for bank, values in out["pcrs"].items():
        for index, value in values.items():
            print(f"{bank} pcr{index:<2} {value}")
    if "rim" in out:
        if out["rim"] is None:
            print(f"RIM cannot be computed: {out['rim_error']['code']}: {out['rim_error']['detail']}")
        else:
            print(f"RIM ({out.get('hash_algo')}) {out['rim']}")

"""fastrim explain: the first step where a launch went another way than a golden one."""

import json

from ..errors import FastrimError
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    add_log_argument,
    add_replay_options,
    cache_dir,
    command,
    input_dir,
    input_file,
    limits,
    replay_options,
)


def add_parser(sub):
    p = command(
        sub, "explain", "the first step where a log diverges from a golden log, and why",
        "Replay LOG and the GOLDEN log of the same configuration step by step and print the first step "
        "where they diverge: a realm parameter (which field, both values), an image's digest (both digests, "
        "and the reference file of each when --refs holds it), its load address or size, a REC's entry point "
        "or registers, an event missing or extra; then the RIM of each after that step. Exit 0 when they do "
        "not diverge, 1 when they do.",
        ["fastrim explain vm-0042.log --golden golden/config-007.log --refs /srv/known-good",
         "fastrim explain vm-0042.log --golden golden.log --refs refs/ --json"])
    add_log_argument(p)
    p.add_argument("--golden", required=True, metavar="GOLDEN", help="the golden log to hold LOG to")
    add_replay_options(p, refs_required=True)
    p.add_argument("--json", action="store_true", help="one JSON object instead of lines of text (default: text)")
    p.set_defaults(parser=p, run=run)


def run(args):
    from ..store.refs import RefStore
    from ..verifier import Context, Settings

    input_file(args.parser, "LOG", args.log)
    input_file(args.parser, "--golden", args.golden)
    input_dir(args.parser, "--refs", args.refs)
    directory = cache_dir(args)
    refs = RefStore(args.refs, cache_dir=directory, index=())
    context = Context.from_settings(Settings(refs, replay_options(args), directory, limits(args)))
    golden, golden_error = _replayed(context, args.golden)
    if golden_error is not None:
        args.parser.error(f"--golden {args.golden} does not replay: {golden_error}")
    mine, error = _replayed(context, args.log)
    out = explained(mine, golden, refs, error)
    if args.json:
        print(json.dumps(out))
    else:
        print(out["detail"])
        for who in ("log", "golden") if out["diverges"] and out.get("field") != "log" else ():
            prefix = "" if who == "log" else "golden_"
            if out.get(prefix + "offset") is not None or out.get(prefix + "rim") is not None:
                line = f"  {who + ':':<8}event at byte offset {out.get(prefix + 'offset')}, RIM after it " \
                       f"{out.get(prefix + 'rim') or '(not replayed: ' + str(out.get(prefix + 'rim_error')) + ')'}"
                if out.get(prefix + "reference", False) is not False:
                    line += f"; reference image {out[prefix + 'reference'] or '(none in --refs)'}"
                print(line)
    return EXIT_FAILED if out["diverges"] else EXIT_OK


def _replayed(context, path):
    """(decoded log, verdict of its replay), or (None, the error text) when it does not decode."""
    from ..log import cca, tcg
    from ..verifier import LogSource, verify

    try:
        data = tcg.read_log(path, context.limits.max_log_size)
        decoded = cca.decode(tcg.parse(data, max_event_size=context.limits.max_event_size, impl=context.impl))
    except FastrimError as exc:
        return None, exc
    from ..evidence.expected import ExpectedSource

    return (decoded, verify(context, LogSource(path, data, expected=ExpectedSource(sidecars=False)))), None


def explained(mine, golden, refs, error=None):
    """The first divergence of mine from golden ((decoded, verdict) pairs),
    as JSON-able data; error: why mine does not decode, when it does not."""
    from ..rim.explain import describe, first_divergence

    golden_log, golden_verdict = golden
    if mine is None:
        from ..rim.explain import label

        at = [(i, step) for i, step in enumerate(golden_log.steps) if error.offset is not None and step.offset <= error.offset]
        where = f"; there the golden log has step {at[-1][0]} ({label(at[-1][1].record)})" if at else ""
        return {"diverges": True, "field": "log", "log_error": {"code": error.code, "offset": error.offset},
                "step": at[-1][0] if at else None, "label": label(at[-1][1].record) if at else None,
                "detail": f"the log does not decode: {error.args[0]} ({error.code} at byte offset {error.offset})"
                          + where, "offset": error.offset}
    log, verdict = mine
    divergence = first_divergence(log, golden_log)
    if divergence is None:
        return {"diverges": False, "steps": len(log.steps), "rim": _jsonable(verdict.rim),
                "detail": f"the log and the golden log do not diverge: {len(log.steps)} steps alike"
                          + (f", RIM {verdict.rim.hex()}" if verdict.rim else "")}
    out = {"diverges": True, **{k: v for k, v in divergence._asdict().items() if k not in ("value", "golden")},
           "log": _jsonable(divergence.value), "golden": _jsonable(divergence.golden),
           "detail": describe(divergence),
           "rim": _rim_after(verdict, divergence.step), "golden_rim": _rim_after(golden_verdict, divergence.step)}
    if out["rim"] is None and verdict.error_code:
        out["rim_error"] = verdict.error_code
    if divergence.field == "digest":
        alg = golden_log.realm.alg
        for key, value, size in (("reference", divergence.value, log.steps[divergence.step].record.size),
                                 ("golden_reference", divergence.golden,
                                  golden_log.steps[divergence.step].record.size)):
            found = refs.find(alg, value, size) if value is not None else None
            out[key] = found.name if found is not None else None
    return out


def _rim_after(verdict, step):
    return verdict.steps[step][1].hex() if step < len(verdict.steps) else None


def _jsonable(value):
    """value for JSON (output.jsonl's rules), a decoded record as a map of its fields."""
    from ..output.jsonl import jsonable

    return jsonable(value._asdict() if hasattr(value, "_asdict") else value)

"""fastrim verify: one log against its attested RIM."""

import argparse

from ..errors import FastrimError
from ..evidence.expected import parse_rim_hex
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    add_attestation_options,
    add_log_argument,
    add_replay_options,
    platform_keys,
    replay_options,
    write_ear,
)


def _rim_arg(text):
    try:
        return parse_rim_hex(text, "--rim")
    except FastrimError as exc:
        raise argparse.ArgumentTypeError(exc.args[0]) from None


def add_parser(sub):
    p = sub.add_parser("verify", help="verify a CCA log against an expected RIM",
                       description="Replay the RIM of an Arm CCA log and compare it with the attested value: "
                       "--rim or --token, else the sidecar X.token (checked against --platform-key), else X.rim. "
                       "Without one the verdict is 'unverified'.")
    add_log_argument(p)
    add_replay_options(p, refs_required=True)
    attested = p.add_mutually_exclusive_group()
    attested.add_argument("--rim", metavar="HEX", type=_rim_arg, help="the attested RIM (hex); beats any sidecar")
    attested.add_argument("--token", metavar="FILE",
                          help="the realm's CCA attestation token (tag 399 or 907); beats any sidecar")
    add_attestation_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object, digests in lower-case hex")
    p.set_defaults(parser=p, run=run)


def run(args):
    from ..evidence.expected import ExpectedSource
    from ..store.refs import RefStore
    from ..verifier import PASS, UNVERIFIED, Context, LogSource, Settings, verify

    keys = platform_keys(args)
    refs = RefStore(args.refs, cache_dir=args.cache_dir)
    settings = Settings(refs, replay_options(args), None if args.no_cache else args.cache_dir,
                        args.max_event_size, platform_keys=keys)
    source = LogSource(args.log, expected=ExpectedSource(args.rim, args.token))
    verdict = verify(Context.from_settings(settings), source)
    if args.ear or args.json:
        from ..output.jsonl import json_line
        from ..output.rows import row as result_row

        row = result_row(verdict)
        if args.ear:
            write_ear(args.ear, [row])
        if args.json:
            print(json_line(row))
    if not args.json:
        line = f"{verdict.status}"
        if verdict.error_code:
            line += f" {verdict.error_code}"
        if verdict.rim is not None:
            line += f" rim={verdict.rim.hex()}"
        if verdict.detail:
            line += f": {verdict.detail}"
        print(line)
    return EXIT_OK if verdict.status in (PASS, UNVERIFIED) else EXIT_FAILED

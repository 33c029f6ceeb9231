"""fastrim verify: one log against its attested RIM."""

import argparse

from ..errors import FastrimError
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    add_attestation_options,
    add_log_argument,
    add_replay_options,
    cache_dir,
    check_outputs,
    command,
    endorsements,
    input_dir,
    input_file,
    limits,
    platform_keys,
    replay_options,
    write_ear,
)


def _rim_arg(text):
    from ..evidence.expected import parse_rim_hex

    try:
        return parse_rim_hex(text, "--rim")
    except FastrimError as exc:
        raise argparse.ArgumentTypeError(exc.args[0]) from None


def add_parser(sub):
    p = command(sub, "verify", "verify a CCA log against an expected RIM",
                "Replay the RIM of an Arm CCA realm log against the known-good images in --refs and compare "
                "it with the attested value: --rim or --token, else the sidecar X.token (believed only once "
                "checked against a --platform-key), else X.rim. Prints one line: pass, fail, error or "
                "unverified (no attested value; the computed RIM is shown).",
                ["fastrim verify realm.log --refs /srv/known-good --rim 3d1f...e0",
                 "fastrim verify realm.log --refs refs/ --token realm.token --platform-key cca_platform.pem",
                 "fastrim verify realm.log --refs refs/ --json --ear realm.ear.jsonl"])
    add_log_argument(p)
    add_replay_options(p, refs_required=True)
    attested = p.add_mutually_exclusive_group()
    attested.add_argument("--rim", metavar="HEX", type=_rim_arg,
                          help="the attested RIM (32, 48 or 64 bytes of hex; a digest followed by zero bytes to 48 or 64 is "
                          "the same RIM); beats any sidecar (default: none)")
    attested.add_argument("--token", metavar="FILE",
                          help="the realm's CCA attestation token (tag 399 or 907); beats any sidecar (default: none)")
    add_attestation_options(p)
    p.add_argument("--json", action="store_true",
                   help="the result row as one JSON object, digests in lower-case hex (default: one line of text)")
    p.set_defaults(parser=p, run=run)


def run(args):
    from ..evidence.expected import ExpectedSource
    from ..store.refs import RefStore
    from ..verifier import PASS, UNVERIFIED, Context, LogSource, Settings, verify

    check_outputs(args.parser, [("--ear", args.ear)])
    input_dir(args.parser, "--refs", args.refs)
    if args.token:
        input_file(args.parser, "--token", args.token)
    keys, endorsed = platform_keys(args), endorsements(args)
    directory = cache_dir(args)
    refs = RefStore(args.refs, cache_dir=directory, index=())  # what the log needs, hashed when it asks
    settings = Settings(refs, replay_options(args), directory, limits(args), platform_keys=keys,
                        endorsements=endorsed)
    source = LogSource(args.log, expected=ExpectedSource(args.rim, args.token))
    verdict = verify(Context.from_settings(settings), source)
    if args.ear or args.json:
        from ..output.jsonl import json_line
        from ..output.rows import row as result_row

        row = result_row(verdict)
        if args.ear:
            write_ear(args.ear, row)
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

"""fastrim refvals: the endorsed reference values of golden logs, as a CCA
realm CoRIM that Veraison (and fastrim's --refvals) reads."""

import sys

from ..errors import FastrimError, ResultsNotWritten
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    add_log_limits,
    add_replay_options,
    cache_dir,
    check_outputs,
    command,
    input_dir,
    input_file,
    limits,
    replay_options,
)


def add_parser(sub):
    p = command(
        sub, "refvals", "write the RIMs of golden logs as endorsed reference values (CoRIM)",
        "Replay each golden LOG against the vetted images in --refs and write an unsigned CoRIM (CBOR tag 501, "
        "profile tag:arm.com,2025:cca_realm#1.0.0) holding one CoMID with one reference-value triple per "
        "distinct RIM: class-id the RIM (tagged bytes), measurement cca.rim with its digest, and cca.rpv when "
        "--rpv is given. Veraison provisions it; `fastrim verify/batch --refvals FILE` checks realms against "
        "it. A log that does not replay is named on stderr with its code and left out (exit 1). The same logs "
        "give the same bytes.",
        ["fastrim refvals golden/*.log --refs /srv/known-good --out realm-refvals.cbor",
         "fastrim refvals golden.log --refs refs/ --out comid.json --json --rpv 4144...",
         "fastrim refvals golden.log --refs refs/ --out signed.cbor --sign endorser.pem"])
    p.add_argument("logs", nargs="+", metavar="LOG", help="golden TCG2 event logs (binary)")
    add_replay_options(p, refs_required=True)
    add_log_limits(p)
    p.add_argument("--out", required=True, metavar="FILE",
                   help="where the CoRIM (or with --json the CoMID JSON) goes, written atomically")
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true",
                        help="write the CoMID JSON that Veraison's cocli compiles instead of CBOR (default: CBOR)")
    output.add_argument("--sign", metavar="KEY",
                        help="sign the CoRIM (COSE_Sign1, ES256/384/512 by the key's curve) with this EC private "
                        "key, PEM or JWK (default: unsigned)")
    p.add_argument("--rpv", metavar="HEX", type=_rpv,
                   help="the realm personalization value to endorse with each RIM, 1 to 64 bytes of hex "
                   "(default: none)")
    p.set_defaults(parser=p, run=run)


def _rpv(text):
    import argparse

    try:
        value = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not hex") from None
    if not 1 <= len(value) <= 64:
        raise argparse.ArgumentTypeError(f"the RPV is {len(value)} bytes: give 1 to 64")
    return value


def run(args):
    from ..algorithms import BY_NAME
    from ..evidence import refvals
    from ..store.files import write_atomic
    from ..store.refs import RefStore
    from ..verifier import Context, LogSource, Settings, verify

    check_outputs(args.parser, [("--out", args.out)])
    input_dir(args.parser, "--refs", args.refs)
    for path in args.logs:
        input_file(args.parser, "LOG", path)
    key = None
    if args.sign:
        try:
            key = refvals.load_signing_key(args.sign)
        except FastrimError as exc:
            args.parser.error(str(exc))
    directory = cache_dir(args)
    refs = RefStore(args.refs, cache_dir=directory, index=())  # what the golden logs need, hashed as they ask
    settings = Settings(refs, replay_options(args), directory, limits(args))
    context = Context.from_settings(settings)
    rims, failed = [], 0
    for path in args.logs:
        verdict = verify(context, LogSource(path))
        if verdict.rim is None:
            failed += 1
            print(f"fastrim: {path}: {verdict.error_code}: {verdict.detail}; left out", file=sys.stderr)
            continue
        rims.append((BY_NAME[verdict.hash_algo], verdict.rim))
    if not rims:
        print("fastrim: no log replayed: nothing was written", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        data = refvals.comid_json(rims, args.rpv).encode()
    else:
        data = refvals.corim(rims, args.rpv)
        if key is not None:
            data = refvals.sign(data, key)
    try:
        write_atomic(args.out, lambda f: f.write(data))
    except OSError as exc:
        raise ResultsNotWritten(f"cannot write {args.out}: {exc.strerror or exc}") from None
    if not args.quiet:
        print(f"fastrim: {len(set(rims))} endorsed RIMs from {len(rims)} logs written to {args.out}"
              + (f"; {failed} logs left out" if failed else ""), file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK

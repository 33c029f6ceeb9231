"""fastrim report: a batch's results as one page (and numbers) for the morning after."""

import sys

from ..errors import ResultsNotWritten
from .common import EXIT_OK, check_outputs, command


def add_parser(sub):
    p = command(
        sub, "report", "a batch's results as one HTML page, night over night",
        "Read a batch's results (a Parquet file, a dataset directory of parts, or JSON lines from --jsonl) "
        "and write one self-contained HTML page (no scripts, nothing fetched; charts as inline SVG; "
        "printable): the headline (logs, verdicts, bytes hashed, the tool and reference store), charts of "
        "verdicts, error codes, verdicts per configuration (realm parameters + image digests) and elapsed "
        "time per log, and tables of failing logs, unknown images and configurations. With --baseline (last "
        "night's results): the logs whose verdict changed, new error codes, new and vanished configurations, "
        "new unknown images, and the counts night over night. --json writes the same numbers.",
        ["fastrim report results.parquet --html report.html",
         "fastrim report tonight.parquet --baseline last-night.parquet --html report.html --json report.json"])
    p.add_argument("results", metavar="RESULTS", help="a batch's results: Parquet file or dataset, or JSON lines")
    p.add_argument("--baseline", metavar="PREVIOUS", help="an earlier batch's results to compare with (default: none)")
    p.add_argument("--html", required=True, metavar="OUT.html", help="where the page goes, written atomically")
    p.add_argument("--json", metavar="OUT.json", help="the same numbers as JSON (default: none)")
    p.set_defaults(parser=p, run=run)


def run(args):
    import os

    for option, path in (("RESULTS", args.results), ("--baseline", args.baseline)):
        if path is not None and not os.path.exists(path):
            args.parser.error(f"{option} {path}: no such file or directory")
    check_outputs(args.parser, [("--html", args.html), ("--json", args.json)])
    from ..output import report

    try:
        numbers = report.report(args.results, args.baseline)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # not a batch's results
        args.parser.error(f"cannot read the results (a batch's Parquet or JSON lines): {type(exc).__name__}: {exc}")
    write_report(args.html, numbers, args.json)
    if not args.quiet:
        print(f"fastrim: report of {numbers['logs']:,} logs in {args.html}", file=sys.stderr)
    return EXIT_OK


def write_report(path, numbers, json_path=None):
    """The page at path (and the numbers at json_path)."""
    from ..output import report
    from ..store.files import write_atomic

    written = []
    for target, text in ((path, report.html_page(numbers)), (json_path, report.as_json(numbers))):
        if target is None:
            continue
        try:
            write_atomic(target, lambda f: f.write(text.encode()))
        except OSError as exc:
            raise ResultsNotWritten(f"cannot write {target}: {exc.strerror or exc}", written=written) from None
        written.append(target)

"""The morning-after report of a batch: the numbers (summarize, compare),
and one self-contained HTML page drawn from them (html): no script, no
font or image fetched from anywhere, charts as inline SVG, printable.

Input is a batch's results: a Parquet file, a dataset directory of parts,
or JSON lines (--jsonl). Only the columns the report needs are read, one
column at a time. A configuration is a realm's parameters (with its hash
algorithm) plus the set of digests of the images it measured."""

import hashlib
import html
import json
import math
import os

from ..verifier import STATUSES
from .rows import REALM_COLUMNS

REALM = ("hash_algo", *(name for name, _ in REALM_COLUMNS))  # what, with the image digests, makes a configuration
COLUMNS = ("log", "root", "status", "error_code", "detail", "elapsed_ms", "bytes_hashed", "images",
           "unknown_images", *REALM)
LISTED = 1000  # rows of a table shown in the page; the JSON holds them all
TOP = 25  # bars in a chart


def read_rows(path):
    """{column: list} of a batch's results (COLUMNS), digests as hex, and the
    run's metadata {str: str} (empty for JSON lines)."""
    if os.path.isfile(path) and _is_jsonl(path):
        return _jsonl_columns(path), {}
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=[c for c in COLUMNS])
    metadata = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()
                if not k.startswith(b"ARROW:")}
    columns = {name: table.column(name).to_pylist() for name in COLUMNS}
    columns["unknown_images"] = [[d.hex() for d in digests or ()] for digests in columns["unknown_images"]]
    columns["images"] = [[dict(i, digest=i["digest"].hex() if i["digest"] is not None else None) for i in images or ()]
                         for images in columns["images"]]
    return columns, metadata


def _is_jsonl(path):
    with open(path, "rb") as f:
        return f.read(1) == b"{"


def _jsonl_columns(path):
    columns = {name: [] for name in COLUMNS}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                for name in COLUMNS:
                    columns[name].append(row.get(name))
    return columns


def configuration(columns, i):
    """The configuration of row i: (id, realm parameters, sorted (description, digest) of its measured images)."""
    params = {name: columns[name][i] for name in REALM}
    images = sorted((image["description"], image["digest"]) for image in columns["images"][i] or ()
                    if image["digest"] is not None)
    if all(value is None for value in params.values()) and not images:
        return None  # a log that did not decode: no configuration
    key = json.dumps([params, images], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:12], params, images


def _count(values):
    counts = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _percentile(ordered, fraction):
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))] if ordered else None


def summarize(columns, metadata):
    """The report's numbers, as plain JSON-able data."""
    n = len(columns["log"])
    status = dict.fromkeys(STATUSES, 0)
    status.update(_count(columns["status"]))
    elapsed = sorted(value for value in columns["elapsed_ms"] if value is not None)
    worker_seconds = sum(elapsed) / 1000
    configs = {}
    for i in range(n):
        found = configuration(columns, i)
        if found is None:
            continue
        key, params, images = found
        entry = configs.setdefault(key, {"id": key, "realm": params, "images": [list(x) for x in images],
                                         "logs": 0, "status": dict.fromkeys(STATUSES, 0)})
        entry["logs"] += 1
        entry["status"][columns["status"][i]] += 1
    unknown = {}
    descriptions = {}
    for i in range(n):
        for image in columns["images"][i] or ():
            if image["digest"] in columns["unknown_images"][i]:
                descriptions.setdefault(image["digest"], image["description"])
        for digest in set(columns["unknown_images"][i] or ()):
            unknown[digest] = unknown.get(digest, 0) + 1
    return {
        "source": metadata,
        "logs": n,
        "status": status,
        "bytes_hashed": sum(v or 0 for v in columns["bytes_hashed"]),
        "worker_seconds": worker_seconds,
        "logs_per_worker_second": n / worker_seconds if worker_seconds else None,
        "error_codes": dict(sorted(_count(c for c in columns["error_code"] if c).items(), key=lambda kv: (-kv[1], kv[0]))),
        "elapsed_ms": {"p50": _percentile(elapsed, 0.5), "p90": _percentile(elapsed, 0.9),
                       "p99": _percentile(elapsed, 0.99), "max": elapsed[-1] if elapsed else None,
                       "histogram": _histogram(elapsed)},
        "failures": sorted(({"log": columns["log"][i], "root": columns["root"][i], "status": columns["status"][i],
                             "error_code": columns["error_code"][i], "detail": columns["detail"][i]}
                            for i in range(n) if columns["status"][i] in ("fail", "error")),
                           key=lambda r: (r["root"] or "", r["log"])),
        "unknown_images": sorted(({"digest": d, "description": descriptions.get(d), "realms": count}
                                  for d, count in unknown.items()), key=lambda r: (-r["realms"], r["digest"])),
        "configurations": sorted(configs.values(), key=lambda c: (-c["logs"], c["id"])),
        "statuses_by_log": {f"{columns['root'][i] or ''}\0{columns['log'][i]}": columns["status"][i] for i in range(n)},
    }


def _histogram(ordered, bins=20):
    """[(low, high, count)] over log-spaced bins of the elapsed times (ms)."""
    if not ordered:
        return []
    low, high = max(ordered[0], 1e-3), max(ordered[-1], 1e-3)
    if high <= low:
        return [[low, high, len(ordered)]]
    edges = [low * (high / low) ** (k / bins) for k in range(bins + 1)]
    counts = [0] * bins
    for value in ordered:
        k = 0 if value <= low else min(bins - 1, int(bins * math.log(value / low) / math.log(high / low)))
        counts[k] += 1
    return [[edges[k], edges[k + 1], counts[k]] for k in range(bins)]


def compare(now, before):
    """What changed since the baseline: both are summarize()'s numbers."""
    changed = []
    for key, status in sorted(now["statuses_by_log"].items()):
        was = before["statuses_by_log"].get(key)
        if was is not None and was != status:
            root, log = key.split("\0", 1)
            changed.append({"log": log, "root": root or None, "from": was, "to": status})
    new_logs = sorted(set(now["statuses_by_log"]) - set(before["statuses_by_log"]))
    gone_logs = sorted(set(before["statuses_by_log"]) - set(now["statuses_by_log"]))
    configs_now = {c["id"]: c for c in now["configurations"]}
    configs_before = {c["id"]: c for c in before["configurations"]}
    unknown_before = {u["digest"] for u in before["unknown_images"]}
    return {
        "changed": changed,
        "new_logs": len(new_logs),
        "vanished_logs": len(gone_logs),
        "new_error_codes": sorted(set(now["error_codes"]) - set(before["error_codes"])),
        "new_configurations": [configs_now[k] for k in sorted(set(configs_now) - set(configs_before))],
        "vanished_configurations": [configs_before[k] for k in sorted(set(configs_before) - set(configs_now))],
        "new_unknown_images": [u for u in now["unknown_images"] if u["digest"] not in unknown_before],
        "counts": {"logs": [before["logs"], now["logs"]],
                   **{s: [before["status"].get(s, 0), now["status"].get(s, 0)] for s in STATUSES}},
    }


def report(results, baseline=None):
    """The report's numbers for results (a path), against baseline (a path) when given."""
    numbers = summarize(*read_rows(results))
    numbers["results"] = str(results)
    if baseline is not None:
        numbers["baseline"] = dict(compare(numbers, summarize(*read_rows(baseline))), path=str(baseline))
    return numbers


def as_json(numbers):
    """The numbers for machines (the per-log status map left out: the results hold it)."""
    return json.dumps({k: v for k, v in numbers.items() if k != "statuses_by_log"}, indent=1, sort_keys=True) + "\n"


# ---- the page ---------------------------------------------------------------

COLORS = {"pass": "#2e7d32", "unverified": "#f9a825", "fail": "#c62828", "error": "#6a1b9a"}
_CSS = """
body { font: 14px/1.45 -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; color: #1b1b1b;
       max-width: 1100px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.meta { color: #555; font-size: 12px; } .cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.card b { display: block; font-size: 22px; } .charts { display: flex; flex-wrap: wrap; gap: 18px; }
figure { margin: 0; } figcaption { font-size: 12px; color: #555; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; margin: 8px 0; }
th, td { border-bottom: 1px solid #eee; padding: 3px 6px; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #f6f6f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 11.5px; word-break: break-all; } .note { color: #555; font-size: 12px; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"""


def _e(value):
    return html.escape("" if value is None else str(value))


ROW = 22  # pixels per bar


def _figure(chart_id, title, rows, body, width, caption=""):
    """An SVG chart of `rows` bars drawn by body (SVG elements), in a figure with its caption."""
    height = ROW * max(1, rows) + 10
    drawn = "".join(body) or '<text x="10" y="20">none</text>'
    return (f'<figure><svg id="{chart_id}" role="img" aria-label="{_e(title)}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" font-size="11" '
            f'font-family="DejaVu Sans, Arial, sans-serif">{drawn}</svg>'
            f'<figcaption>{_e(title)}{caption}</figcaption></figure>')


def _bars(chart_id, title, items, width=520, colors=None, unit=""):
    """A horizontal bar chart of (label, value) items."""
    items = items[:TOP]
    top = max((value for _, value in items), default=0) or 1
    label_w = 210
    body = []
    for k, (label, value) in enumerate(items):
        y = 5 + k * ROW
        bar = (width - label_w - 70) * value / top
        color = (colors or {}).get(label, "#1565c0")
        text = label if len(str(label)) <= 32 else str(label)[:31] + "…"
        body.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{_e(text)}</text>'
                    f'<rect x="{label_w}" y="{y + 3}" width="{bar:.1f}" height="{ROW - 8}" fill="{color}"/>'
                    f'<text x="{label_w + bar + 5:.1f}" y="{y + 14}">{_e(_fmt(value))}{unit}</text>')
    return _figure(chart_id, title, len(items), body, width)


def _stacked(chart_id, title, configs, width=520):
    """Verdicts per configuration: one stacked bar each."""
    configs = configs[:TOP]
    top = max((c["logs"] for c in configs), default=0) or 1
    label_w = 120
    body = []
    for k, config in enumerate(configs):
        y, x = 5 + k * ROW, label_w
        body.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{config["id"]}</text>')
        for status in STATUSES:
            w = (width - label_w - 50) * config["status"][status] / top
            if w:
                body.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{ROW - 8}" '
                            f'fill="{COLORS[status]}"><title>{status}: {config["status"][status]}</title></rect>')
                x += w
        body.append(f'<text x="{x + 5:.1f}" y="{y + 14}">{config["logs"]}</text>')
    legend = " ".join(f'<span style="color:{COLORS[s]}">■</span> {s}' for s in STATUSES)
    return _figure(chart_id, title, len(configs), body, width, caption=f" — {legend}")


def _fmt(value):
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(table_id, headers, rows, limit=LISTED):
    shown = rows[:limit]
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell for cell in row) + "</tr>" for row in shown)
    more = f'<p class="note">{len(rows) - limit:,} more in the JSON (--json).</p>' if len(rows) > limit else ""
    empty = f'<tr><td colspan="{len(headers)}">none</td></tr>' if not rows else ""
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}{empty}</tbody></table>{more}'


def _td(value, num=False, code=False):
    text = f"<code>{_e(value)}</code>" if code and value is not None else _e(_fmt(value) if num else value)
    return f'<td class="num">{text}</td>' if num else f"<td>{text}</td>"


def _config_label(config):
    realm = config["realm"]
    return (f"{realm.get('hash_algo')} s2sz {realm.get('s2sz')} flags {realm.get('flags')}; "
            + ", ".join(description for description, _ in config["images"]))


def html_page(numbers):
    """The page, built from report()'s numbers only."""
    meta = numbers["source"]
    status = numbers["status"]
    hashed = numbers["bytes_hashed"]
    cards = [("logs", numbers["logs"])] + [(s, status[s]) for s in STATUSES] + [
        ("GB hashed", hashed / 1e9) if hashed >= 1e9 else ("MB hashed", hashed / 1e6),
        ("logs / worker-s", numbers["logs_per_worker_second"] or 0)]
    elapsed = numbers["elapsed_ms"]
    hist = [(f"{low:.3g}–{high:.3g} ms", count) for low, high, count in elapsed["histogram"]]
    out = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>fastrim report: {_e(numbers['results'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>fastrim report</h1><p class=meta>{_e(numbers['results'])} · fastrim {_e(meta.get('fastrim.version', '?'))}"
        f" · created {_e(meta.get('fastrim.created', '?'))} · reference store {_e(meta.get('fastrim.refs', '?'))}"
        f" · profile {_e(meta.get('fastrim.profile', '?'))} · backend {_e(meta.get('fastrim.backend', '?'))}</p>",
        '<div class="cards" id="headline">' + "".join(
            f'<div class="card"><b style="color:{COLORS.get(label, "#1b1b1b")}">{_e(_fmt(value))}</b>{_e(label)}</div>'
            for label, value in cards) + "</div>",
        f'<p class=note>Elapsed per log: p50 {_e(_fmt(elapsed["p50"] or 0))} ms, p90 {_e(_fmt(elapsed["p90"] or 0))} ms, '
        f'p99 {_e(_fmt(elapsed["p99"] or 0))} ms, max {_e(_fmt(elapsed["max"] or 0))} ms; '
        f'{_e(_fmt(numbers["worker_seconds"]))} worker-seconds in all.</p>',
    ]
    if "baseline" in numbers:
        out.append(_baseline_section(numbers["baseline"]))
    out += [
        "<h2>Charts</h2><div class=charts>",
        _bars("chart-verdicts", "Verdicts", [(s, status[s]) for s in STATUSES], colors=COLORS),
        _bars("chart-error-codes", "Error codes", list(numbers["error_codes"].items()), colors={}),
        _stacked("chart-configurations", f"Verdicts per configuration (the {TOP} largest)", numbers["configurations"]),
        _bars("chart-elapsed", "Elapsed time per log (logs per bin)", hist),
        "</div>",
        f"<h2>Failing and erroring logs ({len(numbers['failures']):,})</h2>",
        _table("table-failures", ["root", "log", "status", "error code", "detail"],
               [[_td(r["root"]), _td(r["log"]), _td(r["status"]), _td(r["error_code"]), _td(r["detail"])]
                for r in numbers["failures"]]),
        f"<h2>Unknown images ({len(numbers['unknown_images']):,})</h2>",
        _table("table-unknown-images", ["digest", "description", "realms"],
               [[_td(u["digest"], code=True), _td(u["description"]), _td(u["realms"], num=True)]
                for u in numbers["unknown_images"]]),
        f"<h2>Configurations ({len(numbers['configurations']):,})</h2>",
        _table("table-configurations", ["id", "configuration", "realms", *STATUSES],
               [[_td(c["id"], code=True), _td(_config_label(c)), _td(c["logs"], num=True),
                 *(_td(c["status"][s], num=True) for s in STATUSES)] for c in numbers["configurations"]]),
        "</body></html>",
    ]
    return "\n".join(out)


def _baseline_section(base):
    counts = base["counts"]
    rows = [[_td(name), _td(before, num=True), _td(after, num=True), _td(after - before, num=True)]
            for name, (before, after) in counts.items()]
    return "".join([
        f"<h2>Since the baseline</h2><p class=meta>{_e(base['path'])}: {base['new_logs']:,} new logs, "
        f"{base['vanished_logs']:,} gone; new error codes: {_e(', '.join(base['new_error_codes']) or 'none')}</p>",
        _table("table-night-over-night", ["", "baseline", "now", "change"], rows),
        f"<h3>Logs whose verdict changed ({len(base['changed']):,})</h3>",
        _table("table-changed", ["root", "log", "was", "now"],
               [[_td(c["root"]), _td(c["log"]), _td(c["from"]), _td(c["to"])] for c in base["changed"]]),
        f"<h3>New configurations ({len(base['new_configurations']):,}) and vanished ones "
        f"({len(base['vanished_configurations']):,})</h3>",
        _table("table-configuration-changes", ["", "id", "configuration", "realms"],
               [[_td("new"), _td(c["id"], code=True), _td(_config_label(c)), _td(c["logs"], num=True)]
                for c in base["new_configurations"]]
               + [[_td("vanished"), _td(c["id"], code=True), _td(_config_label(c)), _td(c["logs"], num=True)]
                  for c in base["vanished_configurations"]]),
        f"<h3>New unknown images ({len(base['new_unknown_images']):,})</h3>",
        _table("table-new-unknown-images", ["digest", "description", "realms"],
               [[_td(u["digest"], code=True), _td(u["description"]), _td(u["realms"], num=True)]
                for u in base["new_unknown_images"]]),
    ])

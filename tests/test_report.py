"""fastrim report: its numbers are the rows' (counted here with pyarrow,
independently), a baseline lists exactly the logs that changed, and the
page renders in a real browser with every chart and table and no console
error."""

import json
import os
import shutil
import subprocess

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from helpers import fastrim

from fastrim.fleetgen import fleet

CHARTS = ("chart-verdicts", "chart-error-codes", "chart-configurations", "chart-elapsed")
TABLES = ("table-failures", "table-unknown-images", "table-configurations")
BASELINE_TABLES = ("table-night-over-night", "table-changed", "table-configuration-changes", "table-new-unknown-images")


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """Two nights over one fleet: the second after known tamperings."""
    root = tmp_path_factory.mktemp("report-fleet")
    manifest = fleet.generate(str(root), vms=60, seed=21, tamper=0.2, scale=1 / 256)
    first = root / "night1.parquet"
    assert fastrim("batch", root / "logs", "--refs", root / "refs", "--out", first, cache=root / "c").returncode == 1
    clean = [w["log"] for w in manifest if w["case"] == "clean"]
    truncated, other_rim = clean[:3], clean[3:5]
    for name in truncated:  # pass -> error (log.truncated)
        path = root / "logs" / name
        data = path.read_bytes()
        path.write_bytes(data[: len(data.rstrip(b"\0")) - 5])
    for name in other_rim:  # pass -> fail (rim.mismatch)
        (root / "logs" / name).with_suffix(".rim").write_text("ab" * 32)
    second = root / "night2.parquet"
    assert fastrim("batch", root / "logs", "--refs", root / "refs", "--out", second, cache=root / "c").returncode == 1
    return root, first, second, {n: "error" for n in truncated} | {n: "fail" for n in other_rim}


def test_the_numbers_are_the_rows(nights, tmp_path):
    root, first, _, _ = nights
    out = tmp_path / "r.json"
    run = fastrim("report", first, "--html", tmp_path / "r.html", "--json", out)
    assert run.returncode == 0, run.stderr
    numbers = json.loads(out.read_text())
    table = pq.read_table(first)
    status = {r["values"]: r["counts"] for r in pc.value_counts(table.column("status").combine_chunks()
                                                                .dictionary_decode()).to_pylist()}
    assert numbers["logs"] == len(table)
    assert {k: v for k, v in numbers["status"].items() if v} == status
    codes = {r["values"]: r["counts"] for r in pc.value_counts(
        pc.drop_null(table.column("error_code")).combine_chunks().dictionary_decode()).to_pylist()}
    assert numbers["error_codes"] == codes
    assert numbers["bytes_hashed"] == pc.sum(table.column("bytes_hashed")).as_py()
    failing = pc.is_in(table.column("status").combine_chunks().dictionary_decode(), pc.cast(["fail", "error"], "string"))
    assert sorted(r["log"] for r in numbers["failures"]) == sorted(table.filter(failing).column("log").to_pylist())
    unknown = {}
    for digests in table.column("unknown_images").to_pylist():
        for d in set(digests):
            unknown[d.hex()] = unknown.get(d.hex(), 0) + 1
    assert {u["digest"]: u["realms"] for u in numbers["unknown_images"]} == unknown
    configs = {}
    for row in table.select(["hash_algo", "flags", "s2sz", "images", "status"]).to_pylist():
        if row["flags"] is None:
            continue
        key = (row["hash_algo"], row["flags"], row["s2sz"],
               tuple(sorted((i["description"], i["digest"]) for i in row["images"] if i["digest"] is not None)))
        configs[key] = configs.get(key, 0) + 1
    assert sorted(c["logs"] for c in numbers["configurations"]) == sorted(configs.values())
    assert sum(c["logs"] for c in numbers["configurations"]) == sum(configs.values())


def test_a_baseline_lists_exactly_the_logs_that_changed(nights, tmp_path):
    _, first, second, tampered = nights
    out = tmp_path / "r.json"
    assert fastrim("report", second, "--baseline", first, "--html", tmp_path / "r.html", "--json", out).returncode == 0
    base = json.loads(out.read_text())["baseline"]
    assert {c["log"]: c["to"] for c in base["changed"]} == tampered
    assert all(c["from"] == "pass" for c in base["changed"])
    assert base["counts"]["error"][1] - base["counts"]["error"][0] == 3
    assert base["counts"]["fail"][1] - base["counts"]["fail"][0] == 2
    assert base["new_logs"] == base["vanished_logs"] == 0


def test_batch_writes_the_report_of_its_run(nights, tmp_path):
    root, _, _, _ = nights
    page = tmp_path / "page.html"
    run = fastrim("batch", root / "logs", "--refs", root / "refs", "--out", tmp_path / "r.parquet", "--report", page,
                  cache=root / "c")
    assert run.returncode == 1 and f"report in {page}" in run.stderr
    text = page.read_text()
    assert all(f'id="{name}"' in text for name in CHARTS + TABLES)
    assert "<script" not in text.lower() and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    lonely = fastrim("batch", root / "logs", "--refs", root / "refs", "--jsonl", "--report", page)
    assert lonely.returncode == 2 and "--report" in lonely.stderr


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_the_page_renders_in_a_real_browser(nights, tmp_path):
    browser = _chromium()
    if browser is None:
        assert os.environ.get("CI") != "true", ".ci/run installs Debian's chromium: it must be here"
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    _, first, second, _ = nights
    page = tmp_path / "report.html"
    assert fastrim("report", second, "--baseline", first, "--html", page).returncode == 0
    flags = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,2400",
             "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for name in CHARTS + TABLES + BASELINE_TABLES:
        assert f'id="{name}"' in dom.stdout, name
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Failed to load resource" in line]
    assert console == [], console
    shot = tmp_path / "report.png"
    run = subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.stat().st_size > 10000, run.stderr[-2000:]

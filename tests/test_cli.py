"""The command line, run as a user would: output formats, exit codes, and one
clean line on stderr for a bad log."""

import json

import pytest
from helpers import fastrim

BACKENDS = ["cffi", "python"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_parse_json_lines_decode_cca_events(corpus, backend):
    run = fastrim("parse", "--json", corpus / "cca/scenario-b-sha256.log", backend=backend)
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    kinds = [e.get("decoded", {}).get("kind") for e in events]
    assert kinds == ["SpecIdEvent03", "VmVersion", "RealmCreate", "InitRipas"] + ["ImageLoad"] * 4 + [
        "RecCreate", "ImageLoad"]
    kernel = events[5]
    assert kernel["type_name"] == "EV_POST_CODE2" and kernel["decoded"]["description"] == "KERNEL"
    assert kernel["digests"]["sha256"] == kernel["decoded"]["digest"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_replay_json_prints_pcrs_and_rim(corpus, tmp_path, backend):
    run = fastrim("replay", "--json", corpus / "cca/scenario-a-sha512.log", "--refs", corpus / "cca",
                  backend=backend, cache=tmp_path)
    out = json.loads(run.stdout)
    vectors = json.loads((corpus / "cca/vectors.json").read_text())
    assert run.returncode == 0
    assert (out["format"], out["banks"], out["hash_algo"]) == ("crypto-agile", ["sha512"], "sha512")
    assert out["rim"] == vectors["logs"]["scenario-a-sha512.log"]["rim"]
    assert set(out["pcrs"]) == {"sha512"}


def test_replay_without_refs_says_why_there_is_no_rim(corpus, tmp_path):
    out = json.loads(fastrim("replay", "--json", corpus / "cca/scenario-a-sha256.log", cache=tmp_path).stdout)
    assert out["rim"] is None and out["rim_error"]["code"] == "ref.unknown_image"


def test_replay_of_a_tpm_log(corpus):
    out = json.loads(fastrim("replay", "--json", corpus / "tcg/tpm2-tools/event.bin").stdout)
    assert out["banks"] == ["sha1", "sha256", "sha384", "sha512"] and "rim" not in out


@pytest.mark.parametrize("backend", BACKENDS)
def test_verify_exit_codes(corpus, tmp_path, backend):
    log = corpus / "cca/scenario-b-sha256.log"
    rim = json.loads((corpus / "cca/vectors.json").read_text())["logs"]["scenario-b-sha256.log"]["rim"]
    ok = fastrim("verify", log, "--refs", corpus / "cca", "--rim", rim, "--json", backend=backend, cache=tmp_path)
    assert ok.returncode == 0 and json.loads(ok.stdout)["status"] == "pass"
    bad = fastrim("verify", log, "--refs", corpus / "cca", "--rim", "00" * 32, "--json", backend=backend, cache=tmp_path)
    verdict = json.loads(bad.stdout)
    assert bad.returncode == 1 and (verdict["status"], verdict["error_code"]) == ("fail", "rim.mismatch")
    assert verdict["expected_rim"] == "00" * 32 and verdict["rim"] == rim
    assert [i["reference"] for i in verdict["images"]] == ["firmware-b.bin", "kernel-b.bin", "initrd-b.bin",
                                                            "dtb-b.bin", None]
    unverified = fastrim("verify", log, "--refs", corpus / "cca", backend=backend, cache=tmp_path)
    assert unverified.returncode == 0 and unverified.stdout.startswith("unverified")


@pytest.mark.parametrize("backend", BACKENDS)
def test_malformed_log_is_one_line_on_stderr(corpus, backend):
    run = fastrim("parse", corpus / "tcg/synthetic/mut-truncated-mid-event.bin", backend=backend)
    assert run.returncode == 1
    assert run.stderr == "fastrim: log.truncated at offset 861: the record needs 32 more bytes but only 6 are left\n"


def test_unreadable_log_and_usage_errors(tmp_path):
    run = fastrim("parse", tmp_path / "missing.log")
    assert run.returncode == 1 and run.stderr.startswith("fastrim: io.unreadable") and "Traceback" not in run.stderr
    assert fastrim("verify", tmp_path / "x.log").returncode == 2  # --refs missing
    bad_rim = fastrim("verify", tmp_path / "x.log", "--refs", tmp_path, "--rim", "zz")
    assert bad_rim.returncode == 2 and "--rim is not hex" in bad_rim.stderr


def test_help_explains_the_commands():
    run = fastrim("--help")
    assert run.returncode == 0
    for command in ("parse", "replay", "verify", "batch", "index", "refvals", "report", "explain", "synth", "demo",
                    "bench"):
        assert command in run.stdout
    assert "exit status" in run.stdout
    batch_help = fastrim("batch", "--help").stdout
    for option in ("--out", "--jsonl", "--jobs", "--expected", "--refs", "exit status", "examples"):
        assert option in batch_help


def test_synth_writes_a_fleet_and_refuses_a_used_directory(tmp_path):
    run = fastrim("synth", tmp_path / "f", "--vms", 12, "--seed", 3, "--tamper", 0.5, "--scale", 0.004)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("12 logs (")
    manifest = [json.loads(line) for line in (tmp_path / "f/manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 12 and len(list((tmp_path / "f/logs").glob("*.log"))) == 12
    again = fastrim("synth", tmp_path / "f", "--vms", 2)
    assert again.returncode == 2 and "is not empty" in again.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_demo_runs_the_main_job_end_to_end(backend, tmp_path):
    page = tmp_path / "demo.html"
    run = fastrim("demo", "--vms", 30, "--scale", 0.004, "--jobs", 2, "--report", page, backend=backend)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"The run's report page: {page}" in run.stdout and 'id="chart-verdicts"' in page.read_text()
    assert "All 30 verdicts match the fleet's manifest" in run.stdout
    for case in ("clean", "wrong_address", "unvetted_image", "wrong_rim", "truncated", "missing_sidecar"):
        assert case in run.stdout
    assert "warm cache" in run.stdout


def test_bench_reports_every_case_per_algorithm_and_backend():
    run = fastrim("bench", "--mib", 1, "--repeat", 1, "--backend", "cffi,python", "--json")
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    cases = {(r["algo"], r["backend"], r["case"]) for r in rows}
    for algo in ("sha256", "sha512"):
        assert (algo, "-", "hashlib") in cases
        for backend in BACKENDS:
            assert {(algo, backend, c) for c in ("cold", "warm", "chain")} <= cases
    assert all(r["gb_per_s"] > 0 and r["ratio"] > 0 for r in rows)
    assert {r["kernel"] for r in rows if r["backend"] == "python"} == {"hashlib"}
    table = fastrim("bench", "--mib", 1, "--repeat", 1, "--algo", "sha512")
    assert "x hashlib" in table.stdout and "sha256" not in table.stdout
    assert fastrim("bench", "--algo", "md5").returncode == 2


def test_index_command(corpus, tmp_path):
    run = fastrim("index", corpus / "cca", "--cache-dir", tmp_path)
    files = sum(1 for p in (corpus / "cca").iterdir() if p.is_file())
    assert run.returncode == 0 and run.stdout.startswith(f"{files} reference images")
    assert f"{files} hashed now" in run.stdout
    again = fastrim("index", corpus / "cca", "--cache-dir", tmp_path)
    assert "0 hashed now" in again.stdout


class _Stream:
    def __init__(self, tty):
        self.tty, self.text = tty, ""

    def isatty(self):
        return self.tty

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_the_progress_bar_shows_only_on_a_terminal():
    from fastrim.run.progress import Progress

    for tty in (True, False):
        stream = _Stream(tty)
        bar = Progress(3, stream=stream)
        for _ in range(3):
            bar.advance()
        bar.close()
        assert ("3/3 logs" in stream.text) is tty and (stream.text == "") is not tty

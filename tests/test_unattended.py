"""fastrim run as a nightly audit runs it (cron, no terminal, rows read by
machines the next morning): every bad path or number is a usage error
before any work, exit codes that cannot report success when nothing was
verified, reasons as columns, keys that compare night over night, and
signals that leave nothing half-written."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from helpers import fastrim, start_slow_batch

from fastrim.fleetgen import fleet

BACKENDS = ["cffi", "python"]


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    """A small fleet with every tampering kind, its manifest, and a scratch directory."""
    root = tmp_path_factory.mktemp("audit")
    manifest = fleet.generate(str(root), vms=24, seed=11, tamper=0.3, scale=1 / 256)
    return root, manifest


def batch(root, *extra, cache, backend="cffi"):
    return fastrim("batch", root / "logs", "--refs", root / "refs", *extra, cache=cache, backend=backend)


def usage_error(run):
    """Exit 2 with one error line and no traceback."""
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr
    assert len([line for line in run.stderr.splitlines() if "error:" in line]) == 1, run.stderr
    return run.stderr


# ---- output paths: refused before any work -----------------------------------------------------

def _output_case(tmp_path, case):
    """(the --out path, any extra arguments) for one kind of output that must be refused."""
    if case == "directory":
        (tmp_path / "d").mkdir()
        return tmp_path / "d", ()
    if case == "root":
        return "/", ()
    if case == "dot":
        return ".", ()
    if case == "device":
        return "/dev/null", ()
    if case == "fifo":
        os.mkfifo(tmp_path / "fifo")
        return tmp_path / "fifo", ()
    if case == "symlink":
        (tmp_path / "target").write_text("keep me")
        os.symlink(tmp_path / "target", tmp_path / "link.parquet")
        return tmp_path / "link.parquet", ()
    if case == "same-file":
        return tmp_path / "both", ("--ear", tmp_path / "both")
    assert case == "missing-directory"
    return tmp_path / "no" / "such" / "r.parquet", ()


@pytest.mark.parametrize("case", ["directory", "root", "dot", "device", "fifo", "symlink", "same-file",
                                  "missing-directory"])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(audit, tmp_path, case):
    root, _ = audit
    out, extra = _output_case(tmp_path, case)
    cache = tmp_path / "cache"
    message = usage_error(batch(root, "--out", out, *extra, cache=cache))
    assert "--out" in message
    assert not cache.exists(), "nothing was indexed or verified"
    if case == "symlink":
        assert (tmp_path / "target").read_text() == "keep me" and os.path.islink(tmp_path / "link.parquet")
    if case == "device":
        assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def test_an_ear_output_is_checked_like_out(audit, tmp_path):
    root, _ = audit
    message = usage_error(batch(root, "--jsonl", "--ear", tmp_path / "missing" / "x.jsonl", cache=tmp_path / "c"))
    assert "--ear" in message and "does not exist" in message


def test_a_replaced_results_file_keeps_its_mode(audit, tmp_path):
    root, _ = audit
    out = tmp_path / "r.parquet"
    out.write_bytes(b"old")
    out.chmod(0o644)
    batch(root, "--out", out, cache=tmp_path / "c")
    assert pq.read_table(out).num_rows > 0 and (out.stat().st_mode & 0o777) == 0o644


def test_a_closed_stdout_still_writes_the_results_and_exits_3(audit, tmp_path):
    root, manifest = audit
    out = tmp_path / "r.parquet"
    proc = start_slow_batch(root, tmp_path, tmp_path / "c", extra=("--jsonl",), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # as `| head -n1` does, then goes away
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=120)
    assert json.loads(first)["log"]
    assert proc.returncode == 3, stderr
    assert "stdout was closed" in stderr and "Traceback" not in stderr and "BrokenPipe" not in stderr
    assert pq.read_table(tmp_path / "r.parquet").num_rows == len(manifest) and out.exists()


# ---- bounds and inputs: usage errors ------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ("synth", "{tmp}/f", "--vms", str(10**20)),
    ("synth", "{tmp}/f", "--scale", "nan"),
    ("synth", "{tmp}/f", "--scale", "1e300"),
    ("synth", "{tmp}/f", "--tamper", "2"),
    ("synth", "{tmp}/f", "--tamper", "-1"),
    ("batch", "{root}/logs", "--refs", "{root}/refs", "--jsonl", "--jobs", "1000000000"),
    ("batch", "{root}/logs", "--refs", "{root}/refs", "--jsonl", "--jobs", "{too_many_jobs}"),
])
def test_numbers_out_of_bounds_are_usage_errors(audit, tmp_path, argv):
    root, _ = audit
    values = {"tmp": tmp_path, "root": root, "too_many_jobs": 4 * (os.cpu_count() or 1) + 1}
    usage_error(fastrim(*(arg.format(**values) for arg in argv), cache=tmp_path / "c"))
    assert not (tmp_path / "f").exists() and not (tmp_path / "c").exists()


def test_force_jobs_lifts_the_per_cpu_bound(audit, tmp_path):
    root, _ = audit
    run = batch(root, "--jsonl", "--jobs", str(4 * (os.cpu_count() or 1) + 1), "--force-jobs", cache=tmp_path / "c")
    assert run.returncode == 1, run.stderr  # the fleet holds failures: it ran


def _nested(depth):
    return "[" * depth + "]" * depth


def test_deeply_nested_json_inputs_are_usage_errors(audit, tmp_path):
    root, _ = audit
    jwk = tmp_path / "key.jwk"
    jwk.write_text('{"kty": "EC", "crv": "P-256", "x": ' + _nested(50_000) + "}")
    assert "nests deeper" in usage_error(batch(root, "--jsonl", "--platform-key", jwk, cache=tmp_path / "c"))
    expected = tmp_path / "expected.jsonl"
    expected.write_text('{"log": "vm-00000.log", "rim": ' + _nested(50_000) + "}\n")
    assert "nests deeper" in usage_error(batch(root, "--jsonl", "--expected", expected, cache=tmp_path / "c"))


def test_the_same_root_given_twice_counts_once(audit, tmp_path):
    root, manifest = audit
    run = fastrim("batch", root / "logs", f"{root}/logs/", f"{root}/refs/../logs", "--refs", root / "refs",
                  "--jsonl", cache=tmp_path / "c")
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert sorted(r["log"] for r in rows) == sorted(w["log"] for w in manifest)


# ---- exit codes ---------------------------------------------------------------------------------

def test_missing_inputs_are_usage_errors_naming_the_path(audit, tmp_path):
    root, _ = audit
    os.mkfifo(tmp_path / "fifo")
    cases = {
        ("--refs", "no such directory"): ("batch", root / "logs", "--refs", tmp_path / "nope", "--jsonl"),
        ("--expected", "no such file"): ("batch", root / "logs", "--refs", root / "refs", "--jsonl",
                                         "--expected", tmp_path / "nope.csv"),
        ("--expected", "not a regular file"): ("batch", root / "logs", "--refs", root / "refs", "--jsonl",
                                               "--expected", tmp_path / "fifo"),
        ("--platform-key", "no such file"): ("batch", root / "logs", "--refs", root / "refs", "--jsonl",
                                             "--platform-key", tmp_path / "nope.pem"),
        ("--refs", "not a directory"): ("verify", root / "logs" / "vm-00000.log", "--refs", tmp_path / "fifo"),
    }
    for (option, why), argv in cases.items():
        message = usage_error(fastrim(*argv, cache=tmp_path / "c"))
        assert option in message and why in message, message


def test_no_logs_found_is_a_usage_error(tmp_path, audit):
    root, _ = audit
    (tmp_path / "empty").mkdir()
    assert "nothing to verify" in usage_error(fastrim("batch", tmp_path / "empty", "--refs", root / "refs",
                                                      "--jsonl", cache=tmp_path / "c"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_strict_makes_unverified_a_failure(audit, tmp_path, backend):
    root, manifest = audit
    clean = [w["log"] for w in manifest if w["case"] == "clean"][:3]
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in clean:
        shutil.copy(root / "logs" / name, logs / name)
    (logs / "nosidecar.log").write_bytes((root / "logs" / clean[0]).read_bytes())
    for name in clean:
        shutil.copy((root / "logs" / name).with_suffix(".rim"), (logs / name).with_suffix(".rim"))
    args = ("batch", logs, "--refs", root / "refs", "--jsonl")
    lenient = fastrim(*args, cache=tmp_path / "c", backend=backend)
    assert lenient.returncode == 0, lenient.stderr
    assert "1 logs have no attested RIM" in lenient.stderr
    strict = fastrim(*args, "--strict", cache=tmp_path / "c", backend=backend)
    assert strict.returncode == 1
    statuses = sorted(json.loads(line)["status"] for line in strict.stdout.splitlines())
    assert statuses == ["pass"] * 3 + ["unverified"]


def test_sigterm_stops_the_run_like_ctrl_c(audit, tmp_path):
    root, _ = audit
    proc = start_slow_batch(root, tmp_path, tmp_path / "c", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(1.5)  # workers busy, rows half done
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert "interrupted; no results were written" in stderr
    assert "Traceback" not in stderr and "Error" not in stderr.replace("no results", ""), stderr
    assert not (tmp_path / "r.parquet").exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")] == []


# ---- reasons as data, and keys that compare ---------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_rows_carry_the_reasons_as_columns(audit, tmp_path, backend):
    root, manifest = audit
    out = tmp_path / "r.parquet"
    run = batch(root, "--out", out, cache=tmp_path / "c", backend=backend)
    assert run.returncode == 1, run.stderr
    rows = {r["log"]: r for r in pq.read_table(out).to_pylist()}
    kinds = {w["case"]: rows[w["log"]] for w in manifest}
    unvetted = kinds["unvetted_image"]
    kernel = next(i for i in unvetted["images"] if i["description"] == "KERNEL")
    assert unvetted["status"] == "error" and kernel["reference"] is None
    assert unvetted["unknown_images"] == [kernel["digest"]]
    assert {i["description"] for i in unvetted["images"]} >= {"KERNEL", "DTB", "LOG"}, "every image, error or not"
    for w in manifest:
        row = rows[w["log"]]
        if row["status"] == "pass":
            assert row["steps"][-1]["rim"] == row["rim"] and row["steps"][0]["label"] == "REALM_CREATE"
            assert row["unknown_images"] == []
    assert len({r["run_id"] for r in rows.values()}) == 1
    assert {r["fastrim_version"] for r in rows.values()} == {fastrim("--version").stdout.split()[1]}


def test_two_nights_give_the_same_keys_and_jsonl_in_their_order(audit, tmp_path):
    root, manifest = audit
    hosts = tmp_path / "hosts"
    for i, w in enumerate(manifest):  # two roots, as a fleet of two hosts would have
        host = hosts / ("hostA" if i % 2 else "hostB")
        host.mkdir(parents=True, exist_ok=True)
        for suffix in (".log", ".rim"):
            source = (root / "logs" / w["log"]).with_suffix(suffix)
            if source.exists():
                shutil.copy(source, (host / w["log"]).with_suffix(suffix))
    nights = []
    for night in range(2):
        for roots in ([root / "logs"], [hosts / "hostA", hosts / "hostB"]):
            out = tmp_path / f"r{night}-{len(roots)}.parquet"
            run = fastrim("batch", *roots, "--refs", root / "refs", "--out", out, "--jsonl", "--jobs", 2,
                          cache=tmp_path / f"c{night}")
            streamed = [(r["root"], r["log"]) for r in map(json.loads, run.stdout.splitlines())]
            written = [(r["root"], r["log"]) for r in pq.read_table(out, columns=["root", "log"]).to_pylist()]
            assert streamed == sorted(written)  # the file holds them in the order their logs finished
            nights.append(streamed)
    assert nights[0] == nights[2] and nights[1] == nights[3]
    assert {log for _, log in nights[1]} == {w["log"] for w in manifest}  # relative to each root
    assert {r for r, _ in nights[1]} == {str(hosts / "hostA"), str(hosts / "hostB")}


def test_warnings_are_said_once_and_kept_in_the_metadata(audit, tmp_path):
    root, _ = audit
    logs = tmp_path / "logs"
    shutil.copytree(root / "logs", logs)
    for rim in list(logs.glob("*.rim"))[:2]:
        rim.with_suffix(".token").write_bytes(b"\xd9\x01\x8f\xa0")  # a token sidecar, no --platform-key
    out = tmp_path / "r.parquet"
    run = fastrim("batch", logs, "--refs", root / "refs", "--out", out, cache=tmp_path / "c")
    warnings = json.loads(pq.read_schema(out).metadata[b"fastrim.warnings"])
    assert any("indexed" in w and "reference images" in w for w in warnings)
    assert any("X.token sidecar but no --platform-key" in w for w in warnings)
    assert any("no attested RIM" in w for w in warnings)
    for warning in warnings:
        assert run.stderr.count(warning) == 1


def test_quiet_and_verbose_after_the_command(audit, tmp_path):
    root, _ = audit
    quiet = batch(root, "--jsonl", "-q", cache=tmp_path / "c")
    assert quiet.returncode == 1 and quiet.stderr == ""
    verbose = batch(root, "--jsonl", "-v", cache=tmp_path / "c")
    assert "backend cffi" in verbose.stderr and "hash kernels" in verbose.stderr and "index" in verbose.stderr


def test_every_command_explains_itself_with_examples():
    for command in ("parse", "replay", "verify", "batch", "index", "refvals", "report", "explain", "synth", "demo",
                    "bench"):
        run = fastrim(command, "--help")
        assert run.returncode == 0 and "examples:" in run.stdout and "exit status:" in run.stdout, command
        assert "default" in run.stdout, command


def test_verify_says_a_tpm_log_is_not_a_realm_log(corpus):
    tpm = corpus / "tcg" / "canonical-tcglog-parser" / "binary_bios_measurements"  # a PC firmware log
    run = fastrim("verify", tpm, "--refs", corpus / "cca")
    assert run.returncode == 1
    assert "TPM event log" in run.stdout and "fastrim replay" in run.stdout, run.stdout


def test_the_worker_crash_test_keeps_its_abort_out_of_the_output():
    """A child pytest running one crash test prints no 'Fatal Python error' (its worker's faulthandler is off)."""
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k",
                          "test_a_worker_crash_makes_the_cli_exit_3", "tests/test_batch.py"],
                         capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert run.returncode == 0, run.stdout
    assert "Fatal Python error" not in run.stdout + run.stderr


def test_an_expected_row_for_a_name_under_two_roots_is_refused(audit, tmp_path):
    root, manifest = audit
    for host in ("hostA", "hostB"):
        (tmp_path / host).mkdir()
        shutil.copy(root / "logs" / manifest[0]["log"], tmp_path / host / manifest[0]["log"])
    expected = tmp_path / "expected.csv"
    expected.write_text(f"log,rim\n{manifest[0]['log']},{'00' * 32}\n")
    message = usage_error(fastrim("batch", tmp_path / "hostA", tmp_path / "hostB", "--refs", root / "refs", "--jsonl",
                                  "--expected", expected, cache=tmp_path / "c"))
    assert "under several LOGS roots" in message

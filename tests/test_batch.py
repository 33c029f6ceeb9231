"""fastrim batch on a synthetic fleet: every row as the fleet's manifest says,
for one and two workers on both backends, and the faults a nightly audit
meets (a dying worker, damaged caches, unreadable logs, nothing to do, an
output that cannot be written, Ctrl-C)."""

import faulthandler
import json
import os
import signal
import subprocess
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import fastrim, start_slow_batch

from fastrim import cli, verifier
from fastrim.fleetgen import fleet
from fastrim.run import batch, work
from fastrim.run.local import LocalExecutor
from fastrim.store.refs import RefStore

SMALL = dict(vms=40, seed=7, tamper=0.3, scale=1 / 256)


@pytest.fixture(scope="module")
def small_fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("fleet")
    manifest = fleet.generate(str(root), **SMALL)
    return root, manifest




def check_against_manifest(rows, manifest):
    by_log = {row["log"]: row for row in rows}
    assert sorted(by_log) == sorted(want["log"] for want in manifest), "one row per log, always"
    for want in manifest:
        row = by_log[want["log"]]
        assert (row["status"], row["error_code"]) == (want["status"], want["error_code"]), (want, row["detail"])
        expected = bytes.fromhex(want["expected_rim"]) if want["expected_rim"] else None
        assert row["expected_rim"] == expected, want["log"]
        if want["rim"] is not None:
            assert row["rim"] == bytes.fromhex(want["rim"]), want["log"]


def test_the_fleet_has_every_kind_of_case(small_fleet):
    _, manifest = small_fleet
    assert {row["case"] for row in manifest} == {"clean", *fleet.TAMPER_KINDS}
    configs = {row["config"] for row in manifest}
    assert len(configs) < len(manifest) / 2, "realms share configurations"


def test_the_same_seed_gives_the_same_fleet(tmp_path, small_fleet):
    root, manifest = small_fleet
    assert fleet.generate(str(tmp_path), **SMALL) == manifest
    for name in ("logs/vm-00003.log", "logs/vm-00003.rim", "refs/dtb/virt-001.dtb"):
        assert (tmp_path / name).read_bytes() == (root / name).read_bytes()


@pytest.mark.parametrize("backend", ["cffi", "python"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_batch_rows_match_the_manifest(small_fleet, tmp_path, backend, jobs):
    root, manifest = small_fleet
    out = tmp_path / "results.parquet"
    run = fastrim("batch", root / "logs", "--refs", root / "refs", "--out", out, "--jobs", jobs,
                  backend=backend, cache=tmp_path / "cache")
    assert run.returncode == 1, run.stderr  # the fleet holds failures and errors
    table = pq.read_table(out)
    rows = table.to_pylist()
    check_against_manifest(rows, manifest)
    assert {row["backend"] for row in rows} == {backend}
    counts = {s: sum(1 for w in manifest if w["status"] == s) for s in verifier.STATUSES}
    assert f"{counts['pass']} pass, {counts['fail']} fail, {counts['error']} error, " \
           f"{counts['unverified']} unverified; " in run.stderr
    assert "MB of images hashed; the run took " in run.stderr and run.stderr.strip().endswith(f"results in {out}")


def test_the_results_file_is_typed_compressed_and_documented(small_fleet, tmp_path):
    root, manifest = small_fleet
    out = tmp_path / "r.parquet"
    run = fastrim("batch", root / "logs", "--refs", root / "refs", "--out", out, cache=tmp_path / "cache")
    assert run.returncode == 1
    schema = pq.read_schema(out)
    assert schema.field("rim").type == pa.binary() and schema.field("expected_rim").type == pa.binary()
    for name in ("status", "error_code", "hash_algo", "vmm_name", "backend"):
        assert pa.types.is_dictionary(schema.field(name).type), name
    meta = {k.decode(): v.decode() for k, v in schema.metadata.items()}
    assert meta["fastrim.version"] and meta["fastrim.backend"] == "cffi"
    assert set(json.loads(meta["fastrim.hash_kernel"])) == {"sha256", "sha384", "sha512"}
    assert json.loads(meta["fastrim.argv"])[0] == "batch"
    column = pq.ParquetFile(out).metadata.row_group(0).column(0)
    assert column.compression == "ZSTD"
    clean = next(r for r in pq.read_table(out).to_pylist() if r["status"] == "pass")
    assert clean["vmm_name"] == "QEMU" and clean["ram_size"] and clean["s2sz"]
    assert {i["description"] for i in clean["images"]} >= {"KERNEL", "DTB", "LOG"}
    assert all(i["reference"] for i in clean["images"] if i["digest"] is not None)
    assert [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")] == []


def test_jsonl_streams_the_same_rows(small_fleet, tmp_path):
    root, manifest = small_fleet
    run = fastrim("batch", root / "logs", "--refs", root / "refs", "--jsonl", "--jobs", 2, cache=tmp_path)
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    for row in rows:
        for key in ("rim", "expected_rim"):
            row[key] = bytes.fromhex(row[key]) if row[key] else None
    check_against_manifest(rows, manifest)


@pytest.mark.parametrize("form", ["csv", "jsonl"])
def test_expected_file_beats_the_sidecars(small_fleet, tmp_path, form):
    root, manifest = small_fleet
    clean = [w for w in manifest if w["case"] == "clean"][:3]
    path = tmp_path / f"expected.{form}"
    if form == "csv":
        path.write_text("log,rim\n" + "".join(f"{w['log']},{'11' * 32}\n" for w in clean))
    else:
        path.write_text("".join(json.dumps({"log": w["log"], "rim": "11" * 32}) + "\n" for w in clean))
    out = tmp_path / "r.parquet"
    fastrim("batch", root / "logs", "--refs", root / "refs", "--out", out, "--expected", path, cache=tmp_path)
    by_log = {r["log"]: r for r in pq.read_table(out).to_pylist()}
    for want in clean:
        row = by_log[want["log"]]
        assert (row["status"], row["expected_rim"], row["rim_source"]) == ("fail", b"\x11" * 32, "given")
    assert by_log[manifest[0]["log"]]["rim_source"] in ("sidecar", "given")


def test_a_bad_expected_file_is_a_usage_error(small_fleet, tmp_path):
    root, _ = small_fleet
    bad = tmp_path / "expected.csv"
    bad.write_text("log,rim\nvm-00000.log,zz\n")
    run = fastrim("batch", root / "logs", "--refs", root / "refs", "--jsonl", "--expected", bad, cache=tmp_path)
    assert run.returncode == 2 and "input.bad_rim" in run.stderr and run.stdout == ""


def _in_process_batch(root, tmp_path, impl, jobs=2, cache=None):
    refs = RefStore(str(root / "refs"), cache_dir=str(tmp_path / "index"))
    settings = verifier.Settings(refs, cache_dir=str(cache or tmp_path / "cache"), backend=impl.NAME)
    rows = []
    summary = batch.run(batch.discover([str(root / "logs")]), settings, LocalExecutor(jobs), rows.append)
    return rows, summary


def test_images_are_hashed_once_per_run_not_once_per_worker(small_fleet, tmp_path, impl):
    root, manifest = small_fleet
    rows, summary = _in_process_batch(root, tmp_path, impl, jobs=2)
    check_against_manifest(rows, manifest)
    distinct = {}
    for row in rows:
        if row["status"] in ("pass", "fail", "unverified"):
            for image in row["images"]:
                if image["digest"] is not None:
                    distinct[(row["hash_algo"], image["digest"], image["base"] % 4096)] = image["size"]
    assert sum(row["bytes_hashed"] for row in rows) == sum(distinct.values())
    again, _ = _in_process_batch(root, tmp_path, impl, jobs=2)
    assert sum(row["bytes_hashed"] for row in again) == 0
    check_against_manifest(again, manifest)


def test_a_worker_killed_mid_log_costs_only_that_log(small_fleet, tmp_path, monkeypatch, impl):
    root, manifest = small_fleet
    victim = manifest[5]["log"]
    real_verify = work.verify

    def verify_or_die(context, source, *args, **kwargs):  # runs in the forked worker
        if source.path.endswith(victim):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_verify(context, source, *args, **kwargs)

    monkeypatch.setattr(work, "verify", verify_or_die)
    rows, summary = _in_process_batch(root, tmp_path, impl)
    crashed = [r for r in rows if r["log"] == victim]
    assert [(r["status"], r["error_code"]) for r in crashed] == [("error", "internal.worker_crash")]
    assert "SIGKILL" in crashed[0]["detail"] and summary.crashed == 1
    check_against_manifest([r for r in rows if r["log"] != victim], [w for w in manifest if w["log"] != victim])


def test_a_worker_crash_makes_the_cli_exit_3_with_all_rows_written(small_fleet, tmp_path, monkeypatch, caplog):
    root, manifest = small_fleet
    victim = manifest[0]["log"]
    real_verify = work.verify
    def verify_or_abort(context, source, **kwargs):  # runs in the forked worker
        if source.path.endswith(victim):
            faulthandler.disable()  # the abort is the point: no "Fatal Python error" dump in the test output
            os.abort()
        return real_verify(context, source, **kwargs)

    monkeypatch.setattr(work, "verify", verify_or_abort)
    out = tmp_path / "r.parquet"
    code = cli.main(["batch", str(root / "logs"), "--refs", str(root / "refs"), "--out", str(out),
                     "--cache-dir", str(tmp_path / "cache")])
    assert code == 3
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == len(manifest)
    assert next(r for r in rows if r["log"] == victim)["error_code"] == "internal.worker_crash"
    assert "vm-00000.log: the worker process was killed by SIGABRT; the batch goes on" in caplog.text


def test_an_unexpected_exception_is_an_internal_error_row(small_fleet, tmp_path, monkeypatch, impl):
    root, manifest = small_fleet
    victim = manifest[1]["log"]
    real_verify = work.verify

    def verify_or_raise(context, source, *args, **kwargs):
        if source.path.endswith(victim):
            raise RuntimeError("boom")
        return real_verify(context, source, *args, **kwargs)

    monkeypatch.setattr(work, "verify", verify_or_raise)
    rows, _ = _in_process_batch(root, tmp_path, impl)
    row = next(r for r in rows if r["log"] == victim)
    assert (row["error_code"], row["detail"]) == ("internal.error", "RuntimeError: boom")


def test_damaged_caches_are_dropped_never_trusted(small_fleet, tmp_path, impl, caplog):
    root, manifest = small_fleet
    cache = tmp_path / "cache"
    cold, _ = _in_process_batch(root, tmp_path, impl, cache=cache)
    # Flip a byte of every step-memo record's RIM: checksums fail, records are skipped.
    memo = cache / "steps" / "steps-v2.bin"
    data = bytearray(memo.read_bytes())
    for offset in range(40, len(data), 128):
        data[offset] ^= 0xFF
    memo.write_bytes(bytes(data))
    rows, _ = _in_process_batch(root, tmp_path, impl, cache=cache)
    check_against_manifest(rows, manifest)
    # Now the content cache: no memo, every content file damaged, and a torn memo record.
    memo.write_bytes(b"\x00" * 100)
    content_files = list((cache / "content").rglob("*.bin"))
    for path in content_files:
        damaged = bytearray(path.read_bytes())
        damaged[-1] ^= 0xFF
        path.write_bytes(bytes(damaged))
    rows, _ = _in_process_batch(root, tmp_path, impl, cache=cache)
    check_against_manifest(rows, manifest)
    # Every damaged entry was dropped and hashed again, as on the cold run;
    # the workers said so through the parent's log handlers.
    dropped = {line.rsplit(" ", 1)[1] for line in caplog.text.splitlines() if "dropped a damaged" in line}
    assert dropped == {str(path) for path in content_files}  # two workers may both see one
    # At least as much as the cold run: two workers that both find an entry
    # damaged at once may both hash its image (seen once in CI: 4 KiB more).
    rehashed, first = sum(r["bytes_hashed"] for r in rows), sum(r["bytes_hashed"] for r in cold)
    assert first <= rehashed < 2 * first and first > 0


def test_unreadable_logs_are_error_rows(tmp_path, small_fleet):
    root, _ = small_fleet
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "good.log").write_bytes((root / "logs/vm-00000.log").read_bytes())
    (logs / "dangling.log").symlink_to(tmp_path / "nowhere")
    os.mkfifo(logs / "fifo.bin")
    (logs / "empty.log").write_bytes(b"")
    (logs / "notes.txt").write_text("not a log")
    out = tmp_path / "r.parquet"
    run = fastrim("batch", logs, "--refs", root / "refs", "--out", out, cache=tmp_path / "cache")
    rows = {r["log"]: r for r in pq.read_table(out).to_pylist()}
    assert sorted(rows) == ["dangling.log", "empty.log", "fifo.bin", "good.log"]
    assert rows["dangling.log"]["error_code"] == "io.unreadable"
    assert rows["fifo.bin"]["error_code"] == "io.not_regular"
    assert rows["empty.log"]["error_code"] == "log.empty"
    assert rows["good.log"]["status"] in ("pass", "unverified", "fail")
    assert run.returncode == 1


def test_no_logs_is_a_usage_error_not_a_success(tmp_path, small_fleet):
    root, _ = small_fleet
    (tmp_path / "none").mkdir()
    out = tmp_path / "r.parquet"
    run = fastrim("batch", tmp_path / "none", "--refs", root / "refs", "--out", out, cache=tmp_path / "cache")
    assert run.returncode == 2 and "no *.log or *.bin files" in run.stderr and "nothing to verify" in run.stderr
    assert not out.exists()


def test_an_output_in_a_missing_directory_is_refused_before_any_work(tmp_path, small_fleet):
    root, _ = small_fleet
    run = fastrim("batch", root / "logs", "--refs", root / "refs", "--out", tmp_path / "no/such/r.parquet")
    assert run.returncode == 2 and "is in a directory that does not exist" in run.stderr
    assert not (tmp_path / "no").exists()
    missing_logs = fastrim("batch", tmp_path / "nope", "--refs", root / "refs", "--jsonl")
    assert missing_logs.returncode == 2 and "no such directory" in missing_logs.stderr
    no_workers = fastrim("batch", root / "logs", "--refs", root / "refs", "--jsonl", "--jobs", "0")
    assert no_workers.returncode == 2 and "0 is out of range" in no_workers.stderr


def test_ctrl_c_leaves_no_output_file(small_fleet, tmp_path):
    root, manifest = small_fleet
    out = tmp_path / "out"
    out.mkdir()
    proc = start_slow_batch(root, out, tmp_path / "c", stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    assert proc.poll() is None, "the batch ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 3 and "interrupted; no results were written" in stderr
    assert os.listdir(out) == []

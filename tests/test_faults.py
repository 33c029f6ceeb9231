"""Faults around a batch, and input that tries to become a path: results
that cannot be written (a directory refusing files, a write that fails half
way), a parent killed mid-run, hostile names and descriptions. In every case
no partial results file is left and nothing is written where the input says."""

import os
import pathlib
import re
import resource
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from helpers import start_slow_batch

from fastrim.fleetgen import fleet, synth

FASTRIM = pathlib.Path(__file__).resolve().parents[1] / "fastrim"


@pytest.fixture(scope="module")
def small_fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("fleet")
    manifest = fleet.generate(str(root), vms=24, seed=11, tamper=0.2, scale=1 / 256)
    return root, manifest


def batch(*args, preexec_fn=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "fastrim", "batch", *map(str, args)], capture_output=True, text=True,
                          preexec_fn=preexec_fn, **kwargs)


def test_a_directory_that_refuses_files_is_a_usage_error_before_any_work(small_fleet, tmp_path):
    root, _ = small_fleet
    run = batch(root / "logs", "--refs", root / "refs", "--out", "/proc/results.parquet", "--cache-dir", tmp_path)
    assert run.returncode == 2 and "cannot write in /proc" in run.stderr


def _small_file_limit():
    # Results of this fleet take ~10 KB; the content cache and index are off or fail quietly.
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))


def test_a_write_that_fails_half_way_leaves_no_file_and_exits_3(small_fleet, tmp_path):
    root, _ = small_fleet
    out = tmp_path / "out"
    out.mkdir()
    run = batch(root / "logs", "--refs", root / "refs", "--out", out / "r.parquet", "--no-cache",
                "--cache-dir", tmp_path / "c", preexec_fn=_small_file_limit)
    assert run.returncode == 3, run.stderr
    assert "cannot write the results to" in run.stderr and "no results were written" in run.stderr
    assert os.listdir(out) == []  # neither the results nor the temporary file


def _processes_mentioning(marker):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(pid))
    return found


def test_a_parent_killed_mid_run_leaves_no_output_and_no_workers(small_fleet, tmp_path):
    root, _ = small_fleet
    out = tmp_path / "out-killed"
    out.mkdir()
    proc = start_slow_batch(root, out, tmp_path / "c", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    assert proc.poll() is None, "the batch ended before it could be killed"
    assert len(_processes_mentioning(str(out))) == 3  # the parent and its two workers
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while _processes_mentioning(str(out)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_mentioning(str(out)) == [], "workers outlived their parent"
    assert os.listdir(out) == []


def test_names_and_descriptions_from_input_never_become_paths(small_fleet, tmp_path):
    root, _ = small_fleet
    logs = tmp_path / "logs"
    logs.mkdir()
    victim = tmp_path / "victim"
    hostile = [synth.Image(f"../../{victim.name}", 0x40200000, b"k" * 5000),
               synth.Image(str(victim), 0x40400000, b"i" * 5000)]
    spec = synth.RealmSpec(images=tuple(hostile), log_base=0x48200000)
    (logs / "..evil;rm -rf ~;.log").write_bytes(synth.write_log(spec))
    (logs / "$(touch pwned).bin").write_bytes(synth.write_log(spec))
    out = tmp_path / "r.parquet"
    run = batch(logs, "--refs", root / "refs", "--out", out, "--cache-dir", tmp_path / "cache",
                cwd=tmp_path)
    rows = pq.read_table(out).to_pylist()
    assert sorted(r["log"] for r in rows) == ["$(touch pwned).bin", "..evil;rm -rf ~;.log"]
    assert {r["error_code"] for r in rows} == {"ref.unknown_image"}  # unvetted images, named as they were
    assert not victim.exists() and not (tmp_path / "pwned").exists()
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    assert all(str(p).split(os.sep)[0] in ("logs", "cache", "r.parquet") for p in written), written
    assert run.returncode == 1


def test_nothing_in_fastrim_reaches_a_shell():
    source = "\n".join(path.read_text() for path in FASTRIM.glob("*.py"))
    for pattern in (r"\bsubprocess\b", r"os\.system", r"os\.popen", r"shell\s*=\s*True", r"\beval\(", r"\bexec\("):
        assert not re.search(pattern, source), pattern

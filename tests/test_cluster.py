"""fastrim batch on a Dask cluster (--scheduler local:2: two worker processes
on 127.0.0.1, started and stopped by each run): the same rows as the local
pool, bit for bit; a worker killed mid-run costs nothing; a log that kills
every worker it touches is the only internal.worker_crash; an unreachable
scheduler or a missing Dask is a usage error before any work."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import child_pids, fastrim, make_token, stable_rows

from fastrim.fleetgen import fleet
from fastrim.run import cluster
from fastrim.run.cluster import placed_shards, rendezvous, shard_key
from fastrim.run.work import LogFile, Task
from fastrim.verifier import Settings

pytest.importorskip("distributed", reason="the dask extra is part of the test install")

# Columns that may differ between two runs of the same fleet: when, how fast, and what was cached.
# Installed into every process of a run (the client and Dask's workers) through PYTHONPATH: a log
# named *poison.log kills the process verifying it; FASTRIM_TEST_SLOW slows every log down.
SITECUSTOMIZE = """
import os, time
if os.environ.get("FASTRIM_TEST_MEDDLE"):
    from fastrim.run import work
    real = work.verify
    def verify(context, source, **kwargs):
        if source.path.endswith("poison.log"):
            os.kill(os.getpid(), 9)
        time.sleep(float(os.environ.get("FASTRIM_TEST_SLOW", "0")))
        return real(context, source, **kwargs)
    work.verify = verify
"""


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    """A fleet with .rim sidecars, .token sidecars on some logs (and the key that
    trusts them), an --expected file for others, and a sitecustomize directory."""
    root = tmp_path_factory.mktemp("cluster")
    manifest = fleet.generate(str(root), vms=40, seed=21, tamper=0.3, scale=1 / 256)
    platform, rak = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())
    (root / "platform.pem").write_bytes(platform.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    clean = [w for w in manifest if w["case"] == "clean"]
    for w in clean[:4]:
        (root / "logs" / w["log"]).with_suffix(".token").write_bytes(make_token(bytes.fromhex(w["rim"]), rak, platform))
    with open(root / "expected.jsonl", "w") as f:
        for w in clean[4:8]:
            f.write(json.dumps({"log": w["log"], "rim": w["rim"]}) + "\n")
    (root / "site").mkdir()
    (root / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return root, manifest


def batch(root, tmp_path, *extra, logs=None, meddle=None):
    env = dict(os.environ)
    if meddle is not None:
        env.update(FASTRIM_TEST_MEDDLE="1", FASTRIM_TEST_SLOW=str(meddle),
                   PYTHONPATH=os.pathsep.join([str(root / "site"), env.get("PYTHONPATH", "")]))
    args = [logs or root / "logs", "--refs", root / "refs", "--out", tmp_path / "r.parquet", "--ear",
            tmp_path / "ear.jsonl", "--platform-key", root / "platform.pem", "--expected", root / "expected.jsonl",
            "--cache-dir", tmp_path / "cache", *extra]
    return subprocess.Popen([sys.executable, "-m", "fastrim", "batch", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_a_cluster_gives_the_rows_of_the_local_pool(audit, tmp_path):
    root, manifest = audit
    (tmp_path / "pool").mkdir()
    (tmp_path / "dask").mkdir()
    code, _, err = finish(batch(root, tmp_path / "pool", "--jobs", "2"))
    assert code == 1, err  # the fleet holds failures
    code, _, err = finish(batch(root, tmp_path / "dask", "--scheduler", "local:2"))
    assert code == 1, err
    pool, cluster = (stable_rows(pq.read_table(tmp_path / run / "r.parquet")) for run in ("pool", "dask"))
    assert len(cluster) == len(manifest) and cluster == pool
    assert {r["rim_source"] for r in cluster} >= {"token-sidecar", "given", "sidecar"}
    assert any(r["status"] == "pass" and r["rim_source"] == "token-sidecar" for r in cluster)
    ears = [json.loads(line) for line in open(tmp_path / "dask" / "ear.jsonl")]
    assert sorted(next(iter(e["submods"])) for e in ears) == [r["log"] for r in cluster]
    meta = pq.read_schema(tmp_path / "dask" / "r.parquet").metadata
    assert meta[b"fastrim.scheduler"].startswith(b"tcp://127.0.0.1:") and meta[b"fastrim.workers"] == b"2"


def test_a_worker_killed_mid_run_still_gives_one_row_per_log(audit, tmp_path):
    root, manifest = audit
    proc = batch(root, tmp_path, "--scheduler", "local:2", meddle=0.1)
    deadline, workers = time.monotonic() + 60, []
    while not workers and time.monotonic() < deadline:
        time.sleep(0.3)
        workers = child_pids(proc.pid, b"spawn_main")  # local:N's workers, started by multiprocessing's spawn
    time.sleep(1.0)  # into the logs
    os.kill(workers[0], signal.SIGKILL)
    code, _, err = finish(proc)
    rows = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert code == 1, err
    assert sorted(r["log"] for r in rows) == sorted(w["log"] for w in manifest)
    by_log = {r["log"]: r for r in rows}
    for w in manifest:
        assert (by_log[w["log"]]["status"], by_log[w["log"]]["error_code"]) == (w["status"], w["error_code"]), w


def test_a_log_that_kills_every_worker_is_the_only_crash(audit, tmp_path):
    root, manifest = audit
    logs = tmp_path / "logs"
    shutil.copytree(root / "logs", logs)
    shutil.copy(logs / manifest[0]["log"], logs / "poison.log")
    code, _, err = finish(batch(root, tmp_path, "--scheduler", "local:2", logs=logs, meddle=0))
    assert code == 3, err
    rows = {r["log"]: r for r in pq.read_table(tmp_path / "r.parquet").to_pylist()}
    assert len(rows) == len(manifest) + 1
    assert rows["poison.log"]["error_code"] == "internal.worker_crash"
    assert [name for name, r in rows.items() if (r["error_code"] or "").startswith("internal.")] == ["poison.log"]


def test_an_unreachable_scheduler_is_a_usage_error_before_any_work(audit, tmp_path):
    root, _ = audit
    run = fastrim("batch", root / "logs", "--refs", root / "refs", "--jsonl", "--cache-dir", tmp_path / "c",
                  "--scheduler", "tcp://127.0.0.1:9", timeout=120)
    assert run.returncode == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in run.stderr
    assert not (tmp_path / "c").exists() and run.stdout == ""
    bad = fastrim("batch", root / "logs", "--refs", root / "refs", "--jsonl", "--scheduler", "local:0")
    assert bad.returncode == 2 and "local:N needs N from 1" in bad.stderr


def test_a_scheduler_without_workers_is_unavailable_before_any_work():
    """Waiting for a first worker ends after the connect timeout, with the reason."""
    import distributed

    from fastrim.run.cluster import ClusterUnavailable, DaskExecutor

    with distributed.LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        with pytest.raises(ClusterUnavailable, match="has no worker"):
            DaskExecutor(cluster.scheduler_address, connect_timeout=1).connect()


def test_without_dask_the_scheduler_option_names_the_extra(audit, tmp_path):
    root, _ = audit
    (tmp_path / "nodask").mkdir()
    for name in ("dask", "distributed"):  # an import of either fails, as on a machine without the extra
        (tmp_path / "nodask" / f"{name}.py").write_text("raise ImportError('not installed')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "nodask"))
    run = subprocess.run([sys.executable, "-m", "fastrim", "batch", root / "logs", "--refs", root / "refs",
                          "--jsonl", "--scheduler", "local:2"], capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "pip install 'fastrim[dask]'" in run.stderr


def test_shards_keep_a_configuration_together_and_rendezvous_is_stable(audit):
    root, manifest = audit
    from fastrim.backend import select

    tasks = [Task(LogFile(str(root / "logs" / w["log"]), str(root / "logs"), w["log"], 0)) for w in manifest]
    workers = [f"tcp://127.0.0.1:{port}" for port in range(4000, 4004)]
    placed = list(placed_shards(tasks, select.active, workers))
    assert sorted(t.log.name for _, shard in placed for t in shard) == sorted(w["log"] for w in manifest)
    config_of = {w["log"]: w["config"] for w in manifest if w["case"] == "clean"}
    worker_of = {}
    for worker, shard in placed:  # the clean logs of one configuration load the same images: one worker
        for task in shard:
            if task.log.name in config_of:
                assert worker_of.setdefault(config_of[task.log.name], worker) == worker
    keys = [f"key-{i}" for i in range(200)]
    choice = {key: rendezvous(key, workers) for key in keys}
    kept = {k: w for k, w in choice.items() if w != workers[3]}
    assert {k: rendezvous(k, workers[:3]) for k in kept} == kept, "keys keep their worker when another leaves"
    assert len(set(choice.values())) == 4


@pytest.mark.parametrize("head", [16, 600, 1 << 20])
def test_a_shard_key_read_from_the_head_is_the_whole_logs(audit, monkeypatch, head):
    """Placement frames only the log's first bytes; a head that cuts an event
    reads the whole log. (A head that ends just at an event's end, or in a
    run of zero bytes, frames as a shorter log: a placement hint only, and
    the 8 KiB head is far past the events of a CCA log.)"""
    root, manifest = audit
    from fastrim.backend import select

    clean = [w for w in manifest if w["case"] == "clean"]
    logs = [LogFile(str(root / "logs" / w["log"]), str(root / "logs"), w["log"], 0) for w in clean]
    whole = [shard_key(log_file, select.active) for log_file in logs]
    assert len(set(whole)) == len({w["config"] for w in clean}), "one key per configuration"
    monkeypatch.setattr(cluster, "PLACEMENT_HEAD", head)
    assert [shard_key(log_file, select.active) for log_file in logs] == whole


def test_ctrl_c_stops_a_cluster_run_and_writes_nothing(audit, tmp_path):
    root, _ = audit
    proc = batch(root, tmp_path, "--scheduler", "local:2", meddle=0.3)
    deadline, workers = time.monotonic() + 60, []
    while len(workers) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        workers = child_pids(proc.pid, b"spawn_main")
    time.sleep(2)  # shards running
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc, timeout=120)
    assert code == 3 and "interrupted; no results were written" in err, err
    assert not (tmp_path / "r.parquet").exists() and not (tmp_path / "ear.jsonl").exists()
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers and not any(os.path.exists(f"/proc/{pid}") for pid in workers), "no worker left running"


def _verifier_pids(client):
    """The verifier processes of each Dask worker: the children of its forkserver."""
    return {address: sorted(pid for server in child_pids(worker_pid, b"forkserver") for pid in child_pids(server))
            for address, worker_pid in client.run(os.getpid).items()}


def test_a_long_lived_client_keeps_the_verifiers_of_its_settings_between_runs(audit, tmp_path):
    """Runs with the same settings use the verifier processes that the first
    one started; other settings replace them; another client has its own; a
    plugin lost on the cluster is sent again; close() leaves no plugin on a
    cluster that outlives the client, and closes even when it is gone."""
    import dask
    import distributed

    from fastrim.run import batch as batch_run
    from fastrim.run.cluster import DaskExecutor
    from fastrim.store.refs import RefStore

    root, manifest = audit
    refs = RefStore(str(root / "refs"), cache_dir=str(tmp_path / "index"))
    logs = batch_run.discover([str(root / "logs")])

    def rows(executor, cache):
        found = []
        batch_run.run(logs, Settings(refs, cache_dir=str(tmp_path / cache)), executor, found.append)
        return stable_rows(found)

    def plugins(client):
        return [name for names in client.run(lambda dask_worker: list(dask_worker.plugins)).values()
                for name in names if name.startswith("fastrim-")]

    with dask.config.set({"distributed.worker.daemon": False}), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        executor = DaskExecutor(cluster.scheduler_address).connect()
        try:
            first, started = rows(executor, "a"), _verifier_pids(executor.client)
            assert rows(executor, "a") == first and _verifier_pids(executor.client) == started
            assert all(len(pids) == 1 for pids in started.values()) and len(started) == 2
            assert len(plugins(executor.client)) == 2  # one per worker
            assert rows(executor, "b") == first
            replaced = _verifier_pids(executor.client)
            assert all(len(pids) == 1 for pids in replaced.values()) and not set(sum(replaced.values(), [])) & set(
                sum(started.values(), []))
            assert len(plugins(executor.client)) == 2
            with DaskExecutor(cluster.scheduler_address) as other_client:  # the same settings, its own plugin
                assert rows(other_client, "b") == first and len(plugins(executor.client)) == 4
            assert len(plugins(executor.client)) == 2 and rows(executor, "b") == first
            with distributed.Client(cluster.scheduler_address) as meddler:  # lost, as by a restarted scheduler
                meddler.unregister_worker_plugin(*set(plugins(meddler)))
            assert plugins(executor.client) == []  # the next run sends it again
            assert rows(executor, "b") == first and len(plugins(executor.client)) == 2
            with distributed.Client(cluster.scheduler_address) as meddler:
                meddler.unregister_worker_plugin(*set(plugins(meddler)))
        finally:
            executor.close()  # the plugin already gone: a warning, and the client still closes
        assert executor.client is None
        with distributed.Client(cluster.scheduler_address) as client:
            assert plugins(client) == []
    assert len(first) == len(manifest)


def test_a_kept_verifier_builds_a_new_context_for_each_run(monkeypatch):
    """Every run starts with empty memos in memory, in a new worker or a kept one."""
    from fastrim.run import work

    built = []
    monkeypatch.setattr(work.Context, "from_settings", classmethod(lambda cls, settings: built.append(settings) or
                                                                   len(built)))
    monkeypatch.setattr(work, "run_task", lambda context, task: (context, task.log))
    run = work.task_runner("settings")
    outcomes = [run(Task(LogFile(name, "", name, 0), run=tag)) for name, tag in
                [("a", "night-1"), ("b", "night-1"), ("c", "night-2"), ("d", "night-2")]]
    assert outcomes == [(1, outcomes[0][1]), (1, outcomes[1][1]), (2, outcomes[2][1]), (2, outcomes[3][1])]
    assert built == ["settings", "settings"]


def test_a_verifier_pool_that_fails_mid_shard_is_replaced(monkeypatch):
    """A kept pool that raised may still hold tasks of its shard: it is
    closed, and the next shard gets a new pool and only its own rows."""
    from fastrim.run.daskworker import VerifierPlugin

    class FailingPool:
        closed = None

        def submit(self, task):
            pass

        def results(self):
            raise OSError("no process could be started")

        def close(self, graceful=True):
            FailingPool.closed = graceful

    class EchoPool:
        def __init__(self):
            self.queue = []

        def submit(self, task):
            self.queue.append(task)

        def results(self):
            while self.queue:
                task = self.queue.pop(0)
                yield task, {"log": task.log.name, "run": task.run, "bytes_hashed": 0}

    plugin = VerifierPlugin(Settings())
    plugin.lock, plugin.pool = threading.Lock(), FailingPool()
    monkeypatch.setattr(plugin, "_start_pool", EchoPool)
    tasks = [Task(LogFile(name, "", name, 0)) for name in ("a.log", "b.log")]
    with pytest.raises(OSError):
        plugin.verify(tasks, "night-1")
    assert FailingPool.closed is False and plugin.pool is None
    assert plugin.verify(tasks[1:], "night-2") == [{"log": "b.log", "run": "night-2", "bytes_hashed": 0}]

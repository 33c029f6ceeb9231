"""Logs, sidecars, reference images and results in object storage: a moto S3
server on 127.0.0.1, started and stopped here, holds a fleet; fastrim batch
over s3:// URLs gives the rows of the same fleet on disk, on the local pool
and on a Dask cluster, and an object changed under the index is refused."""

import json
import os
import subprocess
import sys
import tempfile

import pyarrow.parquet as pq
import pytest
from helpers import stable_rows

from fastrim.backend import fallback
from fastrim.errors import ReferenceImageError
from fastrim.fleetgen import fleet
from fastrim.store.objects import ObjectStore
from fastrim.store.refs import ObjectRefStore

pytest.importorskip("s3fs", reason="the s3 extra is part of the test install")
moto_server = pytest.importorskip("moto.server", reason="moto is part of the test install")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """(storage options, the fleet on disk, its manifest): the fleet also in s3://fleet/."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        options = {"endpoint_url": f"http://{host}:{port}", "key": "testing", "secret": "testing"}
        root = tmp_path_factory.mktemp("s3fleet")
        manifest = fleet.generate(str(root), vms=30, seed=5, tamper=0.3, scale=1 / 256)
        import s3fs

        fs = s3fs.S3FileSystem(**options)
        fs.mkdir("fleet")
        fs.put(str(root / "logs"), "fleet/logs", recursive=True)
        fs.put(str(root / "refs"), "fleet/refs", recursive=True)
        yield options, root, manifest
    finally:
        server.stop()


def batch(tmp_path, logs, refs, out, *extra):
    run = subprocess.run([sys.executable, "-m", "fastrim", "batch", str(logs), "--refs", str(refs), "--out", str(out),
                          "--cache-dir", str(tmp_path / "cache"), *map(str, extra)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr  # the fleet holds failures
    return run


@pytest.mark.parametrize("executor", [["--jobs", "2"], ["--scheduler", "local:2"]], ids=["pool", "dask"])
def test_a_fleet_in_object_storage_gives_the_rows_of_the_fleet_on_disk(s3, tmp_path, executor):
    options, root, manifest = s3
    (tmp_path / "disk").mkdir()
    (tmp_path / "s3").mkdir()
    batch(tmp_path / "disk", root / "logs", root / "refs", tmp_path / "disk" / "r.parquet", "--jobs", "2")
    out = f"s3://fleet/out/{executor[-1].replace(':', '-')}.parquet"
    run = batch(tmp_path / "s3", "s3://fleet/logs", "s3://fleet/refs", out, "--storage-options", json.dumps(options),
                *executor)
    assert f"results in {out}" in run.stderr
    import s3fs

    with s3fs.S3FileSystem(**options).open(out, "rb") as f:
        remote = pq.read_table(f)
    on_disk = pq.read_table(tmp_path / "disk" / "r.parquet")
    assert len(remote) == len(manifest) and stable_rows(remote, ["root"]) == stable_rows(on_disk, ["root"])
    assert {r["root"] for r in remote.to_pylist()} == {"s3://fleet/logs"}
    kernels = [i["reference"] for r in remote.to_pylist() for i in r["images"] if i["description"] == "KERNEL"]
    assert kernels and all(k is None or k.startswith("kernel/") for k in kernels)


def test_a_dataset_of_parts_goes_to_an_object_prefix(s3, tmp_path):
    options, root, manifest = s3
    (tmp_path / "disk").mkdir()
    batch(tmp_path / "disk", root / "logs", root / "refs", tmp_path / "disk" / "r.parquet")
    out = "s3://fleet/nights/2026-12-01/"
    run = batch(tmp_path, "s3://fleet/logs", "s3://fleet/refs", out, "--storage-options", json.dumps(options),
                "--scheduler", "local:2")
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    assert fs.ls(out) == [out[len("s3://"):] + "part-00000.parquet"], run.stderr
    with fs.open(out + "part-00000.parquet", "rb") as f:
        remote = pq.read_table(f)
    assert len(remote) == len(manifest)
    assert stable_rows(remote, ["root"]) == stable_rows(pq.read_table(tmp_path / "disk" / "r.parquet"), ["root"])
    again = subprocess.run([sys.executable, "-m", "fastrim", "batch", "s3://fleet/logs", "--refs", "s3://fleet/refs",
                            "--out", out, "--storage-options", json.dumps(options)],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "already holds objects" in again.stderr


def test_an_object_changed_after_indexing_is_refused(s3, tmp_path):
    options, root, _ = s3
    objects = ObjectStore(options)
    store = ObjectRefStore("s3://fleet/refs", objects, cache_dir=str(tmp_path / "cache"))
    ref = next(store.find(alg, digest) for image in store._images.values() for alg, digest in image.digests.items())
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    original = fs.cat_file(ref.path)
    try:
        fs.pipe_file(ref.path, bytes(reversed(original)))  # same size, other bytes
        with pytest.raises(ReferenceImageError) as info:
            store.open(ref)
        assert info.value.code == "ref.changed"
        assert os.listdir(store.fetch_dir) == [], "neither the download nor a copy of it is kept"
    finally:
        fs.pipe_file(ref.path, original)
    with store.open(ref):  # restored: fetched, checked, and kept in the cache's objects/
        assert os.listdir(store.fetch_dir)


def _local_copy(store, ref):
    alg, digest = next(iter(ref.digests.items()))
    return os.path.join(store.fetch_dir, f"{'sha256' if alg == 0x000B else 'sha512'}-{digest.hex()}")


def test_a_fetched_copy_changed_in_the_cache_is_fetched_again(s3, tmp_path):
    options, _, _ = s3
    store = ObjectRefStore("s3://fleet/refs", ObjectStore(options), cache_dir=str(tmp_path / "cache"))
    ref = next(iter(store._images.values()))
    with store.open(ref):
        pass
    local = _local_copy(store, ref)
    with open(local, "r+b") as f:  # someone who can write the cache, not read the key
        f.write(b"\0" * 16)
    with store.open(ref):
        pass
    with open(local, "rb") as f:
        assert f.read(16) != b"\0" * 16, "the damaged copy was replaced by a checked download"


def test_without_a_cache_nothing_fetched_is_left_behind(s3, tmp_path, monkeypatch):
    options, _, _ = s3
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    store = ObjectRefStore("s3://fleet/refs", ObjectStore(options))
    ref = next(iter(store._images.values()))
    with store.open(ref) as image:
        assert image.measure(fallback, 0x000B, bytes(64), 0, False)[1] > 0
    assert os.listdir(tmp_path) == []

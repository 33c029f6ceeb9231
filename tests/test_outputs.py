"""Batch outputs written as rows come: one Parquet file a row group at a
time, a dataset of parts (--out DIR/), EAR lines; whole or absent."""

import datetime
import json
import os

import pyarrow.parquet as pq
import pytest
from helpers import fastrim, stable_rows

from fastrim.fleetgen import fleet
from fastrim.output import parquet
from fastrim.output.sinks import Sinks
from fastrim.store.objects import ObjectStore


@pytest.fixture(scope="module")
def fleet_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs-fleet")
    manifest = fleet.generate(str(root), vms=20, seed=9, tamper=0.3, scale=1 / 256)
    return root, manifest


def _batch(root, tmp_path, out, *extra):
    return fastrim("batch", root / "logs", "--refs", root / "refs", "--out", out, *extra, cache=tmp_path / "c")


def _rows(n):
    """n rows of the results schema (from internal_row: every column present)."""
    from fastrim.output.rows import internal_row, run_columns
    from fastrim.run.work import LogFile

    stamp = run_columns("run", datetime.datetime.now(datetime.timezone.utc), "host")
    return [{**internal_row(LogFile(f"/l/vm-{i}.log", "/l", f"vm-{i}.log", 1), "internal.error", "x", "cffi"),
             **stamp} for i in range(n)]


def test_a_file_is_written_a_row_group_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 2)
    writer = parquet.ParquetRows(str(tmp_path / "r.parquet"), {"k": "v"})
    for row in _rows(5):
        writer.add(row)
    assert not (tmp_path / "r.parquet").exists() and os.listdir(tmp_path) == []  # no name until whole
    writer.close()
    assert os.listdir(tmp_path) == ["r.parquet"]
    assert pq.ParquetFile(tmp_path / "r.parquet").num_row_groups == 3
    assert pq.read_schema(tmp_path / "r.parquet").metadata[b"k"] == b"v"


def test_an_aborted_run_leaves_none_of_its_outputs(tmp_path, monkeypatch):
    monkeypatch.setattr(parquet, "PART_ROWS", 2)
    sinks = Sinks(str(tmp_path / "parts") + "/", str(tmp_path / "ear.jsonl"), {}, ObjectStore())
    for row in _rows(5):
        sinks.add(row)
    assert sorted(os.listdir(tmp_path / "parts")) == ["part-00000.parquet", "part-00001.parquet"]
    sinks.abort()
    assert os.listdir(tmp_path) == []


def test_a_dataset_holds_the_rows_of_a_file(fleet_root, tmp_path):
    root, manifest = fleet_root
    assert _batch(root, tmp_path, tmp_path / "r.parquet", "--jobs", "2").returncode == 1
    run = _batch(root, tmp_path, str(tmp_path / "night") + "/", "--jobs", "2", "--ear", tmp_path / "ear.jsonl")
    assert run.returncode == 1, run.stderr
    assert os.listdir(tmp_path / "night") == ["part-00000.parquet"]
    dataset = pq.read_table(tmp_path / "night")
    assert len(dataset) == len(manifest)
    assert stable_rows(dataset) == stable_rows(pq.read_table(tmp_path / "r.parquet"))
    meta = pq.read_schema(tmp_path / "night" / "part-00000.parquet").metadata
    assert json.loads(meta[b"fastrim.argv"])[0] == "batch"
    assert len((tmp_path / "ear.jsonl").read_text().splitlines()) == len(manifest)


@pytest.mark.parametrize("occupied", ["a file", "a non-empty directory"])
def test_a_dataset_needs_a_new_or_empty_directory(fleet_root, tmp_path, occupied):
    root, _ = fleet_root
    night = tmp_path / "night"
    if occupied == "a file":
        night.write_text("x")
    else:
        night.mkdir()
        (night / "part-00000.parquet").write_text("last night")
    run = _batch(root, tmp_path, str(night) + "/", "--jsonl")
    assert run.returncode == 2 and run.stdout == "" and "--out" in run.stderr, run.stderr
    assert (night.read_text() if occupied == "a file" else (night / "part-00000.parquet").read_text()) in (
        "x", "last night")

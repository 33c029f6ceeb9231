"""fastrim explain names the step and the field that a tampering changed,
with the RIM of both launches after it; two launches alike do not diverge."""

import dataclasses
import json

import pytest
from helpers import fastrim

from fastrim.fleetgen import fleet, synth
from fastrim.log import cca, tcg
from fastrim.rim.explain import describe, first_divergence


@pytest.fixture(scope="module")
def tampered(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain-fleet")
    manifest = fleet.generate(str(root), vms=40, seed=3, tamper=0.5, scale=1 / 256)
    golden = {}
    for want in manifest:
        if want["case"] == "clean":
            golden.setdefault(want["config"], want["log"])
    cases = {}
    for want in manifest:
        if want["case"] != "clean" and want["config"] in golden and want["log"] != golden[want["config"]]:
            cases.setdefault(want["case"], (want["log"], golden[want["config"]]))
    assert set(cases) == set(fleet.TAMPER_KINDS)
    return root, cases


EXPECT = {  # tampering -> (diverges, step label, field)
    "wrong_address": (True, "KERNEL", "base"),
    "unvetted_image": (True, "KERNEL", "digest"),
    "truncated": (True, "LOG", "log"),
    "wrong_rim": (False, None, None),  # the log is the faithful one; only its attested RIM was changed
    "missing_sidecar": (False, None, None),
}


@pytest.mark.parametrize("backend", ["cffi", "python"])
@pytest.mark.parametrize("kind", sorted(EXPECT))
def test_explain_names_the_step_and_field_a_tampering_changed(tampered, tmp_path, kind, backend):
    root, cases = tampered
    log, golden = cases[kind]
    run = fastrim("explain", root / "logs" / log, "--golden", root / "logs" / golden, "--refs", root / "refs",
                  "--json", backend=backend, cache=tmp_path)
    out = json.loads(run.stdout)
    diverges, label, field = EXPECT[kind]
    assert run.returncode == (1 if diverges else 0), run.stderr
    assert out["diverges"] is diverges
    if not diverges:
        assert "do not diverge" in out["detail"]
        return
    assert (out["label"], out["field"]) == (label, field), out
    if kind == "truncated":
        assert out["log_error"]["code"] == "log.truncated"
        return
    assert out["golden_rim"] and out["log"] != out["golden"]
    if kind == "wrong_address":
        assert out["rim"] and out["rim"] != out["golden_rim"] and out["golden"] - out["log"] == 1 << 20
    else:  # unvetted: the golden kernel is in the store, the log's is in no store
        assert out["rim"] is None and out["rim_error"] == "ref.unknown_image"
        assert out["golden_reference"].startswith("kernel/") and out["reference"] is None


KERNEL = bytes(range(256)) * 16
SPEC = synth.RealmSpec(images=(synth.Image("KERNEL", synth.RAM_BASE, KERNEL),), log_base=synth.RAM_BASE + (4 << 20))


def _decoded(spec):
    return cca.decode(tcg.parse(synth.write_log(spec)))


@pytest.mark.parametrize("change, label, field", [
    (dict(s2sz=44), "REALM_CREATE", "s2sz"),
    (dict(flags=2, sve_vl=3), "REALM_CREATE", "flags"),
    (dict(pc=synth.RAM_BASE + 4096), "REC_CREATE", "pc"),
    (dict(gprs=(0, 0, 7, 0, 0, 0, 0, 0)), "REC_CREATE", "gprs[2]"),
    (dict(ram_size=256 << 20), "INIT_RIPAS", "size"),
    (dict(images=SPEC.images + (synth.Image("INITRD", synth.RAM_BASE + (2 << 20), b"x" * 5000),)), "REC_CREATE",
     "event"),
])
def test_each_kind_of_step_names_its_field(change, label, field):
    divergence = first_divergence(_decoded(dataclasses.replace(SPEC, **change)), _decoded(SPEC))
    assert (divergence.label, divergence.field) == (label, field), divergence
    assert field.split("[")[0] in describe(divergence)
    assert first_divergence(_decoded(SPEC), _decoded(SPEC)) is None


def test_batch_golden_explains_every_failing_log(tampered, tmp_path):
    import pyarrow.parquet as pq

    root, cases = tampered
    golden_dir = tmp_path / "golden"
    golden_dir.mkdir()
    manifest = {w["log"]: w for w in map(json.loads, open(root / fleet.MANIFEST))}
    for want in manifest.values():
        if want["case"] == "clean" and not (golden_dir / f"{want['config']}.log").exists():
            (golden_dir / f"{want['config']}.log").write_bytes((root / "logs" / want["log"]).read_bytes())
    out = tmp_path / "r.parquet"
    run = fastrim("batch", root / "logs", "--refs", root / "refs", "--out", out, "--golden", golden_dir,
                  cache=tmp_path / "c")
    assert run.returncode == 1, run.stderr
    for row in pq.read_table(out, columns=["log", "status", "explain"]).to_pylist():
        case = manifest[row["log"]]["case"]
        if row["status"] in ("pass", "unverified"):
            assert row["explain"] is None
        elif case == "wrong_address":
            assert row["explain"].startswith(f"against {manifest[row['log']]['config']}.log: ") and \
                "(KERNEL): base is" in row["explain"], row
        elif case == "unvetted_image":
            assert "(KERNEL): digest is" in row["explain"], row
        elif case == "wrong_rim":
            assert row["explain"].endswith("no step differs"), row
    bad = fastrim("batch", root / "logs", "--refs", root / "refs", "--jsonl", "--golden", tmp_path / "nowhere")
    assert bad.returncode == 2 and "--golden" in bad.stderr


def test_a_description_from_the_log_cannot_drive_the_terminal():
    evil = synth.Image("K\x1b[2J\x1b[32mOK", synth.RAM_BASE + (2 << 20), b"x" * 5000)
    divergence = first_divergence(_decoded(dataclasses.replace(SPEC, images=SPEC.images + (evil,))), _decoded(SPEC))
    text = describe(divergence)
    assert "\x1b" not in text and "\\x1b" in text, text


def test_two_identical_logs_do_not_diverge(tampered, tmp_path):
    root, cases = tampered
    _, golden = cases["wrong_address"]
    run = fastrim("explain", root / "logs" / golden, "--golden", root / "logs" / golden, "--refs", root / "refs",
                  cache=tmp_path)
    assert run.returncode == 0 and run.stdout.startswith("the log and the golden log do not diverge"), run.stderr

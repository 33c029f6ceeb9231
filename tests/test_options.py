"""Every numeric option at the edges (-1, 0, 2^31, 2^32, 2^33, 2^64), on the
command line and in the Python API, on both backends: each value is either a
usage error (exit 2, one line, no traceback) or does what the help says,
and both backends give the same outcome. (The C backend keeps sizes in
fixed-width integers where Python does not: no such value may reach it.)"""

import json
import os
import subprocess
import sys

import pytest
from helpers import one_kernel_realm

EDGES = (-1, 0, 2**31, 2**32, 2**33, 2**64)

# Every numeric option of every command, with the arguments that make the
# command cheap: tiny fleets, one small log.
OPTIONS = {
    "parse": (["--max-event-size", "--max-log-size"], ["{log}"]),
    "replay": (["--max-event-size", "--max-log-size", "--max-measured-bytes", "--max-ripas-blocks"],
               ["{log}", "--refs", "{refs}", "--json", "--cache-dir", "{cache}"]),
    "verify": (["--max-event-size", "--max-log-size", "--max-measured-bytes", "--max-ripas-blocks"],
               ["{log}", "--refs", "{refs}", "--cache-dir", "{cache}"]),
    "batch": (["--max-event-size", "--max-log-size", "--max-measured-bytes", "--max-ripas-blocks", "--jobs",
               "--log-timeout"],
              ["{logs}", "--refs", "{refs}", "--jsonl", "--cache-dir", "{cache}"]),
    "index": (["--jobs"], ["{refs}", "--cache-dir", "{cache}"]),
    "synth": (["--vms", "--seed"], ["{new}", "--vms", "3", "--scale", "0.001"]),
    "demo": (["--vms", "--seed", "--jobs"], ["--vms", "3", "--scale", "0.001", "--jobs", "1", "--report", "{new}.html"]),
    "bench": (["--mib", "--repeat"], ["--mib", "1", "--repeat", "1", "--algo", "sha256"]),
}
FLOAT_OPTIONS = {"synth": ["--tamper", "--scale"], "demo": ["--tamper", "--scale"]}
FLOAT_EDGES = ("-1", "0", "1", "2", "1e300", "nan", "inf")

CHILD = r"""
import contextlib, io, json, sys
from fastrim import cli
results = []
for argv in json.load(sys.stdin):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = exc.code
    results.append([argv, code, out.getvalue(), err.getvalue()])
json.dump(results, sys.stdout)
"""

API_CHILD = r"""
import json, sys
from fastrim import errors, verifier
from fastrim.fleetgen import synth
from fastrim.log import tcg
from fastrim.rim.replay import ReplayOptions
log = synth.write_log(synth.RealmSpec())
results = []
for value in json.load(sys.stdin):
    for name, call in (("parse", lambda v: tcg.parse(log, max_event_size=v).format),
                       ("settings", lambda v: verifier.Settings(limits=verifier.Limits(max_event_size=v)).limits),
                       ("context", lambda v: verifier.Context(limits=verifier.Limits(max_event_size=v)).limits),
                       ("log_size", lambda v: verifier.Limits(max_log_size=v).checked()),
                       ("measured", lambda v: ReplayOptions(max_measured_bytes=v).max_measured_bytes),
                       ("ripas", lambda v: ReplayOptions(max_ripas_blocks=v).max_ripas_blocks)):
        try:
            results.append([name, value, "ok", str(call(value))])
        except errors.OptionError as exc:
            results.append([name, value, "OptionError", str(exc)])
json.dump(results, sys.stdout)
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("options")
    one_kernel_realm(root, "logs/vm.log")
    return root


def _cases(root, backend):
    where = {"log": str(root / "logs" / "vm.log"), "logs": str(root / "logs"), "refs": str(root / "refs")}
    (root / backend).mkdir(exist_ok=True)  # where synth's new directories and demo's report pages go
    cases = []
    for command, (options, base) in OPTIONS.items():
        for option in options:
            for value in EDGES:
                for_case = dict(where, cache=str(root / "cache"), new=str(root / backend / f"{command}{option}{value}"))
                cases.append([command, *(arg.format(**for_case) for arg in base), option, str(value)])
    for command, options in FLOAT_OPTIONS.items():
        for option in options:
            for value in FLOAT_EDGES:
                new = str(root / backend / f"{command}{option}{value}")
                base = [arg.format(new=new) for arg in OPTIONS[command][1]]
                cases.append([command, *base, option, value])
    return cases


def _run(child, cases, backend):
    env = dict(os.environ, FASTRIM_BACKEND=backend)
    run = subprocess.run([sys.executable, "-c", child], input=json.dumps(cases), capture_output=True, text=True,
                         env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _outcome(argv, code, out, err):
    """What must not depend on the backend: the exit status, and the output
    of the commands whose output holds no timings or backend names."""
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        lines = [line for line in err.splitlines() if "error:" in line]
        assert len(lines) == 1, (argv, err)
        return code, lines[0]
    assert code in (0, 1), (argv, code, err)
    if argv[0] == "batch":
        rows = [json.loads(line) for line in out.splitlines()]
        return code, [(r["log"], r["status"], r["error_code"], r["rim"]) for r in rows]
    return code, out if argv[0] in ("parse", "replay", "verify", "synth") else None


def test_every_numeric_option_at_the_edges_is_refused_or_works_alike_on_both_backends(inputs):
    by_backend = {backend: _run(CHILD, _cases(inputs, backend), backend) for backend in ("cffi", "python")}
    for (argv, *c_result), (_, *py_result) in zip(by_backend["cffi"], by_backend["python"]):
        py_result[1] = py_result[1].replace(str(inputs / "python"), str(inputs / "cffi"))  # synth's own paths
        assert _outcome(argv, *c_result) == _outcome(argv, *py_result), argv
    outcomes = {tuple(argv): code for argv, code, _, _ in by_backend["cffi"]}
    # the sweep reaches both sides of the ranges, so that it tests something
    assert set(outcomes.values()) >= {0, 1, 2}
    for argv, code in outcomes.items():
        value = argv[-1]
        if value in ("-1", str(2**64), "nan", "inf", "1e300"):
            assert code == 2, argv  # never a valid count, size or fraction


def test_the_python_api_checks_the_same_ranges_on_both_backends():
    values = [*EDGES, 2**32 - 1, 2**63 - 1, 2**63, True, 1.5]
    c_results, py_results = (_run(API_CHILD, values, backend) for backend in ("cffi", "python"))
    assert c_results == py_results
    outcomes = {(name, value): kind for name, value, kind, _ in c_results}
    for name in ("parse", "settings", "context"):  # max_event_size
        assert [outcomes[(name, v)] for v in (-1, 0, 2**31, 2**32 - 1, 2**32, 2**64)] == \
            ["OptionError", "OptionError", "ok", "ok", "OptionError", "OptionError"], name
    for name in ("measured", "ripas"):
        assert [outcomes[(name, v)] for v in (-1, 0, 2**63 - 1, 2**63, True, 1.5)] == \
            ["OptionError", "ok", "ok", "OptionError", "OptionError", "OptionError"], name

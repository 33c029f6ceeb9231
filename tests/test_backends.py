import os
import subprocess
import sys

import pytest

import fastrim
from fastrim import errors
from fastrim.backend import contract


def test_c_backend_is_live_unless_python_was_asked_for():
    if os.environ.get("FASTRIM_BACKEND") == "python":
        assert fastrim.backend == "python"
    else:
        assert fastrim.backend == "cffi", "the C extension did not build or import"


def _backend_with(value):
    env = dict(os.environ, FASTRIM_BACKEND=value)
    return subprocess.run(
        [sys.executable, "-c", "import fastrim; print(fastrim.backend)"],
        env=env, capture_output=True, text=True,
    )


def test_backend_is_chosen_by_environment():
    assert _backend_with("python").stdout.strip() == "python"
    assert _backend_with("cffi").stdout.strip() == "cffi"
    assert _backend_with("auto").stdout.strip() == "cffi"


def test_unknown_backend_is_an_import_error():
    run = _backend_with("rust")
    assert run.returncode != 0
    assert "ImportError: unknown fastrim backend 'rust'" in run.stderr


def test_every_number_the_python_side_shares_with_c_is_the_c_enum(both):
    from fastrim._native import lib

    for fault in errors.FramingFault:
        assert getattr(lib, f"FR_ERR_{fault.name}") == fault, fault
    assert {name for name in dir(lib) if name.startswith("FR_ERR_")} == {f"FR_ERR_{f.name}" for f in errors.FramingFault}
    for log_format in contract.LogFormat:
        assert getattr(lib, f"FR_FORMAT_{log_format.name}") == log_format
    # every framing fault that is a log error has a code and a sentence
    assert set(errors.FRAMING_ERRORS) == set(errors.FramingFault) - {errors.FramingFault.CAPACITY}


def test_the_c_core_exports_nothing_but_the_module():
    from fastrim import _native

    symbols = subprocess.run(["nm", "-D", "--defined-only", _native.__file__], capture_output=True, text=True,
                             check=True).stdout.split()
    assert [s for s in symbols if s.startswith("fr_")] == []


def test_both_backends_refuse_a_non_rim_algorithm_the_same_way(both):
    for impl in both:
        for call in (lambda: impl.rim_data(0x0012, bytes(64), b"x", 0, False),  # SM3: a TCG algorithm, not a RIM one
                     lambda: impl.rim_chain(0x0004, bytes(64), 0, 1, None)):
            with pytest.raises(errors.InputError) as info:
                call()
            assert info.value.code == "input.unsupported_alg"
    from fastrim._native import ffi, lib

    rim = ffi.new("uint8_t[64]")
    for alg in (0x0004, 0x0012, 0x0027, 0xFFFF):  # the C core refuses them by itself too
        assert lib.fr_rim_chain(alg, rim, 0, 1, ffi.NULL) == lib.FR_RIM_BAD_ALG
        assert lib.fr_rim_data(alg, rim, ffi.new("uint8_t[]", 1), 1, 0, ffi.NULL) == lib.FR_RIM_BAD_ALG


def test_log_errors_are_value_errors_with_code_and_offset():
    err = errors.framing_error(3, 861, 32, 6)
    assert isinstance(err, ValueError) and isinstance(err, errors.FastrimError)
    assert (err.code, err.offset) == ("log.truncated", 861)
    assert str(err).startswith("log.truncated at offset 861: ")

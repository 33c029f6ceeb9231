import os
import subprocess
import sys

import fastrim
from fastrim import errors


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


def test_error_numbers_match_the_c_enum(both):
    from fastrim._native import lib

    names = {
        "log.empty": lib.FR_ERR_EMPTY,
        "log.truncated": lib.FR_ERR_TRUNCATED,
        "log.event_too_large": lib.FR_ERR_EVENT_TOO_LARGE,
        "log.too_many_digests": lib.FR_ERR_TOO_MANY_DIGESTS,
        "log.unknown_alg": lib.FR_ERR_UNKNOWN_ALG,
        "log.bad_spec_id": lib.FR_ERR_BAD_SPEC_ID,
        "log.bad_pcr": lib.FR_ERR_BAD_PCR,
    }
    assert {code: kind for kind, (code, _) in errors.FRAMING_ERRORS.items()} == names


def test_log_errors_are_value_errors_with_code_and_offset():
    err = errors.framing_error(3, 861, 32, 6)
    assert isinstance(err, ValueError) and isinstance(err, errors.FastrimError)
    assert (err.code, err.offset) == ("log.truncated", 861)
    assert str(err).startswith("log.truncated at offset 861: ")

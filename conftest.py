"""Fixtures shared by tests/ and benchmarks/: the corpus and the backends."""

import json
import os
import pathlib
import sys

import pytest

from fastrim.backend import select

ROOT = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/helpers.py, for the benchmarks too

BACKENDS = ["cffi", "python"]


def corpus_dir():
    explicit = os.environ.get("FASTRIM_CORPUS")
    return pathlib.Path(explicit) if explicit else ROOT.parent / "shared" / "corpus"


def corpus_params(relpath, pick):
    """Test parameters read from a corpus JSON file, or one placeholder when
    the corpus is absent, so that the test still runs and the corpus fixture
    says why it cannot (skip locally, fail under CI)."""
    path = corpus_dir() / relpath
    if not path.exists():
        return ["corpus-missing"]
    return pick(json.loads(path.read_text()))


@pytest.fixture(scope="session", autouse=True)
def cache_key_file(tmp_path_factory):
    """Every test, and every process a test starts, keeps its cache key in a
    temporary directory, never in the user's ~/.config."""
    path = tmp_path_factory.mktemp("key", numbered=True) / "cache.key"
    os.environ["FASTRIM_CACHE_KEY_FILE"] = str(path)
    return path


@pytest.fixture(scope="session")
def corpus():
    """The shared corpus of public logs; its absence fails CI and skips elsewhere."""
    path = corpus_dir()
    if not path.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"corpus not found at {path} (set FASTRIM_CORPUS)")
        pytest.skip(f"corpus not found at {path} (set FASTRIM_CORPUS)")
    return path


def load_backend(name):
    """The backend module; a C backend that did not build fails the test unless
    the run asked for the Python backend alone."""
    try:
        return select.load(name)
    except ImportError as exc:
        if os.environ.get("FASTRIM_BACKEND") == "python":
            pytest.skip(f"FASTRIM_BACKEND=python: C backend not required ({exc})")
        pytest.fail(f"the C backend did not build or import: {exc}")


@pytest.fixture(scope="session", params=BACKENDS)
def impl(request):
    """Each backend in turn: every test using it runs on both."""
    return load_backend(request.param)


@pytest.fixture(scope="session")
def both():
    """Both backends at once, for differential tests."""
    return [load_backend(name) for name in BACKENDS]

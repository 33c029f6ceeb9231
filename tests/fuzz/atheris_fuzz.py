"""Coverage-guided differential fuzzing with atheris (libFuzzer).

Every input goes through both backends (tests/fuzzing.py); a disagreement,
an exception other than fastrim's own errors, or a crash of the C extension
stops the run and leaves the input in tests/fuzz/regressions/, which the
normal test run replays. Coverage comes from the instrumented Python code
(the pure-Python twin and the shared stages above the backends); the C code
runs on every input but is not instrumented (that needs a clang build).

    python tests/fuzz/atheris_fuzz.py -runs=1000000 [-jobs=2 -workers=2]

Half of the mutations are libFuzzer's byte-level ones, half fuzzing.mutate's
field-aware ones. The seeds (corpus logs and writer logs) are written to a
scratch corpus directory first.
"""

import os
import pathlib
import random
import sys
import tempfile

import atheris

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

with atheris.instrument_imports(include=["fastrim"]):
    import fuzzing

    from fastrim.backend import fallback  # noqa: F401  (instrumented for coverage)
    from fastrim.log import cca, pcr, tcg  # noqa: F401
    from fastrim.rim import replay  # noqa: F401


def test_one_input(data):
    fuzzing.check(data)


def custom_mutator(data, max_size, seed):
    rng = random.Random(seed)
    if rng.random() < 0.5:
        return atheris.Mutate(data, max_size)
    return fuzzing.mutate(data, rng)[:max_size]


def main():
    corpus = pathlib.Path(os.environ.get("FASTRIM_FUZZ_CORPUS") or tempfile.mkdtemp(prefix="fastrim-fuzz-"))
    corpus.mkdir(parents=True, exist_ok=True)
    shared = os.environ.get("FASTRIM_CORPUS") or str(HERE.parents[2] / "shared" / "corpus")
    seeds = fuzzing.seed_logs(pathlib.Path(shared) if os.path.isdir(shared) else None)
    seeds += [path.read_bytes() for path in fuzzing.regression_inputs()]
    for index, seed in enumerate(seeds):
        (corpus / f"seed-{index:04d}").write_bytes(seed)
    args = [sys.argv[0], f"-artifact_prefix={fuzzing.REGRESSIONS}/", "-max_len=131072", *sys.argv[1:], str(corpus)]
    atheris.Setup(args, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

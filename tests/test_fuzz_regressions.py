"""Replays of the fuzzers' findings, and a hypothesis run of the same
differential oracle with field-aware mutations, in every test run."""

import random

import fuzzing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize("path", fuzzing.regression_inputs(), ids=lambda p: p.name)
def test_every_input_that_ever_failed_now_agrees(path, both):
    fuzzing.check(path.read_bytes())


def test_the_seeds_reach_every_stage(corpus, both):
    kinds = {fuzzing.check(seed)[0] for seed in fuzzing.seed_logs(corpus)}
    assert kinds == {"tcg", "cca", "parse"}  # TPM logs, CCA logs, and the corpus's malformed ones
    rims = [fuzzing.check(seed)[-1] for seed in fuzzing.seed_logs()]
    assert all(rim[0] == "rim" for rim in rims), "writer seeds replay through the granule hashing"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(seed=st.sampled_from(fuzzing.seed_logs()), rng=st.randoms(use_true_random=False),
       rounds=st.integers(1, 4))
def test_field_aware_mutations_agree(both, seed, rng, rounds):
    data = seed
    for _ in range(rounds):
        data = fuzzing.mutate(data, rng)
    fuzzing.check(data)


def test_mutations_reach_every_field():
    """Each kind of field change happens: the mutator is not stuck on one."""
    rng = random.Random(1)
    seed = fuzzing.seed_logs()[0]
    changed = set()
    for _ in range(400):
        mutated = fuzzing.mutate(seed, rng)
        if len(mutated) == len(seed):
            changed.update(i for i in range(len(seed)) if mutated[i] != seed[i])
    events, _ = fuzzing._records(seed)
    for event in events[1:]:
        header = range(event.offset, event.offset + 8)
        assert changed & set(header), f"pcr/type of the record at {event.offset} never mutated"
        assert changed & set(range(event.data_offset - 4, event.data_offset)), "eventSize never mutated"
        assert changed & set(range(event.data_offset, event.data_offset + event.data_size)), "payload never mutated"

"""Shared test helpers: in-memory reference stores and realm builders."""

from fastrim import cca, refstore, replay, synth, tcglog


def MemoryRefs(images):
    """A reference store in memory holding the measured images of a spec."""
    return refstore.MemoryRefStore({i.description.lower() + ".bin": i.data for i in images if i.data is not None})


def replay_spec(spec, impl, refs=None, log=None, **kwargs):
    """Write spec as a log (or take log) and replay it on impl."""
    raw = synth.write_log(spec) if log is None else log
    decoded = cca.decode(tcglog.parse(raw, impl=impl))
    return replay.replay(decoded, refs if refs is not None else MemoryRefs(spec.images), impl=impl, **kwargs)

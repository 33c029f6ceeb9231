"""Shared test helpers: in-memory reference stores and realm builders."""

import hashlib
from dataclasses import dataclass

from fastrim import cca, replay, synth, tcglog
from fastrim.events import ALG_SHA256, ALG_SHA512


@dataclass(frozen=True)
class MemoryRef:
    name: str
    size: int


class MemoryRefs:
    """A reference store held in memory, with the interface of refstore.RefStore."""

    def __init__(self, images):
        self._by_digest = {}
        self._data = {}
        for image in images:
            if image.data is None:
                continue
            ref = MemoryRef(image.description.lower() + ".bin", len(image.data))
            self._data[ref] = image.data
            for alg, fn in ((ALG_SHA256, hashlib.sha256), (ALG_SHA512, hashlib.sha512)):
                self._by_digest[(alg, fn(image.data).digest())] = ref

    def find(self, alg, digest):
        return self._by_digest.get((alg, bytes(digest)))

    def open(self, ref):
        return self._data[ref]


def replay_spec(spec, impl, refs=None, log=None, **kwargs):
    """Write spec as a log (or take log) and replay it on impl."""
    raw = synth.write_log(spec) if log is None else log
    decoded = cca.decode(tcglog.parse(raw, impl=impl))
    return replay.replay(decoded, refs if refs is not None else MemoryRefs(spec.images), impl=impl, **kwargs)

"""The same-log memo: replay outcomes found again by a log's bytes."""

import collections

import xxhash


class SameLogMemo:
    """Replay outcomes of the logs this process has seen, found again by their
    bytes: fleets launch many realms from one configuration, and their logs
    are byte for byte the same. An xxh3-128 digest only picks the candidate;
    a full byte comparison decides, so a fast-hash collision cannot reuse a
    wrong outcome. Valid for one reference store and one set of options.
    Holds at most `capacity` logs of up to 1 MiB; the oldest go first."""

    def __init__(self, capacity=1024):
        self.capacity = capacity
        self._entries = collections.OrderedDict()

    def get(self, data):
        entry = self._entries.get(xxhash.xxh3_128_digest(data))
        return entry[1] if entry is not None and entry[0] == data else None

    def put(self, data, outcome):
        if isinstance(data, bytes) and len(data) <= 1 << 20:
            self._entries[xxhash.xxh3_128_digest(data)] = (data, outcome)
            if len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

"""Where a launch went another way than a golden one: the first step at
which two decoded CCA logs differ (a realm parameter, an image's digest,
address or size, a REC's entry point or registers, an event missing or
extra), with the RIM of each replay after that step. Used by `fastrim
explain` and by `batch --golden`.
"""

from typing import NamedTuple, Optional

from ..log.cca import REALM_PARAMS, ImageLoad, InitRipas, RealmCreate, RecCreate

_FIELDS = {  # record type -> (step label, the fields compared, in order)
    RealmCreate: (lambda r: "REALM_CREATE", tuple(name for name, _ in REALM_PARAMS)),
    InitRipas: (lambda r: "INIT_RIPAS", ("base", "size")),
    ImageLoad: (lambda r: r.description, ("description", "base", "size", "digest")),
    RecCreate: (lambda r: "REC_CREATE", ("flags", "pc", "gprs")),
}


class Divergence(NamedTuple):
    step: int  # the index of the step (REALM_CREATE is 0)
    label: str  # the step, as the replay names it (REALM_CREATE, INIT_RIPAS, an image's description, REC_CREATE)
    field: str  # what differs: a field of the record, "event" (another kind of event), or "missing" / "extra"
    value: object  # the log's
    golden: object  # the golden log's
    offset: Optional[int]  # of the log's event (None when it has none there)
    golden_offset: Optional[int]


def label(record):
    """The step's name; an image's description comes from the log, so anything unprintable in it is escaped."""
    text = _FIELDS[type(record)][0](record)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def first_divergence(log, golden):
    """The first Divergence of decoded log (log.cca.CcaLog) from decoded
    golden, or None when every step is the same."""
    for index in range(max(len(log.steps), len(golden.steps))):
        mine = log.steps[index] if index < len(log.steps) else None
        theirs = golden.steps[index] if index < len(golden.steps) else None
        if mine is None:
            return Divergence(index, label(theirs.record), "missing", None, theirs.record, None, theirs.offset)
        if theirs is None:
            return Divergence(index, label(mine.record), "extra", mine.record, None, mine.offset, None)
        a, b = mine.record, theirs.record
        if type(a) is not type(b):
            return Divergence(index, label(b), "event", label(a), label(b), mine.offset, theirs.offset)
        for name in _FIELDS[type(a)][1]:
            value, other = getattr(a, name), getattr(b, name)
            if value != other:
                if name == "gprs":  # name the register
                    i = next(i for i, (x, y) in enumerate(zip(value, other)) if x != y)
                    name, value, other = f"gprs[{i}]", value[i], other[i]
                return Divergence(index, label(b), name, value, other, mine.offset, theirs.offset)
    return None


def describe(divergence):
    """One sentence for a person."""
    d = divergence
    if d.field == "missing":
        return f"step {d.step} ({d.label}): the log has no such event where the golden log has one"
    if d.field == "extra":
        return f"step {d.step} ({d.label}): the log has an event here that the golden log does not"
    if d.field == "event":
        return f"step {d.step}: the log has the event {d.value} where the golden log has the event {d.golden}"
    return f"step {d.step} ({d.label}): {d.field} is {_show(d.value)} in the log, {_show(d.golden)} in the golden log"


def _show(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, int) and not isinstance(value, bool) and value > 9:
        return hex(value)
    return ascii(value) if isinstance(value, str) else str(value)


class GoldenLogs:
    """Golden logs by configuration: what a failing log is explained
    against. The golden logs of a log's configuration are those with its VMM
    (name and version) and its image descriptions in log order; of several,
    the closest: the one it follows longest, then the one with the fewest
    steps that differ. Plain data (the logs' bytes), decoded once per
    process when first asked."""

    def __init__(self, logs, max_event_size):
        self.logs = tuple(logs)  # (name, bytes)
        self.max_event_size = max_event_size  # as the logs were checked with
        self._by_key = None

    def _index(self):
        from ..log import tcg
        from ..log.cca import decode

        by_key = {}
        for name, data in self.logs:
            golden = decode(tcg.parse(data, max_event_size=self.max_event_size))
            by_key.setdefault(configuration_key(golden), []).append((name, golden))
        self._by_key = by_key

    def explain(self, log):
        """One sentence on where decoded log diverges from the closest golden
        log of its configuration, or None (no golden log for it)."""
        if self._by_key is None:
            self._index()
        candidates = self._by_key.get(configuration_key(log))
        if not candidates:
            return None
        scored = []
        for name, golden in candidates:
            divergence = first_divergence(log, golden)
            differing = sum(1 for a, b in zip(log.steps, golden.steps) if a.record != b.record)
            scored.append((divergence.step if divergence else len(log.steps) + 1, -differing, name, divergence))
        _, _, name, divergence = max(scored, key=lambda item: (item[0], item[1], [-ord(c) for c in item[2]]))
        return f"against {name}: " + (describe(divergence) if divergence else "no step differs")


def configuration_key(log):
    vmm = log.vm_version
    return (vmm.name if vmm else None, vmm.version if vmm else None,
            tuple(step.record.description for step in log.steps if isinstance(step.record, ImageLoad)))

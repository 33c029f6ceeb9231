"""Parse stage: a TCG2 event log (crypto-agile or SHA1-legacy) framed into
events by the live backend, with each event's digests and data."""

from functools import cached_property
from typing import NamedTuple

from ..algorithms import tcg_name
from ..backend import select
from ..errors import LogFormatError, check_int
from ..store.files import read_bounded
from ..store.objects import is_url
from ..tcgdefs import event_type_name

# Real events are far smaller; a larger eventSize is refused by default.
DEFAULT_MAX_EVENT_SIZE = 1 << 20
MAX_EVENT_SIZE_LIMIT = 0xFFFFFFFF  # eventSize is a 32-bit field
# QEMU's log area is 64 KiB, a TPM's a few hundred; a larger log is refused
# before it is read (configurable).
DEFAULT_MAX_LOG_SIZE = 64 << 20
MAX_LOG_SIZE_LIMIT = 1 << 40


class Event(NamedTuple):  # a tuple: built for every event of every log, it must be cheap
    index: int
    offset: int
    pcr: int
    type: int
    digests: dict  # algId -> digest bytes, in log order
    data: bytes

    @property
    def type_name(self):
        return event_type_name(self.type)


class EventLog:
    """A framed log. The buffer is read in place; events are built on first use."""

    def __init__(self, buf, framing, impl):
        self.buf = buf
        self.framing = framing
        self.impl = impl

    @property
    def format(self):
        return self.framing.format

    @property
    def algs(self):
        return self.framing.algs

    @property
    def bank_names(self):
        return [tcg_name(alg) for alg, _ in self.framing.algs]

    @property
    def end(self):
        return self.framing.end

    def __len__(self):
        return len(self.framing.events)

    @cached_property
    def events(self):
        view = memoryview(self.buf)
        return [
            Event(
                index,
                raw.offset,
                raw.pcr,
                raw.type,
                {d.alg: bytes(view[d.offset : d.offset + d.size]) for d in raw.digests},
                bytes(view[raw.data_offset : raw.data_offset + raw.data_size]),
            )
            for index, raw in enumerate(self.framing.events)
        ]


def parse(buf, *, max_event_size=DEFAULT_MAX_EVENT_SIZE, impl=None):
    """Frame buf into an EventLog. Raises LogFormatError for a malformed log,
    OptionError for a max_event_size outside [1, 2**32 - 1]."""
    check_int("max_event_size", max_event_size, 1, MAX_EVENT_SIZE_LIMIT)
    impl = impl or select.active
    return EventLog(buf, impl.frame(buf, max_event_size), impl)


def read_log(path, max_log_size=DEFAULT_MAX_LOG_SIZE, objects=None):
    """The bytes of the log file at path (or, with objects, a store.objects
    ObjectStore, the object at a URL), read whole: a log is small; never
    mapped, so a log truncated meanwhile is a short log, not a SIGBUS.
    LogFormatError log.too_large, before reading, above max_log_size."""
    check_int("max_log_size", max_log_size, 1, MAX_LOG_SIZE_LIMIT)

    def too_large(size):
        return LogFormatError(f"the log is {size} bytes, more than the limit of {max_log_size} (--max-log-size)",
                              code="log.too_large")

    if objects is not None and is_url(path):
        return objects.read(path, max_log_size, too_large)
    return read_bounded(path, max_log_size, too_large)

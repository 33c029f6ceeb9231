"""The one error tree of fastrim: every failure has a dotted code, and log
errors also carry the byte offset of the record where they were found."""


class FastrimError(Exception):
    """Root of every error fastrim raises on purpose."""

    code = "internal.error"

    def __init__(self, message, *, code=None, offset=None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.offset = offset

    def __str__(self):
        where = "" if self.offset is None else f" at offset {self.offset}"
        return f"{self.code}{where}: {self.args[0]}"


class LogFormatError(FastrimError, ValueError):
    """The event log is malformed: its bytes cannot be what a real VMM wrote."""

    code = "log.malformed"


class ReferenceImageError(FastrimError, LookupError):
    """A reference image is missing or does not match what the log claims."""

    code = "ref.unknown_image"


class InputError(FastrimError, OSError):
    """A file could not be read or written."""

    code = "io.unreadable"


# Framing errors as the backends report them: (kind, record offset, value,
# limit). The numbers are those of the FR_ERR_* enum in csrc/fastrim.h; the
# tests check that both agree.
FRAMING_ERRORS = {
    2: ("log.empty", "the log holds no events ({value} bytes, all padding)"),
    3: ("log.truncated", "the record needs {value} more bytes but only {limit} are left"),
    4: ("log.event_too_large", "eventSize {value} is above the limit of {limit} bytes"),
    5: ("log.too_many_digests", "digest count {value} exceeds the {limit} algorithms of the Spec ID event"),
    6: ("log.unknown_alg", "digest algorithm 0x{value:04x} is not declared in the Spec ID event"),
    7: ("log.bad_spec_id", "the Spec ID event is malformed (field value {value}, limit {limit})"),
    8: ("log.bad_pcr", "PCR index 0x{value:x} is not a PCR (0-{limit} or 0xFFFFFFFF)"),
}


def framing_error(kind, offset, value, limit):
    """Build the LogFormatError for a framing failure reported by a backend."""
    code, template = FRAMING_ERRORS[kind]
    return LogFormatError(template.format(value=value, limit=limit), code=code, offset=offset)

"""The one error tree of fastrim: every failure has a dotted code, and log
errors also carry the byte offset of the record where they were found.

Input problems are also ValueErrors, file problems OSErrors, so callers may
catch either the builtin or FastrimError.
"""

import enum


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


class InputError(FastrimError, ValueError):
    """A value given to fastrim is not usable: bad hex, a bad CSV row, a bad key."""

    code = "input.invalid"


class OptionError(InputError):
    """An option or API parameter is out of its range (a usage error at the CLI)."""

    code = "input.bad_option"


class LogFormatError(InputError):
    """The event log is malformed: its bytes cannot be what a real VMM wrote."""

    code = "log.malformed"


class TokenError(InputError):
    """The attestation token cannot be decoded: it is not a CCA token."""

    code = "token.malformed"


class ReferenceImageError(FastrimError, LookupError):
    """A reference image is missing or does not match what the log claims."""

    code = "ref.unknown_image"


def image_truncated():
    """What both backends raise when an image file ends before its indexed size while it is hashed."""
    return ReferenceImageError("the image file ended before its indexed size: it was truncated while it was hashed",
                               code="ref.changed")


class FileError(FastrimError, OSError):
    """A file could not be read or written."""

    code = "io.unreadable"


class ResultsNotWritten(FileError):
    """A run finished but an output file could not be written (none of it is
    left); written names the outputs that were written before it."""

    code = "io.not_written"

    def __init__(self, message, *, written=()):
        super().__init__(message)
        self.written = tuple(written)


class FramingFault(enum.IntEnum):
    """Why a backend refused to frame a log: the FR_ERR_* numbers of
    csrc/fastrim.h, which tests/test_backends.py holds this enum to."""

    CAPACITY = 1  # the C tables were too small: not a log error
    EMPTY = 2
    TRUNCATED = 3
    EVENT_TOO_LARGE = 4
    TOO_MANY_DIGESTS = 5
    UNKNOWN_ALG = 6
    BAD_SPEC_ID = 7
    BAD_PCR = 8


# Framing errors as the backends report them: (kind, record offset, value, limit).
FRAMING_ERRORS = {
    FramingFault.EMPTY: ("log.empty", "the log holds no events ({value} bytes, all padding)"),
    FramingFault.TRUNCATED: ("log.truncated", "the record needs {value} more bytes but only {limit} are left"),
    FramingFault.EVENT_TOO_LARGE: ("log.event_too_large", "eventSize {value} is above the limit of {limit} bytes"),
    FramingFault.TOO_MANY_DIGESTS: ("log.too_many_digests",
                                    "digest count {value} exceeds the {limit} algorithms of the Spec ID event"),
    FramingFault.UNKNOWN_ALG: ("log.unknown_alg", "digest algorithm 0x{value:04x} is not declared in the Spec ID event"),
    FramingFault.BAD_SPEC_ID: ("log.bad_spec_id", "the Spec ID event is malformed (field value {value}, limit {limit})"),
    FramingFault.BAD_PCR: ("log.bad_pcr", "PCR index 0x{value:x} is not a PCR (0-{limit} or 0xFFFFFFFF)"),
}


def framing_error(kind, offset, value, limit):
    """Build the LogFormatError for a framing failure reported by a backend."""
    code, template = FRAMING_ERRORS[kind]
    return LogFormatError(template.format(value=value, limit=limit), code=code, offset=offset)


def check_int(name, value, low, high):
    """value, when it is an int in [low, high]; else OptionError. The one
    range check for every numeric option, so that no out-of-range number
    reaches a backend (whose C types would overflow where Python does not)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise OptionError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    return value

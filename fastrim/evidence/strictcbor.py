"""CBOR as a CCA token must be written, checked before it is decoded: one
item and nothing after it, definite lengths only, no map with the same key
twice, nesting bounded. Two decoders that read the same signed bytes
differently (cbor2 keeps the last of two equal keys; another verifier may
keep the first) is the classic way past one of them, so such bytes are
refused outright (token.malformed)."""

from ..errors import TokenError

MAX_DEPTH = 16
_INDEFINITE = 31


class _Malformed(Exception):
    """A reason, turned into TokenError at the boundary."""


def check(data, what):
    """TokenError (token.malformed) unless data is exactly one well-formed,
    definite-length CBOR item whose maps have distinct keys."""
    try:
        end = _item(data, 0, 0)
    except _Malformed as exc:
        raise TokenError(f"the {what} is not strict CBOR: {exc}", code="token.malformed") from None
    if end != len(data):
        raise TokenError(f"the {what} has {len(data) - end} bytes after its CBOR item", code="token.malformed")


def _head(data, pos):
    """(major type, argument, position after the head) of the item at pos."""
    if pos >= len(data):
        raise _Malformed("it ends inside an item")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    if info < 24:
        return major, info, pos + 1
    if info == _INDEFINITE:
        raise _Malformed("an indefinite-length item (or a break) where definite lengths are required")
    if info > 27:
        raise _Malformed(f"reserved additional information {info}")
    size = 1 << (info - 24)
    if pos + 1 + size > len(data):
        raise _Malformed("it ends inside an item's head")
    return major, int.from_bytes(data[pos + 1 : pos + 1 + size], "big"), pos + 1 + size


def _key(data, start, end):
    """A map key as a comparable value: equal keys compare equal however
    they are encoded (an integer in a longer head than it needs included).
    Only integers and strings may be keys."""
    major, argument, after = _head(data, start)
    if major in (0, 1):
        return ("int", argument if major == 0 else -1 - argument)
    if major in (2, 3):
        return (major, bytes(data[after:end]))
    # A float, bool, tag or container key could equal another key once decoded
    # (cbor2 merges 1 and 1.0): no CCA token or COSE structure uses one.
    raise _Malformed("a map key that is not an integer or a string")


def _item(data, pos, depth):
    """The position after the well-formed item at pos."""
    if depth > MAX_DEPTH:
        raise _Malformed(f"it nests deeper than {MAX_DEPTH} levels")
    major, argument, pos = _head(data, pos)
    if major in (0, 1, 7):
        return pos
    if major in (2, 3):
        if argument > len(data) - pos:
            raise _Malformed("a string runs past the end")
        return pos + argument
    if major == 6:
        return _item(data, pos, depth + 1)
    if argument > len(data) - pos:  # every array element or map entry takes a byte at least
        raise _Malformed("an array or map claims more items than there are bytes")
    if major == 4:
        for _ in range(argument):
            pos = _item(data, pos, depth + 1)
        return pos
    keys = set()  # major 5: a map
    for _ in range(argument):
        start = pos
        pos = _item(data, pos, depth + 1)
        key = _key(data, start, pos)
        if key in keys:
            raise _Malformed("a map holds the same key twice")
        keys.add(key)
        pos = _item(data, pos, depth + 1)
    return pos

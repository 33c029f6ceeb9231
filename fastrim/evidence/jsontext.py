"""JSON from files fastrim is given (--expected rows, JWK trust anchors,
CoMID reference values), parsed with a nesting limit: a file nested 50,000
deep must be a clear input error, not a RecursionError deep inside the
parser. An object holding a key twice is refused: json keeps the last,
another reader may keep the first."""

import itertools
import json
import re

from ..errors import InputError

MAX_DEPTH = 32  # the JSON fastrim reads is two levels deep
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def depth(text):
    """How deep arrays and objects nest in text (strings do not count)."""
    steps = (1 if b in "[{" else -1 for b in _BRACKET.findall(_STRING.sub("", text)))
    return max(itertools.accumulate(steps, initial=0))


def loads(text, source, code):
    """json.loads(text), or InputError (with code, naming source) for text
    that nests too deep or is not JSON."""
    if depth(text) > MAX_DEPTH:
        raise InputError(f"{source} nests deeper than {MAX_DEPTH} levels", code=code)
    try:
        return json.loads(text, object_pairs_hook=_distinct)
    except _Duplicate as exc:
        raise InputError(f"{source} has an object with the key {exc.args[0]!r} twice", code=code) from None
    except ValueError:
        raise InputError(f"{source} is not JSON", code=code) from None


class _Duplicate(ValueError):
    pass


def _distinct(pairs):
    found = {}
    for key, value in pairs:
        if key in found:
            raise _Duplicate(key)
        found[key] = value
    return found

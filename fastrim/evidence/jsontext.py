"""JSON from files fastrim is given (--expected rows, JWK trust anchors),
parsed with a nesting limit: a file nested 50,000 deep must be a clear input
error, not a RecursionError deep inside the parser."""

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
        return json.loads(text)
    except ValueError:
        raise InputError(f"{source} is not JSON", code=code) from None

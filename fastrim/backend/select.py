"""Which implementation of the framing and hashing core is live.

fastrim has two backends with one interface (see backend.contract): the C
core built by cffi, and a pure-Python twin. FASTRIM_BACKEND picks one once,
at import: ``auto`` (the default) takes the C core and falls back to Python
only when the extension is not built; ``cffi`` or ``python`` insist on one;
anything else is an ImportError, like a missing module would be.
"""

import importlib
import os

_MODULES = {"cffi": "fastrim.backend.native", "python": "fastrim.backend.fallback"}
NAMES = tuple(_MODULES)


def load(name):
    """The backend module called name ("cffi" or "python")."""
    if name not in _MODULES:
        raise ImportError(f"unknown fastrim backend {name!r}: use auto, cffi or python")
    return importlib.import_module(_MODULES[name])


def _choose(requested):
    if requested == "auto":
        try:
            return load("cffi")
        except ImportError as exc:
            if exc.name != "fastrim._native":
                raise  # built but misconfigured (e.g. FASTRIM_HASH_KERNEL): say so, do not fall back
            return load("python")
    return load(requested)


active = _choose(os.environ.get("FASTRIM_BACKEND", "auto") or "auto")

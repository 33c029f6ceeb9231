"""fastrim: verify Arm CCA realm measurement logs by replaying the Realm
Initial Measurement, at fleet scale.

The heavy lifting (log framing, granule hashing) has a C backend built with
cffi and a pure-Python twin; ``fastrim.backend`` names the live one and
``FASTRIM_BACKEND`` chooses it (see fastrim.backend.select).
"""

__version__ = "0.1.0"  # the one place: pyproject.toml reads it from here

from .backend.select import active as _active  # noqa: E402 (after the version, which setuptools reads alone)
from .errors import FastrimError, LogFormatError  # noqa: E402

backend = _active.NAME

__all__ = ["FastrimError", "LogFormatError", "backend", "__version__"]

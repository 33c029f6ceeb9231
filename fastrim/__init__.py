"""fastrim: verify Arm CCA realm measurement logs by replaying the Realm
Initial Measurement, at fleet scale.

The heavy lifting (log framing, granule hashing) has a C backend built with
cffi and a pure-Python twin; ``fastrim.backend`` names the live one and
``FASTRIM_BACKEND`` chooses it (see fastrim.backends).
"""

from .backends import active as _active
from .errors import FastrimError, LogFormatError

__version__ = "0.1.0"

backend = _active.NAME

__all__ = ["FastrimError", "LogFormatError", "backend", "__version__"]

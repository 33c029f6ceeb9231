"""What the verifier keeps: reference images (refs.py), the content-hash
cache (content.py), the step memo (steps.py), and safe file access
(files.py)."""

import os
from typing import NamedTuple, Optional

from .content import ContentCache
from .steps import StepMemo


def default_cache_dir():
    """$FASTRIM_CACHE_DIR, else fastrim under $XDG_CACHE_HOME or ~/.cache."""
    explicit = os.environ.get("FASTRIM_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fastrim")


class Caches(NamedTuple):
    """The caches a replay may use; None: that one is off."""

    content: Optional[ContentCache] = None  # granule content hashes, per image
    steps: Optional[StepMemo] = None  # the RIM after image steps already seen

    @classmethod
    def open(cls, directory):
        """Both caches under directory (persistent, shared), or for None an
        in-memory step memo alone."""
        return cls(ContentCache(directory) if directory else None, StepMemo(directory))


NO_CACHES = Caches()

"""What the verifier keeps: reference images (refs.py), the content-hash
cache (content.py), the step memo (steps.py), the key that authenticates
them (cachekey.py), and safe file access (files.py)."""

import os
from typing import NamedTuple, Optional

from . import cachekey
from .content import ContentCache
from .files import private_dir
from .samelogs import SameLogMemo
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
    same_logs: Optional[SameLogMemo] = None  # replays of logs this process saw, by their bytes

    @classmethod
    def open(cls, directory):
        """The content cache and step memo under directory (persistent,
        shared, authenticated with the cache key), or for None an in-memory
        step memo alone; and a same-log memo."""
        if not directory:
            return cls(None, StepMemo(), SameLogMemo())
        return cls(ContentCache(directory), StepMemo(directory), SameLogMemo())


def usable_cache_dir(directory):
    """directory, once it is private to this user (made 0700 if missing) and
    the cache key can be had; FileError saying why not otherwise."""
    private_dir(directory)
    cachekey.cache_key()
    return directory


NO_CACHES = Caches()

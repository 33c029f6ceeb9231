"""What the verifier keeps: reference images (refs.py), the content-hash
cache (content.py), the step memo (steps.py), and safe file access
(files.py)."""

from typing import NamedTuple, Optional

from .content import ContentCache
from .steps import StepMemo


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

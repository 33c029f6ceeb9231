"""Reading inputs in place and writing outputs atomically."""

import mmap
import os
import tempfile

from .errors import InputError


def map_file(path):
    """The bytes of a file, memory-mapped read-only (b"" for an empty one)."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return b""
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}", code="io.unreadable") from None


def write_atomic(path, write):
    """Call write(file) on a temporary file beside path, then rename it over
    path, so that readers see the old content or the new, never a part."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise

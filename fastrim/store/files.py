"""Reading inputs in place and writing outputs atomically."""

import mmap
import os
import stat
import tempfile

from ..errors import FileError

# Below this size a read is cheaper than setting up and tearing down a mapping.
_READ_LIMIT = 1 << 20


def _open_regular(path):
    """A read-only file object for path, refused unless it is a regular file:
    a FIFO or a device planted among the inputs could block or never end
    (O_NONBLOCK keeps even the open from waiting for a FIFO's writer)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    f = open(fd, "rb", buffering=0)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        f.close()
        raise OSError("not a regular file")
    return f, st.st_size


def map_file(path):
    """The bytes of a file: read when small, else memory-mapped read-only."""
    try:
        f, size = _open_regular(path)
        with f:
            if size <= _READ_LIMIT:
                return f.readall()
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        raise FileError(f"cannot read {path}: {exc}", code="io.unreadable") from None


def read_head(path, limit):
    """Up to limit bytes from the start of a small regular file, or None when it does not exist."""
    try:
        f, _ = _open_regular(path)
        with f:
            return f.read(limit)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FileError(f"cannot read {path}: {exc}", code="io.unreadable") from None


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

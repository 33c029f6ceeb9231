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


def _target_problem(path):
    """Why the file at path may not be replaced by an output, or None. An
    output is a new file or replaces a regular file: never a directory, a
    device, a FIFO or a socket, and never a symbolic link (fastrim does not
    write through links: a planted link could aim a root-run batch at any
    file)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be checked: {exc.strerror or exc}"
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link (outputs are not written through links)"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file (a device, FIFO or socket)"
    return None


def output_problem(path):
    """Why path cannot take an output file, as a phrase, or None when it can:
    see _target_problem; its directory must also exist and be writable."""
    problem = _target_problem(path)
    if problem is not None:
        return problem
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return "is in a directory that does not exist"
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return f"cannot be written: cannot write in {directory}: {exc.strerror or exc}"
    return None


def same_file(a, b):
    """True when paths a and b name one file (or would, once written)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _new_file_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path, write):
    """Call write(file) on a temporary file beside path, then rename it over
    path, so that readers see the old content or the new, never a part. The
    file keeps the mode of the one it replaces (a new one gets the umask's);
    anything but a regular file at path is refused, never replaced."""
    problem = _target_problem(path)
    if problem is not None:
        raise FileError(f"{path} {problem}", code="io.not_written")
    try:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
    except FileNotFoundError:
        mode = _new_file_mode()
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise

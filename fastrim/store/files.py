"""Safe file access, one place for all of it. Everything fastrim reads is
opened non-blocking (a FIFO's open never waits for a writer), checked to be
a regular file (a FIFO, device or socket is io.not_regular, never a hang or
an endless read) and read up to a bound; nothing is memory-mapped, so a file
truncated while it is read is a short read, never a SIGBUS. Cache files are
opened without following a final symbolic link and created with O_EXCL in
directories fastrim made (mode 0700) and owns. Outputs are written
atomically and never through a link."""

import os
import secrets
import stat
import tempfile

from ..errors import FileError

_CHUNK = 1 << 20


def _describe(exc):
    return exc.strerror or str(exc)


def open_regular(path, follow=True):
    """(fd, stat) of path opened for reading; FileError io.not_regular unless
    it is a regular file (with follow False, a symbolic link is refused too).
    FileNotFoundError passes through for callers to whom a missing file is
    news, not an error."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if not follow and os.path.islink(path):
            raise FileError(f"{path} is a symbolic link, which fastrim does not follow here",
                            code="io.not_regular") from None
        raise FileError(f"cannot read {path}: {_describe(exc)}", code="io.unreadable") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FileError(f"{path} is not a regular file (a FIFO, device, socket or directory)", code="io.not_regular")
    return fd, st


def read_fd(fd, limit):
    """Up to limit bytes from fd, to its end (a short read is the file's end)."""
    parts, left = [], limit
    while left > 0:
        part = os.read(fd, min(left, _CHUNK))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read_exactly(fd, size):
    """size bytes from fd into one buffer (no joining of pieces), or None
    when the file ends first."""
    buf = bytearray(size)
    view, got = memoryview(buf), 0
    while got < size:
        n = os.readv(fd, [view[got:]])
        if n == 0:
            return None
        got += n
    return buf


def read_bounded(path, limit, too_large=None, follow=True):
    """The bytes of the regular file at path, refused before reading when it
    is larger than limit: too_large(size) makes that error (default: a
    FileError io.too_large)."""
    try:
        fd, st = open_regular(path, follow)
    except FileNotFoundError as exc:
        raise FileError(f"cannot read {path}: {_describe(exc)}", code="io.unreadable") from None
    try:
        if st.st_size > limit:
            raise (too_large(st.st_size) if too_large else
                   FileError(f"{path} is {st.st_size} bytes, more than {limit}", code="io.too_large"))
        return read_fd(fd, limit)
    except OSError as exc:
        raise FileError(f"cannot read {path}: {_describe(exc)}", code="io.unreadable") from None
    finally:
        os.close(fd)


def read_head(path, limit, follow=True):
    """Up to limit bytes from the start of a regular file, or None when it does not exist."""
    try:
        fd, _ = open_regular(path, follow)
    except FileNotFoundError:
        return None
    try:
        return read_fd(fd, limit)
    except OSError as exc:
        raise FileError(f"cannot read {path}: {_describe(exc)}", code="io.unreadable") from None
    finally:
        os.close(fd)


def private_dir(path):
    """path as a directory that only this user can write, made (mode 0700)
    if missing; FileError when it is a link, not a directory, not ours, or
    open to others: a cache there could be written by someone else."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError as exc:
        raise FileError(f"cannot make the cache directory {path}: {_describe(exc)}", code="io.unwritable") from None
    if not stat.S_ISDIR(st.st_mode):
        raise FileError(f"cache directory {path} is not a directory (or is a link)", code="io.unwritable")
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise FileError(f"cache directory {path} is not private to this user (owner {st.st_uid}, "
                        f"mode {stat.S_IMODE(st.st_mode):o})", code="io.unwritable")
    return path


def open_private(path, flags):
    """os.open of a file in a private directory: never through a final link,
    created (when flags has O_CREAT) with mode 0600."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


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
    """0o666 less the umask, read without setting it (os.umask sets it: two
    threads doing so at once could leave it 0)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


class AtomicFile:
    """A file written beside path without a name: commit() names it path
    (renamed over the old file), so that readers see the old content or the
    whole new one, never a part, and a process killed while writing leaves
    nothing behind; abort() drops it. The file keeps the mode of the one it
    replaces (a new one gets the umask's); anything but a regular file at
    path is refused, never replaced. Where the system cannot make a file
    without a name (no O_TMPFILE), a hidden temporary name stands in."""

    def __init__(self, path):
        problem = _target_problem(path)
        if problem is not None:
            raise FileError(f"{path} {problem}", code="io.not_written")
        try:
            self._mode = stat.S_IMODE(os.lstat(path).st_mode) & 0o777  # never setuid, setgid or sticky
        except FileNotFoundError:
            self._mode = _new_file_mode()
        self.path = path
        self._directory = os.path.dirname(os.path.abspath(path))
        self._tmp = None
        try:
            if not os.path.isdir("/proc/self/fd"):  # where commit() finds the file to name it
                raise OSError("no /proc")
            fd = os.open(self._directory, os.O_TMPFILE | os.O_WRONLY, 0o600)
        except (AttributeError, OSError):
            fd, self._tmp = tempfile.mkstemp(dir=self._directory, prefix=".tmp-", suffix=self._suffix())
        self.file = os.fdopen(fd, "wb")

    def _suffix(self):
        return "-" + os.path.basename(self.path)

    def commit(self):
        try:
            self.file.flush()
            os.fchmod(self.file.fileno(), self._mode)
            os.fsync(self.file.fileno())
            if self._tmp is None:  # name the file, then rename it into place
                name = f".tmp-{secrets.token_hex(8)}{self._suffix()}"
                directory = os.open(self._directory, os.O_RDONLY | os.O_DIRECTORY)
                try:  # a dir_fd makes Python call linkat(AT_SYMLINK_FOLLOW), which follows /proc's link to the file
                    os.link(f"/proc/self/fd/{self.file.fileno()}", name, dst_dir_fd=directory)
                finally:
                    os.close(directory)
                self._tmp = os.path.join(self._directory, name)
            self.file.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self):
        try:
            self.file.close()  # may fail again (a full disk) flushing what it buffered
        except OSError:
            pass
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass


def write_atomic(path, write):
    """Call write(file) on an AtomicFile for path, and commit it."""
    target = AtomicFile(path)
    try:
        write(target.file)
    except BaseException:
        target.abort()
        raise
    target.commit()

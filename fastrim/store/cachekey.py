"""The key that authenticates what the caches hold. Content hashes, step-memo
records and the reference index each decide verdicts, so each carries an
HMAC-SHA-256 under this key, which lives outside the cache directory (see
docs/cache.md): whoever can write the cache but not read the key can break
a record, never forge one. $FASTRIM_CACHE_KEY_FILE places it, else
$XDG_CONFIG_HOME/fastrim/cache.key (~/.config/fastrim/cache.key); it is
made on first use, 32 random bytes, mode 0600."""

import functools
import hmac
import os
import secrets
import stat

from ..errors import FileError
from .files import open_private, private_dir, read_fd

KEY_SIZE = 32
MAC_SIZE = 32


def key_path():
    explicit = os.environ.get("FASTRIM_CACHE_KEY_FILE")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "fastrim", "cache.key")


@functools.lru_cache(maxsize=None)
def cache_key(path=None):
    """The key at path (default key_path()), made there if missing. FileError
    when it cannot be made or read, or when others could read or write it."""
    path = path or key_path()
    try:
        return _read(path)
    except FileNotFoundError:
        _create(path)
        return _read(path)


def _read(path):
    try:
        fd = open_private(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO planted as the key must not block
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise FileError(f"cannot read the cache key {path}: {exc.strerror or exc}", code="io.unreadable") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise FileError(f"cache key {path} must be a regular file of this user with mode 0600",
                            code="io.unreadable")
        key = read_fd(fd, KEY_SIZE + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_SIZE:
        raise FileError(f"cache key {path} is not {KEY_SIZE} bytes", code="io.unreadable")
    return key


def _create(path):
    """Write a new key beside path, then link it into place: processes that
    race to make it all end up reading the one that won."""
    private_dir(os.path.dirname(path))
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            os.write(fd, secrets.token_bytes(KEY_SIZE))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    except OSError as exc:
        raise FileError(f"cannot make the cache key {path}: {exc.strerror or exc}", code="io.unwritable") from None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def mac(key, *parts):
    """HMAC-SHA-256 of the concatenated parts."""
    h = hmac.new(key, digestmod="sha256")
    for part in parts:
        h.update(part)
    return h.digest()


def verify(key, expected, *parts):
    return hmac.compare_digest(mac(key, *parts), expected)

"""Content-hash cache: each granule's content hash depends only on the image
and its offset within its first granule, never on the RIM, so it is kept per
(algorithm, image digest, base % 4096) and shared across processes and runs.

A file holds a header and the hashes, with an HMAC-SHA-256 over both under
the cache key (store.cachekey): a file that fails it, or any other check,
is dropped and recomputed, never trusted. Files are read whole (never
mapped), not through links, and written atomically in private directories.
A lock file per entry lets concurrent workers hash each image once; a
worker that would rather do other work than wait is told BUSY.
"""

import fcntl
import logging
import os
import stat
import struct

from . import cachekey
from .files import open_private, private_dir, read_exactly, write_atomic

log = logging.getLogger("fastrim.cache")

_MAGIC = b"FRCCv002"
_FIELDS = struct.Struct("<8sHHH2xQ64s")  # magic, alg, offset, dlen, count, image digest (padded)
_HEADER_SIZE = 128  # the fields, the MAC, zeros
_MAC_AT = _FIELDS.size

BUSY = "busy"  # what lock() returns when another process holds the entry


class EntryLock:
    """An entry's lock, held until the with block ends (or the process dies:
    the lock goes with the descriptor). fd None: no lock could be taken
    (an unwritable cache), and each process hashes for itself."""

    def __init__(self, fd):
        self.fd = fd

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)


class ContentCache:
    """The content hashes under directory, authenticated with key (default:
    the cache key, store.cachekey)."""

    def __init__(self, directory, key=None):
        self.directory = directory
        self.key = key or cachekey.cache_key()
        self.rejected = 0  # damaged or forged files found and dropped

    def _path(self, key):
        alg, digest, offset = key
        return os.path.join(self.directory, "content", f"{alg:04x}", f"{digest.hex()}-{offset:03x}.bin")

    def get(self, key, count):
        """The count content hashes for key (a read-only buffer), or None."""
        path = self._path(key)
        try:
            fd = open_private(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError:
            return self._reject(path, None)
        alg, digest, offset = key
        size = _HEADER_SIZE + count * len(digest)
        st = None
        try:
            st = os.fstat(fd)
            data = read_exactly(fd, size) if _regular(st) and st.st_size == size else None
        except OSError:
            data = None
        finally:
            os.close(fd)
        if data is None:
            return self._reject(path, st)
        view = memoryview(data)
        magic, h_alg, h_offset, dlen, h_count, h_digest = _FIELDS.unpack_from(data)
        payload = view[_HEADER_SIZE:]
        if (
            (magic, h_alg, h_offset, dlen, h_count, h_digest)
            != (_MAGIC, alg, offset, len(digest), count, digest.ljust(64, b"\0"))
            or not cachekey.verify(self.key, bytes(view[_MAC_AT:_MAC_AT + cachekey.MAC_SIZE]), view[:_MAC_AT], payload)
        ):
            return self._reject(path, st)
        return payload

    def _reject(self, path, st):
        """Drop the damaged file that was read, but not a good one another
        process may have renamed over it meanwhile."""
        self.rejected += 1
        log.warning("dropped a damaged or forged content-cache file %s", path)
        try:
            now = os.lstat(path)
            if st is None or (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                os.unlink(path)
        except OSError:
            pass
        return None

    def _entry_dir(self, key):
        """The entry's directory, private (made 0700, ours), or None when it cannot be."""
        try:
            return private_dir(os.path.dirname(self._path(key)))
        except OSError:
            return None

    def lock(self, key, wait=True):
        """key's EntryLock, to hold while its contents are computed and put;
        BUSY, when another process holds it and wait is False."""
        if self._entry_dir(key) is None:
            return EntryLock(None)
        try:
            fd = open_private(self._path(key) + ".lock", os.O_RDWR | os.O_CREAT)
        except OSError:
            return EntryLock(None)  # a link or special file planted as the lock: hash without it
        if not _regular(os.fstat(fd)):
            os.close(fd)
            return EntryLock(None)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return BUSY
        return EntryLock(fd)

    def put(self, key, contents):
        alg, digest, offset = key
        dlen = len(digest)
        fields = _FIELDS.pack(_MAGIC, alg, offset, dlen, len(contents) // dlen, digest.ljust(64, b"\0"))
        header = (fields + cachekey.mac(self.key, fields, contents)).ljust(_HEADER_SIZE, b"\0")
        if self._entry_dir(key) is None:
            return
        try:
            write_atomic(self._path(key), lambda f: (f.write(header), f.write(contents)))
        except OSError:
            pass  # an unwritable cache costs speed, not correctness


def _regular(st):
    return stat.S_ISREG(st.st_mode)

"""Content-hash cache: each granule's content hash depends only on the image
and its offset within its first granule, never on the RIM, so it is kept per
(algorithm, image digest, base % 4096) and shared across processes and runs.

Files are written atomically and checked on every read (header fields and a
SHA-256 of the payload); a damaged file is deleted and rebuilt, never trusted.
A lock file per entry lets concurrent workers hash each image once; a
worker that would rather do other work than wait is told BUSY.
"""

import fcntl
import hashlib
import logging
import mmap
import os
import struct

from .files import write_atomic

log = logging.getLogger("fastrim.cache")

_MAGIC = b"FRCCv001"
_HEADER = struct.Struct("<8sHHH2xQ64s32s")  # magic, alg, offset, dlen, count, image digest, payload sha256
_HEADER_SIZE = 128


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
    def __init__(self, directory):
        self.directory = directory
        self.rejected = 0  # damaged files found and dropped

    def _path(self, key):
        alg, digest, offset = key
        return os.path.join(self.directory, "content", f"{alg:04x}", f"{digest.hex()}-{offset:03x}.bin")

    def get(self, key, count):
        """The count content hashes for key as a read-only buffer, or None."""
        path = self._path(key)
        st = None
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if st.st_size < _HEADER_SIZE:
                    raise ValueError("short")
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return self._reject(path, st)
        alg, digest, offset = key
        magic, h_alg, h_offset, dlen, h_count, h_digest, checksum = _HEADER.unpack_from(data)
        payload = memoryview(data)[_HEADER_SIZE:]
        if (
            (magic, h_alg, h_offset, h_count, h_digest) != (_MAGIC, alg, offset, count, digest.ljust(64, b"\0"))
            or len(payload) != count * dlen
            or hashlib.sha256(payload).digest() != checksum
        ):
            return self._reject(path, st)
        return payload

    def _reject(self, path, st):
        """Drop the damaged file that was read, but not a good one another
        process may have renamed over it meanwhile."""
        self.rejected += 1
        log.warning("dropped a damaged content-cache file %s", path)
        try:
            now = os.stat(path)
            if st is None or (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                os.unlink(path)
        except OSError:
            pass
        return None

    def lock(self, key, wait=True):
        """key's EntryLock, to hold while its contents are computed and put;
        BUSY, when another process holds it and wait is False."""
        path = self._path(key) + ".lock"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
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
        header = _HEADER.pack(
            _MAGIC, alg, offset, dlen, len(contents) // dlen, digest.ljust(64, b"\0"),
            hashlib.sha256(contents).digest(),
        ).ljust(_HEADER_SIZE, b"\0")
        path = self._path(key)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_atomic(path, lambda f: (f.write(header), f.write(contents)))
        except OSError:
            pass  # an unwritable cache costs speed, not correctness

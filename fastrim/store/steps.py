"""Step memo: the RIM after an image step is a pure function of the RIM
before it and the step (algorithm, base, size, image digest), so fleets that
repeat launch configurations need not hash the same descriptors again.

The key is a SHA-256 of those inputs, never a fast non-cryptographic hash:
a memo hit decides a verdict. Entries live in memory and, when a directory is
given, in one append-only file shared by every process and run. Each record
carries an HMAC-SHA-256 under the cache key (store.cachekey); a record that
fails it is skipped, never used, and said once. The file is read without
following a link and only while it is a regular file, at most _MAX_READ
bytes at a time.
"""

import hashlib
import logging
import os
import stat
import struct

from . import cachekey
from .files import open_private, private_dir, read_fd

log = logging.getLogger("fastrim.cache")

_KEY_PREFIX = b"fastrim.step.v1\0"
_KEY_FIELDS = struct.Struct("<HQQ64s")  # alg, base, size, padded RIM before
_RECORD = struct.Struct("<32s64s32s")  # key, padded RIM after, HMAC(cache key, key + RIM)
_FILE_NAME = "steps-v2.bin"
_MAX_READ = 1 << 26  # 512 K records a refresh: a planted giant file costs no more memory


def step_key(alg, rim_before, base, size, digest):
    """The memo key of an image step; digest is None for an unmeasured image."""
    fields = _KEY_FIELDS.pack(alg, base, size, bytes(rim_before))
    return hashlib.sha256(_KEY_PREFIX + fields + (b"\x01" + digest if digest is not None else b"\0")).digest()


class StepMemo:
    """RIMs after image steps, in memory, and with a directory (and the cache
    key) also in a file there shared by every process and run."""

    def __init__(self, directory=None, key=None):
        self._known = {}
        self._path = os.path.join(directory, "steps", _FILE_NAME) if directory else None
        self._key = key or (cachekey.cache_key() if directory else None)
        self._read_up_to = 0
        self.rejected = 0  # records that failed their MAC
        self._warned = False
        self._read_new()

    def get(self, key):
        """The padded RIM after the step, or None. On a miss the file is read
        again from where we stopped: another worker may have added the step."""
        rim = self._known.get(key)
        if rim is None and self._path is not None:
            self._read_new()
            rim = self._known.get(key)
        return rim

    def put(self, key, rim_after):
        self._known[key] = rim_after
        if self._path is None:
            return
        record = _RECORD.pack(key, rim_after, cachekey.mac(self._key, key, rim_after))
        try:
            private_dir(os.path.dirname(self._path))
            # One write of one whole record with O_APPEND: records never interleave.
            fd = open_private(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK)
            try:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    os.write(fd, record)
            finally:
                os.close(fd)
        except OSError:
            pass  # an unwritable cache, or a link or FIFO planted in its place, costs speed, not correctness

    def _read_new(self):
        if self._path is None:
            return
        try:
            fd = open_private(self._path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return  # none yet, or a link planted in its place: nothing to trust
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return
            if st.st_size % _RECORD.size:
                # A torn record (a crash or a full disk mid-write) would
                # misalign every later one: start a new file instead.
                os.unlink(self._path)
                self._read_up_to = 0
                return
            if st.st_size < self._read_up_to:
                self._read_up_to = 0  # the file was replaced
            os.lseek(fd, self._read_up_to, os.SEEK_SET)
            data = read_fd(fd, min(st.st_size - self._read_up_to, _MAX_READ))
        except OSError:
            return
        finally:
            os.close(fd)
        data = data[: len(data) - len(data) % _RECORD.size]
        for key, rim, tag in _RECORD.iter_unpack(data):
            if cachekey.verify(self._key, tag, key, rim):
                self._known[key] = rim
            else:
                self.rejected += 1
        if self.rejected and not self._warned:
            self._warned = True
            log.warning("skipped damaged or forged step-memo records in %s", self._path)
        self._read_up_to += len(data)

"""Step memo: the RIM after an image step is a pure function of the RIM
before it and the step (algorithm, base, size, image digest), so fleets that
repeat launch configurations need not hash the same descriptors again.

The key is a SHA-256 of those inputs, never a fast non-cryptographic hash:
a memo hit decides a verdict. Entries live in memory and, when a directory is
given, in one append-only file shared by every process and run. Each record
carries a SHA-256 checksum; a record that fails it is skipped, never used.
"""

import hashlib
import logging
import os
import struct

log = logging.getLogger("fastrim.cache")

_KEY_PREFIX = b"fastrim.step.v1\0"
_KEY_FIELDS = struct.Struct("<HQQ64s")  # alg, base, size, padded RIM before
_RECORD = struct.Struct("<32s64s32s")  # key, padded RIM after, sha256(key + RIM)
_FILE_NAME = "steps-v1.bin"


def step_key(alg, rim_before, base, size, digest):
    """The memo key of an image step; digest is None for an unmeasured image."""
    fields = _KEY_FIELDS.pack(alg, base, size, bytes(rim_before))
    return hashlib.sha256(_KEY_PREFIX + fields + (b"\x01" + digest if digest is not None else b"\0")).digest()


class StepMemo:
    def __init__(self, directory=None):
        self._known = {}
        self._path = os.path.join(directory, "steps", _FILE_NAME) if directory else None
        self._read_up_to = 0
        self.rejected = 0  # records that failed their checksum
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
        record = _RECORD.pack(key, rim_after, hashlib.sha256(key + rim_after).digest())
        try:
            os.makedirs(os.path.dirname(self._path), exist_ok=True)
            # One write of one whole record with O_APPEND: records never interleave.
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, record)
            finally:
                os.close(fd)
        except OSError:
            pass  # an unwritable cache costs speed, not correctness

    def _read_new(self):
        if self._path is None:
            return
        try:
            with open(self._path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size % _RECORD.size:
                    # A torn record (a crash or a full disk mid-write) would
                    # misalign every later one: start a new file instead.
                    os.unlink(self._path)
                    self._read_up_to = 0
                    return
                if size < self._read_up_to:
                    self._read_up_to = 0  # the file was replaced
                f.seek(self._read_up_to)
                data = f.read(size - self._read_up_to)
        except OSError:
            return
        for key, rim, checksum in _RECORD.iter_unpack(data):
            if hashlib.sha256(key + rim).digest() == checksum:
                self._known[key] = rim
            else:
                self.rejected += 1
                log.warning("skipped a damaged step-memo record in %s", self._path)
        self._read_up_to += len(data)

"""Reference stage: the verifier's own known-good images, found by the digest
the log records (SHA-256 or SHA-512 of the whole file).

The index of digests is kept under the cache directory and refreshed only for
files whose stamp changed: size, mtime, ctime and inode. The ctime cannot be
set back by touch or utime, so an image rewritten in place with its old size
and mtime is still caught. An image whose file changed after it was indexed
is hashed again before use.
"""

import hashlib
import json
import os
from typing import NamedTuple

from ..algorithms import BY_NAME, BY_TCG_ID, RIM_ALGORITHMS
from ..errors import FileError, ReferenceImageError
from . import default_cache_dir
from .files import map_file, write_atomic

_INDEX_VERSION = 3  # 3: digests by algorithm name
_CHUNK = 1 << 20


_RIM_IDS = {a.tcg_id: a for a in RIM_ALGORITHMS}


def _stamp(st):
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class RefImage(NamedTuple):
    name: str  # path relative to the store's root
    path: str
    size: int
    stamp: tuple  # (size, mtime_ns, ctime_ns, inode) when it was hashed
    digests: dict  # TCG algorithm id -> digest of the whole file, for each RIM algorithm


def _hash_file(path):
    """{TCG algorithm id: digest} of a file for every RIM algorithm, or None when it cannot be read."""
    hashes = {a.tcg_id: a.new() for a in RIM_ALGORITHMS}
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                for h in hashes.values():
                    h.update(chunk)
    except OSError:
        return None
    return {alg: h.digest() for alg, h in hashes.items()}


def _hash_files(paths, jobs):
    """The digests of each file, in order, as they come."""
    if jobs <= 1 or len(paths) <= 1:
        yield from map(_hash_file, paths)
        return
    import concurrent.futures  # here: a one-log verify should not pay for its import

    with concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(paths))) as pool:
        yield from pool.map(_hash_file, paths)


def _indexed_digests(entry, stamp):
    """The digests an index entry holds for a file with this stamp; None
    when the entry is missing, stale or not what this version writes."""
    try:
        if entry is None or tuple(entry[0]) != stamp or len(entry) != 2:
            return None
        digests = {BY_NAME[name].tcg_id: bytes.fromhex(value) for name, value in entry[1].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return digests if set(digests) == set(_RIM_IDS) else None


class RefStore:
    """The images under root, indexed by digest. progress, when given, is
    called as progress(files, bytes) before new or changed files are hashed
    and returns something with advance(nbytes=) and close() (run.progress)."""

    def __init__(self, root, cache_dir=None, jobs=1, progress=None):
        self.root = os.path.abspath(root)
        if not os.path.isdir(self.root):
            raise FileError(f"reference store {root} is not a directory", code="io.unreadable")
        key = hashlib.sha256(self.root.encode()).hexdigest()[:32]
        self.index_path = os.path.join(cache_dir or default_cache_dir(), "refs", key + ".json")
        self.hashed = self.hashed_bytes = 0  # files (and their bytes) hashed by the last refresh
        self._images = {}
        self._by_digest = {}
        self.refresh(jobs, progress)

    def _load_index(self):
        try:
            with open(self.index_path) as f:
                doc = json.load(f)
            if doc.get("version") != _INDEX_VERSION or doc.get("root") != self.root:
                return {}
            return {name: tuple(entry) for name, entry in doc["files"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}  # a missing or damaged index is rebuilt, never trusted

    def refresh(self, jobs=1, progress=None):
        """Walk the store; hash only new files and those whose stamp changed,
        in `jobs` processes when there are several (largest first)."""
        known = self._load_index()
        images, stale = {}, []
        for directory, dirs, files in os.walk(self.root):
            dirs.sort()
            for filename in sorted(files):
                path = os.path.join(directory, filename)
                name = os.path.relpath(path, self.root)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                entry = known.get(name)
                digests = _indexed_digests(entry, _stamp(st))
                if digests is not None:
                    images[name] = RefImage(name, path, st.st_size, _stamp(st), digests)
                else:
                    stale.append((name, path, st))
        stale.sort(key=lambda item: -item[2].st_size)
        self.hashed = self.hashed_bytes = 0
        bar = progress(len(stale), sum(st.st_size for _, _, st in stale)) if progress and stale else None
        for (name, path, st), digests in zip(stale, _hash_files([path for _, path, _ in stale], jobs)):
            if bar is not None:
                bar.advance(nbytes=st.st_size)
            if digests is not None:  # None: it vanished or cannot be read, and is left out
                images[name] = RefImage(name, path, st.st_size, _stamp(st), digests)
                self.hashed += 1
                self.hashed_bytes += st.st_size
        if bar is not None:
            bar.close()
        images = dict(sorted(images.items()))
        self._images = images
        self._by_digest = {}
        for image in images.values():
            for alg, digest in image.digests.items():
                self._by_digest.setdefault((alg, digest), image)
        if self.hashed or set(known) != set(images):
            self._save_index()

    def _save_index(self):
        doc = {
            "version": _INDEX_VERSION,
            "root": self.root,
            "files": {
                i.name: [list(i.stamp), {BY_TCG_ID[alg].name: d.hex() for alg, d in i.digests.items()}]
                for i in self._images.values()
            },
        }
        try:
            os.makedirs(os.path.dirname(self.index_path), exist_ok=True)
            write_atomic(self.index_path, lambda f: f.write(json.dumps(doc).encode()))
        except OSError:
            pass  # an unwritable cache costs speed on the next run, not correctness

    def __len__(self):
        return len(self._images)

    def find(self, alg, digest):
        return self._by_digest.get((alg, bytes(digest)))

    def open(self, ref):
        """The image's bytes, mapped read-only; hashed again if its file
        changed since it was indexed, and refused if it no longer matches."""
        data = map_file(ref.path)
        st = os.stat(ref.path)
        if _stamp(st) != ref.stamp:
            alg, digest = next(iter(ref.digests.items()))
            if (_RIM_IDS[alg].new(data).digest(), len(data)) != (digest, ref.size):
                raise ReferenceImageError(
                    f"reference image {ref.name} changed after it was indexed", code="ref.changed"
                )
        return data


def _digest(alg, data):
    return _RIM_IDS[alg].new(data).digest()


class MemoryRefStore:
    """Reference images held in memory ({name: bytes}), with RefStore's
    find/open interface: for generators and benchmarks that already hold
    them. Each algorithm's digests are computed when first asked for, by
    digest(alg, data)."""

    def __init__(self, images, digest=_digest):
        self._data = dict(images)
        self._digest = digest
        self._by_digest = {}

    def find(self, alg, digest):
        if alg not in self._by_digest and alg in _RIM_IDS:
            self._by_digest[alg] = {}
            for name, data in self._data.items():
                ref = RefImage(name, None, len(data), None, {})
                self._by_digest[alg].setdefault(self._digest(alg, data), ref)
        return self._by_digest.get(alg, {}).get(bytes(digest))

    def open(self, ref):
        return self._data[ref.name]

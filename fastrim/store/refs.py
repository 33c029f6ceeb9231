"""Reference stage: the verifier's own known-good images, found by the digest
the log records (SHA-256, SHA-384 or SHA-512 of the whole file).

What is hashed, and when, is the caller's choice: every file with every RIM
algorithm up front (ALL_IMAGES, `fastrim index`), the (algorithm, size)
pairs some logs need (batch), or nothing up front (verify): then find(alg,
digest, size) hashes, with that algorithm only, just the files of the size
the log records for the image, and keeps what it learnt in the index.

The index of digests is kept under the cache directory, authenticated with
the cache key (a forged or damaged index is rebuilt, never trusted), and
refreshed only for files whose stamp changed: size, mtime, ctime and inode.
The ctime cannot be set back by touch or utime, so an image rewritten in
place with its old size and mtime is still caught. Without a cache
directory there is no index: every image is hashed. Only regular files are
images (a FIFO or a link to /dev/zero is skipped, never read). An image is
hashed in place and must keep its stamp from open to close: one that
changes while it is hashed is ref.changed, and nothing of it is kept.
"""

import hashlib
import json
import logging
import os
import stat
import tempfile
import threading
from typing import NamedTuple

from ..algorithms import BY_NAME, BY_TCG_ID, RIM_ALGORITHMS
from ..errors import FileError, ReferenceImageError
from . import cachekey
from .files import open_regular, private_dir, read_bounded, read_fd, read_head, write_atomic

log = logging.getLogger("fastrim.cache")

_INDEX_MAGIC = b"fastrim-index-v4"  # then the HMAC of the JSON body in hex, a newline, the body
_MAX_INDEX = 1 << 30
_CHUNK = 1 << 20

_RIM_IDS = {a.tcg_id: a for a in RIM_ALGORITHMS}


def _stamp(st):
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class RefImage(NamedTuple):
    name: str  # path relative to the store's root
    path: str
    size: int
    stamp: tuple  # (size, mtime_ns, ctime_ns, inode) when it was hashed
    digests: dict  # TCG algorithm id -> digest of the whole file, for the RIM algorithms hashed so far


ALL_IMAGES = "all"  # RefStore(index=...): every file, every RIM algorithm


def _digests_of_fd(fd, algorithms, offset=None):
    """{TCG algorithm id: digest} of what fd reads, to its end (from offset
    with pread, leaving the file position alone, when offset is given)."""
    hashes = {a.tcg_id: a.new() for a in algorithms}
    while chunk := (read_fd(fd, _CHUNK) if offset is None else os.pread(fd, _CHUNK, offset)):
        if offset is not None:
            offset += len(chunk)
        for h in hashes.values():
            h.update(chunk)
    return {alg: h.digest() for alg, h in hashes.items()}


def _hash_file(work):
    """{TCG algorithm id: digest} of a regular file for some RIM algorithms
    (work: (path, TCG ids)), or None when it cannot be read or is not a
    regular file."""
    path, algs = work
    try:
        fd, _ = open_regular(path)
    except OSError:
        return None
    try:
        return _digests_of_fd(fd, [_RIM_IDS[alg] for alg in algs])
    except OSError:
        return None
    finally:
        os.close(fd)


def _hash_files(work, jobs):
    """The digests of each (path, algorithms), in order, as they come."""
    if jobs <= 1 or len(work) <= 1:
        yield from map(_hash_file, work)
        return
    import concurrent.futures  # here: a one-log verify should not pay for its import

    with concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(work))) as pool:
        yield from pool.map(_hash_file, work)


def _indexed_digests(entry, stamp):
    """The digests (of some RIM algorithms) an index entry holds for a file
    with this stamp; empty when the entry is missing, stale or not what this
    version writes."""
    try:
        if entry is None or tuple(entry[0]) != stamp or len(entry) != 2:
            return {}
        digests = {BY_NAME[name].tcg_id: bytes.fromhex(value) for name, value in entry[1].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        return {}
    return digests if set(digests) <= set(_RIM_IDS) else {}


class RefStore:
    """The images under root, indexed by digest. index says what to hash now
    (see ensure: ALL_IMAGES, the default, or nothing); find(alg, digest,
    size) hashes more when a log asks. progress, when given, is
    called as progress(files, bytes) before files are hashed and returns
    something with advance(nbytes=) and close() (run.progress)."""

    def __init__(self, root, cache_dir=None, jobs=1, progress=None, index=ALL_IMAGES):
        self.root = self._checked_root(root)
        name = hashlib.sha256(self.root.encode()).hexdigest()[:32]
        self.index_path = os.path.join(cache_dir, "refs", name + ".idx") if cache_dir else None
        self._key = cachekey.cache_key() if cache_dir else None
        self.hashed = self.hashed_bytes = 0  # files (and their bytes) hashed for the index since listed
        self._images = {}
        self._by_digest = {}
        self.refresh(jobs, progress, index)

    @staticmethod
    def _checked_root(root):
        root = os.path.abspath(root)
        if not os.path.isdir(root):
            raise FileError(f"reference store {root} is not a directory", code="io.unreadable")
        return root

    def _load_index(self):
        """{name: entry} from the index; empty when there is none, or when it
        is damaged or forged (its MAC fails): rebuilt, never trusted."""
        if self.index_path is None:
            return {}
        try:
            raw = read_bounded(self.index_path, _MAX_INDEX, follow=False)
        except OSError:
            return {}
        header, _, body = raw.partition(b"\n")
        magic, _, tag = header.partition(b" ")
        try:
            good = magic == _INDEX_MAGIC and cachekey.verify(self._key, bytes.fromhex(tag.decode()), body)
        except (ValueError, UnicodeDecodeError):
            good = False
        if not good:
            log.warning("ignored a damaged or forged reference index %s", self.index_path)
            return {}
        doc = json.loads(body)  # ours: the MAC says so
        return dict(doc["files"]) if doc.get("root") == self.root else {}

    def _listing(self):
        """(name, path, size, stamp) of every regular file under the root."""
        for directory, dirs, files in os.walk(self.root):
            dirs.sort()
            for filename in sorted(files):
                path = os.path.join(directory, filename)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):  # a FIFO, device or socket is no image, and reading it could hang
                    yield os.path.relpath(path, self.root), path, st.st_size, _stamp(st)

    def _hash_all(self, work, jobs):
        """The digests of each (path, algorithms), in order, as they come (None: unreadable)."""
        return _hash_files(work, jobs)

    def refresh(self, jobs=1, progress=None, index=ALL_IMAGES):
        """List the store (keeping the indexed digests of files whose stamp
        is unchanged), then hash what index asks and the index lacks, in
        `jobs` processes when there are several (largest first)."""
        known = self._load_index()
        self._images = {name: RefImage(name, path, size, stamp, _indexed_digests(known.get(name), stamp))
                        for name, path, size, stamp in self._listing()}
        self._index_digests()
        self.hashed = self.hashed_bytes = 0
        if not self.ensure(index, jobs, progress) and set(known) != set(self._images):
            self._save_index()

    def ensure(self, needs, jobs=1, progress=None):
        """Hash the files needs asks for that the index lacks, and keep them
        in the index: needs is ALL_IMAGES, or a set of TCG algorithm ids
        (every file, with those) and (algorithm, size) pairs (the files of
        that size, with that algorithm). True when anything was hashed."""
        work = []
        for image in self._images.values():
            algs = [alg for alg in _RIM_IDS if alg not in image.digests
                    and (needs == ALL_IMAGES or alg in needs or (alg, image.size) in needs)]
            if algs:
                work.append((image, algs))
        if not work:
            return False
        work.sort(key=lambda item: -item[0].size)
        bar = progress(len(work), sum(image.size for image, _ in work)) if progress else None
        hashed = self._hash_all([(image.path, algs) for image, algs in work], jobs)
        for (image, _), digests in zip(work, hashed):
            if bar is not None:
                bar.advance(nbytes=image.size)
            if digests is None:  # it vanished or cannot be read: left out
                self._images.pop(image.name, None)
                continue
            image.digests.update(digests)
            self.hashed += 1
            self.hashed_bytes += image.size
        if bar is not None:
            bar.close()
        self._index_digests()
        self._save_index()
        return True

    def candidates(self, alg, size):
        """The files of this size whose alg digest is not known yet."""
        return [image for image in self._images.values() if image.size == size and alg not in image.digests]

    def learn(self, image, alg, digest):
        """Keep a digest computed outside ensure (while the image was measured)."""
        image.digests[alg] = digest
        self.hashed += 1
        self.hashed_bytes += image.size
        self._index_digests()
        self._save_index()

    def _index_digests(self):
        self._by_digest = {}
        for image in self._images.values():
            for alg, digest in image.digests.items():
                self._by_digest.setdefault((alg, digest), image)

    def _save_index(self):
        if self.index_path is None:
            return
        doc = {
            "root": self.root,
            "files": {
                name: [list(i.stamp), {BY_TCG_ID[alg].name: d.hex() for alg, d in sorted(i.digests.items())}]
                for name, i in sorted(self._images.items())
            },
        }
        body = json.dumps(doc).encode()
        header = _INDEX_MAGIC + b" " + cachekey.mac(self._key, body).hex().encode() + b"\n"
        try:
            private_dir(os.path.dirname(self.index_path))
            write_atomic(self.index_path, lambda f: (f.write(header), f.write(body)))
        except OSError:
            pass  # an unwritable cache costs speed on the next run, not correctness

    def __len__(self):
        return len(self._images)

    def find(self, alg, digest, size=None):
        """The image with this digest; with size, the files of that size whose
        alg digest is not known yet are hashed first (with alg only)."""
        found = self._by_digest.get((alg, bytes(digest)))
        if found is None and size is not None and self.candidates(alg, size):
            self.ensure({(alg, size)})
            found = self._by_digest.get((alg, bytes(digest)))
        return found

    def open(self, ref):
        """ref's file, open for measuring (an ImageFile, a context manager)."""
        return ImageFile(ref)


class ImageFile:
    """An indexed image opened for measuring: its bytes are hashed in place,
    from the file as it was when opened, and must be those indexed."""

    def __init__(self, ref, opened=None):
        """opened: (fd, stamp) of the file already open (this takes it over)."""
        self.ref = ref
        if opened is not None:
            self._fd, self._stamp = opened
            return
        try:
            self._fd, st = open_regular(ref.path)
        except FileNotFoundError:
            raise ReferenceImageError(f"reference image {ref.name} is gone", code="ref.changed") from None
        self._stamp = _stamp(st)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self._fd)

    def _changed(self, how):
        return ReferenceImageError(f"reference image {self.ref.name} {how}", code="ref.changed")

    def measure(self, impl, alg, rim, base, keep_contents):
        """impl.rim_file over the image loaded at base; ReferenceImageError
        ref.changed when the file is not the one indexed or changes meanwhile."""
        try:
            if self._stamp != self.ref.stamp:  # touched since it was indexed: its bytes must still be those
                alg0, digest = next(iter(self.ref.digests.items()), (None, None))
                if alg0 is None or self._stamp[0] != self.ref.size or \
                        _digests_of_fd(self._fd, [_RIM_IDS[alg0]])[alg0] != digest:
                    raise self._changed("changed after it was indexed")
            try:
                measured = impl.rim_file(alg, rim, self._fd, self.ref.size, base, keep_contents)
            except ReferenceImageError:
                raise self._changed("was truncated while it was hashed") from None
            if _stamp(os.fstat(self._fd)) != self._stamp:
                raise self._changed("changed while it was hashed: what was computed is dropped")
        except OSError as exc:
            raise FileError(f"cannot read reference image {self.ref.name}: {exc.strerror or exc}",
                            code="io.unreadable") from None
        return measured

    def measure_with_digest(self, impl, alg, rim, base, keep_contents):
        """measure, with the file's alg digest computed beside it (hashlib
        and the C core both let go of the GIL): (rim, granules, contents,
        digest). The caller checks the digest before it trusts the rest."""
        digesting = _Digesting(self._fd, alg)
        try:
            measured = self.measure(impl, alg, rim, base, keep_contents)
        finally:
            try:
                digest = digesting.result()
            except OSError as exc:
                raise FileError(f"cannot read reference image {self.ref.name}: {exc.strerror or exc}",
                                code="io.unreadable") from None
        if _stamp(os.fstat(self._fd)) != self._stamp:  # the digest may have read later bytes than the granules
            raise self._changed("changed while it was hashed: what was computed is dropped")
        return (*measured, digest)


class _Digesting:
    """The whole-file digest of an open file computed in a thread (pread:
    the file position is left alone), beside the caller's own reading."""

    def __init__(self, fd, alg):
        self._result = self._error = None
        self._thread = threading.Thread(target=self._run, args=(fd, alg), daemon=True)
        self._thread.start()

    def _run(self, fd, alg):
        try:
            self._result = _digests_of_fd(fd, [_RIM_IDS[alg]], offset=0)[alg]
        except OSError as exc:
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


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

    def find(self, alg, digest, size=None):
        if alg not in self._by_digest and alg in _RIM_IDS:
            self._by_digest[alg] = {}
            for name, data in self._data.items():
                ref = RefImage(name, None, len(data), None, {})
                self._by_digest[alg].setdefault(self._digest(alg, data), ref)
        return self._by_digest.get(alg, {}).get(bytes(digest))

    def candidates(self, alg, size):
        """None to hash: find computes each algorithm's digests of every image at once."""
        return []

    def open(self, ref):
        return MemoryImage(self._data[ref.name])


class MemoryImage:
    """An image held in memory, with ImageFile's interface."""

    def __init__(self, data):
        self.data = data

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def measure(self, impl, alg, rim, base, keep_contents):
        return impl.rim_data(alg, rim, self.data, base, keep_contents)


class ObjectRefStore(RefStore):
    """A reference store in object storage (a URL with an ObjectStore): each
    object indexed by its digests (hashed as it streams in, on the client),
    the index kept like a local store's. An image is fetched on demand and
    hashed again on arrival: an object that changed since it was indexed is
    ref.changed. With a cache directory, the checked copy stays in its
    objects/ (named by digest) and is used again only while a MAC under the
    cache key vouches for the very file opened; without one, the copy is
    unlinked as soon as it is open, and nothing is left behind."""

    def __init__(self, root, objects, cache_dir=None, progress=None):
        self.objects = objects
        self.fetch_dir = os.path.join(cache_dir, "objects") if cache_dir else None
        super().__init__(root, cache_dir, 1, progress, index=ALL_IMAGES)  # the client indexes, workers fetch

    def _checked_root(self, root):
        if not self.objects.exists(root):
            raise FileError(f"reference store {root} has no objects", code="io.unreadable")
        return root.rstrip("/")

    def _listing(self):
        for name, (url, size, stamp) in self.objects.find(self.root).items():
            yield name, url, size, (size, stamp)

    def _hash_all(self, work, jobs):
        with tempfile.TemporaryDirectory(prefix="fastrim-index-") as scratch:
            for url, algs in work:
                local = os.path.join(scratch, "object")
                try:
                    self.objects.download(url, local)
                except FileError:
                    yield None
                    continue
                yield _hash_file((local, algs))
                os.unlink(local)

    def open(self, ref):
        fd, stamp = self._fetched(ref)
        return ImageFile(RefImage(ref.name, None, ref.size, stamp, ref.digests), (fd, stamp))

    def _fetched(self, ref):
        """(fd, stamp) of an open local copy of ref's object holding the indexed digests."""
        alg, digest = next(iter(ref.digests.items()))
        if self.fetch_dir is not None:
            path = os.path.join(private_dir(self.fetch_dir), f"{BY_TCG_ID[alg].name}-{digest.hex()}")
            opened = self._vouched(path, digest)
            if opened is not None:
                return opened
        directory = self.fetch_dir or tempfile.gettempdir()
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".fetch-")
        os.close(fd)
        fd = None
        try:
            self.objects.download(ref.path, tmp)
            fd, _ = open_regular(tmp, follow=False)
            if _digests_of_fd(fd, RIM_ALGORITHMS) != ref.digests:
                raise ReferenceImageError(f"reference object {ref.name} changed after it was indexed",
                                          code="ref.changed")
            if self.fetch_dir is None:
                os.unlink(tmp)  # the open descriptor keeps it for this measure, and no longer
            else:
                os.replace(tmp, path)
                stamp = _stamp(os.fstat(fd))  # after the rename, which sets the ctime
                write_atomic(path + ".mac", lambda f: f.write(self._voucher(digest, stamp)))
            opened, fd = (fd, _stamp(os.fstat(fd))), None
            return opened
        except OSError as exc:
            raise FileError(f"cannot fetch reference object {ref.name}: {exc}", code="io.unreadable") from None
        finally:
            if fd is not None:
                os.close(fd)
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _voucher(self, digest, stamp):
        return cachekey.mac(self._key, digest, repr(stamp).encode())

    def _vouched(self, path, digest):
        """(fd, stamp) of the copy at path when its MAC vouches for the file opened, else None."""
        try:
            fd, st = open_regular(path, follow=False)
        except OSError:
            return None
        try:
            tag = read_head(path + ".mac", cachekey.MAC_SIZE + 1, follow=False)
        except OSError:
            tag = None
        if tag is not None and cachekey.verify(self._key, tag, digest, repr(_stamp(st)).encode()):
            return fd, _stamp(st)
        os.close(fd)
        return None

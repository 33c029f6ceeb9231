"""Object storage: logs, sidecars, reference images and outputs named by
fsspec URLs (s3://bucket/prefix, gs://…, file://…), read with the storage
options given (--storage-options: endpoint, credentials). fsspec, and s3fs
for s3://, load only when a URL is used: pip install 'fastrim[s3]'.

Reads are bounded like local ones: an object larger than the limit is
refused before it is fetched."""

import os

from ..errors import FileError, OptionError
from .files import read_head


def is_url(path):
    return "://" in str(path)


def head_of(path, limit, objects=None):
    """Up to limit bytes of a file, or (with objects, an ObjectStore) of the
    object at a URL; None when there is none."""
    if objects is not None and is_url(path):
        return objects.read_head(path, limit)
    return read_head(path, limit)


class ObjectStore:
    """The objects behind URLs, with one set of storage options. Plain data:
    it pickles to workers, which open their own connections."""

    def __init__(self, options=None):
        self.options = dict(options or {})

    def _fs(self, url):
        try:
            import fsspec
        except ImportError:
            raise OptionError(f"{url}: URLs need fsspec: pip install 'fastrim[s3]'") from None
        try:
            return fsspec.core.url_to_fs(url, **self.options)
        except (ImportError, ValueError) as exc:
            raise OptionError(f"{url}: {exc}") from None

    def _failed(self, url, exc):
        return FileError(f"cannot read {url}: {exc}", code="io.unreadable")

    def info(self, url):
        """(size, a change stamp: the ETag or mtime the store gives), or None when there is no object."""
        fs, path = self._fs(url)
        try:
            info = fs.info(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._failed(url, exc) from None
        if info.get("type") == "directory":
            return None
        return info["size"], str(info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified"))

    def read(self, url, limit, too_large=None):
        """The bytes of the object at url; refused before fetching above limit."""
        found = self.info(url)
        if found is None:
            raise FileError(f"cannot read {url}: no such object", code="io.unreadable")
        if found[0] > limit:
            raise too_large(found[0]) if too_large else FileError(f"{url} is more than {limit} bytes",
                                                                   code="io.too_large")
        return self.read_head(url, limit)

    def read_head(self, url, limit):
        """Up to limit bytes from the start of the object, or None when there is none."""
        fs, path = self._fs(url)
        try:
            return fs.cat_file(path, start=0, end=limit)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._failed(url, exc) from None

    def find(self, url, suffixes=None):
        """{name relative to url: (object url, size, stamp)} of every object under url (ending in one of suffixes)."""
        fs, root = self._fs(url)
        protocol = url.split("://", 1)[0]
        try:
            found = fs.find(root, detail=True)
        except OSError as exc:
            raise self._failed(url, exc) from None
        objects = {}
        for path, info in sorted(found.items()):
            if info.get("type") == "directory" or (suffixes and not path.endswith(suffixes)):
                continue
            name = os.path.relpath(path, root.rstrip("/"))
            stamp = str(info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified"))
            objects[name] = (f"{protocol}://{path}", info["size"], stamp)
        return objects

    def exists(self, url):
        fs, path = self._fs(url)
        try:
            return fs.isdir(path) or fs.exists(path)
        except OSError:
            return False

    def download(self, url, local_path):
        """Copy the object to a local file (the caller checks what arrived)."""
        fs, path = self._fs(url)
        try:
            fs.get_file(path, local_path)
        except OSError as exc:
            raise self._failed(url, exc) from None

    def upload(self, local_path, url):
        fs, path = self._fs(url)
        fs.put_file(local_path, path)

    def remove(self, url):
        """Remove the object at url, if there is one (what an aborted run had uploaded)."""
        fs, path = self._fs(url)
        try:
            fs.rm_file(path)
        except FileNotFoundError:
            pass

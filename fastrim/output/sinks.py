"""Where a batch's rows go while it runs: the results (one Parquet file, or
a dataset of Parquet parts when the name ends with "/") and EAR claims,
each a local path or an object-store URL. Rows are written as they come;
nothing is kept for the end but the row group being filled.

A file output appears whole or not at all. A URL output is written to a
local scratch file and uploaded when whole; a dataset's parts are uploaded
one by one as each fills. abort() (Ctrl-C, an error) leaves nothing this
run wrote."""

import os
import shutil
import tempfile

from ..errors import ResultsNotWritten
from ..store.objects import is_url


def is_dataset(target):
    return target.endswith("/")


def dataset_problem(target, objects):
    """Why target (a dataset, name ending in /) cannot take this run's parts, as a phrase, or None."""
    if is_url(target):
        return "already holds objects: give an empty prefix" if objects.find(target) else None
    if os.path.lexists(target.rstrip("/")) and not os.path.isdir(target):
        return "is not a directory"
    if os.path.isdir(target) and os.listdir(target):
        return "is not empty: give a new or empty directory"
    return None


class Sinks:
    """The outputs of one run, open. results and ear are targets (path, URL,
    or None); metadata (str -> str) goes in every Parquet file. add(row)
    gives a row to each; close() makes them whole, the results first, and
    raises ResultsNotWritten naming what was written when one cannot be;
    abort() removes what this run wrote."""

    def __init__(self, results, ear, metadata, objects):
        self._objects = objects
        self._scratch = tempfile.mkdtemp(prefix="fastrim-out-")
        self._open = []  # (what it holds, target, writer, URL to upload the whole file to, or None)
        self._uploaded = []
        self._made_dir = None
        try:
            if results:
                self._open.append(("the results", results, *self._results(results, metadata)))
            if ear:
                self._open.append(("the EAR claims", ear, *self._ear(ear)))
        except OSError as exc:
            self.abort()
            raise ResultsNotWritten(f"cannot write to {results or ear}: {exc.strerror or exc}") from None

    def _local(self, target, name):
        return (os.path.join(self._scratch, name), target) if is_url(target) else (target, None)

    def _results(self, target, metadata):
        from .parquet import ParquetParts, ParquetRows

        if not is_dataset(target):
            path, upload = self._local(target, "results.parquet")
            return ParquetRows(path, metadata), upload
        if is_url(target):
            return ParquetParts(self._scratch, metadata, published=lambda path: self._publish(path, target)), None
        if not os.path.isdir(target):
            os.mkdir(target)
            self._made_dir = target
        return ParquetParts(target, metadata), None

    def _ear(self, target):
        from .ear import EarLines

        path, upload = self._local(target, "ear.jsonl")
        return EarLines(path), upload

    def _publish(self, path, prefix):
        url = prefix + os.path.basename(path)
        self._upload(path, url)
        self._uploaded.append(url)
        os.unlink(path)

    def _upload(self, path, url):
        try:
            self._objects.upload(path, url)
        except OSError as exc:
            raise ResultsNotWritten(f"cannot upload {url}: {exc}") from None

    def add(self, row):
        for what, target, writer, _ in self._open:
            try:
                writer.add(row)
            except OSError as exc:
                self.abort()
                raise ResultsNotWritten(f"cannot write {what} to {target}: {exc.strerror or exc}") from None

    def close(self):
        written = []
        try:
            while self._open:
                what, target, writer, upload = self._open[0]
                try:
                    writer.close()
                    if upload is not None:
                        self._upload(writer.path, upload)
                except OSError as exc:
                    raise ResultsNotWritten(f"cannot write {what} to {target}: {exc.strerror or exc}",
                                            written=written) from None
                except ResultsNotWritten as exc:
                    raise ResultsNotWritten(exc.args[0], written=written) from None
                self._open.pop(0)
                self._uploaded, self._made_dir = [], None  # whole now: abort() leaves it
                written.append(target)
        except BaseException:
            self.abort()
            raise
        finally:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def abort(self):
        for _, _, writer, _ in self._open:
            writer.abort()
        self._open = []
        for url in self._uploaded:
            try:
                self._objects.remove(url)
            except OSError:
                pass
        if self._made_dir is not None:
            try:
                os.rmdir(self._made_dir)
            except OSError:
                pass
        shutil.rmtree(self._scratch, ignore_errors=True)

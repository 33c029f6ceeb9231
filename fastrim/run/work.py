"""What an executor's worker does: build its verification context once from
the Settings it is sent, then turn each Task into a result row. Every
executor (local pool, a cluster) shares this, so rows are the same
wherever they were made."""

from typing import NamedTuple, Optional

from ..evidence.expected import ExpectedSource
from ..output import rows
from ..verifier import Context, LogSource, verify


class LogFile(NamedTuple):
    path: str
    root: str  # the LOGS directory it was found under, as given
    name: str  # as reported: the path relative to root
    size: int
    sidecars: frozenset = frozenset()  # the suffixes of the X.rim and X.token found beside it at discovery


class Task(NamedTuple):
    log: LogFile
    expected_rim: Optional[bytes] = None  # from --expected, else None: the worker reads the sidecars
    wait: bool = False  # False: give the log back rather than wait for another worker
    bytes_hashed: int = 0  # by earlier attempts that gave the log back
    run: Optional[str] = None  # the run it belongs to, for a worker kept between runs (task_runner)

    def again(self, bytes_hashed):
        """This task, given back once: next time it waits for the entry it needs."""
        return self._replace(wait=True, bytes_hashed=self.bytes_hashed + bytes_hashed)


class Deferred(NamedTuple):
    """A worker gave the log back: another worker is filling a cache entry it needs."""

    bytes_hashed: int


def task_runner(settings):
    """The function a worker runs for each task, holding the context it builds
    from settings. A worker kept between runs (a Dask worker's verifier)
    builds it afresh when a task of another run comes, so that every run
    starts with empty memos in memory, as a local pool's new workers do."""
    context, context_run = None, None

    def run_in_context(task):
        nonlocal context, context_run
        if context is None or task.run != context_run:
            context, context_run = Context.from_settings(settings), task.run
        return run_task(context, task)

    return run_in_context


def run_task(context, task):
    """The result row of task, or Deferred when it should come back later."""
    source = LogSource(task.log.path, name=task.log.name, expected=ExpectedSource(rim=task.expected_rim))
    verdict = verify(context, source, defer_busy=not task.wait)
    if verdict.busy:
        return Deferred(verdict.bytes_hashed)
    return rows.row(verdict, task.log.root)

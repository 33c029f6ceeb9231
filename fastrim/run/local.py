"""The local executor: the pipeline in worker processes on this machine.

Workers share the on-disk content cache and step memo, so an image's
granules are hashed once per run: a worker that needs an entry another
worker is computing gives that log back and moves on, and waits for the
entry only when the log comes round again. A worker that dies costs only
the log it was on.
"""

import logging

from ..output.rows import internal_row
from .pool import WorkerCrash, WorkerPool, WorkerTimeout
from .work import Deferred, task_runner

log = logging.getLogger("fastrim.batch")


class LocalExecutor:
    """Map the pipeline over tasks in `jobs` worker processes; a worker that
    makes no progress on a log for log_timeout seconds is killed, and that
    log's row says internal.timeout."""

    def __init__(self, jobs, log_timeout=None):
        self.jobs = jobs
        self.log_timeout = log_timeout

    def close(self):
        """Nothing to stop: the pool lives only while map runs."""

    def map(self, settings, tasks):
        """Yield the result row of every task (work.Task), in the order they finish."""
        backend = settings.backend_module().NAME
        with WorkerPool(self.jobs, task_runner, (settings,), stall_seconds=self.log_timeout) as pool:
            yield from pool_rows(pool, tasks, backend)


def pool_rows(pool, tasks, backend):
    """The row of every task run through pool (a WorkerPool of task_runner):
    a log given back runs again, waiting; a crash, a stall or an exception
    becomes that log's internal.* row."""
    for task in tasks:
        pool.submit(task)
    for task, outcome in pool.results():
        if isinstance(outcome, Deferred):
            pool.submit(task.again(outcome.bytes_hashed))
            continue
        if isinstance(outcome, WorkerCrash):
            log.warning("%s: %s; the batch goes on", task.log.name, outcome)
            code = "internal.timeout" if isinstance(outcome, WorkerTimeout) else "internal.worker_crash"
            outcome = internal_row(task.log, code, f"{outcome} while verifying this log", backend)
        elif not isinstance(outcome, dict):  # a WorkerError
            log.warning("%s: internal error: %s", task.log.name, outcome)
            outcome = internal_row(task.log, "internal.error", str(outcome), backend)
        outcome["bytes_hashed"] += task.bytes_hashed
        yield outcome

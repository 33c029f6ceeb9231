"""What a Dask worker runs for the Dask executor (run/cluster.py): a plugin
that builds the worker's verification context once, and the function that
verifies a shard of logs with it. Imported on the workers, where Dask is."""

from distributed import WorkerPlugin, get_worker

from ..output.rows import internal_row
from .work import Deferred, run_task


class ContextPlugin(WorkerPlugin):
    """Holds the worker's verification context, built when it joins."""

    def __init__(self, settings):
        self.settings = settings
        self.context = None

    def setup(self, worker):
        from ..verifier import Context

        self.context = Context.from_settings(self.settings)


def run_shard(tasks, plugin_name):
    """The rows of a shard of tasks, with the context of the worker it runs on."""
    context = get_worker().plugins[plugin_name].context
    rows, later = [], []
    for task in tasks:
        outcome = _row(context, task)
        if isinstance(outcome, Deferred):
            later.append(task.again(outcome.bytes_hashed))  # another worker fills an entry it needs
        else:
            rows.append(outcome)
    for task in later:
        row = _row(context, task)
        row["bytes_hashed"] += task.bytes_hashed
        rows.append(row)
    return rows


def _row(context, task):
    try:
        return run_task(context, task)
    except Exception as exc:  # reported as this log's row, the shard goes on
        return internal_row(task.log, "internal.error", f"{type(exc).__name__}: {exc}", context.impl.NAME)

"""What a Dask worker runs for the Dask executor (run/cluster.py): a plugin
that, when the worker joins, starts one process that verifies logs with the
context it builds once, and the function that sends it a shard of logs.

The logs are verified in that child, not in the Dask worker itself, so that
a log that kills its verifier costs that log's row (internal.worker_crash,
through the same crash-tolerant pool as the local executor) and not the
worker, whose death would make Dask lose and recompute finished shards."""

import dataclasses
import logging
import multiprocessing
import os
import threading

from distributed import WorkerPlugin, get_worker

from .local import pool_rows
from .pool import InlinePool, WorkerPool
from .work import task_runner


class VerifierPlugin(WorkerPlugin):
    """A worker's verifier process, started when the worker joins. The plugin
    stays registered between runs with the same settings (run/cluster.py);
    the process builds a new context at each run's first log (work.task_runner)."""

    idempotent = True  # registered again by every run: a scheduler that has it leaves it be

    def __init__(self, settings, private_cache=False):
        self.settings = settings  # what is pickled to the workers; the rest is made there
        self.private_cache = private_cache
        self.pool = self.lock = self.daemonic = None

    def setup(self, worker):
        self.lock = threading.Lock()  # a worker with several threads sends one shard at a time
        if self.private_cache and self.settings.cache_dir:  # as if each worker were a host of its own
            self.settings = dataclasses.replace(
                self.settings, cache_dir=os.path.join(self.settings.cache_dir, f"worker-{worker.name}"))
        self.daemonic = multiprocessing.current_process().daemon
        if self.daemonic:
            # Dask's default: a daemonic worker may start no process (see README, On a cluster).
            logging.getLogger("fastrim").warning("Dask worker %s is daemonic: logs are verified in it, and one "
                                                 "that crashes it costs its whole shard", worker.address)
        self.pool = self._start_pool()

    def _start_pool(self):
        if self.daemonic:
            return InlinePool(task_runner, (self.settings,))
        # Not a plain fork: a Dask worker has threads, whose locks a fork would copy mid-use. A
        # forkserver (one per worker process, fastrim loaded in it) forks clean children fast:
        # a verifier that a log killed is back in milliseconds, not an interpreter's start.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["fastrim.run.work", "fastrim.verifier"])
        return WorkerPool(1, task_runner, (self.settings,), context=context)

    def teardown(self, worker):
        if self.pool is not None:
            self.pool.close()

    def verify(self, tasks, run):
        """The rows of tasks, a shard of the run named run."""
        backend = self.settings.backend_module().NAME
        with self.lock:
            if self.pool is None:
                self.pool = self._start_pool()
            try:
                return list(pool_rows(self.pool, (task._replace(run=run) for task in tasks), backend))
            except Exception:
                # A pool that failed mid-shard (say, no process could be started) may still
                # hold some of its tasks, whose rows would come back with a later shard.
                self.pool.close(graceful=False)
                self.pool = None
                raise


class Opaque:
    """A shard's tasks, or its rows, as one object to Dask. Dask walks the
    lists and tuples of a task's arguments looking for keys, and pickles
    each item of a list it returns on its own (asking inspect for every
    item's module): costs per log that dwarfed a warm log's verification."""

    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items

    def __reduce__(self):
        return Opaque, (self.items,)


def run_shard(shard, plugin_name, run):
    """The rows (an Opaque list) of a shard (an Opaque list of tasks) of the
    run named run, from the verifier of the worker it runs on."""
    return Opaque(get_worker().plugins[plugin_name].verify(shard.items, run))

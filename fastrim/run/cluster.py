"""The Dask executor: the same pipeline, on a Dask cluster (`--scheduler
tcp://HOST:PORT`, or `local:N` for N worker processes on this machine, every
server bound to 127.0.0.1).

Work goes out in shards. Logs that load the same images share a shard key
(xxh3 of their image digests: it only decides placement, never a verdict)
and a shard goes to the worker that rendezvous hashing picks for its key
(Dask may still move it when that worker is busy or gone), so each worker's
content cache and step memo see each configuration once. Each worker
verifies in one child process that builds its context once, from the
Settings the client sends (run/daskworker.py): a log that kills its
verifier gets internal.worker_crash and the Dask worker lives on. A shard
whose Dask worker dies runs once more elsewhere.
"""

import hashlib
import logging
import pickle
import uuid

import xxhash

from ..errors import FastrimError, LogFormatError, OptionError
from ..log import cca, tcg
from ..output.rows import internal_row
from ..store.objects import head_of

log = logging.getLogger("fastrim.batch")

SHARDS_PER_WORKER = 2
MIN_SHARD = 32  # logs: a shard's few ms of scheduling stay small next to its work
MAX_SHARD = 1024  # logs: the client holds one shard's rows at a time, whatever the fleet's size
PLACEMENT_HEAD = 8192  # bytes: a CCA log's events fill well under 1 KiB of its (QEMU: 64 KiB) region
LOCAL_PREFIX = "local:"
MAX_LOCAL_WORKERS = 256


class ClusterUnavailable(FastrimError, OSError):
    """The scheduler cannot be reached, or the dask extra is not installed."""

    code = "usage.scheduler"


def _dask():
    try:
        import dask
        import distributed
    except ImportError:
        raise ClusterUnavailable("--scheduler needs Dask: pip install 'fastrim[dask]'") from None
    # Dask sets its own loggers to INFO; a nightly run's stderr wants warnings only.
    for name in ("distributed", "dask"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    return dask, distributed


def shard_key(log_file, impl, objects=None):
    """xxh3 of the image digests the log's image events carry (of its path
    when it does not frame): a placement hint, so that one configuration's
    logs meet. Framing alone, no decoding: the client does this for every log,
    from the log's first PLACEMENT_HEAD bytes when its events end there."""
    try:
        data = head_of(log_file.path, PLACEMENT_HEAD, objects)
        if data is None:
            raise FileNotFoundError(log_file.path)
        try:
            framing = tcg.parse(data, impl=impl).framing
        except LogFormatError:
            if len(data) < PLACEMENT_HEAD:
                raise
            data = tcg.read_log(log_file.path, objects=objects)  # its events go on past the head
            framing = tcg.parse(data, impl=impl).framing
    except (FastrimError, OSError):
        return xxhash.xxh3_64_hexdigest(log_file.path.encode())
    view = memoryview(data)
    digests = sorted(bytes(view[d.offset : d.offset + d.size]) for event in framing.events
                     if event.type in cca.IMAGE_EVENT_TYPES for d in event.digests)
    return xxhash.xxh3_64_hexdigest(b"".join(digests))


def placed_shards(tasks, impl, workers, objects=None):
    """(worker, tasks) pairs: each log goes to the worker that rendezvous
    hashing gives its shard key, in shards of about len(tasks) /
    (workers x SHARDS_PER_WORKER) logs, from MIN_SHARD to MAX_SHARD. A shard
    is yielded as soon as it is full, so that workers start while the client
    still reads logs. Few shards keep Dask's per-task cost small next to the
    work (a warm 1,000-log run took 12% less time with two per worker than
    with four); more than one per worker lets an idle worker take a busy
    one's."""
    size = min(MAX_SHARD, max(MIN_SHARD, -(-len(tasks) // (len(workers) * SHARDS_PER_WORKER))))
    filling = {}
    for task in tasks:
        worker = rendezvous(shard_key(task.log, impl, objects), workers)
        shard = filling.setdefault(worker, [])
        shard.append(task)
        if len(shard) == size:
            yield worker, filling.pop(worker)
    yield from sorted(filling.items())


def rendezvous(key, workers):
    """The worker with the highest xxh64 of (worker, key): each key keeps its
    worker while workers come and go, and keys spread evenly."""
    return max(workers, key=lambda worker: xxhash.xxh3_64_intdigest(f"{worker}\0{key}".encode()))


class DaskExecutor:
    """Map the pipeline over tasks on a Dask cluster. connect() reaches the
    scheduler (or starts local:N) and raises ClusterUnavailable when it
    cannot; close() stops what it started. Also a context manager. Workers
    on one host share its cache directory; with private_caches each keeps
    its own under it, as workers on hosts of their own would."""

    def __init__(self, address, connect_timeout=10, private_caches=False):
        self.address = address
        self.private_caches = private_caches
        self._timeout = connect_timeout
        self._cluster = self.client = None
        self._verifiers = None  # the name of the worker plugin of the last run's settings, kept for the next
        self._id = uuid.uuid4().hex[:12]  # in its plugins' names: clients that share a cluster share no plugin

    def connect(self):
        dask, distributed = _dask()
        address = self.address
        if address.startswith(LOCAL_PREFIX):
            count = _local_workers(address)
            # A shard whose worker dies runs once more elsewhere; a worker is sent no more than
            # it runs, so that its death costs no other shard a failure.
            # Workers not daemonic: each starts the process that verifies its logs.
            dask.config.set({"distributed.scheduler.allowed-failures": 1,
                             "distributed.scheduler.worker-saturation": 1.0,
                             "distributed.worker.daemon": False})
            # A worker whose shards are done takes one still waiting on a busy worker within
            # 10 ms, not Dask's 1 s, a whole run's length at this scale (cold 1,000-log runs:
            # 4-5% faster). The workers share this host's cache, so that hashes no image twice;
            # with caches of their own it would. (Read once, by the scheduler as it starts.)
            stealing = {} if self.private_caches else {"distributed.scheduler.work-stealing-interval": "10ms"}
            with dask.config.set(stealing):
                self._cluster = distributed.LocalCluster(
                    n_workers=count, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
            address = self._cluster.scheduler_address
        try:
            self.client = distributed.Client(address, timeout=self._timeout)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise ClusterUnavailable(f"cannot reach the Dask scheduler at {self.address}: {exc}") from None
        try:
            self.client.wait_for_workers(1, timeout=self._timeout)
        except (OSError, TimeoutError):
            self.close()
            raise ClusterUnavailable(f"the Dask scheduler at {self.address} has no worker "
                                     f"(none joined in {self._timeout:g} s)") from None
        return self

    def close(self):
        try:
            if self.client is not None and self._verifiers is not None:
                self._remove_verifiers()
        finally:
            if self.client is not None:
                self.client.close()
            if self._cluster is not None:
                self._cluster.close()
            self._cluster = self.client = self._verifiers = None

    def __enter__(self):
        return self.connect()

    def __exit__(self, *exc):
        self.close()

    @property
    def description(self):
        """(scheduler address, worker count), for the results' metadata."""
        workers = self.client.scheduler_info().get("workers", {})
        return self.client.scheduler.address, len(workers)

    def map(self, settings, tasks):
        """Yield the result row of every task (work.Task), as shards finish.
        One run at a time: a run with other settings replaces the plugin
        that a run still going would need."""
        _, distributed = _dask()
        impl = settings.backend_module()
        name, run = self._verifiers_for(settings), uuid.uuid4().hex
        # Placement goes by the workers' names, which outlive a restart on a new port
        # (`dask worker --name`; local:N names them 0 to N-1), so that each keeps its keys.
        workers = {str(info.get("name", address)): address
                   for address, info in self.client.scheduler_info()["workers"].items()}
        if not workers:
            raise ClusterUnavailable(f"the Dask scheduler at {self.address} has no worker left")
        pending = {}
        try:
            for worker, shard in placed_shards(list(tasks), impl, sorted(workers), settings.objects):
                pending[self._submit(shard, name, run, workers[worker])] = shard
            # Results are fetched as each shard ends: one left on a worker that
            # a poison log kills next would have to be computed again.
            done = distributed.as_completed(list(pending), with_results=True, raise_errors=False)
            for future, outcome in done:
                shard = pending.pop(future)
                if future.status != "error":
                    yield from outcome.items
                elif isinstance(future.exception(), distributed.KilledWorker):
                    yield from self._after_crash(shard, impl.NAME)
                else:
                    raise future.exception()
        finally:
            if pending:
                self.client.cancel(list(pending))  # Ctrl-C or an error: nothing left running on the cluster

    def _verifiers_for(self, settings):
        """The name of the worker plugin whose processes verify with settings:
        this executor's, for a SHA-256 of the plugin's pickle. Kept between
        runs with the same settings (each worker's verifier then starts once),
        replaced otherwise, removed by close()."""
        from .daskworker import VerifierPlugin

        plugin = VerifierPlugin(settings, self.private_caches)
        name = f"fastrim-{self._id}-{hashlib.sha256(pickle.dumps(plugin)).hexdigest()[:32]}"
        if self._verifiers not in (None, name):
            self._remove_verifiers()
        # Named before it is sent: a registration that fails half-way may leave it on the
        # scheduler, and close() must remove it. Sent every run: the plugin is idempotent, so
        # a scheduler that has it does nothing, and one restarted since the last run gets it back.
        self._verifiers = name
        self.client.register_plugin(plugin, name=name)
        return name

    def _remove_verifiers(self):
        """Unregister this executor's plugin: each worker's verifier process
        ends. A plugin already gone or a scheduler out of reach is a warning:
        a close must go on to close the client."""
        name, self._verifiers = self._verifiers, None
        try:
            self.client.unregister_worker_plugin(name)
        except Exception as exc:  # ValueError (gone), CommClosedError, a worker's teardown error...
            log.warning("could not remove the worker plugin %s from the Dask cluster: %s", name, exc)

    def _submit(self, shard, name, run, worker):
        from .daskworker import Opaque, run_shard

        return self.client.submit(run_shard, Opaque(shard), name, run, pure=False, workers=[worker],
                                  allow_other_workers=True)

    def _after_crash(self, shard, backend):
        """A shard whose Dask worker died twice running it (its logs run in a
        child of the worker, so no log of it did that): each log's row says so."""
        log.warning("%d logs lost their Dask worker twice; the batch goes on", len(shard))
        for task in shard:
            yield internal_row(task.log, "internal.worker_crash", "its Dask worker died twice while verifying it",
                               backend)


def _local_workers(address):
    text = address[len(LOCAL_PREFIX):]
    if not text.isdigit() or not 1 <= int(text) <= MAX_LOCAL_WORKERS:
        raise OptionError(f"--scheduler {address}: local:N needs N from 1 to {MAX_LOCAL_WORKERS}")
    return int(text)

"""Worker processes for batch runs, built so that one dying worker costs only
the task it was on: the parent knows which task each worker holds, reports
that one as crashed, starts a replacement and carries on.

(multiprocessing.Pool waits forever for a task whose worker was killed, and
concurrent.futures marks the whole pool broken; neither fits a verifier that
reads hostile input with a C extension.)

Tasks go out in small chunks; results come back in batches (at the end of a
chunk, or after _FLUSH_SECONDS), so a worker does not wake the parent for
every quick task. When a worker dies holding several unreported tasks, they
run again one at a time, each alone in a worker, so that the one that kills
its worker is found; the others just get verified.
Worker logging reaches the parent's handlers: through multiprocessing-logging
with the fork start method, else through a stdlib QueueHandler whose "queue"
is the worker's own pipe (a multiprocessing.Queue shares a lock between
processes, and a worker killed while holding it would hang the parent).
"""

import collections
import logging
import logging.handlers
import multiprocessing
import os
import select
import signal
import threading
import time

import multiprocessing_logging

_MAX_CHUNK = 32
_FLUSH_SECONDS = 0.02  # the longest a finished result waits in a worker


class WorkerCrash:
    """The outcome of a task whose worker process died."""

    def __init__(self, exitcode):
        self.exitcode = exitcode

    def __str__(self):
        if self.exitcode is not None and self.exitcode < 0:
            try:
                return f"the worker process was killed by {signal.Signals(-self.exitcode).name}"
            except ValueError:
                pass
        return f"the worker process died (exit code {self.exitcode})"


class WorkerTimeout(WorkerCrash):
    """The outcome of a task whose worker made no progress for too long and was killed."""

    def __init__(self, seconds):
        super().__init__(-signal.SIGKILL)
        self.seconds = seconds

    def __str__(self):
        return f"the worker made no progress for {self.seconds:g} s and was killed"


class WorkerError:
    """The outcome of a task whose function raised an unexpected exception."""

    def __init__(self, message):
        self.message = message

    def __str__(self):
        return self.message


class _PipeQueue:
    """All that QueueHandler asks of a queue, over the worker's own pipe."""

    def __init__(self, conn):
        self.conn = conn

    def put_nowait(self, record):
        self.conn.send(("log", record))


def _worker_main(conn, parent_ends, make_worker, make_args, log_over_pipe):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides how to stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # and stops a worker with SIGTERM: no handler of its to run
    # A forked worker inherits the parent's end of its own pipe and of its
    # siblings': held here they would keep the pipes open after the parent
    # died, and no worker would see EOF (nor EPIPE) and exit.
    for fd in parent_ends:
        try:
            os.close(fd)
        except OSError:
            pass
    if log_over_pipe:
        logging.getLogger().handlers[:] = [logging.handlers.QueueHandler(_PipeQueue(conn))]
    function = make_worker(*make_args)  # the worker's state lives in this function, nowhere else
    try:
        _serve(conn, function)
    except (EOFError, OSError):
        pass  # the parent is gone or stopping the pool: nothing left to report to


def _serve(conn, function):
    """Run the chunks of tasks the parent sends until it sends None."""
    while True:
        chunk = conn.recv()
        if chunk is None:
            return
        done, since = [], None
        for seq, task, alone in chunk:
            try:
                outcome = function(task)
            except Exception as exc:  # reported as this task's outcome, the worker lives on
                outcome = WorkerError(f"{type(exc).__name__}: {exc}")
            done.append((seq, outcome))
            since = since or time.monotonic()
            if alone or time.monotonic() - since >= _FLUSH_SECONDS:
                conn.send(("results", done))
                done, since = [], None
        if done:
            conn.send(("results", done))


def _drain(handler, patience=0.2):
    """Let a multiprocessing-logging handler take in what the (now ended)
    workers sent, then close it in the background: its close() can take up
    to 0.2 s to notice (its thread polls), and up to 5 s when a killed worker
    left a record counted but never sent. So wait here only while the queue
    still moves; the handler's thread delivers the last records meanwhile."""
    last, still_since = None, time.monotonic()
    while (pending := handler.queue.qsize()) and time.monotonic() - still_since < patience:
        if pending != last:
            last, still_since = pending, time.monotonic()
        time.sleep(0.002)
    threading.Thread(target=handler.close, daemon=True).start()


class _Worker:
    def __init__(self, context, target_args, siblings):
        self.conn, child_conn = context.Pipe()
        inherited = [w.conn.fileno() for w in (*siblings, self)] if context.get_start_method() == "fork" else []
        self.process = context.Process(target=_worker_main, args=(child_conn, inherited, *target_args), daemon=True)
        self.process.start()
        child_conn.close()
        self.held = collections.OrderedDict()  # seq -> task, in the order the worker runs them
        self.alone = False  # it holds one task sent alone (see WorkerPool._feed)
        self.heard = time.monotonic()  # when it last sent something, or was given work while idle
        self.stalled = False  # killed by the watchdog


class WorkerPool:
    """Run tasks in `jobs` processes: make_worker(*make_args) runs once in
    each and returns the function that takes a task. Use as a context
    manager; submit() tasks, then iterate results() for (task, outcome)
    pairs, where outcome is the function's result, a WorkerCrash, a
    WorkerTimeout or a WorkerError. Tasks may be submitted while iterating.

    With stall_seconds, a watchdog kills a worker that holds tasks and has
    sent nothing for that long (a hung or SIGSTOPped process): its tasks are
    handled as a crash's are, the one it was stuck on gets a WorkerTimeout."""

    def __init__(self, jobs, make_worker, make_args=(), context=None, stall_seconds=None):
        self._context = context or multiprocessing.get_context()
        self._jobs = jobs
        self._stall = stall_seconds
        self._queue = collections.deque()
        self._seq = 0
        self._mp_handlers = []
        forking = self._context.get_start_method() == "fork" and multiprocessing.get_start_method() == "fork"
        if forking:
            root = logging.getLogger()
            multiprocessing_logging.install_mp_handler(root)
            self._mp_handlers = [h for h in root.handlers if isinstance(h, multiprocessing_logging.MultiProcessingHandler)]
        self._target_args = (make_worker, make_args, not forking)
        # One poll set for the run: a selector built per wake-up costs more
        # than a quick task when results come back thousands per second.
        self._poller = select.poll()
        self._by_fd = {}
        self._workers = []
        for _ in range(jobs):
            self._start_worker()

    def _start_worker(self, replacing=None):
        worker = _Worker(self._context, self._target_args, [w for w in self._workers if w is not replacing])
        if replacing is None:
            self._workers.append(worker)
        else:
            self._workers[self._workers.index(replacing)] = worker
            for fd in (replacing.conn.fileno(), replacing.process.sentinel):
                self._poller.unregister(fd)
                del self._by_fd[fd]
        for fd in (worker.conn.fileno(), worker.process.sentinel):
            self._poller.register(fd, select.POLLIN)
            self._by_fd[fd] = worker

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(graceful=exc[0] is None)

    def submit(self, task):
        self._queue.append((task, False))

    def results(self):
        while self._queue or any(w.held for w in self._workers):
            self._feed()
            events = self._poller.poll(self._watchdog())
            for fd, _ in events:
                worker = self._by_fd.get(fd)
                if worker is None:
                    continue
                yield from self._collect(worker)
                if worker not in self._workers:
                    break  # replaced: the fds of this round's events may now be another worker's

    def _watchdog(self):
        """Kill the workers that stalled; the milliseconds until the next may
        (for poll), or None (no watchdog, or no worker busy)."""
        if self._stall is None:
            return None
        now, wait = time.monotonic(), None
        for worker in self._workers:
            if not worker.held or worker.stalled:
                continue
            left = worker.heard + self._stall - now
            if left <= 0:
                worker.stalled = True
                worker.process.kill()  # SIGKILL ends a stopped process too; its sentinel wakes the poll
            else:
                wait = left if wait is None else min(wait, left)
        return None if wait is None else max(1, int(wait * 1000) + 1)

    def _feed(self):
        for worker in self._workers:
            if not self._queue or worker.alone:
                continue
            if self._queue[0][1]:  # a suspect of a crash: alone in an idle worker
                if worker.held:
                    continue
                chunk, worker.alone = [self._queue.popleft()], True
            elif len(worker.held) <= _MAX_CHUNK // 4:
                # The next chunk goes out before the current one is done, so
                # that no worker waits for the parent between chunks.
                size = max(1, min(_MAX_CHUNK, len(self._queue) // (4 * self._jobs)))
                chunk = []
                while len(chunk) < size and self._queue and not self._queue[0][1]:
                    chunk.append(self._queue.popleft())
            else:
                continue
            if not worker.held:
                worker.heard = time.monotonic()  # busy from now: the watchdog counts from here
            message = []
            for task, alone in chunk:
                self._seq += 1
                worker.held[self._seq] = task
                message.append((self._seq, task, alone))
            try:
                worker.conn.send(message)
            except OSError:
                pass  # it died: results() learns so from its sentinel, and requeues what it held

    def _receive(self, worker):
        kind, value = worker.conn.recv()
        worker.heard = time.monotonic()
        if kind == "log":  # a record from a spawned worker (see _PipeQueue)
            logging.getLogger(value.name).handle(value)
            return
        for seq, outcome in value:
            yield worker.held.pop(seq), outcome
        worker.alone = worker.alone and bool(worker.held)

    def _collect(self, worker):
        """What one ready descriptor of worker has: a message, or its end."""
        try:
            if worker.process.is_alive():
                yield from self._receive(worker)
                return
            while worker.conn.poll():  # it ended: what it sent first still counts
                yield from self._receive(worker)
        except (EOFError, OSError):
            pass
        worker.process.join()
        lost = list(worker.held.values())
        self._start_worker(replacing=worker)
        worker.conn.close()
        if len(lost) == 1:
            yield lost[0], WorkerTimeout(self._stall) if worker.stalled else WorkerCrash(worker.process.exitcode)
        else:  # any of them may have killed it: each runs again, alone
            self._queue.extendleft((task, True) for task in reversed(lost))

    def close(self, graceful=True):
        for worker in self._workers:
            if graceful:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
            else:
                worker.process.terminate()
        for worker in self._workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        if self._mp_handlers:
            multiprocessing_logging.uninstall_mp_handler()
            for handler in self._mp_handlers:
                _drain(handler)


class InlinePool:
    """WorkerPool's interface, with the tasks run in this process: for a
    process that may not start children (a daemonic Dask worker). Nothing
    isolates a task that kills the process here."""

    def __init__(self, make_worker, make_args=()):
        self._function = make_worker(*make_args)
        self._queue = collections.deque()

    def submit(self, task):
        self._queue.append(task)

    def results(self):
        while self._queue:
            task = self._queue.popleft()
            try:
                outcome = self._function(task)
            except Exception as exc:  # reported as this task's outcome, as a worker would
                outcome = WorkerError(f"{type(exc).__name__}: {exc}")
            yield task, outcome

    def close(self, graceful=True):
        """Nothing to stop; what was not run is dropped."""
        self._queue.clear()

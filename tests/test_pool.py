"""The crash-tolerant worker pool on its own: outcomes, crashes, exceptions
and worker logging with both the fork and the spawn start methods."""

import logging
import multiprocessing
import os
import signal
import time

import pytest

from fastrim.run.pool import WorkerCrash, WorkerError, WorkerPool


def square_worker():
    """What each worker process runs for a task (built once per worker)."""
    return square_or_fail


def square_or_fail(task):
    logging.getLogger("fastrim.test").warning("task %s in %s", task, os.getpid())
    if task == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    if task == "raise":
        raise ValueError("bad task")
    return task * task


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_every_task_gets_one_outcome_whatever_happens(method):
    tasks = [*range(20), "die", *range(20, 30), "raise", "die"]
    with WorkerPool(2, square_worker, context=multiprocessing.get_context(method)) as pool:
        for task in tasks:
            pool.submit(task)
        outcomes = list(pool.results())
    assert sorted((str(t) for t, _ in outcomes)) == sorted(str(t) for t in tasks)
    by_task = {}
    for task, outcome in outcomes:
        by_task.setdefault(task, []).append(outcome)
    assert all(by_task[n] == [n * n] for n in range(30))
    assert [str(o) for o in by_task["die"]] == ["the worker process was killed by SIGKILL"] * 2
    assert all(isinstance(o, WorkerCrash) for o in by_task["die"])
    assert isinstance(by_task["raise"][0], WorkerError) and str(by_task["raise"][0]) == "ValueError: bad task"


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_worker_log_records_reach_the_parents_handlers(method, caplog):
    with WorkerPool(2, square_worker, context=multiprocessing.get_context(method)) as pool:
        for task in range(50):
            pool.submit(task)
        assert len(list(pool.results())) == 50
    deadline = time.monotonic() + 2  # the last records are handed on by a thread
    while caplog.text.count("task ") < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert caplog.text.count("task ") == 50
    assert str(os.getpid()) not in caplog.text


def test_tasks_may_be_submitted_while_iterating():
    with WorkerPool(2, square_worker) as pool:
        pool.submit(2)
        seen = []
        for _, outcome in pool.results():
            seen.append(outcome)
            if outcome < 10 ** 6:
                pool.submit(outcome)
    assert seen == [4, 16, 256, 65536, 4294967296]

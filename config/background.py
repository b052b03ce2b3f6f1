"""Where background work runs.

Real mode: Celery workers, fed through Redis. Embedded default: this process, on a small thread
pool, so a request that queues work (an upload to transcode) still returns at once; and an
in-process beat thread runs ``CELERY_BEAT_SCHEDULE``. Tests run tasks synchronously.

Services queue work with :func:`enqueue`, never with ``task.delay`` directly, so that the task
only starts once the transaction that created its rows has committed.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from celery import Task, current_app
from django.conf import settings
from django.db import close_old_connections, transaction

logger = logging.getLogger(__name__)

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def enqueue(task: Task, *args, **kwargs) -> None:
    """Run ``task(*args, **kwargs)`` in the background once the current transaction commits."""
    transaction.on_commit(lambda: dispatch(task, args, kwargs))


def dispatch(task: Task, args: tuple = (), kwargs: dict | None = None) -> None:
    """Start ``task`` now: on a Celery worker, or in this process when Celery is eager."""
    kwargs = kwargs or {}
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        task.apply_async(args, kwargs)
    elif settings.SALON_TASKS_SYNCHRONOUS:
        task.apply(args, kwargs, throw=True)
    else:
        _get_executor().submit(_run_in_thread, task, args, kwargs)


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="salon-task")
        return _executor


def drain() -> None:
    """Wait until the work this process queued has run (a command that queued work, such as
    seed_demo, before it exits: the embedded pool dies with the process)."""
    global _executor
    while True:
        with _executor_lock:
            executor, _executor = _executor, None
        if executor is None:
            return
        executor.shutdown(wait=True)  # work queued meanwhile went to a new pool: drain it too


def _run_in_thread(task: Task, args: tuple, kwargs: dict) -> None:
    close_old_connections()
    try:
        result = task.apply(args, kwargs)
        if result.failed():
            logger.error("task %s failed: %r", task.name, result.result)
    finally:
        close_old_connections()


def run_worker_start_tasks() -> None:
    """A worker is ready (a Celery worker, or the embedded process starting): queue the tasks
    of SALON_WORKER_START_TASKS now, so that work a dead process left is taken up at once,
    not at the next beat. The caller has imported the tasks modules (a Celery worker has, once
    it is ready; EmbeddedBeat does it first): importing them here, in a worker, would set
    Django up again and so reconfigure logging, silencing Celery's own loggers."""
    for name, kwargs in settings.SALON_WORKER_START_TASKS.items():
        dispatch(current_app.tasks[name], (), dict(kwargs))


def _interval_seconds(schedule) -> float:
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    if isinstance(schedule, int | float):
        return float(schedule)
    # Celery's own schedule objects (crontab) know how long until they are due.
    return max(1.0, schedule.remaining_estimate(schedule.now()).total_seconds())


class EmbeddedBeat(threading.Thread):
    """Celery beat for the embedded default: runs each schedule entry on its interval."""

    def __init__(self, schedule: dict | None = None):
        super().__init__(name="salon-beat", daemon=True)
        self.schedule = settings.CELERY_BEAT_SCHEDULE if schedule is None else schedule
        self._stop_event = threading.Event()

    def run(self) -> None:
        import time

        # Celery finds the apps' tasks modules lazily (a worker or beat process does it as it
        # starts); without this, the first entry's lookup raises NotRegistered and ends the
        # thread, and no schedule runs in the embedded default.
        current_app.loader.import_default_modules()
        run_worker_start_tasks()
        next_run = {name: time.monotonic() for name in self.schedule}
        while not self._stop_event.is_set():
            now = time.monotonic()
            for name, entry in self.schedule.items():
                if now >= next_run[name]:
                    next_run[name] = now + _interval_seconds(entry["schedule"])
                    task = current_app.tasks[entry["task"]]
                    dispatch(task, tuple(entry.get("args", ())), entry.get("kwargs"))
            wait = min(next_run.values(), default=now + 60) - time.monotonic()
            self._stop_event.wait(timeout=max(0.1, wait))

    def stop(self) -> None:
        self._stop_event.set()

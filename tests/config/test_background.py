import threading
from datetime import timedelta

import pytest
from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import transaction

from config import background

_ran: list = []
_ran_event = threading.Event()


@shared_task(name="tests.record")
def record(value):
    _ran.append((value, threading.current_thread().name))
    _ran_event.set()


@pytest.fixture(autouse=True)
def _reset():
    _ran.clear()
    _ran_event.clear()


@pytest.mark.django_db(transaction=True)
def test_enqueued_task_waits_for_commit():
    """A task queued inside a transaction runs only once the transaction commits."""
    with transaction.atomic():
        background.enqueue(record, "after-commit")
        assert _ran == []
    assert [value for value, _ in _ran] == ["after-commit"]


@pytest.mark.django_db(transaction=True)
def test_enqueued_task_is_dropped_on_rollback():
    """Work queued by a transaction that rolls back never runs."""
    with pytest.raises(RuntimeError), transaction.atomic():
        get_user_model().objects.create_user(username="ghost")
        background.enqueue(record, "never")
        raise RuntimeError("roll back")
    assert _ran == []


def test_embedded_mode_runs_tasks_off_the_request_thread(settings):
    """Embedded: a queued task runs on the in-process pool, so the caller returns at once."""
    settings.SALON_TASKS_SYNCHRONOUS = False

    background.dispatch(record, ("pooled",))

    assert _ran_event.wait(timeout=10)
    value, thread_name = _ran[0]
    assert value == "pooled"
    assert thread_name.startswith("salon-task")


def test_embedded_beat_runs_scheduled_tasks(settings):
    """The embedded beat thread fires schedule entries without a celery beat process."""
    settings.SALON_TASKS_SYNCHRONOUS = True
    settings.SALON_WORKER_START_TASKS = {}
    beat = background.EmbeddedBeat(
        {"record": {"task": "tests.record", "schedule": timedelta(hours=1), "args": ("beat",)}}
    )
    beat.start()
    try:
        assert _ran_event.wait(timeout=10)
    finally:
        beat.stop()
        beat.join(timeout=5)
    assert _ran[0][0] == "beat"


def test_the_embedded_process_runs_the_worker_start_tasks_as_it_starts(settings):
    """Starting, the embedded default takes up what a dead process left at once (the start
    tasks, with their arguments), before its first scheduled round."""
    settings.SALON_TASKS_SYNCHRONOUS = True
    settings.SALON_WORKER_START_TASKS = {"tests.record": {"value": "started"}}
    beat = background.EmbeddedBeat({})
    beat.start()
    try:
        assert _ran_event.wait(timeout=10)
    finally:
        beat.stop()
        beat.join(timeout=5)
    assert [value for value, _ in _ran] == ["started"]


def test_a_celery_worker_becoming_ready_runs_the_worker_start_tasks(settings):
    """Celery's worker_ready signal runs the same start tasks: a restarted worker takes up
    work its dead predecessor held, without waiting for beat."""
    from celery.signals import worker_ready

    settings.SALON_TASKS_SYNCHRONOUS = True
    settings.SALON_WORKER_START_TASKS = {"tests.record": {"value": "ready"}}

    worker_ready.send(sender=None)

    assert [value for value, _ in _ran] == ["ready"]


EVERY_SCHEDULED_TASK_IS_FOUND = """
import sys, threading
import django
django.setup()
from django.conf import settings
from config import background

fired = []
done = threading.Event()
def dispatch(task, args=(), kwargs=None):
    fired.append(task.name)
    if len(fired) == len(settings.CELERY_BEAT_SCHEDULE) + len(settings.SALON_WORKER_START_TASKS):
        done.set()
background.dispatch = dispatch
beat = background.EmbeddedBeat()
beat.start()
done.wait(20)
beat.stop()
print(" ".join(sorted(fired)))
"""


def test_embedded_beat_finds_every_scheduled_task_in_a_fresh_process():
    """In a process that imported no tasks module yet (``manage.py serve``), the embedded beat
    still finds every task of SALON_WORKER_START_TASKS and CELERY_BEAT_SCHEDULE, instead of
    dying on the first lookup."""
    import os
    import subprocess
    import sys

    from django.conf import settings

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    child = subprocess.run(
        [sys.executable, "-c", EVERY_SCHEDULED_TASK_IS_FOUND],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    expected = sorted(
        [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()]
        + list(settings.SALON_WORKER_START_TASKS)
    )
    assert child.stdout.split() == expected, child.stderr[-2000:]

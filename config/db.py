"""Database calls from async code (websocket consumers), off the event loop.

Channels' ``database_sync_to_async`` runs every call of the process on one thread, so a join
wave waits in one queue, mostly for PostgreSQL's answers: one daphne process took about 50
joins a second (``bench/bench_fanout.py``). With ``SALON_DB_THREADS`` > 0 (the default on
PostgreSQL) calls run on a small pool instead, each thread with its own persistent connection,
so their round trips overlap. One consumer still makes its calls one after another, so its
order is kept; rules that need more (a space's capacity, a ban racing a join) take row locks
in their service, as they must across processes anyway.

Upkeep (``upkeep=True``: the heartbeats that keep a process's participants fresh, the audience
counts) has a thread of its own. Queued behind a join wave, a heartbeat came after the sweep's
deadline, and the sweep removed members whose sockets were open (``bench/fault_run.py``).
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connections

_pools: dict[bool, ThreadPoolExecutor] = {}


def _executor(upkeep: bool) -> ThreadPoolExecutor | None:
    threads = getattr(settings, "SALON_DB_THREADS", 0)
    if threads <= 0:
        return None
    pool = _pools.get(upkeep)
    if pool is None:
        pool = _pools[upkeep] = ThreadPoolExecutor(
            max_workers=1 if upkeep else threads,
            thread_name_prefix="salon-db-upkeep" if upkeep else "salon-db",
        )
    return pool


def db_call(func, *, upkeep: bool = False):
    """``await db_call(func)(*args)``: like ``database_sync_to_async``, on the pool if any."""

    @functools.wraps(func)
    async def run(*args, **kwargs):
        executor = _executor(upkeep)
        if executor is None:
            return await database_sync_to_async(func)(*args, **kwargs)
        call = database_sync_to_async(func, thread_sensitive=False, executor=executor)
        return await call(*args, **kwargs)

    return run


def close_pool() -> None:
    """Close every pool thread's connections and stop the pools (tests, between test cases).
    New pools start with the next call."""
    pools = list(_pools.values())
    _pools.clear()
    for pool in pools:
        _close(pool)


def _close(pool: ThreadPoolExecutor) -> None:
    threads = len(pool._threads)
    if threads:
        # One task per thread: each holds its thread at the barrier until all are taken.
        barrier = threading.Barrier(threads)

        def close() -> None:
            try:
                barrier.wait(timeout=10)
            finally:
                connections.close_all()

        for future in [pool.submit(close) for _ in range(threads)]:
            future.exception(timeout=30)
    pool.shutdown(wait=True)

"""Database calls from async code (websocket consumers), off the event loop.

Channels' ``database_sync_to_async`` runs every call of the process on one thread, so a join
wave waits in one queue, mostly for PostgreSQL's answers: one daphne process took about 50
joins a second (``bench/bench_fanout.py``). With ``SALON_DB_THREADS`` > 0 (the default on
PostgreSQL) calls run on a small pool instead, each thread with its own persistent connection,
so their round trips overlap. One consumer still makes its calls one after another, so its
order is kept; rules that need more (a space's capacity, a ban racing a join) take row locks
in their service, as they must across processes anyway.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connections

_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor | None:
    global _pool
    threads = getattr(settings, "SALON_DB_THREADS", 0)
    if threads <= 0:
        return None
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="salon-db")
    return _pool


def db_call(func):
    """``await db_call(func)(*args)``: like ``database_sync_to_async``, on the pool if any."""

    @functools.wraps(func)
    async def run(*args, **kwargs):
        executor = _executor()
        if executor is None:
            return await database_sync_to_async(func)(*args, **kwargs)
        call = database_sync_to_async(func, thread_sensitive=False, executor=executor)
        return await call(*args, **kwargs)

    return run


def close_pool() -> None:
    """Close every pool thread's connections and stop the pool (tests, between test cases).
    A new pool starts with the next call."""
    global _pool
    pool, _pool = _pool, None
    if pool is None:
        return
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

"""What a join shares with the other joins of its process: the line it waits in and the room.

``JoinGate``: a process works on at most ``SALON_JOIN_CONCURRENCY`` joins at once and lets
``SALON_JOIN_QUEUE`` more wait; a join beyond both is refused at once with how long to wait
(close 1013, "retry after N s", docs/protocol.md), so a wave never slows the room it joins.

``SnapshotCache``: the room's snapshot (selectors.SharedSnapshot), loaded once per room
version and second by the first joiner that needs it; the joiners that come while it loads
wait for that one load.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import weakref

from django.conf import settings

from config.db import db_call

from ..selectors import SHARED_SNAPSHOT_SECONDS, SharedSnapshot, space_snapshot_shared

# A join refused for a full line waits at least this long, and at most the other.
RETRY_AFTER_MIN = 1
RETRY_AFTER_MAX = 30


class JoinsBusy(Exception):
    """The process's join line is full: the client comes back after ``retry_after`` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class JoinGate:
    def __init__(self, *, concurrency: int, queue: int) -> None:
        self.concurrency = max(1, concurrency)
        self.queue = max(0, queue)
        self._slots = asyncio.Semaphore(self.concurrency)
        self.active = 0
        self.waiting = 0
        self.refused = 0
        # Recent seconds per join (moving average): how fast the line moves.
        self.join_seconds = 0.01

    def retry_after(self) -> int:
        """Seconds until the line as it stands now has been worked through."""
        backlog = (self.waiting + self.active + 1) * self.join_seconds / self.concurrency
        return min(RETRY_AFTER_MAX, max(RETRY_AFTER_MIN, math.ceil(backlog)))

    @contextlib.asynccontextmanager
    async def admit(self):
        """Hold one of the process's join slots for the block; raises ``JoinsBusy``."""
        if self.active >= self.concurrency and self.waiting >= self.queue:
            self.refused += 1
            raise JoinsBusy(self.retry_after())
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.active += 1
        started = time.monotonic()
        try:
            yield
        finally:
            self.active -= 1
            self._slots.release()
            self.join_seconds += 0.1 * (time.monotonic() - started - self.join_seconds)


class SnapshotCache:
    def __init__(self) -> None:
        self.rooms: dict[int, tuple[object, SharedSnapshot]] = {}
        self._loading: dict[tuple[int, object], asyncio.Future] = {}
        self.loads = 0

    async def get(self, *, space_id: int, version) -> SharedSnapshot:
        """The room at ``version`` (read from the cache *before* calling: a change during the
        load then shows as a newer version to the next joiner)."""
        entry = self.rooms.get(space_id)
        if (
            entry is not None
            and entry[0] == version
            and time.monotonic() - entry[1].loaded_at < SHARED_SNAPSHOT_SECONDS
        ):
            return entry[1]
        key = (space_id, version)
        loading = self._loading.get(key)
        if loading is None:
            loading = self._loading[key] = asyncio.ensure_future(self._load(space_id, version))
        return await asyncio.shield(loading)

    async def _load(self, space_id: int, version) -> SharedSnapshot:
        try:
            shared = await db_call(space_snapshot_shared)(space_id=space_id)
            self.loads += 1
            if len(self.rooms) > 1000:
                self.rooms.clear()
            self.rooms[space_id] = (version, shared)
            return shared
        finally:
            self._loading.pop((space_id, version), None)


_gates: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_snapshots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def join_gate() -> JoinGate:
    """This process's gate (one per event loop, so tests with a loop each start afresh)."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = JoinGate(
            concurrency=settings.SALON_JOIN_CONCURRENCY, queue=settings.SALON_JOIN_QUEUE
        )
    return gate


def snapshot_cache() -> SnapshotCache:
    loop = asyncio.get_running_loop()
    cache = _snapshots.get(loop)
    if cache is None:
        cache = _snapshots[loop] = SnapshotCache()
    return cache

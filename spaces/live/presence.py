"""The audience of a big room, told in digests: at most one ``audience.changed`` a second.

A listener joining or leaving used to be a channel-layer event to every member, so a wave of
N joins cost N² messages, and a room stalled at a few hundred listeners. Now the services send
each listener change to the space's *presence group*, which holds one channel per server
process, not one per socket. This process gathers the changes for each room it has sockets in
and, at most once a second, sends its sockets one digest: the listener and participant counts
(counted in the database, so the figure is exact whichever process saw which change), and who
came and went since the last one, capped. Stage changes, raised hands and removals still travel
as events of their own (services._broadcast), as they are rare and every member needs them.

The digest goes out through the fan-out (spaces/live/fanout.py): framed once, written to each local
socket; a congested socket may miss one, and the next carries the right counts again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from config.db import db_call

logger = logging.getLogger(__name__)

DIGEST_INTERVAL = 1.0
# Who came and went is a sample for the audience list; the counts are always exact.
DIGEST_MAX_JOINED = 50
DIGEST_MAX_LEFT = 200


@dataclass
class _Pending:
    joined: dict[int, dict] = field(default_factory=dict)
    left: set[int] = field(default_factory=set)
    flush: asyncio.TimerHandle | None = None
    last_flush: float = float("-inf")


def _load_counts(space_id: int) -> dict[str, int]:
    from ..selectors import participant_counts

    return participant_counts(space_id=space_id)


class AudiencePresence:
    """One per process (owned by the media plane); lives on the event loop of the sockets."""

    def __init__(
        self,
        *,
        deliver_text: Callable[[int, str], None],
        load_counts: Callable[[int], dict[str, int]] = _load_counts,
        interval: float = DIGEST_INTERVAL,
    ) -> None:
        self.deliver_text = deliver_text
        self.load_counts = load_counts
        self.interval = interval
        self.rooms: dict[int, _Pending] = {}
        self.channel: str | None = None
        self.layer = None
        self._reader: asyncio.Task | None = None
        self.changes_seen = 0
        self.digests_sent = 0

    async def start(self) -> None:
        from channels.layers import get_channel_layer

        self.layer = get_channel_layer()
        self.channel = await self.layer.new_channel("presence.")
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def stop(self) -> None:
        for space_id in list(self.rooms):
            await self.unwatch(space_id)
        if self._reader is not None:
            self._reader.cancel()

    async def watch(self, space_id: int) -> None:
        """This process has sockets in the room: receive its audience changes."""
        if space_id in self.rooms or self.layer is None:
            return
        from ..services import presence_group

        self.rooms[space_id] = _Pending()
        await self.layer.group_add(presence_group(space_id), self.channel)

    async def unwatch(self, space_id: int) -> None:
        pending = self.rooms.pop(space_id, None)
        if pending is None:
            return
        if pending.flush is not None:
            pending.flush.cancel()
        from ..services import presence_group

        await self.layer.group_discard(presence_group(space_id), self.channel)

    async def _read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("presence: receiving failed")
                await asyncio.sleep(1)
                continue
            self.note(message)

    def note(self, message: dict) -> None:
        """One change from services._audience_change; the digest follows within a second."""
        space_id = message.get("space_id")
        pending = self.rooms.get(space_id)
        if pending is None:
            return
        self.changes_seen += 1
        for joined in [message["joined"]] if message.get("joined") else []:
            pending.left.discard(joined["user_id"])
            pending.joined[joined["user_id"]] = joined
        for joined in message.get("joined_many") or ():  # a batch (ListenerBatch)
            pending.left.discard(joined["user_id"])
            pending.joined[joined["user_id"]] = joined
        if message.get("left") is not None:
            pending.joined.pop(message["left"], None)
            pending.left.add(message["left"])
        if pending.flush is None:
            loop = asyncio.get_running_loop()
            wait = max(0.0, pending.last_flush + self.interval - loop.time())
            pending.flush = loop.call_later(wait, self._schedule_flush, space_id)

    def _schedule_flush(self, space_id: int) -> None:
        asyncio.get_running_loop().create_task(self._flush(space_id))

    async def _flush(self, space_id: int) -> None:
        pending = self.rooms.get(space_id)
        if pending is None:
            return
        # Changes that arrive while counting wait for the next digest.
        joined, left = pending.joined, pending.left
        pending.joined, pending.left = {}, set()
        pending.last_flush = asyncio.get_running_loop().time()
        pending.flush = None
        try:
            counts = await db_call(self.load_counts, upkeep=True)(space_id)
        except Exception:
            logger.exception("presence: counting space %s failed", space_id)
            return
        event = {
            "type": "audience.changed",
            **counts,
            "joined": list(joined.values())[-DIGEST_MAX_JOINED:],
            "left": sorted(left)[:DIGEST_MAX_LEFT],
        }
        self.digests_sent += 1
        self.deliver_text(space_id, json.dumps(event))
        await self._tell_hallway(space_id, counts)

    async def _tell_hallway(self, space_id: int, counts: dict[str, int]) -> None:
        """Open hallways show the room's new count (``hallway.count`` on /ws/notifications/):
        at most once a second per room and process, as the digest."""
        from accounts.realtime import HALLWAY_GROUP

        try:
            await self.layer.group_send(
                HALLWAY_GROUP, {"type": "hallway.count", "space_id": space_id, **counts}
            )
        except Exception:  # the room's own digest went out; a hallway misses one count
            logger.exception("presence: telling the hallway about space %s failed", space_id)


class _RoomLoop:
    """A per-process loop that runs ``round()`` every ``interval`` while ``rooms`` has work,
    started on demand by ``_wake()`` (Heartbeats and ListenerBatch)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.rooms: dict = {}
        self._task: asyncio.Task | None = None

    def _wake(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while self.rooms:
            await asyncio.sleep(self.interval)
            await self.round()

    async def round(self) -> None:
        raise NotImplementedError


class Heartbeats(_RoomLoop):
    """One per process: keeps this process's participants fresh with one query per room.

    Each socket used to refresh its own participant every few seconds: 2,000 listeners made
    200 UPDATEs a second, all on the one thread Channels runs database calls on. Now each room
    costs one refresh per interval for all of this process's sockets in it. A socket whose
    participant is gone (the sweep removed it, e.g. while the database was out of reach) is
    told through its ``on_gone`` callback, so it can close and the client rejoin.
    """

    def __init__(self, *, interval: float, refresh: Callable[..., set[int]] | None = None):
        super().__init__(interval)
        self.refresh = refresh
        # space id → socket key → (user id, on_gone)
        self.rooms: dict[int, dict[str, tuple[int, Callable]]] = {}
        self.rounds = 0

    def add(self, space_id: int, key: str, user_id: int, on_gone: Callable) -> None:
        self.rooms.setdefault(space_id, {})[key] = (user_id, on_gone)
        self._wake()

    def remove(self, space_id: int, key: str) -> None:
        sockets = self.rooms.get(space_id)
        if sockets is not None:
            sockets.pop(key, None)
            if not sockets:
                del self.rooms[space_id]

    async def round(self) -> None:
        await self.beat()

    async def beat(self) -> None:
        """Refresh every room once (the loop calls this each interval; tests call it)."""
        if self.refresh is None:
            from ..services import participants_refresh

            self.refresh = participants_refresh
        self.rounds += 1
        for space_id, sockets in list(self.rooms.items()):
            # Only the sockets asked about: others may join while the query runs.
            asked = dict(sockets)
            try:
                present = await db_call(self.refresh, upkeep=True)(
                    space_id=space_id, user_ids={user_id for user_id, _ in asked.values()}
                )
            except Exception:  # a failed round must not close anyone; the next one retries
                logger.exception("presence: refreshing space %s failed", space_id)
                continue
            for key, (user_id, on_gone) in asked.items():
                if user_id not in present and sockets.get(key) is not None:
                    self.remove(space_id, key)
                    asyncio.get_running_loop().create_task(on_gone())


@dataclass
class _Join:
    space_id: int
    user_id: int
    on_admitted: Callable[[], None]
    on_refused: Callable[[Exception], None]


@dataclass
class _Batch:
    joins: dict[str, _Join] = field(default_factory=dict)  # socket key → join
    leaves: dict[int, int] = field(default_factory=dict)  # user id → sockets closed


class ListenerBatch(_RoomLoop):
    """One per process: the presence of sockets that joined with a listener ticket, written to
    the database in one transaction per room every ``interval`` (services.listeners_apply).

    A join wave used to be a transaction per socket on the database threads; now it is a few
    per second. A socket is *admitted* once its batch committed: only then is it refreshed by
    the heartbeats (which would take a row not written yet for a participant gone) and only
    then does its close count one connection less. The rules stay the database's: a member the
    batch refuses (banned since the ticket, space ended, full) has ``on_refused`` called.

    If the process dies, joins not written yet were never counted, and closes not written yet
    leave rows that no heartbeat refreshes any more: the sweep removes them as for any process
    that died (SALON_SPACE_STALE_SECONDS).
    """

    def __init__(self, *, interval: float, apply: Callable[..., dict] | None = None) -> None:
        super().__init__(interval)
        self.apply = apply
        self.rooms: dict[int, _Batch] = {}
        # Sockets whose join is being written, and those of them that closed meanwhile.
        self._writing: dict[str, _Join] = {}
        self._closed_while_writing: set[str] = set()
        self.batches_written = 0

    def join(
        self,
        *,
        space_id: int,
        user_id: int,
        key: str,
        on_admitted: Callable[[], None],
        on_refused: Callable[[Exception], None],
    ) -> None:
        self.rooms.setdefault(space_id, _Batch()).joins[key] = _Join(
            space_id, user_id, on_admitted, on_refused
        )
        self._wake()

    def leave(self, *, space_id: int, user_id: int, key: str) -> None:
        """The socket closed: one connection less, once its join has been written."""
        batch = self.rooms.get(space_id)
        if batch is not None and batch.joins.pop(key, None) is not None:
            return  # never written: nothing to take back
        if key in self._writing:
            self._closed_while_writing.add(key)
            return
        batch = self.rooms.setdefault(space_id, _Batch())
        batch.leaves[user_id] = batch.leaves.get(user_id, 0) + 1
        self._wake()

    async def round(self) -> None:
        await self.flush()

    async def flush(self) -> None:
        """Write every room's batch (the loop calls this each interval; tests call it)."""
        if self.apply is None:
            from ..services import listeners_apply

            self.apply = listeners_apply
        rooms, self.rooms = self.rooms, {}
        for space_id, batch in rooms.items():
            joins: dict[int, int] = {}
            for join in batch.joins.values():
                joins[join.user_id] = joins.get(join.user_id, 0) + 1
            self._writing.update(batch.joins)
            try:
                refused = await db_call(self.apply)(
                    space_id=space_id, joins=joins, leaves=batch.leaves
                )
            except Exception as error:
                # The sockets whose join failed close (1011) and reconnect; closes not written
                # are the sweep's, as after a crash (see the class docstring).
                logger.exception("presence: writing listeners of space %s failed", space_id)
                refused = dict.fromkeys(joins, error)
            self.batches_written += 1
            for key, join in batch.joins.items():
                del self._writing[key]
                closed = key in self._closed_while_writing
                self._closed_while_writing.discard(key)
                if join.user_id in refused:
                    if not closed:
                        join.on_refused(refused[join.user_id])
                elif closed:
                    self.leave(space_id=space_id, user_id=join.user_id, key=key)
                else:
                    join.on_admitted()


_batches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def listener_batch() -> ListenerBatch:
    """This process's batch (one per event loop, so tests with a loop each start afresh)."""
    from django.conf import settings

    loop = asyncio.get_running_loop()
    batch = _batches.get(loop)
    if batch is None:
        batch = _batches[loop] = ListenerBatch(interval=settings.SALON_LISTENER_BATCH_SECONDS)
    return batch

"""The media bus: how a room's audio crosses processes.

Two implementations of one small interface. :class:`LocalBus` is the embedded default: one
process, so publishing is a function call and every lease is granted. :class:`RedisBus` carries
frames between daphne processes with Redis pub/sub (one PUBLISH reaches every subscribed
process once) and elects each room's mixer with a lease (``SET NX PX``, renewed by its owner),
so exactly one process mixes a room and another takes over when the owner dies.

Audio does not go through the Channels layer: that layer delivers one message per consumer,
and its serialisation and per-channel bookkeeping cap a process at a few thousand messages per
second. Control events still use the channel layer's groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

logger = logging.getLogger(__name__)

Handler = Callable[[bytes], None]


class LocalBus:
    """Everything in one process (the embedded default and unit tests)."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._leases: dict[str, str] = {}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self._handlers.clear()

    async def publish(self, channel: str, data: bytes) -> None:
        self.publish_nowait(channel, data)

    def publish_nowait(self, channel: str, data: bytes) -> None:
        handler = self._handlers.get(channel)
        if handler is not None:
            handler(data)

    async def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers[channel] = handler

    async def unsubscribe(self, channel: str) -> None:
        self._handlers.pop(channel, None)

    async def hold_lease(self, key: str, owner: str, ttl_ms: int) -> bool:
        holder = self._leases.setdefault(key, owner)
        return holder == owner

    async def release_lease(self, key: str, owner: str) -> None:
        if self._leases.get(key) == owner:
            del self._leases[key]


# Take the lease if free, or extend it if we hold it; never take it from a live owner.
_HOLD_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


# Messages waiting to be published; past this (Redis unreachable or slow) the oldest go.
OUTBOX_LIMIT = 5000
PUBLISH_BATCH = 200


class RedisBus:
    """Pub/sub and leases on Redis, surviving a Redis restart by reconnecting and resubscribing.

    Publishing keeps order: one task drains an outbox through one pipelined connection. (A
    task per message would take connections from the pool in parallel, and Redis would see
    the frames of one room out of order.)
    """

    def __init__(self, url: str, *, prefix: str = "salon:media:") -> None:
        import redis.asyncio as redis

        self.prefix = prefix
        self._redis = redis.Redis.from_url(url, health_check_interval=10)
        self._handlers: dict[str, Handler] = {}
        self._pubsub = None
        self._reader: asyncio.Task | None = None
        self._publisher: asyncio.Task | None = None
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._outbox_ready = asyncio.Event()
        self._changed = asyncio.Event()
        self._hold = self._redis.register_script(_HOLD_LEASE)
        self._release = self._redis.register_script(_RELEASE_LEASE)
        self.reconnects = 0
        self.publish_errors = 0
        self.publish_dropped = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read_forever())
        self._publisher = loop.create_task(self._publish_forever())

    async def stop(self) -> None:
        for task in (self._reader, self._publisher):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._redis.aclose()

    async def publish(self, channel: str, data: bytes) -> None:
        self.publish_nowait(channel, data)

    def publish_nowait(self, channel: str, data: bytes) -> None:
        if len(self._outbox) >= OUTBOX_LIMIT:
            # Audio is live: a frame that cannot be sent now is worthless later.
            self._outbox.popleft()
            self.publish_dropped += 1
        self._outbox.append((self.prefix + channel, data))
        self._outbox_ready.set()

    async def _publish_forever(self) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                batch = [
                    self._outbox.popleft() for _ in range(min(PUBLISH_BATCH, len(self._outbox)))
                ]
                try:
                    pipe = self._redis.pipeline(transaction=False)
                    for channel, data in batch:
                        pipe.publish(channel, data)
                    await pipe.execute()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.publish_errors += len(batch)
                    logger.warning("media bus: publish failed (Redis down?)", exc_info=True)
                    await asyncio.sleep(0.1)

    async def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers[self.prefix + channel] = handler
        await self._sync_subscriptions()

    async def unsubscribe(self, channel: str) -> None:
        if self._handlers.pop(self.prefix + channel, None) is not None:
            await self._sync_subscriptions()

    async def hold_lease(self, key: str, owner: str, ttl_ms: int) -> bool:
        try:
            return bool(await self._hold(keys=[self.prefix + key], args=[owner, ttl_ms]))
        except Exception:
            logger.warning("media bus: could not renew lease %s", key, exc_info=True)
            return False

    async def release_lease(self, key: str, owner: str) -> None:
        try:
            await self._release(keys=[self.prefix + key], args=[owner])
        except Exception:
            logger.warning("media bus: could not release lease %s", key, exc_info=True)

    async def _sync_subscriptions(self) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return  # the reader subscribes everything when it (re)connects
        try:
            wanted = set(self._handlers)
            current = {c.decode() if isinstance(c, bytes) else c for c in pubsub.channels}
            if wanted - current:
                await pubsub.subscribe(*(wanted - current))
            if current - wanted:
                await pubsub.unsubscribe(*(current - wanted))
        except Exception:
            logger.warning("media bus: subscription change failed; reconnecting", exc_info=True)
            self._changed.set()

    async def _read_forever(self) -> None:
        backoff = 0.1
        while True:
            try:
                self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                # A pub/sub connection with no channel returns nothing; keep one always.
                await self._pubsub.subscribe(self.prefix + "_alive")
                if self._handlers:
                    await self._pubsub.subscribe(*self._handlers)
                backoff = 0.1
                while not self._changed.is_set():
                    message = await self._pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    channel = message["channel"]
                    channel = channel.decode() if isinstance(channel, bytes) else channel
                    handler = self._handlers.get(channel)
                    if handler is not None:
                        try:
                            handler(message["data"])
                        except Exception:
                            logger.exception("media bus: handler for %s failed", channel)
                self._changed.clear()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.reconnects += 1
                logger.warning("media bus: Redis connection lost; reconnecting", exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                pubsub, self._pubsub = self._pubsub, None
                if pubsub is not None:
                    # The connection may already be gone; closing is best effort.
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()

"""Fixtures for the hostile-input suite: a live room that must keep working whatever one
member throws at it."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import pytest

from tests.spaces.conftest import sockets  # noqa: F401 - the fixture, shared with spaces tests


@pytest.fixture
def alice():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(
        username="alice", password="x-pass-12345", invitations_left=10
    )


@pytest.fixture
def bob(alice):
    """Alice's mutual follower: they may send each other voice messages."""
    from django.contrib.auth import get_user_model

    from accounts.models import Follow

    bob = get_user_model().objects.create_user(username="bob", password="x-pass-12345")
    Follow.objects.create(follower=alice, followee=bob)
    Follow.objects.create(follower=bob, followee=alice)
    return bob


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Throttle and reaction counters live in the shared Redis cache; each test starts at zero."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@dataclass
class Room:
    space: object
    host: object
    host_socket: object
    listener: object
    listener_socket: object

    async def still_works(self, frames: int = 5, timeout: float = 15) -> None:
        """The listener hears the host again: ``frames`` new audio frames reach them."""
        from .helpers import await_audio

        await await_audio(self.listener_socket, frames, timeout=timeout)


@pytest.fixture
async def live_room(sockets):  # noqa: F811 - the imported fixture
    """A live space: the host unmuted and talking (a 440 Hz tone, in real time) and a listener."""
    from asgiref.sync import sync_to_async

    from tests.spaces.factories import make_live_space, make_member

    from .helpers import talk_forever

    host = await sync_to_async(make_member)("hana", host=True)
    space = await sync_to_async(make_live_space)(host)
    host_socket = await sockets.open(space.pk, host)
    await host_socket.send({"type": "mute.set", "muted": False})
    await host_socket.receive_type("mute.changed", user_id=host.pk)
    listener = await sync_to_async(make_member)("leo")
    listener_socket = await sockets.open(space.pk, listener)
    talking = asyncio.create_task(talk_forever(host_socket))
    room = Room(space, host, host_socket, listener, listener_socket)
    await room.still_works()
    yield room
    talking.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await talking

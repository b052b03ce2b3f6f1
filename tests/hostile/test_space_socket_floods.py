"""Floods and failures on the space socket stay with the socket that caused them.

Audio floods (1008) and oversized frames (1009) are pinned in
``tests/spaces/test_audio_transport.py`` and, through daphne, ``tests/spaces/test_audio_live.py``.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError

from spaces import services
from spaces.models import Participant
from tests.spaces.factories import make_member

from .helpers import probe

pytestmark = pytest.mark.django_db(transaction=True)

FLOOD = 300


def _hand_toggles():
    for index in range(FLOOD):
        yield {"type": "hand.raise" if index % 2 == 0 else "hand.lower"}


def _junk():
    for index in range(FLOOD):
        yield "not json" if index % 2 else {"type": "no.such.thing", "request_id": index}


@pytest.mark.parametrize("messages", [_hand_toggles, _junk], ids=["hand-toggles", "junk"])
async def test_a_message_flood_is_cut_off_and_reaches_nobody_else(
    live_room, sockets, settings, messages
):
    """A listener sending hundreds of messages at once is closed with 1008; at most a burst's
    worth of them ever became events for the others, and the room plays on."""
    mallory = await sync_to_async(make_member)("mallory")
    hostile = await sockets.open(live_room.space.pk, mallory)

    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(30):  # the flood's audio keeps coming: bound the wait for a close
        for message in messages():
            if isinstance(message, str):
                await hostile.communicator.send_to(text_data=message)
            else:
                await hostile.send(message)
        closed = await hostile.receive_close()
    lasted = loop.time() - started
    # A marker after the flood: once the listener has it, every event the flood caused is in.
    await live_room.host_socket.send({"type": "recording.set", "is_recording": True})
    seen = []
    while (event := await live_room.listener_socket.receive())["type"] != "recording.changed":
        seen.append(event)

    assert (closed["code"], closed["reason"]) == (1008, "too many messages")
    from_mallory = [e for e in seen if e.get("user_id") == mallory.pk]
    # The bucket: a burst, plus what refilled while the flood lasted.
    allowed = settings.SALON_SPACE_MESSAGE_BURST + settings.SALON_SPACE_MESSAGES_PER_SECOND * lasted
    assert len(from_mallory) <= allowed < FLOOD / 2
    await live_room.still_works()


def _connection_count(space, member) -> int:
    return Participant.objects.get(space=space, user=member).connection_count


async def test_a_command_that_fails_inside_answers_internal_and_the_socket_lives_on(
    live_room, sockets, monkeypatch
):
    """The database out of reach in the middle of a command: the sender gets an ``internal``
    error, the socket keeps working, and closing it still counts the member out."""

    def unreachable(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    mallory = await sync_to_async(make_member)("mallory")
    hostile = await sockets.open(live_room.space.pk, mallory)
    monkeypatch.setattr(services, "hand_raise", unreachable)

    await hostile.send({"type": "hand.raise", "request_id": "r1"})
    error = await hostile.receive_type("error", request_id="r1")

    assert error["code"] == "internal"
    assert "answered" in await probe(hostile, "after")
    await live_room.still_works()
    await hostile.communicator.disconnect()
    assert await sync_to_async(_connection_count)(live_room.space, mallory) == 0


async def test_deeply_nested_json_is_malformed_not_fatal(live_room, sockets):
    """JSON nested deeper than the decoder's stack is answered as malformed (it used to raise
    RecursionError and kill the consumer, leaving its participant counted for ever)."""
    mallory = await sync_to_async(make_member)("mallory")
    hostile = await sockets.open(live_room.space.pk, mallory)

    await hostile.communicator.send_to(text_data="[" * 10_000 + "]" * 10_000)
    error = await hostile.receive_type("error")

    assert error["code"] == "malformed"
    assert "answered" in await probe(hostile, "after")
    await hostile.communicator.disconnect()
    assert await sync_to_async(_connection_count)(live_room.space, mallory) == 0

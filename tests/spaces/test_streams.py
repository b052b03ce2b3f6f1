"""A speaker's stream per connection: reconnects, unmutes and a second tab, on the wire.

Two levels. The media plane with a fake clock (one frame in, one tick, as test_media.py does)
measures from the listener's room-mix frames how many ticks pass between a new stream's first
frame and its first sound in the mix. The space socket (WebsocketCommunicator, the mixer on its
real clock) shows the same behaviour end to end: frames in the wire format, mix frames out.
"""

import asyncio
import random

import numpy as np
import pytest
from asgiref.sync import sync_to_async

from spaces.audio import wire
from spaces.audio.codec import FRAME_SAMPLES

from .audio import signals
from .factories import make_live_space, make_member
from .test_audio_transport import collect_audio, stream
from .test_media import Socket, local_plane, speaker_frames, tone_frames, until

UINT32 = 1 << 32
# 200 ms: a new stream must be in the mix within this many ticks of its first frame.
HEARD_WITHIN_TICKS = 10


def ticks_with(messages: list[bytes], frequency: float) -> list[int]:
    """The ticks (room-mix sequence numbers) whose 20 ms of mix is mostly ``frequency``."""
    frames = [wire.unpack(m) for m in messages]
    pcm = signals.decode([frame.payload for frame in frames])
    ticks = []
    for index, frame in enumerate(frames):
        chunk = pcm[index * FRAME_SAMPLES : (index + 1) * FRAME_SAMPLES]
        if signals.rms(chunk) > 1000 and signals.magnitude_at(chunk, frequency, within=40) > 0.5:
            ticks.append(frame.sequence)
    return ticks


def renumbered(frames: list[bytes], first_sequence: int) -> list[bytes]:
    """The same speaker frames, numbered from ``first_sequence`` (uint32, wrapping)."""
    out = []
    for index, data in enumerate(frames):
        frame = wire.unpack(data)
        sequence = (first_sequence + index) % UINT32
        out.append(wire.pack(frame.kind, sequence, sequence * FRAME_SAMPLES, frame.payload))
    return out


async def talk(plane, runner, space_id, key, frames) -> int:
    """One frame per tick from socket ``key``; returns the tick of the first frame."""
    first_tick = plane.rooms[space_id].mixer.tick_count
    for frame in frames:
        plane.speaker_frame(space_id, key, frame)
        runner.run_ticks(1)
        await asyncio.sleep(0)
    return first_tick


async def silence(runner, ticks: int) -> None:
    for _ in range(ticks):
        runner.run_ticks(1)
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    "first_sequence",
    [0, random.Random(1616).randrange(UINT32), UINT32 - 2, 200],
    ids=["from-zero", "random", "across-the-wrap", "just-behind"],
)
async def test_a_speaker_who_reconnects_is_heard_from_the_first_frame(first_sequence):
    """5 s of talk on one socket, which closes; the member's new socket sends from any
    sequence: every frame is mixed, the first within 200 ms (counted in mix ticks)."""
    plane, runner, _clock = await local_plane()
    listener = Socket()
    await plane.attach(1, "old", Socket(), user_id=10, publishing=True)
    await plane.attach(1, "l", listener, user_id=20, publishing=False)
    await until(lambda: plane.rooms[1].owner)
    await talk(plane, runner, 1, "old", tone_frames(440, 250))
    await plane.detach(1, "old")
    await silence(runner, 25)

    await plane.attach(1, "new", Socket(), user_id=10, publishing=True)
    new_stream = renumbered(speaker_frames((660, 100)), first_sequence)
    first_tick = await talk(plane, runner, 1, "new", new_stream)
    await silence(runner, 5)

    heard = ticks_with(listener.messages, 660)
    assert heard and heard[0] - first_tick <= HEARD_WITHIN_TICKS
    assert len(heard) >= 98  # every frame (Opus's onset aside)
    stats = plane.rooms[1].mixer.stats()
    assert stats.dropped_late == stats.dropped_old_stream == 0
    await plane.stop()


async def test_unmute_after_mute_starts_a_new_stream_heard_at_once():
    """Mute, then unmute on the same socket with a sender that numbers from 0 again."""
    plane, runner, _clock = await local_plane()
    listener = Socket()
    await plane.attach(1, "s", Socket(), user_id=10, publishing=True)
    await plane.attach(1, "l", listener, user_id=20, publishing=False)
    await until(lambda: plane.rooms[1].owner)
    await talk(plane, runner, 1, "s", tone_frames(440, 150))
    await plane.set_publishing(1, "s", user_id=10, publishing=False)
    await silence(runner, 20)

    await plane.set_publishing(1, "s", user_id=10, publishing=True)
    first_tick = await talk(plane, runner, 1, "s", speaker_frames((660, 60)))

    heard = ticks_with(listener.messages, 660)
    assert heard and heard[0] - first_tick <= HEARD_WITHIN_TICKS
    assert len(heard) >= 58


async def test_a_newer_socket_takes_the_stream_and_the_older_ones_frames_are_dropped():
    """Two sockets of one member send at once: once the newer one starts its stream, only
    it is mixed, and the older one's frames (still in flight, then cut) never are."""
    plane, runner, _clock = await local_plane()
    listener = Socket()
    await plane.attach(1, "tab1", Socket(), user_id=10, publishing=True)
    await plane.attach(1, "l", listener, user_id=20, publishing=False)
    await until(lambda: plane.rooms[1].owner)
    await talk(plane, runner, 1, "tab1", tone_frames(440, 100))

    await plane.attach(1, "tab2", Socket(), user_id=10, publishing=True)
    first_tick = plane.rooms[1].mixer.tick_count
    old, new = tone_frames(880, 160)[100:], speaker_frames((660, 60))
    for index, frame in enumerate(new):
        plane.speaker_frame(1, "tab1", old[index])  # the older tab is still talking
        plane.speaker_frame(1, "tab2", frame)
        if index == 5:
            await plane.end_stream(1, "tab1")  # ...until it is told
        runner.run_ticks(1)
        await asyncio.sleep(0)

    heard = ticks_with(listener.messages, 660)
    assert heard and heard[0] - first_tick <= HEARD_WITHIN_TICKS
    assert ticks_with(listener.messages, 880) == []
    assert plane.rooms[1].mixer.stats().dropped_old_stream == 6  # in flight until the end
    await plane.stop()


# --- On the space socket ---------------------------------------------------------------------


@pytest.fixture
async def stage(sockets):
    host = await sync_to_async(make_member)("host", host=True)
    space = await sync_to_async(make_live_space)(host)
    listener = await sync_to_async(make_member)("listener")
    host_socket = await sockets.open(space.pk, host)
    await host_socket.send({"type": "mute.set", "muted": False})
    await host_socket.receive_type("mute.changed", user_id=host.pk)
    listener_socket = await sockets.open(space.pk, listener)
    return space, host, host_socket, listener_socket


def heard_frames(messages: list[bytes], frequency: float) -> int:
    return len(ticks_with(messages, frequency))


@pytest.mark.django_db(transaction=True)
async def test_the_host_reconnects_and_is_heard_again(stage, sockets):
    """The host talks, the socket goes, a new one sends from sequence 0: the listener hears
    the new stream's 660 Hz, all of it (it used to hear none: "late frames")."""
    space, host, host_socket, listener_socket = stage
    await stream(host_socket, tone_frames(440, 75))
    await collect_audio(listener_socket, 40)
    await host_socket.disconnect()

    again = await sockets.open(space.pk, host)
    assert again.snapshot["you"]["is_muted"] is False  # the participant stayed: same state
    before = len(listener_socket.audio)
    await stream(again, speaker_frames((660, 50)))
    await collect_audio(listener_socket, before + 45)
    await listener_socket.drain(timeout=0.5)

    assert heard_frames(listener_socket.audio[before:], 660) >= 45


@pytest.mark.django_db(transaction=True)
async def test_the_host_mutes_unmutes_and_is_heard_from_a_restarted_sequence(stage):
    """Unmuting is a new stream: a client that numbers from 0 again after the unmute (as a
    fresh encoder would) is heard from its first frames, not refused as late."""
    _space, host, host_socket, listener_socket = stage
    await stream(host_socket, tone_frames(440, 75))
    await collect_audio(listener_socket, 40)
    await host_socket.send({"type": "mute.set", "muted": True})
    await host_socket.receive_type("mute.changed", user_id=host.pk, is_muted=True)
    await host_socket.send({"type": "mute.set", "muted": False})
    await host_socket.receive_type("mute.changed", user_id=host.pk, is_muted=False)
    await listener_socket.drain(timeout=0.5)
    before = len(listener_socket.audio)

    await stream(host_socket, speaker_frames((660, 50)))
    await collect_audio(listener_socket, before + 45)
    await listener_socket.drain(timeout=0.5)

    assert heard_frames(listener_socket.audio[before:], 660) >= 45


@pytest.mark.django_db(transaction=True)
async def test_the_newest_tab_speaks_and_the_older_one_is_told(stage, sockets):
    """A second tab of the host joins: the first gets stream.superseded and its frames are
    refused; the listener hears the new tab's 660 Hz and never the old tab's 880 Hz."""
    space, host, host_socket, listener_socket = stage
    await stream(host_socket, tone_frames(440, 40))
    second_tab = await sockets.open(space.pk, host)
    await host_socket.receive_type("stream.superseded")
    before = len(listener_socket.audio)

    old_tab = asyncio.ensure_future(stream(host_socket, tone_frames(880, 50)))
    await stream(second_tab, speaker_frames((660, 50)))
    await old_tab
    error = await host_socket.receive_type("error", code="not_publishing")
    await collect_audio(listener_socket, before + 45)
    await listener_socket.drain(timeout=0.5)

    assert "newer connection" in error["message"]
    heard = listener_socket.audio[before:]
    assert heard_frames(heard, 660) >= 45
    assert heard_frames(heard, 880) == 0
    newest_was_told = [e for e in await second_tab.drain() if e["type"] == "stream.superseded"]
    assert newest_was_told == []
    await host_socket.send({"type": "reaction.send", "emoji": "👏"})  # the older tab still
    await host_socket.receive_type("reaction", user_id=host.pk)  # talks to the server


def test_ticks_with_finds_a_tone_by_frame():
    """The helper's own check: a 660 Hz stretch inside 440 Hz is found where it is."""
    pcm = np.concatenate([signals.sine(440, 20), signals.sine(660, 10), signals.sine(440, 20)])
    packets = signals.encode(pcm)
    messages = [
        wire.pack(wire.FrameKind.ROOM_MIX, tick, tick * FRAME_SAMPLES, packet)
        for tick, packet in enumerate(packets)
    ]
    assert ticks_with(messages, 660) == list(range(20, 30))

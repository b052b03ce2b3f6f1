"""Audio through the space socket: who may publish, limits, and what listeners hear."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from spaces.audio import FRAME_SECONDS, FakeClock, MixerRunner, wire
from spaces.live import media
from spaces.live.bus import LocalBus
from spaces.live.media import current_media_plane

from .audio.signals import amplitude_at
from .factories import make_live_space, make_member, put_on_stage
from .test_media import (
    decode_mix,
    dominant_frequency,
    energy_near,
    tone_correlation,
    tone_frames,
    tone_pcm,
    until,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def stream(socket, frames, *, period: float = 0.02) -> None:
    """Send frames at about real time, as a microphone would (the mixer runs on a real clock)."""
    for frame in frames:
        await socket.communicator.send_to(bytes_data=frame)
        await asyncio.sleep(period)


async def collect_audio(socket, count: int, timeout: float = 10) -> list[bytes]:
    """Read until ``count`` audio frames arrived (JSON events are checked and kept aside)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(socket.audio) < count:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"only {len(socket.audio)} audio frames arrived")
        try:
            await socket.receive(timeout=remaining)
        except TimeoutError:
            continue
    return socket.audio


@pytest.fixture
async def room(sockets):
    host = await sync_to_async(make_member)("host", host=True)
    space = await sync_to_async(make_live_space)(host)
    host_socket = await sockets.open(space.pk, host)
    await host_socket.send({"type": "mute.set", "muted": False})
    await host_socket.receive_type("mute.changed", user_id=host.pk)
    return space, host, host_socket


async def test_listener_hears_the_host(room, sockets):
    """The host's 440 Hz reaches a listener as room-mix frames."""
    space, _host, host_socket = room
    listener = await sync_to_async(make_member)("listener")
    listener_socket = await sockets.open(space.pk, listener)

    await stream(host_socket, tone_frames(440, 75))
    frames = await collect_audio(listener_socket, 40)

    assert all(wire.unpack(f).kind == wire.FrameKind.ROOM_MIX for f in frames)
    assert dominant_frequency(frames[-25:]) == pytest.approx(440, abs=15)


async def test_listener_frames_are_dropped(room, sockets):
    """A listener's audio goes nowhere; the server says so (once), and nobody hears it."""
    space, _host, host_socket = room
    listener = await sync_to_async(make_member)("sneaky")
    listener_socket = await sockets.open(space.pk, listener)

    await stream(listener_socket, tone_frames(660, 40))
    error = await listener_socket.receive_type("error", code="not_publishing")

    assert "not on stage" in error["message"]
    assert [e for e in await listener_socket.drain() if e["type"] == "error"] == []
    assert host_socket.audio == [] and listener_socket.audio == []  # nothing was mixed
    assert current_media_plane().stats()["frames_dropped"] == 40  # and /healthz counts them


async def test_moving_a_speaker_to_listeners_stops_their_audio(room, sockets):
    """After a demotion the speaker's frames are refused and listeners stop hearing them."""
    space, host, host_socket = room
    speaker = await sync_to_async(make_member)("speaker")
    listener = await sync_to_async(make_member)("listener")
    speaker_socket = await sockets.open(space.pk, speaker)
    listener_socket = await sockets.open(space.pk, listener)
    await sync_to_async(put_on_stage)(space, host, speaker, "speaker")
    await speaker_socket.receive_type("role.changed", user_id=speaker.pk, role="speaker")
    await speaker_socket.send({"type": "mute.set", "muted": False})
    await speaker_socket.receive_type("mute.changed", user_id=speaker.pk)
    await stream(speaker_socket, tone_frames(660, 50))
    heard = await collect_audio(listener_socket, 30)
    assert energy_near(heard[-20:], 660) > 0.5

    await host_socket.send({"type": "speaker.move_to_listeners", "user_id": speaker.pk})
    await speaker_socket.receive_type("role.changed", user_id=speaker.pk, role="listener")
    before = len(listener_socket.audio)

    # Another tone after the demotion: the first one's tail may still play out, this one not.
    await stream(speaker_socket, tone_frames(880, 50))
    await speaker_socket.receive_type("error", code="not_publishing")
    await listener_socket.drain(timeout=1.0)

    # Had any of those frames reached the mixer, listeners would hear 880 Hz (sent at 9,830).
    after = listener_socket.audio[before:]
    assert not after or amplitude_at(decode_mix(after), 880) < 300


async def test_oversized_audio_frame_closes_with_1009(room):
    """A binary message larger than one Opus frame can be is refused: close 1009."""
    _space, _host, host_socket = room

    await host_socket.communicator.send_to(bytes_data=b"\x01" + b"\x00" * 4000)
    closed = await host_socket.receive_close()

    assert closed["code"] == 1009
    assert closed["reason"] == "audio frame too large"


async def test_flooding_speaker_is_cut_off(room):
    """Far more frames than real time allows: the socket is closed (1008), the room goes on."""
    _space, _host, host_socket = room

    for frame in tone_frames(440, 200):
        await host_socket.communicator.send_to(bytes_data=frame)
    closed = await host_socket.receive_close()

    assert closed["code"] == 1008
    assert closed["reason"] == "too many audio frames"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x01\x00\x00", "truncated"),
        (b"\x07" + b"\x00" * 9 + b"\xf8", "kind"),
        (b"\x02" + b"\x00" * 9 + b"\xf8", "kind 1"),
        (b"\x01" + b"\x00" * 9, "payload"),
    ],
)
async def test_malformed_frames_get_an_error_and_the_socket_lives_on(room, data, reason):
    """Truncated headers, unknown kinds, empty payloads: an error event, then business as usual."""
    _space, _host, host_socket = room

    await host_socket.communicator.send_to(bytes_data=data)
    error = await host_socket.receive_type("error", code="bad_audio_frame")
    await host_socket.send({"type": "hand.raise"})  # still talking to the server

    assert reason in error["message"]
    assert (await host_socket.receive_type("error"))["code"] != "bad_audio_frame"


async def test_audio_never_waits_for_the_database_thread(room, sockets):
    """While the one thread that runs the ORM is busy (a wave of joins, heartbeats), the host's
    frames still reach the mixer and the listener: a frame used to queue behind the database
    work before the consumer even looked at it, then arrived in a burst that the flood limit
    took for abuse (1008), cutting the host off."""
    import threading

    space, _host, host_socket = room
    listener = await sync_to_async(make_member)("listener")
    listener_socket = await sockets.open(space.pk, listener)
    release = threading.Event()
    busy = asyncio.ensure_future(sync_to_async(release.wait, thread_sensitive=True)(30))
    talking = asyncio.ensure_future(stream(host_socket, tone_frames(440, 100)))
    try:
        frames = await collect_audio(listener_socket, 40, timeout=15)
        assert not busy.done()  # all of that while the database thread was still held
    finally:
        release.set()
        await busy
        await talking
    assert dominant_frequency(frames[-25:]) == pytest.approx(440, abs=15)


@pytest.fixture
async def fake_clock_plane(monkeypatch, settings):
    """This process's media plane on a fake clock the test ticks, ready for every socket: the
    speaker is paced in media time, with no scheduler jitter in the timeline. Ask for it
    before ``sockets``, so the sockets close before it stops."""
    from spaces.selectors import space_publisher_ids

    clock = FakeClock()
    runner = MixerRunner(clock)
    plane = media.MediaPlane(
        bus=LocalBus(),
        runner=runner,
        publishers_loader=space_publisher_ids,
        presence=True,
        heartbeat_seconds=settings.SALON_SPACE_HEARTBEAT_SECONDS,
    )
    await plane.start()
    started = asyncio.get_running_loop().create_future()
    started.set_result(None)
    monkeypatch.setattr(media, "_plane", plane)
    monkeypatch.setattr(media, "_plane_started", started)
    yield plane, runner, clock
    await plane.stop()


async def test_a_first_talk_spurt_reaches_a_listener_whole(fake_clock_plane, sockets, settings):
    """Issue #16: a new room's first talk spurt lost a frame about a second in. The host's
    socket sends 3 s of 440 Hz into a new room, each frame 15 ms before a tick of the room's
    (fake) clock, as a real-time paced client does: the listener's socket receives all of it,
    the tone running on without the 20 ms jump a skipped frame leaves."""
    settings.SALON_AUDIO_BACKLOG_SECONDS = 60  # the fake clock paces this speaker, not wall time
    plane, runner, clock = fake_clock_plane
    host = await sync_to_async(make_member)("host", host=True)
    space = await sync_to_async(make_live_space)(host)
    host_socket = await sockets.open(space.pk, host)
    await host_socket.send({"type": "mute.set", "muted": False})
    await host_socket.receive_type("mute.changed", user_id=host.pk)
    listener_socket = await sockets.open(space.pk, await sync_to_async(make_member)("listener"))
    await until(lambda: space.pk in plane.rooms and plane.rooms[space.pk].owner)

    count = 150
    runner.run_ticks(1)  # the room's clock starts
    start = runner.tick_clock.start
    for tick, frame in enumerate(tone_frames(440, count), start=1):
        clock.time = start + tick * FRAME_SECONDS - 0.015
        frames_in = plane.frames_in
        await host_socket.communicator.send_to(bytes_data=frame)
        await until(lambda frames_in=frames_in: plane.frames_in > frames_in)
        published = plane.ticks_published
        runner.run_ticks(1)
        if plane.ticks_published > published:  # a silent room sends nothing
            # Read as it comes: outside daphne a listener's sink holds only a few frames.
            while wire.unpack(await listener_socket.receive_audio()).sequence < tick:
                pass

    assert tone_correlation(decode_mix(listener_socket.audio), tone_pcm(440, count)) > 0.99


class FakeWall:
    """The wall clock the speakers' flood limit reads, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def paced_room(monkeypatch, sockets):
    """The host on stage and unmuted, their flood limit on a wall clock the test moves."""
    from spaces import consumers

    wall = FakeWall()
    monkeypatch.setattr(consumers, "media_clock", wall)
    host = await sync_to_async(make_member)("host", host=True)
    space = await sync_to_async(make_live_space)(host)
    host_socket = await sockets.open(space.pk, host)
    await host_socket.send({"type": "mute.set", "muted": False})
    await host_socket.receive_type("mute.changed", user_id=host.pk)
    return space, host_socket, wall


def speaker_frame(sequence: int, *, step_samples: int = 960) -> bytes:
    """A 440 Hz frame numbered ``sequence``, its timestamp ``step_samples`` per frame."""
    payload = wire.unpack(_TONE[sequence % len(_TONE)]).payload
    timestamp = (sequence * step_samples) % wire.UINT32_MODULO
    return wire.pack(wire.FrameKind.SPEAKER_AUDIO, sequence, timestamp, payload)


_TONE = tone_frames(440, 50)


async def send_handled(space, socket, frame: bytes) -> bool:
    """Send one frame and wait until the consumer handled it: True if it reached the mixer,
    False if the socket was cut off from the room's audio instead (closed for abuse)."""
    plane = current_media_plane()
    before = plane.frames_in
    await socket.communicator.send_to(bytes_data=frame)
    await until(lambda: plane.frames_in > before or not plane.fanout.has_room(space.pk))
    return plane.frames_in > before


@pytest.mark.parametrize("stall", [2.0, 5.0])
async def test_seconds_of_delayed_honest_frames_are_accepted(paced_room, stall):
    """Issue #17: a stall delivers seconds of a speaker's frames at once. By their own numbers
    they are real-time audio, so the speaker stays connected and every frame reaches the mixer
    (the old limit, 60 frames a second in bursts of 150, closed the speaker after 3 s)."""
    space, host_socket, wall = paced_room
    for sequence in range(50):  # one second at real time
        assert await send_handled(space, host_socket, speaker_frame(sequence))
        wall.now += FRAME_SECONDS
    wall.now += stall  # the stall: nothing arrives, then all its frames at once
    backlog_end = 50 + round(stall / FRAME_SECONDS)
    for sequence in range(50, backlog_end):
        await host_socket.communicator.send_to(bytes_data=speaker_frame(sequence))
    await until(lambda: current_media_plane().frames_in == backlog_end)
    for sequence in range(backlog_end, backlog_end + 100):  # and on at real time
        assert await send_handled(space, host_socket, speaker_frame(sequence))
        wall.now += FRAME_SECONDS

    await host_socket.send({"type": "hand.raise"})  # still connected: the server answers
    assert (await host_socket.receive_type("error"))["code"] != "bad_audio_frame"


@pytest.mark.parametrize(
    ("frames_per_tick", "step_samples"),
    [(2, 960), (1, 1920), (2, 3600 * 48_000)],
    ids=["twice real time by count", "timestamps twice as fast", "forged timestamps"],
)
async def test_a_speaker_faster_than_real_time_is_closed(paced_room, frames_per_tick,
                                                         step_samples):  # fmt: skip
    """Faster than real time by count, by the frames' own timestamps, or with timestamps
    jumping an hour ahead to buy credit: the socket is closed with 1008."""
    space, host_socket, wall = paced_room
    sequence, forwarded = 0, True
    while forwarded and sequence < 50 * 60:
        for _ in range(frames_per_tick):
            frame = speaker_frame(sequence, step_samples=step_samples)
            forwarded = forwarded and await send_handled(space, host_socket, frame)
            sequence += 1
        wall.now += FRAME_SECONDS

    closed = await host_socket.receive_close()
    assert (closed["code"], closed["reason"]) == (1008, "too many audio frames")

"""Stereo music mode on the wire: a stereo uplink in a stereo room reaches a listener as
stereo with its sides kept, a mono speaker is heard on both, and the host sets the mode over
the socket. The media plane runs on a fake clock (one frame in, one tick); the socket test
runs the mixer on its real clock."""

import asyncio

import numpy as np
import pytest
from asgiref.sync import sync_to_async

from spaces.audio import wire
from spaces.audio.codec import AUDIO_MODES, FRAME_SAMPLES, packet_is_stereo

from .audio import signals
from .factories import make_live_space, make_member
from .test_audio_transport import collect_audio, stream
from .test_media import Socket, feed_and_tick, local_plane, tone_frames, until

STEREO = AUDIO_MODES["music_stereo"]
SETTLED = 20 * FRAME_SAMPLES


def stereo_frames(left: float | None, right: float | None, count: int) -> list[bytes]:
    """A stereo speaker's frames (wire format): a tone on the left, the right, or both."""
    tone = {hz: signals.sine(hz, count, amplitude=9000) for hz in (left, right) if hz}
    pcm = signals.stereo(tone.get(left), tone.get(right))
    return [
        wire.pack(wire.FrameKind.SPEAKER_AUDIO, seq, seq * FRAME_SAMPLES, packet)
        for seq, packet in enumerate(signals.encode(pcm, STEREO))
    ]


def heard(messages: list[bytes]) -> np.ndarray:
    """What a stereo listener plays of these room-mix messages, (samples, 2)."""
    return signals.decode([wire.unpack(m).payload for m in messages], channels=2)


def side_amplitudes(pcm: np.ndarray, frequency: float) -> tuple[float, float]:
    settled = pcm[SETTLED:]
    return tuple(signals.amplitude_at(settled[:, side], frequency) for side in (0, 1))


async def test_a_stereo_uplink_and_a_mono_one_in_a_stereo_room():
    """The room switched to music_stereo (an A message): a left-only 440 Hz speaker is heard
    on the left only (>= 0.95 correlated), a mono 660 Hz speaker on both sides equally, and
    every mix frame the listener gets is stereo."""
    plane, runner, clock = await local_plane()
    listener = Socket()
    await plane.attach(1, "left", Socket(), user_id=10, publishing=True)
    await plane.attach(1, "mono", Socket(), user_id=11, publishing=True)
    await plane.attach(1, "l", listener, user_id=20, publishing=False)
    await until(lambda: plane.rooms[1].owner)
    mixer = plane.rooms[1].mixer
    await plane.set_audio_mode(1, "music_stereo")
    for _ in range(50):  # the A message reaches the mixer's inbox, drained at a tick
        if mixer.opus == STEREO:
            break
        runner.run_ticks(1)
        await asyncio.sleep(0)
    assert mixer.opus == STEREO
    before = len(listener.messages)

    left, mono = stereo_frames(440, None, 120), tone_frames(660, 120)
    for stereo_frame, mono_frame in zip(left, mono, strict=True):
        plane.speaker_frame(1, "mono", mono_frame)
        await feed_and_tick(plane, runner, clock, 1, "left", [stereo_frame])
    await until(lambda: len(listener.messages) >= before + 115)

    messages = listener.messages[before:]
    assert all(packet_is_stereo(wire.unpack(m).payload) for m in messages)
    pcm = heard(messages)
    left_440, right_440 = side_amplitudes(pcm, 440)
    assert left_440 > 6000 and right_440 < 0.01 * left_440
    left_660, right_660 = side_amplitudes(pcm, 660)
    assert left_660 > 6000 and abs(left_660 - right_660) < 0.02 * left_660
    source = signals.sine(440, 120, amplitude=9000)
    only_left = pcm[:, 0] - pcm[:, 1]  # the centred mono speaker cancels out
    trimmed = source[: len(only_left) - 9_600]  # room for the delay
    assert signals.best_lag_correlation(trimmed, only_left, max_lag=9_600) >= 0.95
    await plane.stop()


async def test_a_mono_room_downmixes_a_stereo_uplink():
    """In music (mono) mode a stereo client's two sides are both in the mono mix."""
    plane, runner, clock = await local_plane()
    listener = Socket()
    await plane.attach(1, "s", Socket(), user_id=10, publishing=True)
    await plane.attach(1, "l", listener, user_id=20, publishing=False)
    await until(lambda: plane.rooms[1].owner)
    await feed_and_tick(plane, runner, clock, 1, "s", stereo_frames(440, 660, 80))
    await until(lambda: len(listener.messages) >= 75)
    payloads = [wire.unpack(m).payload for m in listener.messages]
    assert not any(packet_is_stereo(payload) for payload in payloads)
    pcm = signals.decode(payloads)[SETTLED:]
    assert signals.amplitude_at(pcm, 440) > 3000 and signals.amplitude_at(pcm, 660) > 3000
    await plane.stop()


@pytest.mark.django_db(transaction=True)
async def test_the_host_turns_stereo_on_over_the_socket_and_is_heard_in_stereo(sockets):
    """audio_mode.set music_stereo: everyone is told, the snapshot says so, and the host's
    right-only stereo frames reach the listener on the right only, through the real mixer."""
    host = await sync_to_async(make_member)("hana", host=True)
    space = await sync_to_async(make_live_space)(host)
    host_socket = await sockets.open(space.pk, host)
    listener_socket = await sockets.open(space.pk, await sync_to_async(make_member)("leo"))
    await host_socket.send({"type": "mute.set", "muted": False})
    await host_socket.receive_type("mute.changed", user_id=host.pk)

    await listener_socket.send({"type": "audio_mode.set", "audio_mode": "music_stereo"})
    assert (await listener_socket.receive_type("error"))["code"] == "forbidden"
    await host_socket.send({"type": "audio_mode.set", "audio_mode": "music_stereo"})
    event = await listener_socket.receive_type("audio_mode.changed")
    assert (event["audio_mode"], event["by"]) == ("music_stereo", host.pk)
    newcomer = await sockets.open(space.pk, await sync_to_async(make_member)("nia"))
    assert newcomer.snapshot["space"]["audio_mode"] == "music_stereo"

    # The mode reaches the mixer through the bus, a few ticks later: judge the stereo frames.
    before = len(listener_socket.audio)
    await stream(host_socket, stereo_frames(None, 550, 100))
    await collect_audio(listener_socket, before + 90)
    await listener_socket.drain(timeout=0.5)
    payloads = [wire.unpack(m).payload for m in listener_socket.audio[before:]]
    first = next(i for i, payload in enumerate(payloads) if packet_is_stereo(payload))
    assert first < 25 and all(packet_is_stereo(payload) for payload in payloads[first:])
    pcm = signals.decode(payloads[first:], channels=2)
    loud = [i for i in range(0, len(pcm) - FRAME_SAMPLES, FRAME_SAMPLES)
            if signals.rms(pcm[i : i + FRAME_SAMPLES, 1]) > 3000]  # fmt: skip
    assert len(loud) >= 50
    right = np.concatenate([pcm[i : i + FRAME_SAMPLES] for i in loud[5:]])
    assert signals.amplitude_at(right[:, 0], 550) < 0.01 * signals.amplitude_at(right[:, 1], 550)

"""A lossy, jittery speaker on the wire (issue #16, item 3): heard without gaps, told its loss.

The media plane with a fake clock, as in test_streams.py: each speaker frame (wire format,
kind 1) reaches the plane at its own arrival time, 0-40 ms after it was sent, 5 % never, some
after the next one; one tick runs per 20 ms of fake time. The listener's room-mix frames are
decoded as a client would, and the speaker's socket gets the server's ``uplink.quality``.
"""

import asyncio
import json
import random

import numpy as np

from spaces.audio import wire
from spaces.audio.codec import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE

from .audio import signals
from .test_media import Socket, local_plane, tone_frames, until

FRAMES = 300  # 6 s of tone


def impaired_schedule(seed: int) -> list[tuple[float, int]]:
    """(arrival offset from the first tick, frame) in arrival order."""
    rng = random.Random(seed)
    arrival = [(n + 1) * FRAME_SECONDS - 0.013 + rng.uniform(0, 0.040) for n in range(FRAMES)]
    for n in range(FRAMES - 1):
        if rng.random() < 0.02:  # this one comes just after the next
            arrival[n] = max(arrival[n], arrival[n + 1]) + 0.001
    return sorted((arrival[n], n) for n in range(FRAMES) if rng.random() >= 0.05)


async def test_a_lossy_jittery_tone_is_heard_without_gaps_and_the_speaker_is_told_its_loss():
    """5 % loss, 0-40 ms jitter, some reordering: the listener's mix has no silent 20 ms
    while the tone plays, its 100 ms pieces are the tone (correlation with the source), and
    the speaker's socket, not the listener's, gets ``uplink.quality`` with loss > 0."""
    plane, runner, clock = await local_plane()
    speaker, listener = Socket(), Socket()
    await plane.attach(1, "s", speaker, user_id=10, publishing=True)
    await plane.attach(1, "l", listener, user_id=20, publishing=False)
    await until(lambda: plane.rooms[1].owner)
    frames = tone_frames(440, FRAMES)
    runner.run_ticks(1)
    start = runner.tick_clock.start
    schedule = impaired_schedule(16)
    index = 0
    for tick in range(1, FRAMES + 15):
        deadline = start + tick * FRAME_SECONDS
        while index < len(schedule) and start + schedule[index][0] <= deadline:
            offset, n = schedule[index]
            clock.time = max(clock.time, start + offset)
            plane.speaker_frame(1, "s", frames[n])
            index += 1
        runner.run_ticks(1)
        await asyncio.sleep(0)  # deliver the tick (and any uplink report) to the sockets
    await until(lambda: any('"uplink.quality"' in text for text in speaker.texts))

    mixes = [wire.unpack(message) for message in listener.messages]
    sequences = [frame.sequence for frame in mixes]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
    pcm = signals.decode([frame.payload for frame in mixes]).astype(np.float64)
    loud = np.flatnonzero(np.abs(pcm) > 1000)
    tone = pcm[loud[0] : loud[-1]]
    assert len(tone) > (FRAMES - 20) * FRAME_SAMPLES
    window = SAMPLE_RATE // 50  # 20 ms
    quietest = min(np.abs(tone[i : i + window]).max() for i in range(0, len(tone) - window, 240))
    assert quietest > 1000, "a silent gap of 20 ms or more"

    t = np.arange(len(tone) + SAMPLE_RATE) / SAMPLE_RATE
    source = np.sin(2 * np.pi * 440 * t)
    segment = SAMPLE_RATE // 10
    scores = []
    for begin in range(segment, len(tone) - 2 * segment, segment):
        piece = tone[begin : begin + segment]
        scores.append(
            max(np.corrcoef(piece, source[lag : lag + segment])[0, 1] for lag in range(0, 110, 2))
        )
    # Every 100 ms is the tone, but for the few a concealment passes through.
    assert np.median(scores) > 0.98
    assert np.mean(np.array(scores) > 0.9) > 0.8

    reports = [json.loads(text) for text in speaker.texts if '"uplink.quality"' in text]
    assert reports[0]["loss_percent"] > 0
    assert set(reports[0]) == {"type", "loss_percent", "jitter_ms"}
    assert 0 < reports[0]["jitter_ms"] <= 80
    assert not any('"uplink.quality"' in text for text in listener.texts)
    await plane.stop()

"""Stream identity: a speaker's new stream (reconnect, unmute) is heard from its first frame.

Simulated timelines: a speaker talks a 440 Hz stream, goes away, and comes back as a new stream
(a new epoch, as the transport assigns per connection and per unmute) playing 660 Hz from some
sequence number. Each frame is pushed on its tick with the tick's time; what the listeners hear
is decoded from the shared packets and looked at frame by frame (media time, not wall time).
"""

import random

import numpy as np
import pytest

from spaces.audio import FRAME_SECONDS, OpusEncoder, RoomMixer
from spaces.audio.jitter import JitterBuffer, Playout

from .signals import decode, magnitude_at, rms, sine, split_frames

# 200 ms: a new stream must be in the mix within this many ticks of its first frame.
HEARD_WITHIN_TICKS = 10
UINT32 = 1 << 32


class Timeline:
    """One mixer, one speaker "a"; every ``send`` is one tick, the frame pushed on time."""

    def __init__(self) -> None:
        self.mixer = RoomMixer()
        self.mixer.add_speaker("a")
        self.results = []

    def tick(self, count: int = 1) -> None:
        for _ in range(count):
            now = len(self.results) * FRAME_SECONDS
            self.results.append(self.mixer.tick(now))

    def talk(self, frequency, frames, *, first_sequence=0, epoch=None, stale=None):
        """A fresh encoder sends ``frames`` of a tone from ``first_sequence`` (uint32, wraps);
        ``stale``: (epoch, sequence, packet) frames of an older stream pushed alongside."""
        encoder = OpusEncoder()
        first_tick = len(self.results)
        for index, pcm in enumerate(split_frames(sine(frequency, frames))):
            now = len(self.results) * FRAME_SECONDS
            sequence = (first_sequence + index) % UINT32
            self.mixer.push("a", sequence, encoder.encode(pcm), now, epoch)
            if stale:
                old_epoch, old_sequence, packet = stale.pop(0)
                self.mixer.push("a", old_sequence, packet, now, old_epoch)
            self.tick()
        return first_tick

    def heard(self) -> list[np.ndarray]:
        """What a listener plays, one 20 ms frame per tick."""
        pcm = decode([result.shared_packet for result in self.results])
        return split_frames(pcm)

    def ticks_with(self, frequency: float, since: int = 0) -> list[int]:
        return [
            index
            for index, frame in enumerate(self.heard())
            if index >= since
            and rms(frame) > 1000
            and magnitude_at(frame, frequency, within=40) > 0.5
        ]


def first_heard(timeline: Timeline, frequency: float, since: int) -> int:
    ticks = timeline.ticks_with(frequency, since)
    assert ticks, f"{frequency} Hz never reached the mix"
    return ticks[0] - since


@pytest.mark.parametrize(
    "first_sequence",
    [0, random.Random(16).randrange(UINT32), UINT32 - 3, 150],
    ids=["from-zero", "random", "across-the-wrap", "just-behind"],
)
@pytest.mark.parametrize("announced", [True, False], ids=["announced", "first-frame"])
def test_a_reconnected_speaker_is_heard_from_the_first_frame(first_sequence, announced):
    """5 s of talk (sequence 0..249), half a second away, then a new stream from any sequence:
    all of it is heard, the first frame within 200 ms, whether the transport announced the
    epoch (start_stream) or its first frame brings it (a mixer that took the room over)."""
    timeline = Timeline()
    timeline.mixer.start_stream("a", 1)
    timeline.talk(440, 250, epoch=1)
    timeline.tick(25)
    if announced:
        timeline.mixer.start_stream("a", 2)
    first = timeline.talk(660, 100, first_sequence=first_sequence, epoch=2)
    timeline.tick(5)

    assert first_heard(timeline, 660, first) <= HEARD_WITHIN_TICKS
    assert len(timeline.ticks_with(660, first)) >= 98  # every frame (Opus's onset aside)
    assert timeline.mixer.stats().dropped == 0


def test_frames_of_the_old_stream_still_in_flight_are_dropped():
    """After the switch, the old connection's last frames arrive: never played, counted."""
    timeline = Timeline()
    timeline.mixer.start_stream("a", 7)
    old = [OpusEncoder().encode(pcm) for pcm in split_frames(sine(440, 30))]
    timeline.talk(440, 50, epoch=7)
    timeline.mixer.start_stream("a", 8)
    stale = [(7, 50 + index, packet) for index, packet in enumerate(old)]
    first = timeline.talk(660, 60, first_sequence=0, epoch=8, stale=stale)
    timeline.tick(5)

    assert first_heard(timeline, 660, first) <= HEARD_WITHIN_TICKS
    assert timeline.ticks_with(440, first + 3) == []  # Opus's delay aside, no old tone
    assert timeline.mixer.stats().dropped_old_stream == 30


def test_unmute_after_mute_is_a_new_stream_heard_at_once():
    """Talk, mute (the buffer is cleared), unmute with a new epoch and a sender that starts its
    numbering over: the first words after the unmute are heard."""
    timeline = Timeline()
    timeline.mixer.start_stream("a", 1)
    timeline.talk(440, 100, epoch=1)
    timeline.mixer.set_muted("a", True)
    timeline.tick(10)
    timeline.mixer.set_muted("a", False)
    timeline.mixer.start_stream("a", 2)
    first = timeline.talk(660, 50, first_sequence=0, epoch=2)

    assert first_heard(timeline, 660, first) <= HEARD_WITHIN_TICKS
    assert len(timeline.ticks_with(660, first)) >= 45


def test_an_ended_stream_lets_an_earlier_connection_speak_again():
    """Two tabs race: the older tab's announcement arrived last, then it gave the stream up
    (end_stream): the newer tab's frames, whose epoch was displaced, start a stream again."""
    timeline = Timeline()
    timeline.mixer.start_stream("a", 20)  # the newer tab
    timeline.mixer.start_stream("a", 10)  # the older tab's announcement, arriving late
    timeline.mixer.end_stream("a", 10)  # ...which gives the stream up once told
    first = timeline.talk(660, 50, first_sequence=500, epoch=20)

    assert first_heard(timeline, 660, first) <= HEARD_WITHIN_TICKS


def test_new_stream_forgets_the_old_numbering_and_jitter():
    """JitterBuffer.new_stream: a sequence the last stream already played is the new stream's
    first frame, and the target learned from the old stream's jitter starts over."""
    buffer = JitterBuffer()
    for sequence in range(300):  # a jittery stream: bursts of three every third tick
        buffer.push(sequence, b"x", arrival_time=(sequence // 3) * 3 * FRAME_SECONDS)
        buffer.pop()
    assert buffer.target > buffer.settings.initial_target

    buffer.new_stream()
    buffer.push(0, b"new-0", arrival_time=10.0)
    buffer.push(1, b"new-1", arrival_time=10.02)

    assert buffer.target == buffer.settings.initial_target
    assert buffer.pop() == b"new-0"
    assert buffer.pop() == b"new-1"
    assert buffer.pop() is Playout.CONCEAL
    assert buffer.stats.late == 0

"""How fast a speaker may send: media time against the wall clock, not arrival bursts.

A speaker's frames carry their own media time (sequence +1 and timestamp +960 per 20 ms frame,
docs/audio.md). An honest sender produces media at real time; a stalled network or a busy
server event loop then delivers a backlog all at once, but that backlog never holds more media
than the wall clock let pass. A flood is a sender whose media outruns the wall clock.

So the limit is a bucket of media seconds. The wall clock fills it at ``max_speed`` media
seconds per second (real time plus a margin for the sender's audio clock running fast), up to
``backlog`` seconds: how much delayed audio may arrive in one burst without its sender being
taken for a flood. Each frame takes out the media time it advances the stream by:

* by its sequence (steps × 20 ms) or its timestamp (samples / 48,000), whichever is more, so
  a sender whose timestamps run ahead of real time pays for them;
* never less than one frame (20 ms), so frames that do not advance the stream (repeated or
  backward numbers, a frozen timestamp) still cost what a frame is: counting alone bounds them;
* a step backwards or forwards by more than ``max_jump`` is a new numbering, not media (docs:
  a client may resume "with a jump, or from 0"), and costs one frame; so a forged timestamp
  far ahead neither smuggles media time (it gives no credit) nor closes an honest client who
  resumed with a jump after a long mute.

The bucket may go ``lead`` seconds negative (a sender slightly ahead, e.g. its first frames
after joining) before the stream counts as a flood. No Django here: the clock is passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .codec import FRAME_SECONDS, SAMPLE_RATE
from .wire import UINT32_MODULO

_HALF = UINT32_MODULO // 2


def _step(new: int, old: int) -> int:
    """The signed distance from ``old`` to ``new`` on the uint32 circle (serial arithmetic)."""
    return (new - old + _HALF) % UINT32_MODULO - _HALF


class MediaTimeLimit:
    """One speaker socket's limit; :meth:`allow` is called with each frame's numbers."""

    def __init__(
        self,
        *,
        backlog: float,
        max_speed: float = 1.05,
        lead: float = 0.5,
        max_jump: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if backlog <= 0 or max_speed < 1 or lead < 0 or max_jump < FRAME_SECONDS:
            raise ValueError("backlog > 0, max_speed >= 1, lead >= 0, max_jump >= one frame")
        self.backlog = backlog
        self.max_speed = max_speed
        self.lead = lead
        self.max_jump = max_jump
        self.clock = clock
        # Media seconds the sender may still deliver. A new socket starts with one second, not
        # a full backlog: there is nothing it could have been delayed in yet.
        self.credit = min(1.0, backlog)
        self.updated = clock()
        self.last: tuple[int, int] | None = None  # (sequence, timestamp) of the last frame

    def cost(self, sequence: int | None, timestamp: int | None) -> float:
        """The media seconds this frame advances the stream by (see the module docstring)."""
        if self.last is None or sequence is None or timestamp is None:
            return FRAME_SECONDS
        by_sequence = _step(sequence, self.last[0]) * FRAME_SECONDS
        by_timestamp = _step(timestamp, self.last[1]) / SAMPLE_RATE
        advance = max(by_sequence, by_timestamp)
        if min(by_sequence, by_timestamp) <= 0 or advance > self.max_jump:
            return FRAME_SECONDS  # repeated, backward, or a new numbering: one frame
        return max(FRAME_SECONDS, advance)

    def allow(self, sequence: int | None = None, timestamp: int | None = None) -> bool:
        """Account for one frame; False once the sender has run ``lead`` past its credit.

        A message too short to carry numbers (refused as malformed) still costs one frame."""
        now = self.clock()
        elapsed = max(0.0, now - self.updated)
        self.credit = min(self.backlog, self.credit + elapsed * self.max_speed)
        self.updated = now
        self.credit -= self.cost(sequence, timestamp)
        if sequence is not None and timestamp is not None:
            self.last = (sequence, timestamp)
        return self.credit >= -self.lead

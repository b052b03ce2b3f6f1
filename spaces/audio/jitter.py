"""Per-speaker jitter buffer: reorders frames by sequence number and paces them at one per tick.

Policy (docs/audio.md has the prose version):

* Sequence numbers are uint32 and wrap; they are unwrapped to a growing integer relative to the
  highest one seen, so ordering works across the wrap.
* A talk spurt starts playing once ``target`` frames are buffered (priming) and, when ``pop``
  is given the tick's time, its first frame has waited at least ``slack_guard``: a frame that
  landed just before a tick waits for the next one, the delay the slack rule would keep anyway.
  A new stream starts at a target of 1, like a later spurt of a steady one: a frame of delay
  nobody has measured a need for would have to be given back later (below). While playing,
  each ``pop`` returns the next frame, or ``CONCEAL`` when it is missing:
  - later frames are buffered → the frame is lost: conceal it and move on (or, if a frame of
    delay is owed, skip its slot: that gives the delay back where nothing is left to hear);
  - nothing is buffered → the stream is late: conceal *without* moving on, so when the
    frames arrive playout resumes where it stopped (this is how the delay grows to absorb a
    jitter spike). After ``max_conceal`` such frames the speaker is idle (stopped talking,
    muted, left) and ``pop`` returns ``NOTHING`` until a new talk spurt primes.
* ``target`` adapts: it follows the spread of arrival delays over the last frames (grows at
  once), and shrinks by one frame at most every ``shrink_interval`` frames. When the buffer
  holds at least ``trim_surplus`` frames more than the target for ``trim_after`` pops in a
  row, it owes one frame of delay.
* Slack: when ``pop`` is given the tick's time, the buffer also measures how long each played
  frame waited. If every frame of a ``slack_window`` (1 s) waited more than a whole frame plus
  ``slack_guard``, the next frame was always there a tick early: the delay is one frame longer
  than the arrivals need (the target counts frames, it cannot see the phase between the
  sender's clock and the tick), so it owes one frame of delay, and for a backlog one more per
  ``slack_spacing`` ticks. A skip the stream proves wrong (within the next window it starves
  for a single tick: the skipped margin was needed) doubles the evidence needed, up to 8
  windows; a skip that holds for a window halves it again. A longer stall proves nothing: it
  would have starved the buffer with or without the skip.
* Owed delay is never given back by discarding a frame that carries speech. The caller, who
  decodes and hears the frames, calls ``give_back`` after a frame that was inaudible
  (silence, DTX); the next frame then plays in its slot. A lost frame's slot is skipped too.
  Both rules measure the delay net of what is owed, so an unpaid frame is not owed twice. A
  starved tick or the end of a talk spurt cancels the debt: that delay is gone.
* Frames older than the playout point are late, frames already buffered or just played are
  duplicates, frames beyond ``capacity`` evict the oldest (overflow): all dropped and counted.
  Slots given back are counted as ``trimmed``, not as dropped: no speech was discarded.
* A forward jump larger than ``max_conceal`` (a client that resumes after mute with a new
  sequence) re-primes from the new frames instead of concealing across the gap; a backward
  jump larger than ``restart_after`` (a client that restarted its counter) resets the buffer.
* Stream identity: the sequence alone cannot tell a new stream that starts at a number the
  last one already used (a reconnect from 0 after 5 s of talk) from late frames. The
  transport knows (each connection and each unmute is a new stream *epoch*, RFC 3550's new
  SSRC) and calls ``new_stream``: the buffer forgets the old numbering and what the old
  stream taught it about its network, so the new one is heard from its first frame.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from .codec import FRAME_SECONDS

_HALF_RANGE = 1 << 31
_RANGE = 1 << 32


class Playout(Enum):
    """What ``JitterBuffer.pop`` returns when it has no payload for this tick."""

    CONCEAL = "conceal"  # a frame is missing mid-stream: the decoder should conceal it
    NOTHING = "nothing"  # the speaker is idle or the buffer is still priming: contribute nothing


@dataclass(frozen=True, slots=True)
class JitterSettings:
    # 1: a new stream starts like a later spurt of a steady one (see priming above). 2 would
    # start every first spurt a frame late, and the slack rule would owe that frame back.
    initial_target: int = 1
    min_target: int = 1
    max_target: int = 10  # 200 ms: beyond that, conversation suffers more than from glitches
    capacity: int = 25  # 500 ms of frames; more means the speaker floods us
    max_conceal: int = 5  # 100 ms of concealment before the speaker counts as idle
    shrink_interval: int = 50  # 1 s between one-frame decreases of the target
    delay_window: int = 128  # frames of arrival history (2.56 s) used to measure jitter
    # The target covers this percentile of relative arrival delays (NetEq's delay manager
    # uses the 95th): the rarer late frames are concealed rather than waited for.
    delay_percentile: float = 95.0
    loss_window: int = 250  # slots (5 s) over which uplink loss is measured
    # Give owed delay back by skipping a lost frame's slot instead of concealing it: a whole
    # frame skipped (the adaptation before time-stretching; playout.py's baseline).
    skip_lost_slots: bool = False
    trim_surplus: int = 2
    trim_after: int = 25  # 0.5 s of steady surplus before skipping a frame
    restart_after: int = 500  # 10 s backwards: the sender restarted its counter
    slack_window: int = 50  # 1 s of played frames: evidence before skipping an unneeded frame
    slack_guard: float = 0.005  # seconds of wait kept beyond the frame skipped
    slack_spacing: int = 10  # 200 ms between skips when the surplus is several frames

    def __post_init__(self) -> None:
        if not 1 <= self.min_target <= self.initial_target <= self.max_target < self.capacity:
            raise ValueError("need 1 <= min_target <= initial_target <= max_target < capacity")
        if not 1 <= self.slack_spacing <= self.slack_window or self.slack_guard < 0:
            raise ValueError("need 1 <= slack_spacing <= slack_window and slack_guard >= 0")
        if not 50 <= self.delay_percentile <= 100 or self.loss_window < 1:
            raise ValueError("need 50 <= delay_percentile <= 100 and loss_window >= 1")


@dataclass(slots=True)
class JitterStats:
    received: int = 0
    played: int = 0
    concealed: int = 0
    late: int = 0
    duplicate: int = 0
    overflow: int = 0
    trimmed: int = 0  # frames of owed delay given back (taken early, or a slot skipped)
    lost: int = 0  # slots concealed because their frame was missing while later ones were here
    starved: int = 0  # ticks concealed because nothing was buffered (the stream was late)
    resyncs: int = 0
    # late + duplicate + overflow, kept as one field so the mixer can diff it cheaply.
    dropped: int = 0


@dataclass(slots=True)
class _DelayTracker:
    """Relative arrival delays over recent frames: how much later than the fastest frame of the
    window each one arrived (NetEq's delay manager measures the same against media time).

    The window is also kept sorted (``bisect``), so the minimum and any percentile cost a
    lookup: this runs for every frame of every speaker.
    """

    window: int
    percentile: float
    _delays: deque[float] = field(default_factory=deque)
    _sorted: list[float] = field(default_factory=list)

    def observe(self, extended_sequence: int, arrival_time: float) -> None:
        delay = arrival_time - extended_sequence * FRAME_SECONDS
        self._delays.append(delay)
        bisect.insort(self._sorted, delay)
        if len(self._delays) > self.window:
            leaving = self._delays.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, leaving)]

    def fastest(self) -> float | None:
        """The smallest (arrival time - media time) of the window: the fastest frame's."""
        return self._sorted[0] if self._sorted else None

    def jitter_seconds(self) -> float:
        """The ``percentile`` of delays above the window's fastest frame."""
        ordered = self._sorted
        if len(ordered) < 2:
            return 0.0
        index = min(len(ordered) - 1, math.ceil(self.percentile / 100 * (len(ordered) - 1)))
        return ordered[index] - ordered[0]

    def clear(self) -> None:
        self._delays.clear()
        self._sorted.clear()


@dataclass(slots=True)
class _LossWindow:
    """Lost frames among the last ``window`` slots played or concealed as lost."""

    window: int
    _slots: deque[bool] = field(default_factory=deque)
    lost: int = 0

    def record(self, lost: bool) -> None:
        self._slots.append(lost)
        self.lost += lost
        if len(self._slots) > self.window:
            self.lost -= self._slots.popleft()

    @property
    def percent(self) -> int:
        if not self._slots:
            return 0
        return math.ceil(100 * self.lost / len(self._slots))

    def clear(self) -> None:
        self._slots.clear()
        self.lost = 0


@dataclass(slots=True)
class _Slack:
    """Shortest wait (tick time - arrival time) of the frames played in the current window.

    Tumbling windows, not a sliding one: O(1) per frame, and a trim shifts the evidence instead
    of discarding it (the frames of the window would each have waited one frame less).
    """

    needed: int  # frames of evidence before a skip; doubles after a skip proved wrong
    shortest: float = math.inf  # net of the delay owed when each frame played
    count: int = 0
    since_trim: int | None = None  # frames played since the last slack frame was given back

    def reset(self) -> None:
        self.shortest = math.inf
        self.count = 0


class JitterBuffer:
    """Not thread-safe: push and pop from the same thread (the mixer drains its inbox)."""

    def __init__(self, settings: JitterSettings | None = None) -> None:
        self.settings = settings or JitterSettings()
        self.stats = JitterStats()
        self.target = self.settings.initial_target
        self._frames: dict[int, tuple[bytes, float]] = {}  # sequence -> (payload, arrival)
        self._highest: int | None = None  # highest unwrapped sequence seen
        self._next: int | None = None  # unwrapped sequence the next pop plays
        self._playing = False
        self._priming_pops = 0
        self._starved = 0
        self._surplus_pops = 0
        self._since_target_change = 0
        self._recently_played: deque[int] = deque(maxlen=self.settings.capacity)
        self._delays = _DelayTracker(self.settings.delay_window, self.settings.delay_percentile)
        self._loss = _LossWindow(self.settings.loss_window)
        self._last_slot = 0
        self._slack = _Slack(self.settings.slack_window)
        # Frames of delay owed, by the slack rule and by the frame-count trim (kept apart: only
        # a slack give-back is put to the test of the next window).
        self._slack_owed = 0
        self._trim_owed = 0

    @property
    def depth(self) -> int:
        return len(self._frames)

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def last_slot(self) -> int:
        """The unwrapped sequence of the slot the last ``pop``/``give_back`` filled (for a
        late frame's concealment: the slot still waited for)."""
        return self._last_slot

    @property
    def loss_percent(self) -> int:
        """Frames lost (concealed while later ones were buffered) among the last
        ``loss_window`` slots of this stream, rounded up: 0 only when none was lost."""
        return self._loss.percent

    @property
    def jitter_ms(self) -> int:
        """The measured arrival jitter (``delay_percentile`` of the relative delays), ms."""
        return round(self._delays.jitter_seconds() * 1000)

    @property
    def jitter_seconds(self) -> float:
        return self._delays.jitter_seconds()

    def lag(self, now: float, position: float) -> float | None:
        """How far behind the fastest recent frame's path media ``position`` (seconds of the
        stream's own time, sequence × 20 ms) plays at ``now``: the playout delay the target
        is compared with. None before any frame arrived."""
        fastest = self._delays.fastest()
        return None if fastest is None else now - fastest - position

    def pull(self, now: float | None = None) -> bytes | None:
        """Take the next frame now, ahead of its tick, if it is buffered (the playout
        time-stretches it in). Pays one frame of owed delay, if any. None if not here."""
        if not self._playing:
            return None
        entry = self._frames.pop(self._next, None)
        if entry is None:
            return None
        if self.frames_to_give_back:
            self._paid()
        return self._play(entry, now)

    @property
    def last_was_lost(self) -> bool:
        """The last ``CONCEAL`` was for a lost frame (playout moved past its slot), not a late
        one (playout waits in its slot)."""
        return self._next is not None and self._last_slot < self._next

    def peek_next(self) -> bytes | None:
        """The payload the next ``pop`` would play, if it is buffered (for FEC decoding)."""
        entry = self._frames.get(self._next) if self._next is not None else None
        return entry[0] if entry is not None else None

    @property
    def frames_to_give_back(self) -> int:
        """Frames of delay the arrivals do not need, owed until an inaudible frame plays."""
        return self._slack_owed + self._trim_owed

    def push(self, sequence: int, payload: bytes, arrival_time: float) -> bool:
        """Buffer one frame; returns False when it was dropped (late or duplicate)."""
        stats = self.stats
        stats.received += 1
        extended = self._unwrap(sequence)
        if self._next is not None and extended < self._next:
            if self._next - extended > self.settings.restart_after:
                self._restart()
                extended = self._unwrap(sequence)
            else:
                if extended in self._recently_played:
                    stats.duplicate += 1
                else:
                    stats.late += 1
                stats.dropped += 1
                return False
        if extended in self._frames:
            stats.duplicate += 1
            stats.dropped += 1
            return False
        self._frames[extended] = (payload, arrival_time)
        if extended > self._highest:
            self._highest = extended
        self._delays.observe(extended, arrival_time)
        self._adapt_target()
        if len(self._frames) > self.settings.capacity:
            self._evict_oldest()
        return True

    def pop(self, now: float | None = None) -> bytes | Playout:
        """Once per tick: the next payload, ``Playout.CONCEAL`` or ``Playout.NOTHING``.

        ``now`` is the tick's time on the clock of the arrival times; without it the buffer
        cannot see how long frames waited, and only the frame-count rules apply.
        """
        if not self._playing and not self._start_playing(now):
            return Playout.NOTHING
        frames = self._frames
        entry = frames.pop(self._next, None)
        if entry is not None:
            return self._play(entry, now)
        if frames:
            earliest = min(frames)
            if earliest - self._next > self.settings.max_conceal:
                # A new talk spurt after a pause: prime again rather than conceal the gap.
                self.stats.resyncs += 1
                self._go_idle()
                return self.pop(now)
            self._last_slot = self._next
            self._next += 1
            self._loss.record(True)
            self.stats.lost += 1
            if self.frames_to_give_back and self.settings.skip_lost_slots:
                # A lost frame's slot: skipping it gives the delay back and discards nothing.
                self._paid()
                return self.pop(now)
            self.stats.concealed += 1
            return Playout.CONCEAL
        self._starved += 1
        self._slack.reset()  # playout just moved a frame later: the waits measured no longer hold
        self._slack_owed = self._trim_owed = 0  # and the delay owed is gone
        if self._starved > self.settings.max_conceal:
            self._go_idle()
            return Playout.NOTHING
        self._last_slot = self._next
        self.stats.starved += 1
        self.stats.concealed += 1
        return Playout.CONCEAL

    def give_back(self, now: float | None = None) -> bytes | None:
        """The frame ``pop`` just returned was inaudible: if delay is owed, the next frame plays
        in the same tick, in its slot, and is returned (decode both, hear this one). None when
        nothing is owed or the next frame is not here yet (then keep the inaudible one)."""
        if not self.frames_to_give_back or not self._playing:
            return None
        entry = self._frames.pop(self._next, None)
        if entry is None:
            return None
        self._paid()
        return self._play(entry, now)

    def clear(self) -> None:
        """Drop everything buffered and wait for a new talk spurt (speaker muted or demoted)."""
        self._frames.clear()
        self._go_idle()

    def new_stream(self) -> None:
        """The speaker's frames now belong to a new stream (a new connection, an unmute): its
        numbering has nothing to do with the last one's, and its network may be another."""
        self._restart()
        self._loss.clear()
        self.target = self.settings.initial_target
        self._since_target_change = 0
        self._surplus_pops = 0
        self._slack = _Slack(self.settings.slack_window)

    def _start_playing(self, now: float | None) -> bool:
        frames = self._frames
        if not frames:
            self._priming_pops = 0
            return False
        self._priming_pops += 1
        first = min(frames)
        # A lone frame must not wait forever for company: start after max_target ticks anyway.
        if self._priming_pops < self.settings.max_target:
            if len(frames) < self.target:
                return False
            if now is not None and now - frames[first][1] < self.settings.slack_guard:
                # It landed just before the tick: the next frames, a little later, would miss
                # their ticks. Start a tick later, where the slack rule would settle anyway.
                return False
        self._playing = True
        self._next = first
        self._starved = 0
        self._surplus_pops = 0
        return True

    def _play(self, entry: tuple[bytes, float], now: float | None) -> bytes:
        payload, arrival_time = entry
        extended = self._next
        self._last_slot = extended
        self._loss.record(False)
        self.stats.played += 1
        self._recently_played.append(extended)
        self._next = extended + 1
        if self._starved:
            self._slack_starved(self._starved)
            self._starved = 0
        settings = self.settings
        held = len(self._frames) - self.frames_to_give_back
        if held >= self.target + settings.trim_surplus - 1:
            self._surplus_pops += 1
            if self._surplus_pops >= settings.trim_after and self._next in self._frames:
                # Latency went up during a jitter spike and stayed there: owe a frame back.
                self._trim_owed += 1
                self._surplus_pops = 0
                self._slack.shortest -= FRAME_SECONDS  # each frame would have waited less
        else:
            self._surplus_pops = 0
        if now is not None:
            self._measure_slack(now - arrival_time - self.frames_to_give_back * FRAME_SECONDS)
        return payload

    def _measure_slack(self, wait: float) -> None:
        """``wait``: how long the frame just played waited, less the delay still owed."""
        slack = self._slack
        settings = self.settings
        if slack.since_trim is not None:
            slack.since_trim += 1
            if slack.since_trim >= slack.needed:  # the last skip held: trust the stream more
                slack.needed = max(settings.slack_window, slack.needed // 2)
                slack.since_trim = None
        if wait < slack.shortest:
            slack.shortest = wait
        slack.count += 1
        if slack.count < slack.needed:
            return
        if slack.shortest >= FRAME_SECONDS + settings.slack_guard and self._next in self._frames:
            # Every frame of the window was buffered a tick before it played: owe one back.
            self._slack_owed += 1
            slack.shortest -= FRAME_SECONDS
            slack.count = slack.needed - settings.slack_spacing
        else:
            slack.reset()

    def _paid(self) -> None:
        """One owed frame of delay was given back (a slot skipped; ``_next`` already past it)."""
        self.stats.trimmed += 1
        if self._slack_owed:
            self._slack_owed -= 1
            self._slack.since_trim = 0  # the next window puts this one to the test
        else:
            self._trim_owed -= 1

    def _slack_starved(self, ticks: int) -> None:
        """Playout resumes after ``ticks`` starved ticks. One tick soon after a slack skip
        means the skipped frame's margin was needed: the skip cut too deep. A longer stall
        would have starved the buffer with or without the skip, so it proves nothing."""
        slack = self._slack
        if ticks == 1 and slack.since_trim is not None:
            slack.needed = min(slack.needed * 2, self.settings.slack_window * 8)
        slack.since_trim = None

    def _go_idle(self) -> None:
        self._playing = False
        self._priming_pops = 0
        self._starved = 0
        # The next talk spurt may arrive with a new offset between sequence and wall time.
        self._delays.clear()
        self._slack.reset()
        self._slack.since_trim = None
        self._slack_owed = self._trim_owed = 0  # the pause between spurts gave it back

    def _restart(self) -> None:
        self._frames.clear()
        self._recently_played.clear()
        self._highest = None
        self._next = None
        self.stats.resyncs += 1
        self._go_idle()

    def _unwrap(self, sequence: int) -> int:
        if self._highest is None:
            self._highest = sequence
            return sequence
        delta = (sequence - self._highest + _HALF_RANGE) % _RANGE - _HALF_RANGE
        return self._highest + delta

    def _evict_oldest(self) -> None:
        oldest = min(self._frames)
        del self._frames[oldest]
        if self._next is not None and oldest >= self._next:
            self._next = oldest + 1
        self.stats.overflow += 1
        self.stats.dropped += 1

    def _adapt_target(self) -> None:
        settings = self.settings
        self._since_target_change += 1
        # The epsilon keeps float noise in exactly periodic arrivals from adding a whole frame.
        wanted = math.ceil(self._delays.jitter_seconds() / FRAME_SECONDS - 1e-6) + 1
        wanted = max(settings.min_target, min(settings.max_target, wanted))
        if wanted > self.target:
            self.target = wanted
            self._since_target_change = 0
        elif wanted < self.target and self._since_target_change >= settings.shrink_interval:
            self.target -= 1
            self._since_target_change = 0

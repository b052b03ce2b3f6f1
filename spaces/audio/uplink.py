"""When to tell a speaker how their uplink is doing (``uplink.quality``, docs/protocol.md).

The mixer measures each publishing speaker's loss and jitter (``TickResult.uplink``, about
once a second). A client acts on the loss: it turns its encoder's in-band FEC on, expecting
that loss, and off again at 0. Re-creating an encoder costs a glitch, so the speaker is told
only when the loss moves to another *bucket*, at most every ``min_interval`` seconds, and
nothing while it stays at 0. A new stream (a new epoch: a reconnect, an unmute) comes from a
new encoder, which starts without FEC, so its first loss is reported again.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

# Lower bounds of the loss buckets, in %: FEC's overhead is set from the reported loss, and
# changing it by a point or two is not worth an encoder restart.
LOSS_BUCKETS = (0, 1, 3, 6, 11, 21, 41)


def loss_bucket(loss_percent: int) -> int:
    return max(bound for bound in LOSS_BUCKETS if bound <= loss_percent)


@dataclass(slots=True)
class _Sent:
    epoch: int | None
    bucket: int
    at: float


class UplinkReports:
    """Not thread-safe: one per room, used from the event loop."""

    def __init__(self, *, min_interval: float = 2.0) -> None:
        self.min_interval = min_interval
        self._sent: dict[Hashable, _Sent] = {}

    def update(
        self,
        speaker_id: Hashable,
        *,
        epoch: int | None,
        loss_percent: int,
        jitter_ms: int,
        now: float,
    ) -> dict | None:
        """The ``uplink.quality`` event to send the speaker now, or None."""
        bucket = loss_bucket(loss_percent)
        sent = self._sent.get(speaker_id)
        if sent is None or sent.epoch != epoch:
            sent = self._sent[speaker_id] = _Sent(epoch, 0, -self.min_interval)
        if bucket == sent.bucket or now - sent.at < self.min_interval:
            return None
        sent.bucket, sent.at = bucket, now
        return {"type": "uplink.quality", "loss_percent": loss_percent, "jitter_ms": jitter_ms}

    def forget(self, speaker_id: Hashable) -> None:
        self._sent.pop(speaker_id, None)

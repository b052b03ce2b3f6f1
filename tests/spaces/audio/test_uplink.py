"""When a speaker is told about their uplink (spaces/audio/uplink.py)."""

from spaces.audio.uplink import UplinkReports


def test_reports_follow_loss_buckets_at_most_every_two_seconds_and_per_stream():
    """Nothing while there is no loss; the first loss at once; a change within its bucket or
    within 2 s of the last report is held; back to 0 is reported; a new stream starts over."""
    reports = UplinkReports(min_interval=2.0)

    def update(loss, now, epoch=1):
        return reports.update("a", epoch=epoch, loss_percent=loss, jitter_ms=30, now=now)

    assert update(0, 0.0) is None
    assert update(5, 1.0) == {"type": "uplink.quality", "loss_percent": 5, "jitter_ms": 30}
    assert update(4, 4.0) is None  # same bucket (3-5 %)
    assert update(12, 2.5) is None  # another bucket, but within 2 s of the last report
    assert update(12, 3.5)["loss_percent"] == 12
    assert update(0, 6.0)["loss_percent"] == 0
    assert update(0, 9.0) is None
    assert update(5, 9.5)["loss_percent"] == 5
    # A reconnect: its new encoder starts without FEC, so its first loss is news again.
    assert update(5, 10.0, epoch=2)["loss_percent"] == 5

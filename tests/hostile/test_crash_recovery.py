"""A server killed while it processes a voice tweet: the work is taken up again by the next
worker within a lease, not left ``processing`` for the stalled delay, and the dead attempt's
work folder and child process do not outlive it.

Real processes: ``manage.py serve`` in the embedded default (its own background threads and
beat), killed with SIGKILL mid-way through the processing child; then a second server starts.
Leases are shortened to seconds, the stalled delay left at an hour, so only the lease can be
what recovers the work.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from accounts.services import auth_token_issue
from tests.hostile.helpers import multipart
from tests.voicetweets.audiofiles import sine, write_audio
from voicetweets import services
from voicetweets.models import VoiceTweet

pytestmark = pytest.mark.slow

SHORT_LEASES = {
    "SALON_WORK_LEASE_SECONDS": "2",
    "SALON_WORK_LEASE_RENEW_SECONDS": "1",
    "SALON_VOICETWEET_STALLED_SECONDS": "3600",
}


def _wait_for(condition, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s: {what}")


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue  # it ended while we looked
    return found


def _post_voice_tweet(server, token: str, data: bytes) -> int:
    body, content_type = multipart(
        {},
        {"audio": ("long.flac", data)},
        boundary="crash-boundary",
        file_content_type="audio/flac",
    )
    request = urllib.request.Request(  # noqa: S310 - our own test server
        f"{server.url}/api/v1/voicetweets/",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Token {token}",
            "Content-Type": content_type,
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        assert response.status == 202
        return json.load(response)["id"]


def test_a_voice_tweet_whose_server_was_killed_mid_processing_ends_ready(
    live_server_process, tmp_path
):
    """Killed mid-processing: still ``processing``, its folder left behind. The next server
    takes it up as soon as the dead lease lapses; it ends ready, processed twice, and the dead
    attempt's folder and child process are gone."""
    member = get_user_model().objects.create_user(username="crashy", password="x-pass-12345")
    token = auth_token_issue(user=member).key
    source = write_audio(tmp_path / "long.flac", sine(140.0, rate=16_000), rate=16_000)
    env = SHORT_LEASES
    work_root = services._work_root()

    first = live_server_process(**env)
    tweet = VoiceTweet.objects.get(pk=_post_voice_tweet(first, token, source.read_bytes()))

    dead_work_dir = _wait_for(
        lambda: next(work_root.glob(f"voicetweet-{tweet.pk}-*"), None),
        timeout=60,
        what="processing starts",
    )
    _wait_for(lambda: _processes_mentioning(str(dead_work_dir)), timeout=30, what="its child runs")
    first.process.kill()
    first.process.wait()

    tweet.refresh_from_db()
    assert tweet.state == VoiceTweet.State.PROCESSING
    assert tweet.processing_attempts == 1
    # The child does not outlive its worker (it would write into a folder being removed).
    _wait_for(
        lambda: not _processes_mentioning(str(dead_work_dir)),
        timeout=10,
        what="the dead worker's child ends",
    )

    live_server_process(**env)

    def ready():
        tweet.refresh_from_db()
        return tweet.state != VoiceTweet.State.PROCESSING

    _wait_for(ready, timeout=60, what="the second server takes the voice tweet up")
    assert tweet.state == VoiceTweet.State.READY, tweet.rejection_reason
    assert abs(tweet.duration_ms - 140_000) <= 50
    assert tweet.processing_attempts == 2
    assert not dead_work_dir.exists()
    # The second attempt removes its own folder just after it commits.
    _wait_for(lambda: not any(work_root.iterdir()), timeout=10, what="no work folder is left")

"""Screenshots of the hallway, a live space and the feed, desktop and phone, as test artifacts."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from accounts.services import follow_create
from tests.e2e.test_space_audio import open_space, tone_wav
from tests.spaces.factories import make_live_space, make_member
from tests.voicetweets.factories import ready_tweet
from voicetweets.models import VoiceTweet

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_screenshots_of_hallway_space_and_feed(
    live_server_process, launch_browser, signed_in_context, artifact_path, tmp_path, viewport
):
    """The main pages render at 1280×800 and 390×844 with live data in them."""
    size = "phone" if viewport is PHONE else "desktop"
    server = live_server_process()
    host = make_member("hana", host=True)
    listener = make_member("leo")

    # follow_create notifies through async_to_sync, which refuses to run beside Playwright's loop.
    def follow():
        try:
            follow_create(follower=listener, followee=host)
        finally:
            connection.close()  # the thread's own connection would outlive the test database

    with ThreadPoolExecutor(1) as pool:
        pool.submit(follow).result()
    space = make_live_space(host, title="Evening jazz talk")
    for index, text in enumerate(["Notes from tonight's set", "A quick hello", ""]):
        tweet = ready_tweet(host, text=text, seconds=4 + index * 7)
        # A waveform with some shape, as the pipeline would compute it.
        shape = [0.15 + 0.8 * abs(math.sin(i / (4 + index))) for i in range(100)]
        VoiceTweet.objects.filter(pk=tweet.pk).update(waveform=shape)

    host_context = signed_in_context(
        launch_browser(fake_audio=tone_wav(tmp_path / "tone.wav", 440)),
        server=server,
        user=host,
        viewport=viewport,
    )
    host_page = open_space(host_context, space)
    host_page.get_by_role("button", name="Toggle recording").click()
    host_page.locator('[data-role="recording"]').wait_for()

    listener_context = signed_in_context(
        launch_browser(), server=server, user=listener, viewport=viewport
    )
    listener_page = listener_context.new_page()
    listener_page.goto("/")
    listener_page.get_by_role("link", name="Evening jazz talk").wait_for()
    listener_page.screenshot(path=artifact_path(f"hallway-{size}.png"))
    listener_page.get_by_text("Notes from tonight's set").scroll_into_view_if_needed()
    listener_page.screenshot(path=artifact_path(f"feed-following-{size}.png"), full_page=True)

    listener_page.get_by_role("link", name="Evening jazz talk").click()
    listener_page.get_by_text("You are in the space.").wait_for()
    listener_page.get_by_role("button", name="Raise hand").click()
    # Unmute only now: `levels` events are sent on change, so a steady tone that started before
    # the listener joined would never light the ring on their page.
    host_page.get_by_role("button", name="Unmute your microphone").click()
    # The host's ring shows once the mixer reports them talking.
    listener_page.locator(f'.participant.speaking[data-user-id="{host.pk}"]').wait_for()
    host_page.get_by_role("button", name="Let leo speak").wait_for()
    listener_page.screenshot(path=artifact_path(f"space-listener-{size}.png"), full_page=True)
    host_page.screenshot(path=artifact_path(f"space-host-{size}.png"), full_page=True)

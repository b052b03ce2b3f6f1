"""The bell counts every kind it stores, live (issue #18): on bob's open page, alice following
him and alice sending him a voice message each ring it, without a reload, and the bell's page
links to both."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from accounts import services as accounts_services
from accounts.models import Follow
from tests.e2e.live_helpers import off_loop, screenshots
from tests.voicetweets.factories import sine_wav


def test_a_new_follower_and_a_voice_message_ring_bobs_bell_live(
    live_server_process, launch_browser, signed_in_context, artifact_path, tmp_path
):
    server = live_server_process()
    User = get_user_model()
    alice = User.objects.create_user(username="alice-e2e", display_name="Alice")
    bob = User.objects.create_user(username="bob-e2e", display_name="Bob")
    Follow.objects.create(follower=bob, followee=alice)  # not through the service: alice's bell
    wav = tmp_path / "hello.wav"
    wav.write_bytes(sine_wav(3))
    browser = launch_browser()
    page = signed_in_context(browser, server=server, user=bob).new_page()
    page.goto("/")
    page.locator("html[data-notifications=connected]").wait_for(state="attached")
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    assert page.locator('[data-role="bell-count"]').is_hidden()

    off_loop(accounts_services.follow_create, follower=alice, followee=bob)
    page.get_by_role("link", name="Notifications, 1 unread").wait_for()
    assert page.locator('[data-role="bell-count"]').text_content() == "1"

    # They follow each other now: alice may send him a voice message, from her own browser.
    alice_page = signed_in_context(browser, server=server, user=alice).new_page()
    alice_page.goto("/messages/bob-e2e/")
    alice_page.get_by_label("…or upload a file").set_input_files(str(wav))
    alice_page.get_by_role("button", name="Send").click()
    alice_page.get_by_text("Sent.").wait_for()
    page.get_by_role("link", name="Notifications, 2 unread").wait_for()
    assert navigations == []  # both without a reload
    screenshots(page, artifact_path, "bell-follower-and-voice-message")

    page.get_by_role("link", name="Notifications, 2 unread").click()
    page.get_by_role("heading", name="Notifications").wait_for()
    followed = page.get_by_role("link", name="Alice (@alice-e2e) followed you.")
    assert followed.get_attribute("href") == "/u/alice-e2e/"
    message = page.get_by_role("link", name="Alice sent you a voice message.")
    assert message.get_attribute("href") == "/messages/alice-e2e/"
    screenshots(page, artifact_path, "notifications-every-kind")
    page.get_by_role("button", name="Mark all read").click()
    page.get_by_role("heading", name="Notifications").wait_for()
    page.get_by_role("link", name="Notifications", exact=True).wait_for()
    assert page.locator('[data-role="bell-count"]').is_hidden()

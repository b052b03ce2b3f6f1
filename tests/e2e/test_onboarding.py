"""A newcomer in Chromium, desktop and phone: the landing page (invite-only, waitlist), the
invitation, the sign-up form naming the inviter, then the follow suggestions."""

from __future__ import annotations

import pytest

from accounts.models import Follow
from accounts.services import invitation_create
from tests.e2e.test_screenshots import DESKTOP, PHONE
from tests.spaces.factories import make_live_space, make_member


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_newcomer_signs_up_and_follows_a_suggestion(
    live_server_process, launch_browser, artifact_path, viewport
):
    """Landing → invitation → sign-up naming the inviter → suggestions → follow one."""
    size = "phone" if viewport is PHONE else "desktop"
    server = live_server_process()
    alice = make_member("alice")
    alice.display_name = "Alice Liddell"
    alice.save()
    fern = make_member("fern")
    Follow.objects.create(follower=alice, followee=fern)
    host = make_member("hana", host=True)
    make_live_space(host, title="Open mic")
    invitation = invitation_create(inviter=alice)

    page = launch_browser().new_context(base_url=server.url, viewport=viewport).new_page()
    page.goto("/")
    page.get_by_text("Salon is invite-only.").wait_for()
    page.screenshot(path=artifact_path(f"landing-{size}.png"), full_page=True)
    page.get_by_role("link", name="Join the waitlist").click()
    page.get_by_role("heading", name="Join the waitlist").wait_for()

    page.goto(f"/invite/{invitation.token}/")
    page.get_by_role("button", name="Accept and create my account").click()
    page.get_by_text("Alice Liddell @alice invited you to Salon.").wait_for()
    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_label("Username").fill("newcomer")
    page.locator("#id_password1").fill("a-long-pass-phrase-81")
    page.locator("#id_password2").fill("a-long-pass-phrase-81")
    page.screenshot(path=artifact_path(f"signup-{size}.png"), full_page=True)
    page.get_by_role("button", name="Create my account").click()

    page.get_by_role("heading", name="Welcome to Salon").wait_for()
    for text in ("Invited you", "Followed by @alice", "Hosts spaces"):
        page.get_by_text(text).wait_for()
    page.screenshot(path=artifact_path(f"welcome-{size}.png"), full_page=True)
    page.get_by_role("button", name="Follow fern").click()
    page.get_by_role("heading", name="Welcome to Salon").wait_for()
    page.get_by_role("button", name="Follow Alice Liddell").wait_for()
    assert page.get_by_role("button", name="Follow fern").count() == 0
    assert Follow.objects.filter(follower__username="newcomer", followee=fern).exists()

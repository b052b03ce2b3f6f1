"""The bell and the hallway are live (issue #18): a followed host going live rings the bell,
and the hallway shows spaces appear, count their listeners and go away, without a reload."""

from __future__ import annotations

from accounts.models import Follow
from spaces import services
from tests.e2e.live_helpers import off_loop, screenshots
from tests.spaces.factories import make_member


def test_bob_hears_alice_go_live_and_his_hallway_follows_the_space(
    live_server_process, launch_browser, signed_in_context, artifact_path
):
    """Bob's open home page: alice starts a space, his bell counts 1 and the hallway lists it;
    a listener joins, the count moves; she ends it, it goes. Then the bell's page lists the
    notification with its link, and "mark all read" empties the bell."""
    server = live_server_process()
    alice = make_member("alice", host=True)
    bob = make_member("bob")
    leo = make_member("leo")
    Follow.objects.create(follower=bob, followee=alice)
    browser = launch_browser()
    page = signed_in_context(browser, server=server, user=bob).new_page()
    page.goto("/")
    page.locator("html[data-notifications=connected]").wait_for(state="attached")
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    bell = page.get_by_role("link", name="Notifications", exact=True)
    assert page.locator('[data-role="bell-count"]').is_hidden()

    space = off_loop(services.space_create, host=alice, title="Late jazz")
    page.get_by_role("link", name="Notifications, 1 unread").wait_for()
    card = page.locator(f'.space-card[data-space-id="{space.pk}"]')
    card.get_by_role("link", name="Late jazz").wait_for()
    count = card.locator(f'[data-space-count="{space.pk}"]')
    assert count.text_content() == "0"

    listener = signed_in_context(browser, server=server, user=leo).new_page()
    listener.goto(f"/spaces/{space.pk}/")
    listener.get_by_text("You are in the space.").wait_for()
    page.wait_for_function(
        "id => document.querySelector(`[data-space-count='${id}']`)?.textContent === '1'",
        arg=space.pk,
    )
    screenshots(page, artifact_path, "bell-and-live-hallway")

    off_loop(services.space_end, space=space, by=alice)
    card.wait_for(state="detached")
    page.get_by_text("No live spaces right now.").wait_for()
    assert navigations == []  # all of it without a reload

    page.get_by_role("link", name="Notifications, 1 unread").click()
    page.get_by_role("heading", name="Notifications").wait_for()
    link = page.get_by_role("link", name=f"{alice.name} is live: “Late jazz”.")
    assert link.get_attribute("href") == f"/spaces/{space.pk}/"
    screenshots(page, artifact_path, "notifications-page")
    page.get_by_role("button", name="Mark all read").click()
    page.get_by_role("heading", name="Notifications").wait_for()
    bell.wait_for()
    assert page.locator('[data-role="bell-count"]').is_hidden()

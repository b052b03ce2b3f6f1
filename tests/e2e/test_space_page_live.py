"""The space page keeps up (issue #18, bugs 3, 4 and 5): the live listener count, the end of the
space, and a host whose browser just closes."""

from __future__ import annotations

import pytest

from tests.e2e.live_helpers import off_loop, screenshots
from tests.e2e.test_space_audio import open_space, tone_wav
from tests.spaces.factories import make_live_space, make_member, put_on_stage


@pytest.fixture
def room(live_server_process, launch_browser, signed_in_context, tmp_path):
    """A live space, its host's page (a tone for a microphone) and a listener's page."""
    server = live_server_process()
    host = make_member("hana", host=True)
    leo = make_member("leo")
    space = make_live_space(host, title="Stage check")
    browser = launch_browser(fake_audio=tone_wav(tmp_path / "tone.wav", 440))
    host_page = open_space(signed_in_context(browser, server=server, user=host), space)
    leo_page = open_space(signed_in_context(browser, server=server, user=leo), space)
    return {
        "server": server,
        "browser": browser,
        "space": space,
        "host": host,
        "leo": leo,
        "host_page": host_page,
        "leo_page": leo_page,
    }


def test_the_listener_count_is_live_and_a_listener_on_stage_is_not_counted(room, artifact_path):
    """Bug 3: the count says 1 listening with leo, and 0 once he is on stage; no phantom
    "and 1 more listening"."""
    host_page, leo_page = room["host_page"], room["leo_page"]
    count = host_page.locator('[data-role="listener-count"]')
    host_page.locator(f'[data-role="listeners"] li[data-user-id="{room["leo"].pk}"]').wait_for()
    host_page.wait_for_function(
        "() => document.querySelector('[data-role=listener-count]').textContent === '1 listening'"
    )
    leo_page.get_by_role("button", name="Raise hand").click()
    host_page.get_by_role("button", name="Let leo speak").click()
    host_page.locator(f'[data-role="stage"] li[data-user-id="{room["leo"].pk}"]').wait_for()
    # The render that put leo on stage is the one that counts the listeners not listed.
    more = host_page.locator('[data-role="more-listeners"]')
    assert more.is_hidden(), more.text_content()
    host_page.wait_for_function(
        "() => document.querySelector('[data-role=listener-count]').textContent === '0 listening'"
    )
    assert count.is_visible()
    leo_page.get_by_role("button", name="Unmute your microphone").wait_for()
    leo_page.locator('[data-role="more-listeners"]').wait_for(state="hidden")
    screenshots(host_page, artifact_path, "space-live-count")


def test_after_end_space_the_host_sees_the_ended_space_with_its_replay(room, artifact_path):
    """Bug 4: End space turns the host's page into the ended space: no Live or REC badge, no
    room, no moderation buttons, and a link to the replay."""
    host_page, space = room["host_page"], room["space"]
    host_page.get_by_role("button", name="Remove leo from the space").wait_for()
    host_page.get_by_role("button", name="Toggle recording").click()
    host_page.locator('[data-role="recording"]').wait_for()
    host_page.on("dialog", lambda dialog: dialog.accept())
    host_page.get_by_role("button", name="End space").click()

    replay = host_page.get_by_role("link", name="▶ The replay")
    replay.wait_for()
    assert replay.get_attribute("href") == f"/spaces/{space.pk}/replay/"
    host_page.get_by_text("This space has ended.").wait_for()
    for role in ("live-badge", "recording", "stage-section", "listeners-section", "host-controls"):
        assert host_page.locator(f'[data-role="{role}"]').is_hidden(), role
    assert host_page.get_by_role("button", name="Remove leo from the space").count() == 0
    assert host_page.get_by_role("button", name="Remove and ban leo").count() == 0
    # The listener's page ends too, without the host's replay link being theirs to miss.
    room["leo_page"].get_by_text("This space has ended.").wait_for()
    screenshots(host_page, artifact_path, "space-ended")


def test_a_host_whose_browser_closes_is_reconnecting_and_a_cohost_takes_over(
    room, signed_in_context, artifact_path
):
    """Bug 5: the host's browser just closes. The co-host's page says the host is reconnecting
    and offers to take over, the hallway says so too; the co-host takes over at once."""
    space, host, leo = room["space"], room["host"], room["leo"]
    off_loop(put_on_stage, space, host, leo, "cohost")
    leo_page = room["leo_page"]
    leo_page.get_by_text("Co-host · muted").wait_for()
    watcher = make_member("wes")
    hallway = signed_in_context(room["browser"], server=room["server"], user=watcher).new_page()
    hallway.goto("/")
    hallway.locator("html[data-notifications=connected]").wait_for(state="attached")
    card = hallway.locator(f'.space-card[data-space-id="{space.pk}"]')
    card.wait_for()
    assert card.locator('[data-role="host-away"]').count() == 0

    room["host_page"].context.close()  # no "leave": the browser is just gone

    leo_page.get_by_text("The host is reconnecting…").wait_for()
    take_over = leo_page.get_by_role("button", name="Take over as host")
    take_over.wait_for()
    card.get_by_text("host reconnecting…").wait_for()
    screenshots(leo_page, artifact_path, "space-host-reconnecting")
    screenshots(hallway, artifact_path, "hallway-host-reconnecting")

    take_over.click()
    leo_page.get_by_text("Host · muted", exact=True).wait_for()
    leo_page.get_by_role("button", name="End space").wait_for()
    leo_page.locator('[data-role="host-status"]').wait_for(state="hidden")
    card.locator('[data-role="host-away"]').wait_for(state="detached")
    space.refresh_from_db()
    assert space.host_id == leo.pk

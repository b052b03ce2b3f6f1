"""The space page in Chromium, desktop and phone: avatars on the tiles (initials without one),
"Copy link", the pin picker, and on a phone the controls in a bar fixed to the bottom and a
nav that leaves the member's name alone."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.services import user_set_avatar
from tests.e2e.test_screenshots import DESKTOP, PHONE
from tests.e2e.test_space_audio import open_space
from tests.spaces.factories import make_live_space, make_member
from tests.voicetweets.factories import ready_tweet


def _avatar(host):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 90, 40)).save(buffer, format="PNG")
    upload = SimpleUploadedFile("me.png", buffer.getvalue(), content_type="image/png")
    return user_set_avatar(user=host, upload=upload)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_space_page_avatars_share_link_pin_picker_and_phone_layout(
    live_server_process, launch_browser, signed_in_context, artifact_path, viewport
):
    """What a member sees and uses on a live space page, at both sizes."""
    size = "phone" if viewport is PHONE else "desktop"
    server = live_server_process()
    host = _avatar(make_member("hana", host=True))
    listener = make_member("leo")
    space = make_live_space(host, title="Avatars and pins")
    ready_tweet(host, text="Tonight's running order")
    browser = launch_browser()

    host_page = open_space(
        signed_in_context(browser, server=server, user=host, viewport=viewport), space
    )
    listener_context = signed_in_context(browser, server=server, user=listener, viewport=viewport)
    listener_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = open_space(listener_context, space)

    # The host's tile shows their avatar (loaded), the listener's their initial.
    host_tile = page.locator(f'.participant[data-user-id="{host.pk}"]')
    host_tile.locator(".avatar img").wait_for()
    page.wait_for_function(
        f"() => document.querySelector('.participant[data-user-id=\"{host.pk}\"] .avatar img')"
        ".naturalWidth > 0"
    )
    own_tile = page.locator(f'.participant[data-user-id="{listener.pk}"]')
    assert own_tile.locator(".avatar").inner_text().strip() == "L"
    assert own_tile.locator(".avatar img").count() == 0

    # The host pins from a picker of voice tweets; the listener sees it pinned.
    host_page.get_by_label("Pin a voice tweet").select_option(index=1)  # the newest one
    assert "Tonight" in host_page.get_by_label("Pin a voice tweet").evaluate(
        "el => el.selectedOptions[0].textContent"
    )
    host_page.get_by_role("button", name="Pin", exact=True).click()
    page.locator('[data-role="pinned"]').get_by_text("📌").wait_for()

    # Copy link puts the space's address on the clipboard.
    page.get_by_role("button", name="Copy link").click()
    page.get_by_role("button", name="Link copied ✓").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == f"{server.url}/spaces/{space.pk}/"

    if viewport is PHONE:
        controls = page.locator('[data-role="controls"]')
        assert controls.evaluate("el => getComputedStyle(el).position") == "fixed"
        box = controls.bounding_box()
        assert (
            abs(box["y"] + box["height"] - PHONE["height"]) <= 1 and box["width"] == PHONE["width"]
        )
        name = page.locator(".nav-name").bounding_box()
        assert name is not None and name["width"] > 0  # shown, not hidden
        for link in page.locator(".nav-links a").all():
            other = link.bounding_box()
            overlaps = not (
                other["x"] >= name["x"] + name["width"]
                or other["x"] + other["width"] <= name["x"]
                or other["y"] >= name["y"] + name["height"]
                or other["y"] + other["height"] <= name["y"]
            )
            assert not overlaps, link.inner_text()
    page.screenshot(path=artifact_path(f"space-page-listener-{size}.png"))
    host_page.screenshot(path=artifact_path(f"space-page-host-{size}.png"), full_page=True)

"""Our own 404 page under `make run`'s DEBUG (issue #18, bug 6); the 500 page is pinned by
tests/config/test_error_pages.py, which can make a view fail."""

from __future__ import annotations

from tests.e2e.live_helpers import screenshots
from tests.spaces.factories import make_member


def test_a_missing_space_shows_our_404_page_under_debug(
    live_server_process, launch_browser, signed_in_context, artifact_path
):
    """The server runs as `make run` does (DEBUG on): a missing space is Salon's page, with
    the nav and a way home, not Django's technical page."""
    server = live_server_process(DJANGO_DEBUG="1")
    member = make_member("mia")
    page = signed_in_context(launch_browser(), server=server, user=member).new_page()
    response = page.goto("/spaces/999999/")
    assert response.status == 404
    page.get_by_role("heading", name="Not found", exact=True).wait_for()
    page.get_by_role("link", name="Go to the home page").wait_for()
    assert "URLconf" not in page.content() and "technical" not in page.content()
    screenshots(page, artifact_path, "not-found")
    assert page.goto("/no-such-page/").status == 404
    page.get_by_role("heading", name="Not found", exact=True).wait_for()

import pytest
from django.contrib.auth import get_user_model

PHONE = {"width": 390, "height": 844}


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_member_sees_home_page_signed_in(
    live_server_process, launch_browser, signed_in_context, artifact_path, viewport
):
    """A signed-in member gets the home page with their name in the navigation, on any width."""
    server = live_server_process()
    user = get_user_model().objects.create_user(
        username="e2e-member", password="x-pass-12345", display_name="Edie Tester"
    )
    context = signed_in_context(launch_browser(), server=server, user=user, viewport=viewport)
    page = context.new_page()

    page.goto("/")

    page.get_by_role("button", name="Log out").wait_for()
    assert page.get_by_role("navigation", name="Main").is_visible()
    size = "phone" if viewport else "desktop"
    page.screenshot(path=artifact_path(f"home-{size}.png"), full_page=True)


def test_login_form_signs_a_member_in(live_server_process, launch_browser):
    """The allauth login form works end to end in a real browser."""
    server = live_server_process()
    get_user_model().objects.create_user(username="e2e-login", password="x-pass-12345")
    page = launch_browser().new_context(base_url=server.url).new_page()

    page.goto("/accounts/login/")
    page.get_by_label("Username or email").fill("e2e-login")
    page.get_by_label("Password").fill("x-pass-12345")
    page.get_by_role("button", name="Log in").click()

    page.get_by_role("button", name="Log out").wait_for()
    assert page.url.rstrip("/") == server.url

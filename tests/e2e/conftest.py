"""Real-browser tests: Playwright driving Debian's Chromium against a real `manage.py serve`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("SALON_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Flags for a root, offline, headless machine: no sandbox (root), and no background traffic
# to Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def playwright_instance():
    # Playwright's sync API runs an event loop on this thread while it lives; Django then takes
    # every ORM call for one made from async code. The test's own ORM calls are plain sync code,
    # so allow them, for e2e modules only.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make test does)")
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            yield playwright
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def launch_browser(playwright_instance):
    """Launch Chromium; ``fake_audio`` is a WAV file the fake microphone plays in a loop."""
    browsers = []

    def launch(*, fake_audio: Path | None = None):
        args = list(CHROMIUM_ARGS)
        if fake_audio is not None:
            args += [
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={fake_audio}",
            ]
        browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=args)
        browsers.append(browser)
        return browser

    yield launch
    for browser in browsers:
        browser.close()


@pytest.fixture
def signed_in_context():
    """A browser context signed in as ``user`` on ``server``, through a real Django session."""
    from django.test import Client

    def make(browser, *, server, user, viewport=None):
        # A client of its own per member: logging another member in on the same client, or
        # logging out, would delete this session from the database.
        client = Client()
        client.force_login(user)
        context = browser.new_context(
            base_url=server.url, viewport=viewport or {"width": 1280, "height": 800}
        )
        context.set_default_timeout(15_000)
        sessionid = client.cookies["sessionid"].value
        context.add_cookies([{"name": "sessionid", "value": sessionid, "url": server.url}])
        return context

    return make


@pytest.fixture
def artifact_path():
    """Where screenshots and other evidence go (kept after the run, ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return lambda name: ARTIFACTS / name

"""Helpers for the browser tests of the live web client (issue #18)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from django.db import connection

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def off_loop(function, /, *args, **kwargs):
    """Run a service beside Playwright: services send their events through async_to_sync,
    which refuses to run on a thread with a running event loop (Playwright's)."""

    def run():
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()  # the thread's own connection would outlive the test database

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def screenshots(page, artifact_path, name: str) -> None:
    """``name``-desktop.png at 1280×800 and ``name``-phone.png at 390×844, of the same page
    (resized, so it keeps its live state); the page is left at the size it had."""
    before = page.viewport_size
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.screenshot(path=artifact_path(f"{name}-{size}.png"), full_page=True)
    page.set_viewport_size(before)

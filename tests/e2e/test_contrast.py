"""Contrast and labels in Chromium: unplayed waveform bars stand out of their card (≥ 3:1, the
WCAG minimum for graphics) in the light and the dark theme; the home page has an h1; every
control on the home and space pages has a visible label."""

from __future__ import annotations

import math

import pytest

from tests.e2e.test_screenshots import DESKTOP, PHONE
from tests.e2e.test_space_audio import open_space
from tests.spaces.factories import make_live_space, make_member
from tests.voicetweets.factories import ready_tweet
from voicetweets.models import VoiceTweet

# Relative luminance and contrast ratio as WCAG 2 defines them, of the computed colours.
CONTRAST_JS = """
([selector, backgroundSelector]) => {
  const rgb = (text) => text.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const luminance = ([r, g, b]) => {
    const lin = (c) => {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const bar = document.querySelector(selector);
  const fill = getComputedStyle(bar).fill;
  const background = getComputedStyle(bar.closest(backgroundSelector)).backgroundColor;
  const [a, b] = [luminance(rgb(fill)), luminance(rgb(background))].sort((x, y) => y - x);
  return { fill, background, ratio: (a + 0.05) / (b + 0.05) };
}
"""

# Controls shown on the page whose label a sighted member cannot read: a button without a
# letter in its text (an emoji button counts only inside a group with a visible label), a field
# without a visible <label>.
UNLABELLED_JS = """
() => {
  const visible = (el) =>
    el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const wordy = (text) => /\\p{L}/u.test(text || "");
  const fields = "button, input:not([type=hidden]), select, textarea";
  const controls = [...document.querySelectorAll(fields)];
  return controls.filter(visible).filter((el) => {
    if (el.tagName === "BUTTON" || ["submit", "button"].includes(el.type)) {
      if (wordy(el.innerText || el.value)) return false;
      const group = el.closest("[role=group]");
      const label = group && document.getElementById(group.getAttribute("aria-labelledby"));
      return !(visible(label) && wordy(label.innerText));
    }
    return ![...(el.labels || [])].some((label) => visible(label) && wordy(label.innerText));
  }).map((el) => el.outerHTML.slice(0, 160));
}
"""


@pytest.fixture
def feed(live_server_process):
    server = live_server_process()
    member = make_member("mira")
    tweet = ready_tweet(member, text="Shapes of a voice", seconds=9)
    shape = [0.15 + 0.8 * abs(math.sin(i / 5)) for i in range(100)]
    VoiceTweet.objects.filter(pk=tweet.pk).update(waveform=shape)
    return server, member


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_unplayed_waveform_bars_reach_3_to_1_against_the_card(
    feed, launch_browser, signed_in_context, artifact_path, scheme
):
    """The computed fill of an unplayed bar against its card's background: at least 3:1."""
    server, member = feed
    browser = launch_browser()
    for viewport, size in ((DESKTOP, "desktop"), (PHONE, "phone")):
        context = signed_in_context(browser, server=server, user=member, viewport=viewport)
        page = context.new_page()
        page.emulate_media(color_scheme=scheme)
        page.goto("/")
        page.locator(".waveform rect").first.wait_for()
        found = page.evaluate(CONTRAST_JS, [".waveform rect:not(.played)", ".card"])
        assert found["ratio"] >= 3, found
        page.screenshot(path=artifact_path(f"waveform-{scheme}-{size}.png"), full_page=True)
        context.close()


def test_home_has_an_h1_and_every_control_a_visible_label(feed, launch_browser, signed_in_context):
    """Home (feed, composer, players) and a live space (the member's controls): no control
    without a visible label, and one h1 on the home page."""
    server, member = feed
    host = make_member("hana", host=True)
    space = make_live_space(host, title="Labelled room")
    context = signed_in_context(launch_browser(), server=server, user=member, viewport=DESKTOP)
    page = context.new_page()
    page.goto("/")
    page.locator(".waveform rect").first.wait_for()
    assert page.locator("h1").count() == 1 and page.locator("h1").is_visible()
    assert page.evaluate(UNLABELLED_JS) == []
    space_page = open_space(context, space)
    space_page.get_by_role("button", name="Raise hand").wait_for()
    assert space_page.evaluate(UNLABELLED_JS) == []
    for path in ["/u/hana/", "/spaces/", "/messages/hana/", "/invitations/", "/settings/profile/"]:
        page.goto(path)
        assert page.evaluate(UNLABELLED_JS) == [], path
    visitor = launch_browser().new_context(base_url=server.url).new_page()
    for path in ["/", "/accounts/login/", "/waitlist/"]:
        visitor.goto(path)
        assert visitor.evaluate(UNLABELLED_JS) == [], path

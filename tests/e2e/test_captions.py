"""Captions in the web player: the segment being said shows under the player while it plays,
CC hides it (and the choice stays), and the transcript reads in full on the card."""

from concurrent.futures import ThreadPoolExecutor

from django.contrib.auth import get_user_model
from django.db import connection

from tests.voicetweets.factories import sine_wav, upload
from voicetweets import services
from voicetweets.models import Recording, VoiceTweet


def _create_and_close(author, seconds: float) -> VoiceTweet:
    try:
        return services.voicetweet_create(author=author, upload=upload(sine_wav(seconds)))
    finally:
        connection.close()


SEGMENTS = [
    {"text": "Good morning, salon.", "start": 0.0, "end": 2.0},
    {"text": "The second sentence starts here.", "start": 2.0, "end": 8.0},
]


def tweet_with_transcript(author, *, seconds: float = 8.0) -> VoiceTweet:
    """A voice tweet processed from real audio (so it plays), with a transcript stored directly
    instead of running whisper in a browser test."""
    # Processing notifies the author's sockets through async_to_sync, which refuses the thread
    # Playwright's event loop runs on: process on a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        tweet = pool.submit(_create_and_close, author, seconds).result(timeout=60)
    tweet.refresh_from_db()
    assert tweet.state == VoiceTweet.State.READY
    tweet.transcript_state = Recording.TranscriptState.READY
    tweet.transcript_segments = SEGMENTS
    tweet.transcript = " ".join(s["text"] for s in SEGMENTS)
    tweet.transcript_language = "en"
    tweet.save()
    return tweet


def test_captions_follow_playback_and_cc_hides_them(
    live_server_process, launch_browser, signed_in_context, artifact_path
):
    """Play: the second segment's text shows once playback passes 2 s; CC hides the line, and a
    reload remembers that; the transcript lists every segment."""
    server = live_server_process()
    member = get_user_model().objects.create_user(username="caro", display_name="Caro")
    tweet = tweet_with_transcript(member)
    browser = launch_browser()
    for name, (width, height) in [("desktop", (1280, 800)), ("mobile", (390, 844))]:
        viewport = {"width": width, "height": height}
        context = signed_in_context(browser, server=server, user=member, viewport=viewport)
        page = context.new_page()
        errors = []  # a CSP refusal or a script error shows in the console
        page.on("console", lambda m, errors=errors: m.type == "error" and errors.append(m.text))
        page.goto(f"/voicetweets/{tweet.pk}/")
        card = page.locator(f"#voicetweet-{tweet.pk}")
        line = card.locator(".caption-line")
        assert line.is_hidden()  # nothing is said before playback
        card.get_by_role("button", name="Play voice tweet by Caro").click()
        page.wait_for_function(
            """el => el.textContent === 'The second sentence starts here.' && !el.hidden""",
            arg=line.element_handle(),
        )
        # The line matches the time that is playing, not just any segment.
        assert (
            page.evaluate(
                "() => Number(document.querySelector('.waveform').getAttribute('aria-valuenow'))"
            )
            >= 2
        )
        page.screenshot(path=artifact_path(f"captions-{name}.png"), full_page=True)

        cc = card.get_by_role("button", name="Captions")
        assert cc.get_attribute("aria-pressed") == "true"
        cc.click()
        line.wait_for(state="hidden")
        assert cc.get_attribute("aria-pressed") == "false"
        page.reload()
        assert card.get_by_role("button", name="Captions").get_attribute("aria-pressed") == "false"
        # Back on for the next viewport's run, as a member would leave it.
        card.get_by_role("button", name="Captions").click()

        card.get_by_text("Read transcript").click()
        segments = card.locator(".transcript-segments .segment")
        assert segments.count() == 2
        assert "Good morning, salon." in segments.nth(0).inner_text()
        # A transcript line plays from its start.
        segments.nth(0).click()
        page.wait_for_function(
            "el => el.textContent === 'Good morning, salon.' && !el.hidden",
            arg=line.element_handle(),
        )
        assert errors == []
        context.close()


def test_a_search_result_opens_the_player_at_the_second_it_is_said(
    live_server_process, launch_browser, signed_in_context, artifact_path
):
    """Search a word said only in the audio: the result links to its segment's second, and the
    voice tweet's player starts playing from there with that caption showing."""
    server = live_server_process()
    author = get_user_model().objects.create_user(username="caro", display_name="Caro")
    seeker = get_user_model().objects.create_user(username="sam", display_name="Sam")
    tweet = tweet_with_transcript(author)
    page = signed_in_context(launch_browser(), server=server, user=seeker).new_page()
    # Whether the first segment was ever the one playing: it would be, had playback begun at 0.
    page.add_init_script(
        """new MutationObserver(() => {
            const first = document.querySelector('.segment.current[data-start="0.00"]');
            if (first) window.playedFromStart = true;
        }).observe(document, {subtree: true, attributes: true, attributeFilter: ['class']});"""
    )
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto("/search/")
    page.get_by_label("Words said or written, space titles, members").fill("sentence")
    page.get_by_role("button", name="Search", exact=True).click()
    hit = page.locator(".search-hit", has_text="second sentence")
    assert hit.locator("mark").inner_text() == "sentence"
    page.screenshot(path=artifact_path("search-desktop.png"), full_page=True)
    hit.get_by_role("link", name="Listen from 0:02").click()
    page.wait_for_url(f"**/voicetweets/{tweet.pk}/?t=2")
    card = page.locator(f"#voicetweet-{tweet.pk}")
    page.wait_for_function(
        "el => Number(el.getAttribute('aria-valuenow')) >= 2",
        arg=card.get_by_role("slider", name="Seek").element_handle(),
    )
    card.get_by_role("button", name="Pause voice tweet by Caro").wait_for()
    line = card.locator(".caption-line")
    line.wait_for(state="visible")
    assert line.inner_text() == "The second sentence starts here."
    assert page.evaluate("window.playedFromStart") is None
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=artifact_path("search-moment-mobile.png"), full_page=True)

    # The fragment form of the same link (#t=), as a media fragment would be written.
    page.goto("about:blank")
    page.goto(f"/voicetweets/{tweet.pk}/#t=2")
    page.wait_for_function(
        "el => Number(el.getAttribute('aria-valuenow')) >= 2",
        arg=card.get_by_role("slider", name="Seek").element_handle(),
    )
    assert page.evaluate("window.playedFromStart") is None
    assert errors == []

"""Voice tweet cards that appear live behave like the page's own (issue #18, bugs 1, 2, 7)."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from tests.e2e.live_helpers import screenshots
from tests.e2e.test_space_audio import tone_wav
from tests.voicetweets.factories import ready_tweet, sine_wav
from voicetweets.models import Like


def _post_file(page, tmp_path, text: str) -> None:
    wav = tmp_path / "voice.wav"
    wav.write_bytes(sine_wav(3))
    page.get_by_label("…or upload a file").set_input_files(str(wav))
    page.get_by_role("button", name="Post").click()
    page.get_by_text("Posted.").wait_for()


def test_liking_a_card_that_appeared_live_stays_on_the_page(
    live_server_process, launch_browser, signed_in_context, tmp_path
):
    """Bug 1: like on a card swapped in after posting comes back to the home page, not to the
    unstyled /voicetweets/N/card fragment."""
    server = live_server_process()
    member = get_user_model().objects.create_user(username="lia", display_name="Lia")
    page = signed_in_context(launch_browser(), server=server, user=member).new_page()
    page.goto("/")
    page.get_by_label("Say something").fill("like me")
    _post_file(page, tmp_path, "like me")
    card = page.locator("article.voicetweet[data-state=ready]", has_text="like me")
    with page.expect_navigation():
        card.get_by_role("button", name="Like").click()
    assert page.url == f"{server.url}/"
    page.locator("h2#feed-title").wait_for()  # the whole page, styled, not a fragment
    liked = page.locator("article.voicetweet", has_text="like me")
    assert liked.get_by_role("button", name="Like").get_attribute("aria-pressed") == "true"
    assert Like.objects.filter(user=member).count() == 1


def test_a_voice_reply_appears_in_the_thread_without_reload(
    live_server_process, launch_browser, signed_in_context, tmp_path, artifact_path
):
    """Bug 2: replying on a voice tweet's page, the reply shows in its thread once processed,
    and "No replies yet." goes."""
    server = live_server_process()
    User = get_user_model()
    author = User.objects.create_user(username="ari", display_name="Ari")
    replier = User.objects.create_user(username="rob", display_name="Rob")
    tweet = ready_tweet(author, text="what do you think?")
    page = signed_in_context(launch_browser(), server=server, user=replier).new_page()
    page.goto(f"/voicetweets/{tweet.pk}/")
    page.get_by_text("No replies yet.").wait_for()
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.get_by_label("Reply with your voice").fill("my answer")
    _post_file(page, tmp_path, "my answer")
    reply = page.locator(
        "section.thread article.voicetweet[data-state=ready]", has_text="my answer"
    )
    reply.wait_for()
    assert page.get_by_text("No replies yet.").count() == 0
    assert navigations == []
    screenshots(page, artifact_path, "voicetweet-reply-live")


def test_after_posting_a_recording_the_composer_is_fresh_and_the_console_clean(
    live_server_process, launch_browser, signed_in_context, tmp_path
):
    """Bug 7: once posted, the old preview and "Record again" are gone, and no failed blob:
    fetch (or any other error) shows in the console."""
    server = live_server_process()
    member = get_user_model().objects.create_user(username="rita", display_name="Rita")
    browser = launch_browser(fake_audio=tone_wav(tmp_path / "voice.wav", 330))
    page = signed_in_context(browser, server=server, user=member).new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/")
    page.get_by_label("Say something").fill("fresh after")
    page.get_by_role("button", name="Record", exact=True).click()
    page.wait_for_function("() => document.querySelector('.composer .timer').textContent == '0:02'")
    page.get_by_role("button", name="Stop recording").click()
    page.get_by_text("Recorded 0:02").wait_for()
    # Play the preview for a moment, as a member checks their take before posting.
    page.evaluate("() => document.querySelector('.composer .preview').play()")
    page.get_by_role("button", name="Post").click()
    page.locator("article.voicetweet[data-state=ready]", has_text="fresh after").wait_for(
        timeout=30_000
    )
    page.get_by_text("Posted.").wait_for()
    assert page.locator(".composer .preview").is_hidden()
    assert page.get_by_role("button", name="Record again").count() == 0
    page.get_by_role("button", name="Record", exact=True).wait_for()
    assert page.locator(".composer .timer").text_content() == "0:00"
    assert errors == []

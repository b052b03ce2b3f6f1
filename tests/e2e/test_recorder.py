"""Record a voice tweet with the (fake) microphone in real Chromium, post it, and play it."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from tests.e2e.test_space_audio import tone_wav


def test_record_and_post_a_voice_tweet(
    live_server_process, launch_browser, signed_in_context, tmp_path, artifact_path
):
    """Record about 3 s from the microphone, post: the card turns ready with a waveform, plays."""
    server = live_server_process()
    member = get_user_model().objects.create_user(username="rita", display_name="Rita Recorder")
    browser = launch_browser(fake_audio=tone_wav(tmp_path / "voice.wav", 330))
    page = signed_in_context(browser, server=server, user=member).new_page()
    page.goto("/")

    page.get_by_label("Say something").fill("recorded live")
    page.get_by_role("button", name="Record", exact=True).click()
    page.get_by_text("Recording…").wait_for()
    # The level meter moves with the microphone, and the timer counts up to 3 s.
    page.wait_for_function("() => document.querySelector('.composer .level').value > 0.05")
    page.wait_for_function("() => document.querySelector('.composer .timer').textContent == '0:03'")
    page.get_by_role("button", name="Stop recording").click()
    page.get_by_text("Recorded 0:03").wait_for()
    assert page.locator(".composer .preview").is_visible()
    page.get_by_role("button", name="Post").click()

    card = page.locator("article.voicetweet[data-state=ready]", has_text="recorded live")
    card.wait_for(timeout=30_000)
    page.get_by_text("Posted.").wait_for()
    assert card.locator(".waveform rect").count() >= 50
    duration = float(card.locator(".player").get_attribute("data-duration"))
    assert 2.0 <= duration <= 5.0, duration

    card.get_by_role("button", name="Play voice tweet by Rita Recorder").click()
    page.wait_for_function(
        "el => el.querySelector('.play').textContent === '❚❚ Pause'",
        arg=card.locator(".player").element_handle(),
    )
    # It really plays: the playhead moves along the waveform.
    page.wait_for_function(
        "el => Number(el.getAttribute('aria-valuenow')) >= 1",
        arg=card.get_by_role("slider", name="Seek").element_handle(),
    )
    page.screenshot(path=artifact_path("feed-after-recording.png"), full_page=True)

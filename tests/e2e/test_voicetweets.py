from django.contrib.auth import get_user_model

from tests.voicetweets.factories import sine_wav


def test_uploaded_voice_tweet_appears_processed_without_reload(
    live_server_process, launch_browser, signed_in_context, tmp_path, artifact_path
):
    """Upload from the home page: progress, then "processing", then a playable, seekable card."""
    server = live_server_process()
    member = get_user_model().objects.create_user(username="poster", display_name="Poppy Poster")
    wav = tmp_path / "hello.wav"
    wav.write_bytes(sine_wav(6))
    page = signed_in_context(launch_browser(), server=server, user=member).new_page()
    page.goto("/")
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    # Remember every status the composer shows: the upload is fast, so we cannot watch it live.
    page.evaluate(
        """() => {
            window.statuses = [];
            const status = document.querySelector('.composer-status');
            new MutationObserver(() => window.statuses.push(status.textContent))
                .observe(status, {childList: true, characterData: true, subtree: true});
        }"""
    )
    page.get_by_label("Say something").fill("first words")
    page.get_by_label("…or upload a file").set_input_files(str(wav))
    page.get_by_role("button", name="Post").click()

    card = page.locator("article.voicetweet[data-state=ready]", has_text="first words")
    card.wait_for()
    assert navigations == []  # no reload happened
    page.get_by_text("Posted.").wait_for()
    assert page.evaluate("window.statuses") == ["Uploading…", "Uploaded. Processing…", "Posted."]
    assert page.get_by_text("Nothing here yet").count() == 0
    player = card.locator(".player")
    assert card.locator(".waveform rect").count() >= 50
    # Play, then seek by clicking the waveform's middle: the audio element follows.
    card.get_by_role("button", name="Play voice tweet by Poppy Poster").click()
    page.wait_for_function(
        "el => el.querySelector('.time').textContent !== '0:06'", arg=player.element_handle()
    )
    card.get_by_role("slider", name="Seek").click()
    page.wait_for_function(
        "el => Number(el.getAttribute('aria-valuenow')) >= 2",
        arg=card.get_by_role("slider", name="Seek").element_handle(),
    )
    page.screenshot(path=artifact_path("feed-desktop.png"), full_page=True)


def test_a_file_over_the_upload_cap_gets_the_servers_reason(
    live_server_process, launch_browser, signed_in_context, tmp_path, settings
):
    """The server refuses an upload over the cap from its Content-Length, while the browser is
    still sending: the composer shows the server's reason, not a connection failure."""
    server = live_server_process()
    member = get_user_model().objects.create_user(username="poster")
    large = tmp_path / "long.wav"
    large.write_bytes(b"\0" * (settings.SALON_VOICETWEET_MAX_UPLOAD_BYTES + 1))
    page = signed_in_context(launch_browser(), server=server, user=member).new_page()
    page.goto("/")

    page.get_by_label("…or upload a file").set_input_files(str(large))
    page.get_by_role("button", name="Post").click()

    page.get_by_text("Request body too large: the limit here is 28 MB.").wait_for()

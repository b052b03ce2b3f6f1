"""The replay page in a real browser: it plays, "Next speaker" and the timeline seek."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from django.db import connection

from tests.spaces.factories import make_member, make_replay

AUDIO_AT = """([low, high]) => {
    const audio = document.querySelector('audio');
    return audio.currentTime >= low && audio.currentTime < high;
}"""


def test_next_speaker_and_the_timeline_seek_the_replay(
    live_server_process, launch_browser, signed_in_context, artifact_path
):
    """Host, then Sam, then the host again: "Next speaker" jumps to Sam's turn, then to the
    host's second; a timeline entry seeks to its turn; the speaker's entry is marked."""
    host = make_member("hana", host=True)
    sam = make_member("sam")

    # Ending a space broadcasts through async_to_sync, which refuses to run beside
    # Playwright's loop: build the replay on a thread of its own.
    def build():
        try:
            return make_replay(host, turns=[(host.pk, 2, 440), (sam.pk, 2, 660), (host.pk, 1, 440)])
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        replay = pool.submit(build).result()
    turns = replay.timeline
    assert [turn["speaker_id"] for turn in turns] == [host.pk, sam.pk, host.pk]
    server = live_server_process()
    page = signed_in_context(launch_browser(), server=server, user=make_member("leo")).new_page()

    page.goto(f"/spaces/{replay.space_id}/replay/")
    page.wait_for_function("document.querySelector('audio').readyState >= 1")  # metadata
    page.get_by_role("button", name="Next speaker").click()
    page.wait_for_function(AUDIO_AT, arg=[turns[1]["start"] - 0.05, turns[1]["end"]])
    page.locator(f'li.speaking[data-speaker-id="{sam.pk}"]').wait_for()

    page.get_by_role("button", name="Next speaker").click()
    page.wait_for_function(AUDIO_AT, arg=[turns[2]["start"] - 0.05, turns[2]["end"]])

    page.get_by_role("button", name="Play from 0:00").click()
    page.wait_for_function(AUDIO_AT, arg=[0, turns[0]["end"]])
    page.screenshot(path=artifact_path("replay-desktop.png"), full_page=True)

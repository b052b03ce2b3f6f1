"""Live audio of the space page in real Chromium: fake microphones play tones, listeners' pages
measure what they hear with an AnalyserNode (``window.salonAudio``, static/js/space.js)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.spaces.audio.signals import write_tone
from tests.spaces.factories import make_live_space, make_member

RATE = 48_000
# Generous: joining, the mixer's priming, the analyser's smoothing; Chromium's noise suppressor
# also takes a moment to settle on a new signal.
HEAR_TIMEOUT = 30_000


def tone_wav(path: Path, frequency: float, *, seconds: float = 10.0) -> Path:
    """A mono 48 kHz WAV of a sine at −10 dBFS; the fake microphone loops it."""
    return write_tone(path, seconds=seconds, frequency=frequency, amplitude=10_485)


def open_space(context, space):
    page = context.new_page()
    page.goto(f"/spaces/{space.pk}/")
    page.get_by_text("You are in the space.").wait_for()
    page.wait_for_function("() => window.salonAudio !== undefined")
    return page


def wait_until_heard(page, frequency: float, *, above: float = -60.0) -> None:
    """Poll the page's analyser until ``frequency`` stands out of what it plays."""
    page.wait_for_function(
        "([hz, floor]) => window.salonAudio.bandLevel(hz) > floor",
        arg=[frequency, above],
        timeout=HEAR_TIMEOUT,
        polling=200,
    )


@pytest.fixture
def tones(tmp_path):
    return {hz: tone_wav(tmp_path / f"tone-{hz}.wav", hz) for hz in (440, 660)}


@pytest.fixture
def stage(request, live_server_process, launch_browser, signed_in_context, tones):
    """A live space with its host (440 Hz microphone) unmuted, and a listener page. Indirect
    parameters are the server's extra environment."""
    server = live_server_process(**getattr(request, "param", {}))
    host = make_member("hana", host=True)
    space = make_live_space(host, title="Tone check")
    listener = make_member("leo")

    host_page = open_space(
        signed_in_context(launch_browser(fake_audio=tones[440]), server=server, user=host), space
    )
    listener_page = open_space(
        signed_in_context(launch_browser(), server=server, user=listener), space
    )
    # The host joins muted; unmuting starts the frames.
    host_page.get_by_role("button", name="Unmute your microphone").click()
    host_page.get_by_role("button", name="Mute your microphone").wait_for()
    return {
        "server": server,
        "space": space,
        "host": host,
        "host_page": host_page,
        "listener_page": listener_page,
    }


@pytest.mark.parametrize(
    "stage",
    [{}, {"SALON_AUDIO_BUNDLE_FROM": "1"}],
    indirect=True,
    ids=["frame-per-message", "big-room-bundles"],
)
def test_listener_hears_the_hosts_tone(stage, request):
    """The host's 440 Hz reaches a listener in another browser, as the dominant frequency;
    also when the room is big enough for listeners to get two frames per message."""
    listener_page = stage["listener_page"]
    wait_until_heard(listener_page, 440)
    listener_page.wait_for_function(
        "() => Math.abs(window.salonAudio.dominantFrequency() - 440) < 12",
        timeout=HEAR_TIMEOUT,
        polling=200,
    )
    stats = listener_page.evaluate("window.salonAudio.stats()")
    assert stats["received"] > 0
    bundled = "big-room-bundles" in request.node.callspec.id
    assert (stats["bundles"] > 0) is bundled
    assert stats["microphone"] is False  # listeners never open the microphone
    assert stage["host_page"].evaluate("window.salonAudio.stats()")["sent"] > 0


@pytest.fixture
def two_on_stage(stage, launch_browser, signed_in_context, tones):
    """Add a listener (660 Hz microphone) who raises a hand, is approved and unmutes."""
    speaker = make_member("sam")
    speaker_page = open_space(
        signed_in_context(
            launch_browser(fake_audio=tones[660]), server=stage["server"], user=speaker
        ),
        stage["space"],
    )
    assert speaker_page.evaluate("window.salonAudio.stats()")["microphone"] is False
    speaker_page.get_by_role("button", name="Raise hand").click()
    stage["host_page"].get_by_role("button", name="Let sam speak").click()
    # Approved speakers come on stage muted, with the microphone already open.
    speaker_page.wait_for_function("() => window.salonAudio.stats().microphone")
    assert speaker_page.evaluate("window.salonAudio.stats()")["sent"] == 0
    speaker_page.get_by_role("button", name="Unmute your microphone").click()
    speaker_page.get_by_role("button", name="Mute your microphone").wait_for()
    speaker_page.wait_for_function("() => window.salonAudio.stats().sent > 0")
    return {**stage, "speaker": speaker, "speaker_page": speaker_page}


def test_approved_speaker_is_heard_with_the_host(two_on_stage):
    """After raise hand → approve → unmute, a listener hears 660 Hz together with 440 Hz."""
    listener_page = two_on_stage["listener_page"]
    wait_until_heard(listener_page, 660)
    wait_until_heard(listener_page, 440)
    levels = listener_page.evaluate(
        "() => [window.salonAudio.bandLevel(440), window.salonAudio.bandLevel(660)]"
    )
    assert min(levels) > -60, levels
    # The speaker's own page plays a mix-minus: the host's voice, not their own.
    wait_until_heard(two_on_stage["speaker_page"], 440)


def test_host_mutes_the_speaker_out_of_the_mix(two_on_stage):
    """When the host mutes the speaker, 660 Hz drops out of what the listener hears; 440 stays."""
    listener_page = two_on_stage["listener_page"]
    wait_until_heard(listener_page, 660)
    wait_until_heard(listener_page, 440)

    two_on_stage["host_page"].get_by_role("button", name="Mute sam").click()
    two_on_stage["speaker_page"].get_by_role("button", name="Unmute your microphone").wait_for()
    listener_page.wait_for_function(
        """() => window.salonAudio.bandLevel(660) < -80
                 && window.salonAudio.bandLevel(440) > -60""",
        timeout=HEAR_TIMEOUT,
        polling=200,
    )
    # The muted speaker's page stopped sending at once and keeps nothing in flight.
    sent = two_on_stage["speaker_page"].evaluate("window.salonAudio.stats()")["sent"]
    listener_page.wait_for_timeout(500)
    assert two_on_stage["speaker_page"].evaluate("window.salonAudio.stats()")["sent"] == sent


def test_moved_to_listeners_releases_the_microphone(two_on_stage):
    """A speaker moved back to the listeners stops sending and lets go of the microphone."""
    listener_page = two_on_stage["listener_page"]
    wait_until_heard(listener_page, 660)
    two_on_stage["host_page"].get_by_role("button", name="Move sam to the listeners").click()
    speaker_page = two_on_stage["speaker_page"]
    speaker_page.get_by_role("button", name="Raise hand").wait_for()
    speaker_page.wait_for_function(
        "() => !window.salonAudio.stats().microphone && !window.salonAudio.stats().sending"
    )
    listener_page.wait_for_function(
        "() => window.salonAudio.bandLevel(660) < -80", timeout=HEAR_TIMEOUT, polling=200
    )


def test_a_host_whose_network_drops_reconnects_and_is_heard_again(
    live_server_process, launch_browser, signed_in_context, tones
):
    """The host's page reaches the server through a proxy that cuts its connection mid-talk:
    the page reconnects by itself, sends again without a click, and the listener hears it."""
    from types import SimpleNamespace

    from tests.live import CuttableProxy

    server = live_server_process()
    host = make_member("hana", host=True)
    space = make_live_space(host, title="Tone check")
    listener = make_member("leo")
    proxy = CuttableProxy(server.port)
    through_proxy = SimpleNamespace(url=proxy.start())
    try:
        host_page = open_space(
            signed_in_context(launch_browser(fake_audio=tones[440]), server=through_proxy,
                              user=host),
            space,
        )  # fmt: skip
        listener_page = open_space(
            signed_in_context(launch_browser(), server=server, user=listener), space
        )
        host_page.get_by_role("button", name="Unmute your microphone").click()
        wait_until_heard(listener_page, 440)

        proxy.cut()
        host_page.wait_for_function(
            "() => window.salonAudio.stats().joins === 2", timeout=HEAR_TIMEOUT
        )
        # The old stream's tail is over by now (the room stops sending 10 ticks after the
        # last voice): mix frames from here on carry the new connection's stream.
        received = listener_page.evaluate("window.salonAudio.stats().received")
        listener_page.wait_for_function(
            "(before) => window.salonAudio.stats().received > before + 50",
            arg=received,
            timeout=HEAR_TIMEOUT,
        )
        wait_until_heard(listener_page, 440)
        assert host_page.evaluate("window.salonAudio.stats()")["sending"] is True
    finally:
        proxy.stop()


def test_the_hosts_newest_tab_speaks_and_the_older_one_only_listens(
    stage, launch_browser, signed_in_context, tones
):
    """The host opens the space again in another browser (a 660 Hz microphone): that page
    speaks for them; the first one is told, stops sending and lets go of its microphone."""
    listener_page = stage["listener_page"]
    wait_until_heard(listener_page, 440)
    newer = open_space(
        signed_in_context(
            launch_browser(fake_audio=tones[660]), server=stage["server"], user=stage["host"]
        ),
        stage["space"],
    )
    older = stage["host_page"]
    older.wait_for_function(
        "() => window.salonAudio.stats().superseded && !window.salonAudio.stats().microphone"
    )
    older.get_by_text("this page only listens").wait_for()
    listener_page.wait_for_function(
        """() => window.salonAudio.bandLevel(660) > -60
                 && window.salonAudio.bandLevel(440) < -80""",
        timeout=HEAR_TIMEOUT,
        polling=200,
    )
    assert newer.evaluate("window.salonAudio.stats()")["sending"] is True
    sent = older.evaluate("window.salonAudio.stats()")["sent"]
    listener_page.wait_for_timeout(500)
    assert older.evaluate("window.salonAudio.stats()")["sent"] == sent


def test_the_host_switches_to_music_mode_and_the_listener_sees_it(stage):
    """The host's toggle: the listener's page shows the Music mode badge, the host's uplink
    switches to the music encoder and re-opens the microphone without voice processing, and
    the listener still hears the tone."""
    host_page, listener_page = stage["host_page"], stage["listener_page"]
    wait_until_heard(listener_page, 440)
    badge = listener_page.locator('[data-role="audio-mode"]')
    assert badge.is_hidden()
    assert host_page.evaluate("() => window.salonAudio.stats().microphoneProcessing")[
        "noiseSuppression"
    ]

    host_page.get_by_role("button", name="Switch to music mode").click()

    badge.wait_for(state="visible")
    assert badge.inner_text() == "♪ Music mode"
    host_page.get_by_role("button", name="Switch to speech mode").wait_for()
    host_page.wait_for_function(
        """() => { const s = window.salonAudio.stats();
                   return s.audioMode === "music" && s.microphoneProcessing
                     && !s.microphoneProcessing.noiseSuppression
                     && !s.microphoneProcessing.echoCancellation && s.sending; }""",
        timeout=HEAR_TIMEOUT,
    )
    sent = host_page.evaluate("() => window.salonAudio.stats().sent")
    host_page.wait_for_function(f"() => window.salonAudio.stats().sent > {sent + 50}")
    wait_until_heard(listener_page, 440)
    # A listener gets no toggle: only the host chooses the mode.
    assert listener_page.locator('[data-action="audio-mode"]').is_hidden()


def test_the_host_adds_fec_while_the_server_reports_uplink_loss(stage):
    """An `uplink.quality` report with loss reconfigures the host's Opus encoder with in-band
    FEC tuned to it (Chromium accepts the config, sending goes on and is heard); a 0 % report,
    or a malformed one, turns it off again."""
    host_page, listener_page = stage["host_page"], stage["listener_page"]
    host_page.wait_for_function("() => window.salonAudio.stats().sent > 0")
    plain = host_page.evaluate("window.salonAudio.encoderConfig()")
    assert "useinbandfec" not in plain["opus"]

    host_page.evaluate(
        "window.salonAudio.dispatch({type: 'uplink.quality', loss_percent: 7, jitter_ms: 12})"
    )
    config = host_page.evaluate("window.salonAudio.encoderConfig()")
    assert config["opus"] == {**plain["opus"], "useinbandfec": True, "packetlossperc": 7}
    assert {k: v for k, v in config.items() if k != "opus"} == {
        k: v for k, v in plain.items() if k != "opus"
    }
    assert host_page.evaluate(
        "AudioEncoder.isConfigSupported(window.salonAudio.encoderConfig()).then(r => r.supported)"
    )
    sent = host_page.evaluate("window.salonAudio.stats().sent")
    host_page.wait_for_function(
        "(before) => window.salonAudio.stats().sent > before + 25 && window.salonAudio.stats().fec",
        arg=sent,
    )
    wait_until_heard(listener_page, 440)

    host_page.evaluate("window.salonAudio.dispatch({type: 'uplink.quality', loss_percent: 0})")
    assert host_page.evaluate("window.salonAudio.encoderConfig()") == plain
    host_page.evaluate("window.salonAudio.dispatch({type: 'uplink.quality', loss_percent: 'x'})")
    assert host_page.evaluate("window.salonAudio.encoderConfig()") == plain
    sent = host_page.evaluate("window.salonAudio.stats().sent")
    host_page.wait_for_function(
        "(before) => window.salonAudio.stats().sent > before + 25", arg=sent
    )


def test_the_host_turns_stereo_on_and_the_listener_plays_two_channels(stage):
    """Music mode, then the host's stereo toggle: the badge says stereo, the host's encoder
    sends stereo Opus (the TOC's stereo bit), the listener's page receives stereo mix frames
    and plays two channels, and still hears the (mono, so centred) tone."""
    host_page, listener_page = stage["host_page"], stage["listener_page"]
    wait_until_heard(listener_page, 440)
    stereo_toggle = host_page.locator('[data-action="audio-stereo"]')
    assert stereo_toggle.is_hidden()  # stereo is an option of music mode
    host_page.get_by_role("button", name="Switch to music mode").click()
    host_page.get_by_role("button", name="Switch to stereo").click()

    badge = listener_page.locator('[data-role="audio-mode"]')
    badge.wait_for(state="visible")
    listener_page.wait_for_function(
        "() => document.querySelector('[data-role=\"audio-mode\"]').textContent.includes('stereo')"
    )
    host_page.get_by_role("button", name="Switch to mono").wait_for()
    host_page.wait_for_function(
        """() => { const s = window.salonAudio.stats();
                   return s.audioMode === "music_stereo" && s.stereoSent > 50
                     && !s.microphoneProcessing.noiseSuppression; }""",
        timeout=HEAR_TIMEOUT,
    )
    listener_page.wait_for_function(
        "() => { const s = window.salonAudio.stats(); "
        "return s.channels === 2 && s.stereoReceived > 50; }",
        timeout=HEAR_TIMEOUT,
    )
    wait_until_heard(listener_page, 440)
    assert listener_page.locator('[data-action="audio-stereo"]').is_hidden()

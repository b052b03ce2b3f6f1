"""seed_demo makes a demo that is alive: spoken clips, processed voice tweets, a conversation,
a replay, the bot's live space and the bot's command line; it prints the real address."""

import wave

import pytest
from django.core.management import call_command

from config import demo
from spaces.models import Replay, Space
from voicetweets.models import VoiceMessage, VoiceTweet

pytestmark = pytest.mark.django_db


def test_seed_demo_seeds_voices_a_replay_a_conversation_and_the_bot(
    capsys, django_capture_on_commit_callbacks, settings, tmp_path
):
    """Everything is processed through the real pipeline (at commit, as in the embedded mode)
    and a second run adds nothing."""
    settings.DATA_DIR = tmp_path
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            call_command("seed_demo", force=True, host="0.0.0.0", port=8123)  # noqa: S104
    out = capsys.readouterr().out
    assert "Log in at http://0.0.0.0:8123/" in out and ":8000" not in out

    tweets = VoiceTweet.objects.all()
    assert tweets.count() == 3 and {t.state for t in tweets} == {"ready"}
    assert all(t.duration_seconds > 1 and len(t.waveform) == 100 for t in tweets)
    messages = VoiceMessage.objects.all()
    assert messages.count() == 2 and {m.state for m in messages} == {"ready"}
    replay = Replay.objects.get()
    assert replay.state == "ready" and replay.space.host.username == "alice"
    assert [entry["speaker_id"] for entry in replay.timeline][:2] == [
        replay.space.host_id,
        VoiceMessage.objects.filter(sender__username="bob").get().sender_id,
    ]

    live = Space.objects.get(state="live", host__username=demo.BOT_USERNAME)
    clip = tmp_path / "demo" / "bot.wav"
    with wave.open(str(clip)) as audio:
        assert audio.getnframes() / audio.getframerate() > 5  # something worth hearing
    command = demo.demo_bot_plan("http://127.0.0.1:8123")
    assert command[command.index("--space") + 1] == str(live.pk)
    assert command[command.index("--speak") + 1] == str(clip) and "--loop" in command


def test_without_espeak_the_clips_are_tones(monkeypatch, tmp_path):
    """No espeak-ng: a tone melody instead, so the demo still has a voice."""
    monkeypatch.setattr(demo.shutil, "which", lambda name: None)
    assert demo.speech_clip(tmp_path / "x.wav", "hello there, a long enough text") == "tone"
    with wave.open(str(tmp_path / "x.wav")) as audio:
        assert audio.getnframes() / audio.getframerate() >= 2

"""The living demo of ``make run``: speech clips made at seed time, a replay recorded from
them, and the bot that hosts the demo space by talking through the Python client.

``seed_demo`` makes the clips (espeak-ng when installed, else a tone melody, so the demo still
has a voice) and the data; ``serve`` (embedded mode) starts :func:`start_demo_bot`, which runs
``manage.py space_client`` as the demo space's host in a child process once the server answers.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import socket
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
from django.conf import settings

logger = logging.getLogger(__name__)

BOT_USERNAME = "salonbot"
BOT_SPACE_TITLE = "Salon radio: say hello"
RATE = 22_050  # espeak-ng's own rate; the client and the pipeline resample what they read

# What the demo voices say: the bot's loop, and what the members post and send.
BOT_SCRIPT = (
    "Hello, and welcome to Salon. This is the demo radio. "
    "You are listening to a live space. Raise your hand to ask to speak, "
    "or send a reaction. Salon is invite-only: members bring their friends."
)


def demo_dir() -> Path:
    path = Path(settings.DATA_DIR) / "demo"
    path.mkdir(parents=True, exist_ok=True)
    return path


def speech_clip(path: Path, text: str, *, voice: str = "en", pitch: int = 50) -> str:
    """A WAV of ``text`` said by espeak-ng; without espeak-ng, a short tone melody instead.
    Returns which one it made ("speech" or "tone")."""
    espeak = shutil.which("espeak-ng")
    if espeak:
        result = subprocess.run(  # noqa: S603 - fixed program, our own text
            [espeak, "-v", voice, "-p", str(pitch), "-s", "160", "-w", str(path), text],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if result.returncode == 0 and path.exists() and path.stat().st_size > 1000:
            return "speech"
        logger.warning("espeak-ng failed (%s): the demo speaks in tones", result.stderr[:200])
    _tone_melody(path, seconds=max(2.0, len(text) / 15))
    return "tone"


def _tone_melody(path: Path, *, seconds: float) -> None:
    notes = [440.0, 554.4, 659.3, 554.4]
    t = np.arange(int(0.4 * RATE)) / RATE
    envelope = np.minimum(1, np.minimum(t, t[::-1]) * 20)
    melody = np.concatenate(
        [0.3 * np.sin(2 * np.pi * f * t) * envelope for f in notes * int(seconds / 1.6 + 1)]
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((melody * 32767).astype("<i2").tobytes())


def record_replay(path: Path, turns: list[tuple[int, Path]]) -> None:
    """Write a room recording segment at ``path`` (what a room's mixer writes while recorded)
    of members taking turns saying their clips: ``(user_id, clip)``."""
    from salon_client.client import audio_frames
    from spaces.audio import OpusEncoder, RoomMixer
    from spaces.audio.recorder import MixRecorder

    mixer = RoomMixer()
    recorder = MixRecorder(path)
    mixer.mix_observers.append(recorder.on_mix)
    mixer.levels_observers.append(recorder.on_levels)
    encoders: dict[int, list] = {}
    tick = 0
    silence = np.zeros(960, np.int16)
    for user_id, clip in turns:
        if user_id not in encoders:
            mixer.add_speaker(user_id)
            encoders[user_id] = [OpusEncoder(), 0]
        encoder = encoders[user_id]
        for frame in [*audio_frames(clip), *[silence] * 25]:
            mixer.push(user_id, encoder[1], encoder[0].encode(frame), tick * 0.02)
            encoder[1] += 1
            mixer.tick()
            tick += 1
    recorder.close()


# --- The bot ------------------------------------------------------------------------------------

_bot: subprocess.Popen | None = None


def bot_command(*, url: str, space_id: int, token: str, clip: Path) -> list[str]:
    """The bot: the host of the demo space, saying its clip over and over
    (salon_client/client.py)."""
    manage = Path(settings.BASE_DIR) / "manage.py"
    return [
        sys.executable, str(manage), "space_client", "--url", url, "--space", str(space_id),
        "--token", token, "--speak", str(clip), "--loop", "--stats-every", "0",
    ]  # fmt: skip


def demo_bot_plan(url: str) -> list[str] | None:
    """The bot's command line if there is a live demo space and its clip, else None."""
    from rest_framework.authtoken.models import Token

    from spaces.models import Space

    space = Space.objects.filter(host__username=BOT_USERNAME, state=Space.State.LIVE).first()
    clip = demo_dir() / "bot.wav"
    token = Token.objects.filter(user__username=BOT_USERNAME).first()
    if space is None or token is None or not clip.exists():
        return None
    return bot_command(url=url, space_id=space.pk, token=token.key, clip=clip)


def start_demo_bot(*, host: str, port: int) -> None:
    """Once the server at host:port accepts connections, start the bot (a child process that
    ends with this one). Nothing without a seeded demo space."""
    url = f"http://{host}:{port}"
    command = demo_bot_plan(url)
    if command is None:
        return

    def run() -> None:
        global _bot
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((host.strip("[]"), port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        log = open(demo_dir() / "bot.log", "ab")  # noqa: SIM115 - the child's lifetime
        _bot = subprocess.Popen(command, stdout=log, stderr=log)  # noqa: S603 - our own command
        print(f"Demo: {BOT_USERNAME} is talking in '{BOT_SPACE_TITLE}' (log: {log.name})")

    threading.Thread(target=run, name="demo-bot", daemon=True).start()
    atexit.register(stop_demo_bot)


def stop_demo_bot() -> None:
    if _bot is not None and _bot.poll() is None:
        _bot.terminate()
        try:
            _bot.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _bot.kill()

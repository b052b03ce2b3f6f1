"""Private media (config.private_media): audio links that play for token clients, the two ways a
file goes out (X-Accel-Redirect, or streamed by Django), and the move from MEDIA_ROOT."""

from __future__ import annotations

import importlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client
from rest_framework.test import APIClient

from accounts.services import auth_token_issue
from config.http import FILE_CHUNK_BYTES
from tests.spaces.factories import make_member, make_replay
from tests.voicetweets.factories import ready_message, ready_tweet

pytestmark = pytest.mark.django_db


def _token_client(member) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {auth_token_issue(user=member).key}")
    return client


def _relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_token_clients_play_every_audio_url_the_api_returns_with_range():
    """A client signed in with a token only (no cookie) gets 206 and the right bytes for the
    audio_url of a voice tweet, a voice message it received and a replay."""
    alice, bob = make_member("alice"), make_member("bob")
    tweet, message = ready_tweet(alice), ready_message(alice, bob)
    replay = make_replay(make_member("hana", host=True), visibility="closed", invite=[bob])
    api = _token_client(bob)
    audio = {
        f"/api/v1/voicetweets/{tweet.pk}/": Path(tweet.audio.path),
        f"/api/v1/voicemessages/{message.pk}/": Path(message.audio.path),
        f"/api/v1/spaces/{replay.space_id}/replay/": replay.audio_path,
    }
    for resource, path in audio.items():
        url = api.get(resource).json()["audio_url"]
        assert urlsplit(url).netloc == "testserver", url

        response = Client().get(_relative(url), HTTP_RANGE="bytes=10-1009")

        assert response.status_code == 206, (resource, response.content[:200])
        assert response["Content-Range"] == f"bytes 10-1009/{path.stat().st_size}"
        assert b"".join(response.streaming_content) == path.read_bytes()[10:1010]


def test_with_an_accel_prefix_the_proxy_sends_the_file(settings):
    """With SALON_PRIVATE_MEDIA_ACCEL_PREFIX set, the view checks access and answers with an
    empty body and X-Accel-Redirect to the file under the internal location, keeping its
    content type and cache policy; a member without access still gets 404 and no redirect."""
    settings.SALON_PRIVATE_MEDIA_ACCEL_PREFIX = "/_private/"
    alice, bob = make_member("alice"), make_member("bob")
    message = ready_message(alice, bob)
    client = Client()
    client.force_login(bob)

    response = client.get(f"/voicemessages/{message.pk}/audio", HTTP_RANGE="bytes=0-9")

    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == f"/_private/{message.audio.name}"
    assert response["Content-Type"] == "audio/ogg"
    assert response["Cache-Control"] == "private, max-age=3600"
    client.force_login(make_member("stan"))
    refused = client.get(f"/voicemessages/{message.pk}/audio")
    assert refused.status_code == 404 and "X-Accel-Redirect" not in refused


def _large_tweet(author, size: int):
    tweet = ready_tweet(author)
    Path(tweet.audio.path).write_bytes(bytes(range(256)) * (size // 256))
    return tweet


def test_django_streams_files_a_chunk_at_a_time():
    """Embedded, the whole file and a range of it go out in chunks of at most FILE_CHUNK_BYTES
    (never read whole), with the declared length."""
    alice = make_member("alice")
    tweet = _large_tweet(alice, 5 * FILE_CHUNK_BYTES)
    data = Path(tweet.audio.path).read_bytes()
    client = Client()
    client.force_login(alice)

    whole = client.get(f"/voicetweets/{tweet.pk}/audio")
    part = client.get(f"/voicetweets/{tweet.pk}/audio", HTTP_RANGE="bytes=1000-")

    chunks = list(whole.streaming_content)
    assert len(chunks) == 5 and max(map(len, chunks)) == FILE_CHUNK_BYTES
    assert b"".join(chunks) == data and whole["Content-Length"] == str(len(data))
    assert b"".join(part.streaming_content) == data[1000:]
    assert part["Content-Length"] == str(len(data) - 1000)


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_file_is_read_off_the_event_loop_in_chunks(async_client):
    """Under ASGI the response iterates asynchronously (Django's handler would otherwise read
    a synchronous iterator into one list), still a chunk at a time, Range included."""
    alice = await sync_to_async(make_member)("alice")
    tweet = await sync_to_async(_large_tweet)(alice, 3 * FILE_CHUNK_BYTES)
    data = Path(tweet.audio.path).read_bytes()
    await async_client.aforce_login(alice)

    response = await async_client.get(
        f"/voicetweets/{tweet.pk}/audio", headers={"range": f"bytes=100-{2 * FILE_CHUNK_BYTES}"}
    )

    assert response.status_code == 206 and response.is_async
    chunks = [chunk async for chunk in response.streaming_content]
    assert len(chunks) == 2 and b"".join(chunks) == data[100 : 2 * FILE_CHUNK_BYTES + 1]


def test_private_files_have_no_url():
    alice = make_member("alice")
    tweet = ready_tweet(alice)
    assert Path(tweet.audio.path).is_relative_to(settings.SALON_PRIVATE_MEDIA_ROOT)
    with pytest.raises(ValueError, match="no public URL"):
        tweet.audio.url  # noqa: B018


def test_a_private_root_inside_a_public_one_fails_the_system_check(settings):
    """Overlapping roots would let the proxy publish private audio: manage.py check refuses."""
    settings.SALON_PRIVATE_MEDIA_ROOT = Path(settings.MEDIA_ROOT) / "private"
    with pytest.raises(SystemCheckError, match=r"salon\.E001"):
        call_command("check")


# --- Moving an older deployment's files ---------------------------------------------------------

_MIGRATIONS = [
    importlib.import_module("voicetweets.migrations.0004_private_media"),
    importlib.import_module("spaces.migrations.0005_replays_private"),
]


def _migrate_files(direction: str) -> None:
    for migration in _MIGRATIONS:
        getattr(migration, direction)(apps=None, schema_editor=None)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_upgrading_moves_private_files_out_of_media_root_and_loses_nothing():
    """Files an older version kept under MEDIA_ROOT move to the private root under the same
    names (so every row still finds its file); avatars stay. A copy a cut-short earlier run
    left behind is replaced, a second run finds nothing to do, and unapplying moves them back."""
    media, private = Path(settings.MEDIA_ROOT), Path(settings.SALON_PRIVATE_MEDIA_ROOT)
    old = {
        "voicetweets/2026/11/a1.m4a": b"tweet",
        "voicemessages/2026/11/b2.m4a": b"message",
        "uploads/voicetweets/c3.wav": b"upload",
        "work/voicetweet-7-ab12/voicetweet-1.m4a": b"work",
        "replays/4-0011223344556677/segments/000001-aa.ogg": b"segment",
        "replays/4-0011223344556677/replay.ogg": b"replay",
    }
    for name, data in {**old, "avatars/alice.webp": b"avatar"}.items():
        (media / name).parent.mkdir(parents=True, exist_ok=True)
        (media / name).write_bytes(data)
    (private / "voicemessages/2026/11").mkdir(parents=True)
    (private / "voicemessages/2026/11/b2.m4a").write_bytes(b"mess")  # an interrupted copy

    _migrate_files("move_files_to_private_root")

    assert _tree(private) == old
    assert _tree(media) == {"avatars/alice.webp": b"avatar"}
    assert sorted(p.name for p in media.iterdir()) == ["avatars"]
    _migrate_files("move_files_to_private_root")
    assert _tree(private) == old and _tree(media) == {"avatars/alice.webp": b"avatar"}

    _migrate_files("move_files_back")
    assert _tree(media) == {**old, "avatars/alice.webp": b"avatar"} and _tree(private) == {}


@pytest.mark.parametrize("accel_prefix", ["", "/_private/"])
def test_a_ready_recording_whose_file_is_gone_is_404(settings, accel_prefix):
    """A file lost on disk is a 404 (logged), never a 500 nor a redirect to nothing."""
    settings.SALON_PRIVATE_MEDIA_ACCEL_PREFIX = accel_prefix
    alice = make_member("alice")
    tweet = ready_tweet(alice)
    Path(tweet.audio.path).unlink()
    client = Client()
    client.force_login(alice)

    response = client.get(f"/voicetweets/{tweet.pk}/audio")

    assert response.status_code == 404 and "X-Accel-Redirect" not in response

"""Private audio (voice messages, voice tweets, replays) reached by path, by a stranger, or with
an audio link that was forged, reused, expired or revoked.

The path tests run against a real ``manage.py serve`` with the embedded defaults (DEBUG, as
``make run``), where Django serves MEDIA_ROOT under /media/. Through nginx in production:
``test_nginx.py``. Token clients playing their own audio links: ``tests/config/
test_private_media.py``.
"""

from __future__ import annotations

import http.client
import json
import types
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings
from django.core import signing
from django.test import Client
from rest_framework.authtoken.models import Token

from accounts import services as accounts_services
from accounts.services import auth_token_issue
from tests.spaces.factories import make_member, make_replay, session_cookie
from tests.voicetweets.factories import ready_message, ready_tweet
from voicetweets import services as voicetweet_services

pytestmark = pytest.mark.django_db(transaction=True)


def _get(server, path: str, *, cookie: bytes | None = None, byte_range: str | None = None):
    """Status and body of one GET, redirects not followed (a login redirect is an answer too)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Cookie": cookie.decode()} if cookie else {}
    if byte_range:
        headers["Range"] = byte_range
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _moderator():
    staff = make_member("mod")
    type(staff).objects.filter(pk=staff.pk).update(is_staff=True, is_superuser=True)
    return type(staff).objects.get(pk=staff.pk)


def test_private_audio_is_neither_public_by_path_nor_given_to_strangers(live_server_process):
    """A voice message, a hidden voice tweet and a closed space's replay: by their /media/ path
    nobody gets them, signed in or not (while /media/ still serves avatars); by their audio
    view a signed-out visitor gets 403 and a stranger 404; their author still gets the bytes."""
    alice, bob, stan = make_member("alice"), make_member("bob"), make_member("stan")
    host = make_member("hana", host=True)
    message = ready_message(alice, bob)
    hidden = ready_tweet(alice)
    voicetweet_services.voicetweet_hide(voicetweet=hidden, by=_moderator(), reason="spam")
    replay = make_replay(host, visibility="closed")
    avatar = Path(settings.MEDIA_ROOT) / "avatars" / "hana.webp"
    avatar.parent.mkdir(parents=True, exist_ok=True)
    avatar.write_bytes(b"RIFF-avatar")
    server = live_server_process()
    # What: (its audio view, the file, its name under MEDIA_ROOT in older versions, its author)
    private = {
        "voice message": (
            f"/voicemessages/{message.pk}/audio", Path(message.audio.path), message.audio.name,
            alice,
        ),
        "hidden voice tweet": (
            f"/voicetweets/{hidden.pk}/audio", Path(hidden.audio.path), hidden.audio.name, alice
        ),
        "closed replay": (
            f"/spaces/{replay.space_id}/replay/audio", replay.audio_path,
            f"{replay.directory}/replay.ogg", host,
        ),
    }  # fmt: skip
    stranger = session_cookie(stan)

    assert _get(server, "/media/avatars/hana.webp") == (200, b"RIFF-avatar")
    for what, (view, path, name, author) in private.items():
        for cookie in (None, stranger, session_cookie(author)):
            assert _get(server, f"/media/{name}", cookie=cookie)[0] == 404, (what, cookie)
        assert _get(server, view)[0] == 403, what
        assert _get(server, view, cookie=stranger)[0] == 404, what
        status, body = _get(server, view, cookie=session_cookie(author), byte_range="bytes=4-99")
        assert (status, body) == (206, path.read_bytes()[4:100]), what


# --- Audio links ------------------------------------------------------------------------------


def _token_client_link(member, path: str) -> str:
    """The audio_url the API gives ``member`` signed in with a token, for the resource at
    ``path``."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {auth_token_issue(user=member).key}")
    response = client.get(path)
    assert response.status_code == 200, response.content[:300]
    return response.json()["audio_url"]


def _link_parameter(url: str) -> str:
    return parse_qs(urlsplit(url).query)["link"][0]


def _play(url: str):
    """What a client without a session gets for ``url``."""
    parts = urlsplit(url)
    return Client().get(f"{parts.path}?{parts.query}", HTTP_RANGE="bytes=0-9")


def test_an_audio_link_opens_only_the_file_it_was_issued_for(alice, bob):
    """Bob's link to one of Alice's tweets, moved onto another tweet, a voice message or a
    replay URL, is refused with 403; so is the link with its payload rewritten to name Alice,
    or cut short. Nothing of any file comes back."""
    first, second = ready_tweet(alice), ready_tweet(alice)
    message = ready_message(alice, bob)
    replay = make_replay(make_member("hana", host=True), visibility="closed")
    link = _link_parameter(_token_client_link(bob, f"/api/v1/voicetweets/{first.pk}/"))
    _bobs_payload, timestamp, signature = link.split(":")
    as_alice = signing.b64_encode(
        json.dumps(["voicetweets:audio", first.pk, alice.pk], separators=(",", ":")).encode()
    ).decode()
    own = f"/voicetweets/{first.pk}/audio"
    attempts = [
        (f"/voicetweets/{second.pk}/audio", link),
        (f"/voicemessages/{message.pk}/audio", link),
        (f"/spaces/{replay.space_id}/replay/audio", link),
        (own, f"{as_alice}:{timestamp}:{signature}"),
        (own, link[:-3]),
        (own, ""),
    ]
    for path, forged in attempts:
        response = _play(f"http://testserver{path}?{urlencode({'link': forged})}")
        assert response.status_code == 403, (path, forged)
        assert "not valid" in response.content.decode(), (path, forged)
    assert _play(f"http://testserver{own}?{urlencode({'link': link})}").status_code == 206


def test_an_expired_audio_link_is_gone(alice, bob, monkeypatch):
    """Once SALON_MEDIA_LINK_MAX_AGE_SECONDS have passed, the link answers 410 saying why."""
    message = ready_message(alice, bob)
    url = _token_client_link(bob, f"/api/v1/voicemessages/{message.pk}/")
    assert _play(url).status_code == 206
    issued_at = signing.time.time()
    later = issued_at + settings.SALON_MEDIA_LINK_MAX_AGE_SECONDS + 1
    monkeypatch.setattr(signing, "time", types.SimpleNamespace(time=lambda: later))

    response = _play(url)

    assert response.status_code == 410 and "expired" in response.content.decode()


def test_hiding_blocking_and_suspending_revoke_issued_links(alice, bob):
    """Links issued while the member could hear the file stop working the moment they cannot:
    a tweet hidden by a moderator (404), a block between the two (404), the member suspended
    (403), even though each link is still within its age."""
    moderator = _moderator()
    hidden, blocked = ready_tweet(alice), ready_tweet(alice)
    message = ready_message(alice, bob)
    links = {
        "hidden": _token_client_link(bob, f"/api/v1/voicetweets/{hidden.pk}/"),
        "blocked": _token_client_link(bob, f"/api/v1/voicetweets/{blocked.pk}/"),
        "message": _token_client_link(bob, f"/api/v1/voicemessages/{message.pk}/"),
    }
    assert {what: _play(url).status_code for what, url in links.items()} == dict.fromkeys(
        links, 206
    )

    voicetweet_services.voicetweet_hide(voicetweet=hidden, by=moderator, reason="spam")
    assert _play(links["hidden"]).status_code == 404
    accounts_services.block_create(blocker=alice, blocked=bob)
    assert _play(links["blocked"]).status_code == 404
    accounts_services.user_suspend(user=bob, by=moderator, reason="abuse")
    assert not Token.objects.filter(user=bob).exists()
    response = _play(links["message"])
    assert response.status_code == 403 and "no longer valid" in response.content.decode()

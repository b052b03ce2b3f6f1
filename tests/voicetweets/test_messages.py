"""Voice messages: who may send to whom, the shared processing pipeline, and privacy."""

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts import services as accounts_services
from accounts.models import Block, Follow
from voicetweets import services
from voicetweets.models import VoiceMessage

from .factories import ready_message, sine_wav, upload

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def alice():
    return User.objects.create_user(username="alice", password="x-pass-12345")


@pytest.fixture
def bob():
    return User.objects.create_user(username="bob", password="x-pass-12345")


@pytest.fixture
def mutual(alice, bob):
    Follow.objects.create(follower=alice, followee=bob)
    Follow.objects.create(follower=bob, followee=alice)


@pytest.fixture
def admin():
    return User.objects.create_user(username="mod", is_staff=True, is_superuser=True)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _send(sender, recipient, data: bytes, capture, name="voice.wav") -> VoiceMessage:
    with capture(execute=True):
        message = services.voicemessage_send(
            sender=sender, recipient=recipient, upload=upload(data, name)
        )
    message.refresh_from_db()
    return message


# --- Who may send to whom ---------------------------------------------------------------------


def test_members_who_follow_each_other_exchange_voice_messages(
    alice, bob, mutual, django_capture_on_commit_callbacks
):
    """A 5 s message goes through the voice tweet pipeline and becomes ready for both."""
    message = _send(alice, bob, sine_wav(5), django_capture_on_commit_callbacks)

    assert message.state == VoiceMessage.State.READY, message.rejection_reason
    assert abs(message.duration_ms - 5000) <= 50 and max(message.waveform) > 0.1
    assert message.audio.name.startswith("voicemessages/") and not message.upload
    assert not any(
        (Path(settings.SALON_PRIVATE_MEDIA_ROOT) / "uploads" / "voicemessages").iterdir()
    )
    assert api(bob).get(f"/api/v1/voicemessages/{message.pk}/").json()["state"] == "ready"


def test_a_message_over_140_seconds_is_rejected(
    alice, bob, mutual, django_capture_on_commit_callbacks
):
    """141 s is refused with the same reason as a voice tweet; never split into parts."""
    message = _send(alice, bob, sine_wav(141), django_capture_on_commit_callbacks)

    assert message.state == VoiceMessage.State.REJECTED
    assert "140" in message.rejection_reason
    assert not message.audio and not message.upload
    assert VoiceMessage.objects.count() == 1
    # The recipient never sees a message that did not go through.
    assert api(bob).get(f"/api/v1/voicemessages/{message.pk}/").status_code == 404


def test_following_one_way_is_not_enough(alice, bob):
    """Alice follows Bob but Bob does not follow back: refused, nothing stored."""
    Follow.objects.create(follower=alice, followee=bob)

    with pytest.raises(services.VoiceTweetError) as refused:
        services.voicemessage_send(sender=alice, recipient=bob, upload=upload(sine_wav(2)))

    assert (refused.value.code, refused.value.status) == ("not_mutual", 403)
    assert "@bob" in refused.value.message
    assert not VoiceMessage.objects.exists()


def test_members_who_accept_messages_from_anyone_can_be_messaged(alice, bob):
    """The profile setting opens one's inbox to members one does not follow."""
    accounts_services.user_update_profile(user=bob, messages_from_anyone=True)

    services.voicemessage_check_send(sender=alice, recipient=bob)
    with pytest.raises(services.VoiceTweetError):
        services.voicemessage_check_send(sender=bob, recipient=alice)  # alice did not open hers


@pytest.mark.parametrize("blocker", ["sender", "recipient"])
def test_blocked_members_cannot_message_each_other(alice, bob, blocker):
    """A block in either direction refuses messages, even to an inbox open to anyone."""
    accounts_services.user_update_profile(user=bob, messages_from_anyone=True)
    accounts_services.user_update_profile(user=alice, messages_from_anyone=True)
    if blocker == "sender":
        Block.objects.create(blocker=alice, blocked=bob)
    else:
        Block.objects.create(blocker=bob, blocked=alice)

    for sender, recipient in ((alice, bob), (bob, alice)):
        with pytest.raises(services.VoiceTweetError) as refused:
            services.voicemessage_check_send(sender=sender, recipient=recipient)
        assert refused.value.code == "blocked"


def test_nobody_messages_themselves(alice):
    """Sending to oneself is refused (and the database refuses it too)."""
    with pytest.raises(services.VoiceTweetError) as refused:
        services.voicemessage_check_send(sender=alice, recipient=alice)
    assert refused.value.code == "self"


def test_a_stalled_message_is_retried_then_rejected(alice, bob, django_capture_on_commit_callbacks):
    """The stalled sweep covers voice messages too: queued again, rejected once out of attempts."""
    from datetime import timedelta

    from django.utils import timezone

    message = VoiceMessage.objects.create(sender=alice, recipient=bob)
    VoiceMessage.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - timedelta(hours=1), processing_attempts=2
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert services.voicetweets_requeue_stalled() == 1

    message.refresh_from_db()
    assert message.state == VoiceMessage.State.REJECTED


# --- Privacy ----------------------------------------------------------------------------------


def test_only_the_two_members_hear_a_message(alice, bob, client):
    """Sender and recipient fetch the audio; any other member gets 404."""
    carol = User.objects.create_user(username="carol")
    message = ready_message(alice, bob)
    url = f"/voicemessages/{message.pk}/audio"

    for member, expected in ((alice, 200), (bob, 200), (carol, 404)):
        client.force_login(member)
        assert client.get(url).status_code == expected, member
    assert api(carol).get(f"/api/v1/voicemessages/{message.pk}/").status_code == 404


def test_staff_hear_a_message_only_once_it_is_reported(alice, bob, admin, client):
    """The admin shows metadata only; the audio URL is 404 for staff until the recipient
    reports the message, then it plays, with a player in the admin."""
    message = ready_message(alice, bob)
    client.force_login(admin)
    url = f"/voicemessages/{message.pk}/audio"

    assert client.get(url).status_code == 404
    assert api(admin).get(f"/api/v1/voicemessages/{message.pk}/").status_code == 404
    page = client.get(f"/admin/voicetweets/voicemessage/{message.pk}/change/")
    assert page.status_code == 200
    assert url not in page.content.decode() and "Private" in page.content.decode()
    listing = client.get("/admin/voicetweets/voicemessage/")
    assert listing.status_code == 200 and "alice" in listing.content.decode()

    accounts_services.report_create(
        reporter=bob, target_kind="voicemessage", target=message.pk, reason="harassment"
    )

    assert client.get(url).status_code == 200
    page = client.get(f"/admin/voicetweets/voicemessage/{message.pk}/change/")
    assert f'src="{url}"' in page.content.decode()
    assert client.get(f"/admin/voicetweets/voicemessage/{message.pk}/delete/").status_code == 403


def test_only_the_recipient_reports_a_message(alice, bob):
    """The sender cannot report their own message; a stranger cannot see it to report it."""
    from accounts import errors

    carol = User.objects.create_user(username="carol")
    message = ready_message(alice, bob)

    with pytest.raises(errors.AccountsError) as own:
        accounts_services.report_create(
            reporter=alice, target_kind="voicemessage", target=message.pk, reason="spam"
        )
    with pytest.raises(errors.NotFound):
        accounts_services.report_create(
            reporter=carol, target_kind="voicemessage", target=message.pk, reason="spam"
        )
    assert own.value.code == "own"
    report = accounts_services.report_create(
        reporter=bob, target_kind="voicemessage", target=message.pk, reason="spam"
    )
    assert report.target_user == alice


def test_suspending_from_a_message_report_suspends_the_sender(alice, bob, admin):
    """'Suspend member' on a reported message acts on whoever sent it."""
    message = ready_message(alice, bob)
    report = accounts_services.report_create(
        reporter=bob, target_kind="voicemessage", target=message.pk, reason="harassment"
    )

    accounts_services.report_act(report=report, by=admin, action="suspend", reason="threats")

    assert User.objects.get(pk=alice.pk).is_suspended


# --- API --------------------------------------------------------------------------------------


def test_send_over_the_api_then_read_the_conversation(
    alice, bob, mutual, django_capture_on_commit_callbacks
):
    """POST answers 202 processing; the conversation lists it; the inbox counts it unread
    until the recipient marks it read."""
    with django_capture_on_commit_callbacks(execute=True):
        sent = api(alice).post(
            "/api/v1/conversations/bob/", {"audio": upload(sine_wav(2))}, format="multipart"
        )
    assert sent.status_code == 202 and sent.json()["state"] == "processing"

    messages = api(bob).get("/api/v1/conversations/alice/").json()["results"]
    assert [m["id"] for m in messages] == [sent.json()["id"]]
    assert messages[0]["state"] == "ready" and urlsplit(messages[0]["audio_url"]).path.endswith(
        "/audio"
    )
    inbox = api(bob).get("/api/v1/conversations/").json()
    assert [(c["member"]["username"], c["unread_count"]) for c in inbox] == [("alice", 1)]

    assert api(bob).post("/api/v1/conversations/alice/read/").json() == {"marked": 1}
    assert api(bob).get("/api/v1/conversations/").json()[0]["unread_count"] == 0
    assert api(alice).get("/api/v1/conversations/").json()[0]["unread_count"] == 0


def test_api_refusals_say_why(alice, bob):
    """Not following each other: 403 with a code; blocked: 403; nobody: 404; no file: 400."""
    not_mutual = api(alice).post(
        "/api/v1/conversations/bob/", {"audio": upload(sine_wav(1))}, format="multipart"
    )
    nobody = api(alice).post(
        "/api/v1/conversations/nobody/", {"audio": upload(sine_wav(1))}, format="multipart"
    )
    Block.objects.create(blocker=bob, blocked=alice)
    accounts_services.user_update_profile(user=bob, messages_from_anyone=True)
    blocked = api(alice).post(
        "/api/v1/conversations/bob/", {"audio": upload(sine_wav(1))}, format="multipart"
    )
    no_file = api(alice).post("/api/v1/conversations/bob/", {}, format="multipart")

    assert not_mutual.status_code == 403 and not_mutual.json()["code"] == "not_mutual"
    assert nobody.status_code == 404
    assert blocked.status_code == 403 and blocked.json()["code"] == "blocked"
    assert no_file.status_code == 400 and "audio" in no_file.json()
    assert not VoiceMessage.objects.exists()


def test_profile_setting_over_the_api(alice):
    """PATCH /me/ toggles accepting messages from anyone; /me/ shows it."""
    client = api(alice)
    assert client.get("/api/v1/me/").json()["messages_from_anyone"] is False

    response = client.patch("/api/v1/me/", {"messages_from_anyone": True}, format="json")

    assert response.status_code == 200 and response.json()["messages_from_anyone"] is True
    assert User.objects.get(pk=alice.pk).messages_from_anyone


def test_voice_message_endpoints_are_in_the_schema(alice):
    """The OpenAPI schema documents the voice message API."""
    paths = api(alice).get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    for path in (
        "/api/v1/conversations/",
        "/api/v1/conversations/{username}/",
        "/api/v1/conversations/{username}/read/",
        "/api/v1/voicemessages/{id}/",
    ):
        assert path in paths, path
    assert "post" in paths["/api/v1/conversations/{username}/"]


# --- Pages ------------------------------------------------------------------------------------


def test_inbox_and_conversation_pages(alice, bob, mutual, client):
    """The inbox lists conversations with unread counts; opening one marks it read and offers
    the recorder."""
    ready_message(bob, alice)
    ready_message(alice, bob)
    client.force_login(alice)

    inbox = client.get("/messages/").content.decode()
    assert "/messages/bob/" in inbox and "1 new" in inbox

    page = client.get("/messages/bob/")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('class="card voicemessage') == 2 and "data-composer" in html
    assert 'data-upload-url="/api/v1/conversations/bob/"' in html
    assert "1 new" not in client.get("/messages/").content.decode()


def test_conversation_page_explains_why_one_cannot_send(alice, bob, client):
    """Without mutual follows the page says why instead of showing the recorder."""
    client.force_login(alice)

    html = client.get("/messages/bob/").content.decode()

    assert "data-composer" not in html and "follow them back" in html
    assert client.get("/messages/nobody/").status_code == 404


def test_form_post_without_javascript_sends(
    alice, bob, mutual, client, django_capture_on_commit_callbacks
):
    """The recorder's form works without JavaScript."""
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/messages/bob/", {"audio": upload(sine_wav(2))})

    assert response.status_code == 302 and response.url == "/messages/bob/"
    assert VoiceMessage.objects.get().state == VoiceMessage.State.READY


def test_profile_offers_a_voice_message_only_when_allowed(alice, bob, client):
    """The profile's 'Voice message' button, and can_message in the API, follow the same rule
    as sending."""
    client.force_login(alice)
    assert "/messages/bob/" not in client.get("/u/bob/").content.decode()
    assert api(alice).get("/api/v1/users/bob/").json()["can_message"] is False

    Follow.objects.create(follower=alice, followee=bob)
    Follow.objects.create(follower=bob, followee=alice)

    assert "/messages/bob/" in client.get("/u/bob/").content.decode()
    assert api(alice).get("/api/v1/users/bob/").json()["can_message"] is True


def test_message_card_shows_a_report_link_to_the_recipient_only(alice, bob, client):
    """The recipient can report a message from its card; the sender cannot."""
    message = ready_message(alice, bob)
    report_url = f"/report/voicemessage/{message.pk}/"

    client.force_login(bob)
    as_recipient = client.get(f"/voicemessages/{message.pk}/card").content.decode()
    client.force_login(alice)
    as_sender = client.get(f"/voicemessages/{message.pk}/card").content.decode()

    assert report_url in as_recipient and report_url not in as_sender

"""A suspended member is locked out everywhere: login, session, API token and open sockets."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts import services
from accounts.models import User
from accounts.realtime import CLOSE_FORBIDDEN
from config.asgi import application

from .conftest import PASSWORD


@pytest.mark.django_db
def test_suspended_member_cannot_log_in(alice, staff):
    """allauth's login shows the 'suspended' (account inactive) page instead of logging in."""
    services.user_suspend(user=alice, by=staff, reason="spam")
    client = Client()

    response = client.post(
        "/accounts/login/", {"login": "alice", "password": PASSWORD}, follow=True
    )

    assert b"suspended" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_existing_session_stops_authenticating(alice, staff):
    """A session opened before the suspension no longer authenticates pages or the API."""
    client = Client()
    assert client.login(username="alice", password=PASSWORD)
    assert client.get("/api/v1/me/").status_code == 200

    services.user_suspend(user=alice, by=staff, reason="spam")

    assert client.get("/api/v1/me/").status_code == 401
    assert client.get("/invitations/").status_code == 302  # sent to the login page


@pytest.mark.django_db
def test_unsuspended_member_can_log_in_again(alice, staff):
    """Lifting the suspension restores login."""
    services.user_suspend(user=alice, by=staff, reason="spam")
    services.user_unsuspend(user=alice, by=staff)

    assert Client().login(username="alice", password=PASSWORD)


def _socket(cookie: bytes) -> WebsocketCommunicator:
    headers = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"), (b"cookie", cookie)]
    return WebsocketCommunicator(application, "/ws/notifications/", headers=headers)


def _login_cookie() -> bytes:
    client = Client()
    client.force_login(User.objects.get(username="alice"))
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def _suspend_alice() -> None:
    services.user_suspend(
        user=User.objects.get(username="alice"),
        by=User.objects.get(username="staff"),
        reason="harassment",
    )


@pytest.mark.django_db(transaction=True)
async def test_suspension_closes_open_sockets(alice, staff):
    """An open member socket is closed with 4403 on suspension, and cannot reconnect."""
    cookie = await sync_to_async(_login_cookie)()
    communicator = _socket(cookie)
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "hello"

    await sync_to_async(_suspend_alice)()

    closed = await communicator.receive_output(timeout=5)
    assert closed == {
        "type": "websocket.close",
        "code": CLOSE_FORBIDDEN,
        "reason": "account suspended",
    }
    await communicator.disconnect()

    again = _socket(cookie)
    await again.connect()
    refused = await again.receive_output(timeout=5)
    assert refused["type"] == "websocket.close" and refused["code"] == 4401
    await again.disconnect()


@pytest.mark.django_db
def test_allauth_login_rate_limit_returns_429(alice, settings):
    """allauth's login rate limit is on: past the limit the login view answers 429."""
    settings.ACCOUNT_RATE_LIMITS = {"login": "3/m/ip"}
    client = Client()

    statuses = [
        client.post("/accounts/login/", {"login": "alice", "password": "wrong"}).status_code
        for _ in range(4)
    ]

    assert statuses[:3] == [200, 200, 200] and statuses[3] == 429


@pytest.mark.django_db
def test_allauth_default_rate_limits_are_active():
    """No setting turns allauth's rate limits off; login, signup and reset are limited."""
    from allauth.account import app_settings

    limits = app_settings.RATE_LIMITS
    assert limits["login"] and limits["signup"] and limits["reset_password"]
    assert limits["login_failed"]

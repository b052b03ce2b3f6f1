import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model

from config.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def _communicator(path: str, *, origin: bytes | None, cookie: bytes | None = None):
    headers = [(b"host", b"127.0.0.1")]
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, path, headers=headers)


def _session_cookie(client) -> bytes:
    user = get_user_model().objects.create_user(username="ws-member", password="x-pass-12345")
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def test_websocket_from_foreign_origin_is_refused():
    """A page on another site cannot open a socket with the member's cookies (CSWSH)."""
    communicator = _communicator("/ws/notifications/", origin=b"https://evil.example")
    connected, _ = await communicator.connect()
    assert connected is False
    await communicator.disconnect()


async def test_websocket_without_origin_is_refused():
    """A handshake with no Origin header is refused rather than trusted."""
    communicator = _communicator("/ws/notifications/", origin=None)
    connected, _ = await communicator.connect()
    assert connected is False
    await communicator.disconnect()


async def test_anonymous_socket_is_closed_with_reason():
    """An anonymous visitor gets close code 4401 and a reason, not a silent drop."""
    communicator = _communicator("/ws/notifications/", origin=b"http://127.0.0.1")
    connected, _ = await communicator.connect()
    assert connected is True
    output = await communicator.receive_output()
    assert output == {"type": "websocket.close", "code": 4401, "reason": "authentication required"}
    await communicator.disconnect()


async def test_member_socket_from_own_origin_is_accepted(client):
    """A signed-in member on Salon's own origin connects and is greeted with their id."""
    from asgiref.sync import sync_to_async

    cookie = await sync_to_async(_session_cookie)(client)
    communicator = _communicator("/ws/notifications/", origin=b"http://127.0.0.1", cookie=cookie)
    connected, _ = await communicator.connect()
    assert connected is True
    hello = await communicator.receive_json_from()
    assert hello["type"] == "hello"
    await communicator.disconnect()

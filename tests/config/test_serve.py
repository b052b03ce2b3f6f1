import json

import pytest
from django.contrib.auth import get_user_model
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

pytestmark = pytest.mark.slow


def _member_cookie(client) -> str:
    user = get_user_model().objects.create_user(username="served", password="x-pass-12345")
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def test_daphne_closes_oversized_websocket_messages_with_1009(
    live_server_process, client, settings
):
    """`manage.py serve` bounds websocket messages: an oversized one closes the socket (1009)."""
    server = live_server_process()
    ws_url = server.url.replace("http", "ws") + "/ws/notifications/"
    headers = {"Cookie": _member_cookie(client)}

    with connect(ws_url, origin=server.url, additional_headers=headers) as socket:
        assert json.loads(socket.recv(timeout=10))["type"] == "hello"
        # A message within the limit is answered...
        socket.send(json.dumps({"type": "ping"}))
        assert json.loads(socket.recv(timeout=10))["type"] == "error"
        # ...one byte over the limit ends the connection.
        socket.send("x" * (settings.SALON_WEBSOCKET_MAX_MESSAGE_SIZE + 1))
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


def test_close_codes_carry_their_reason_through_daphne(live_server_process):
    """A server-side close reaches the client with its code and reason (daphne alone drops it)."""
    server = live_server_process()
    ws_url = server.url.replace("http", "ws") + "/ws/notifications/"

    with connect(ws_url, origin=server.url) as socket, pytest.raises(ConnectionClosed) as closed:
        socket.recv(timeout=10)

    assert closed.value.rcvd.code == 4401
    assert closed.value.rcvd.reason == "authentication required"

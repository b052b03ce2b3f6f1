"""``manage.py serve --role``: a web process refuses the space socket, a live one the rest."""

import json

import pytest
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from config.asgi import application
from config.roles import CLOSE_MISDIRECTED, RoleRouter, current_role

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1")]


async def _first_output(role: str, path: str) -> dict:
    communicator = WebsocketCommunicator(RoleRouter(application, role=role), path, HEADERS)
    connected, _ = await communicator.connect(timeout=10)
    assert connected is True
    output = await communicator.receive_output(timeout=10)
    await communicator.disconnect()
    return output


@pytest.mark.parametrize(
    ("role", "path"), [("web", "/ws/spaces/1/"), ("live", "/ws/notifications/")]
)
async def test_a_socket_at_the_wrong_kind_of_process_is_closed_with_4421(role, path):
    """A socket routed to the wrong process is told so (4421, with the fix), not served."""
    output = await _first_output(role, path)
    assert output["code"] == CLOSE_MISDIRECTED
    assert output["reason"].startswith(f"this is a {role} process: route {path} to a")


@pytest.mark.parametrize(
    ("role", "path"),
    [("web", "/ws/notifications/"), ("live", "/ws/spaces/1/"), ("all", "/ws/spaces/1/")],
)
async def test_a_socket_at_its_own_kind_of_process_reaches_salon(role, path):
    """A socket at the right process reaches its consumer (anonymous here: 4401)."""
    output = await _first_output(role, path)
    assert (output["code"], output["reason"]) == (4401, "authentication required")


async def _get(role: str, path: str) -> dict:
    communicator = HttpCommunicator(
        RoleRouter(application, role=role), "GET", path, headers=[(b"host", b"127.0.0.1")]
    )
    return await communicator.get_response(timeout=10)


async def test_a_live_process_answers_its_health_check_and_nothing_else():
    """A live process serves /healthz (for the balancer), and refuses pages with a 404 that
    names the fix; a web process serves the pages."""
    refused = await _get("live", "/accounts/login/")
    assert refused["status"] == 404
    assert "route /accounts/login/ to a web process" in json.loads(refused["body"])["detail"]
    assert (await _get("live", "/healthz"))["status"] in (200, 503)
    assert (await _get("web", "/accounts/login/"))["status"] == 200


def test_an_unknown_role_is_refused(monkeypatch):
    """A typo in the role stops the process instead of serving everything or nothing."""
    with pytest.raises(CommandError):
        call_command("serve", "--role", "mixer")
    monkeypatch.setenv("SALON_SERVE_ROLE", "mixer")
    with pytest.raises(ImproperlyConfigured):
        current_role()
    with pytest.raises(ValueError):
        RoleRouter(application, role="mixer")

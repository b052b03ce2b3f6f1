"""What one ``manage.py serve`` process serves: ``--role web|live|all`` (docs/deploy.md).

Live rooms must never wait behind pages, API calls, uploads or notifications (issue #17): a
busy web process (four 28 MB uploads, a feed under load) stalled the event loop that also
carried a room's audio. Production therefore runs two kinds of processes behind the proxy,
which routes by path:

* ``web``: HTTP (pages, the API, uploads, ``/healthz``) and the notification socket. It refuses
  the space socket ``/ws/spaces/``.
* ``live``: the space socket ``/ws/spaces/`` (with the media plane, the mixer and the fan-out)
  and ``/healthz``, so a balancer can check it; nothing else.
* ``all`` (the embedded default): everything in one process.

A socket that reached the wrong kind of process is accepted and closed with
``CLOSE_MISDIRECTED`` (4421, after HTTP's 421 Misdirected Request) and a reason naming the fix;
clients do not reconnect on it (docs/protocol.md), since the same route would bring them back.
A stray HTTP request to a live process gets a 404 that says the same.
"""

from __future__ import annotations

import json
import os

ROLES = ("all", "web", "live")
ROLE_ENVIRONMENT = "SALON_SERVE_ROLE"
CLOSE_MISDIRECTED = 4421

# What a live process serves: the space sockets, and its health check.
LIVE_WEBSOCKET_PREFIX = "/ws/spaces/"
LIVE_HTTP_PATHS = frozenset({"/healthz"})


def current_role() -> str:
    """The role ``manage.py serve --role`` gave this process (``all`` when not set)."""
    role = os.environ.get(ROLE_ENVIRONMENT) or "all"
    if role not in ROLES:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"{ROLE_ENVIRONMENT} must be one of {', '.join(ROLES)}")
    return role


def serves(role: str, scope: dict) -> bool:
    """Whether a process of ``role`` serves this connection (an ASGI scope)."""
    if role == "all" or scope["type"] == "lifespan":
        return True
    path = scope.get("path", "")
    if scope["type"] == "websocket":
        return path.startswith(LIVE_WEBSOCKET_PREFIX) == (role == "live")
    return role == "web" or path in LIVE_HTTP_PATHS


class RoleRouter:
    """ASGI: passes what this process serves to ``app``, refuses the rest with a reason."""

    def __init__(self, app, *, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        self.app = app
        self.role = role

    async def __call__(self, scope, receive, send):
        if serves(self.role, scope):
            return await self.app(scope, receive, send)
        other = "live" if self.role == "web" else "web"
        reason = f"this is a {self.role} process: route {scope['path']} to a {other} process"
        if scope["type"] == "websocket":
            message = await receive()
            if message["type"] != "websocket.connect":
                return
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": CLOSE_MISDIRECTED, "reason": reason})
            return
        body = json.dumps({"detail": reason}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

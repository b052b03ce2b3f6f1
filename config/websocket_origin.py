"""The websocket origin check: a browser's handshake is accepted from exactly the origins Django's
CSRF check accepts for an HTTP request, the request's own origin (scheme, host and port) and
CSRF_TRUSTED_ORIGINS with their wildcard subdomains.

Channels' ``AllowedHostsOriginValidator`` compares host names only, so a page on
``http://127.0.0.1:9999`` or ``https://127.0.0.1`` could open a member's socket with their
cookie. The decision here is Django's own (``CsrfViewMiddleware._origin_verified``), asked about
a request built from the handshake, so the two cannot drift apart.
"""

from __future__ import annotations

from channels.security.websocket import WebsocketDenier
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware


class HandshakeRequest(HttpRequest):
    """The websocket handshake seen as the HTTP request it is, for Django's checks.

    ``is_secure()`` then follows SECURE_PROXY_SSL_HEADER as it does for HTTP, falling back to
    the handshake's own scheme (``wss`` when TLS ends at daphne).
    """

    def __init__(self, scope):
        super().__init__()
        self.method = "GET"
        self.path = self.path_info = scope.get("path", "")
        server = scope.get("server") or (None, None)
        self.META["SERVER_NAME"] = server[0] or "unknown"
        self.META["SERVER_PORT"] = str(server[1] or "")
        for name, value in scope.get("headers", []):
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            text = value.decode("latin-1")
            # Repeated headers are joined, as Django's ASGI handler joins them.
            self.META[key] = f"{self.META[key]},{text}" if key in self.META else text
        self._websocket_scheme = scope.get("scheme", "ws")

    def _get_scheme(self) -> str:
        return "https" if self._websocket_scheme in ("wss", "https") else "http"


def origin_is_trusted(scope) -> bool:
    """True if the handshake's Origin is one Django's CSRF check would accept."""
    request = HandshakeRequest(scope)
    if "HTTP_ORIGIN" not in request.META:
        return False
    # A fresh middleware each time: it caches CSRF_TRUSTED_ORIGINS on the instance.
    return CsrfViewMiddleware(_unused_response)._origin_verified(request)


def _unused_response(request) -> HttpResponse:
    return HttpResponse()


class SameOriginValidator:
    """Refuses (403) every websocket handshake whose Origin the HTTP side would not trust, and
    every one without an Origin (browsers always send it; token clients are routed around this
    by spaces.auth.TokenAuthMiddleware)."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_is_trusted(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)

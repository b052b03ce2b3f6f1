"""How large a request body may be, and the 413 that says so.

Enforced twice from the same rule (RequestBodyLimits): by ``manage.py serve`` in Twisted,
before a byte of an oversized body is stored (config.http_server), and by
RequestBodyLimitMiddleware at the ASGI level, for other ASGI servers and for tests that call the
application directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class RequestBodyLimits:
    """How large a request body may be, by path and by whether the request carries credentials.

    ``by_prefix`` maps path prefixes to caps (the longest matching prefix wins, else
    ``default``); a request with neither a session cookie nor an Authorization header gets at
    most ``anonymous``, enough for the login and signup forms.
    """

    default: int
    anonymous: int
    by_prefix: tuple[tuple[str, int], ...]
    session_cookie_name: str = "sessionid"

    @classmethod
    def from_settings(cls, settings) -> RequestBodyLimits:
        return cls.build(
            default=settings.SALON_MAX_REQUEST_BYTES,
            anonymous=settings.SALON_ANONYMOUS_MAX_REQUEST_BYTES,
            by_prefix=settings.SALON_REQUEST_BODY_LIMITS,
            session_cookie_name=settings.SESSION_COOKIE_NAME,
        )

    @classmethod
    def build(
        cls,
        *,
        default: int,
        anonymous: int,
        by_prefix: dict[str, int],
        session_cookie_name: str = "sessionid",
    ) -> RequestBodyLimits:
        longest_first = sorted(by_prefix.items(), key=lambda item: len(item[0]), reverse=True)
        return cls(default, anonymous, tuple(longest_first), session_cookie_name)

    def limit_for(self, path: str, *, cookie: bytes | None, authorization: bytes | None) -> int:
        """The cap for a request to ``path`` (decoded, as in the ASGI scope) with these
        ``Cookie`` and ``Authorization`` header values (None when absent)."""
        limit = next(
            (limit for prefix, limit in self.by_prefix if path.startswith(prefix)), self.default
        )
        if not authorization and not self._has_session_cookie(cookie):
            limit = min(limit, self.anonymous)
        return limit

    def _has_session_cookie(self, cookie: bytes | None) -> bool:
        # Presence only: whether the session is valid is Django's to decide, after the body.
        # A forged cookie buys at most the member's cap, never more.
        name = self.session_cookie_name.encode()
        for pair in (cookie or b"").split(b";"):
            key, _, value = pair.strip().partition(b"=")
            if key == name and value:
                return True
        return False


class RequestBodyLimitMiddleware:
    """ASGI middleware: refuse request bodies over their cap (RequestBodyLimits).

    Under ``manage.py serve`` daphne already refused them before reading (config.http_server);
    this is the same rule for other ASGI servers and for tests that call the application
    directly. Django's ASGI handler reads the whole body before any view runs, so a view cannot
    stop an oversized upload in time. This answers 413 from the Content-Length alone, and cuts
    off a body that grows past the cap without one (chunked) or beyond what it declared.
    """

    def __init__(self, app, *, limits: RequestBodyLimits):
        self.app = app
        self.limits = limits

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        limit = self.limits.limit_for(
            scope["path"],
            cookie=headers.get(b"cookie"),
            authorization=headers.get(b"authorization"),
        )
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                declared_length = int(declared)
            except ValueError:
                detail = _json("Content-Length is not a number.")
                return await _send(send, 400, b"application/json", detail)
            if declared_length > limit:
                return await _send_too_large(send, limit, scope["path"], headers.get(b"accept"))

        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        try:
            return await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            # Django had not answered yet: it answers only after reading the whole body.
            return await _send_too_large(send, limit, scope["path"], headers.get(b"accept"))


class BodyTooLarge(Exception):
    pass


def too_large_message(limit: int) -> str:
    return f"Request body too large: the limit here is {_size(limit)}."


def too_large_body(limit: int, *, path: str, accept: bytes | None) -> tuple[bytes, bytes]:
    """The 413's content type and body: JSON for the API and clients that ask for JSON (the
    upload script shows its ``detail``), a short page for a browser's own form post."""
    message = too_large_message(limit)
    if path.startswith("/api/") or b"application/json" in (accept or b""):
        return b"application/json", _json(message)
    page = (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Too large</title>"
        f"<h1>413 Request body too large</h1><p>{escape(message)}</p>"
        "<p><a href=/>Back to Salon</a></p></html>"
    )
    return b"text/html; charset=utf-8", page.encode()


def _size(limit: int) -> str:
    for unit, size in (("MB", 1024 * 1024), ("kB", 1024)):
        if limit >= size:
            return f"{limit / size:.3g} {unit}"
    return f"{limit} bytes"


def _json(detail: str) -> bytes:
    return json.dumps({"detail": detail}).encode()


async def _send_too_large(send, limit: int, path: str, accept: bytes | None) -> None:
    content_type, body = too_large_body(limit, path=path, accept=accept)
    await _send(send, 413, content_type, body)


async def _send(send, status: int, content_type: bytes, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

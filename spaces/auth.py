"""Websocket authentication beyond the session cookie.

The fast path is a join ticket (``?ticket=``, spaces/live/tickets.py): signed by the page or the API
after the access check, checked by the consumer without a database query. Browsers otherwise
authenticate with the session cookie, behind the same-origin check. Other clients (apps,
bots, load tests) send their API token, either as ``Authorization: Token <key>`` (preferred) or
as ``?token=<key>`` where headers cannot be set; a token is never sent ambiently by a browser, so
the origin check does not apply to it. A suspended member is refused in both cases: the scope
carries ``auth_refused = "suspended"`` and consumers close with 4403 and that reason.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from config.db import db_call


def _token_from_scope(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            kind, _, key = value.decode("latin-1").partition(" ")
            if kind.lower() == "token" and key.strip():
                return key.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    tokens = query.get("token")
    return tokens[0] if tokens else None


def _ticket_from_scope(scope) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    tickets = query.get("ticket")
    return tickets[0] if tickets else None


@db_call
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    from accounts.selectors import token_key_is_wellformed

    if not token_key_is_wellformed(key):
        return None
    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token else None


@db_call
def _suspended_session_user(session) -> bool:
    user_id = session.get("_auth_user_id") if session is not None else None
    if user_id is None:
        return False
    user = get_user_model().objects.filter(pk=user_id).only("is_active").first()
    return user is not None and not user.is_active


class TokenAuthMiddleware:
    """Routes token-bearing handshakes to ``token_app`` with the token's member in the scope, and
    every other handshake to ``session_app`` (origin check + session auth)."""

    def __init__(self, *, session_app, token_app):
        self.session_app = session_app
        self.token_app = token_app

    async def __call__(self, scope, receive, send):
        ticket = _ticket_from_scope(scope)
        if ticket is not None:
            # A join ticket (spaces/live/tickets.py): the consumer checks it, without a query.
            # Like a token it is never sent ambiently, so neither the origin check nor the session
            # (a query per handshake) applies.
            scope = dict(scope, join_ticket=ticket, user=AnonymousUser())
            return await self.token_app(scope, receive, send)
        key = _token_from_scope(scope)
        if key is None:
            return await self.session_app(scope, receive, send)
        user = await _user_for_token(key)
        scope = dict(scope)
        if user is not None and not user.is_active:
            scope["auth_refused"] = "suspended"
            user = None
        scope["user"] = user or AnonymousUser()
        return await self.token_app(scope, receive, send)


class SuspendedMemberMiddleware:
    """Inside AuthMiddlewareStack: tells a suspended member's session (which Django's backends
    resolve to an anonymous user) apart from a visitor who never signed in."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        anonymous = user is not None and not user.is_authenticated
        if anonymous and await _suspended_session_user(scope.get("session")):
            scope = dict(scope, auth_refused="suspended")
        return await self.inner(scope, receive, send)

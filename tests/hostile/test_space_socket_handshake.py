"""Who gets a space socket at all: origins, cookies and tokens on /ws/spaces/<id>/.

Pinned elsewhere: foreign and missing Origin on /ws/notifications/ (``tests/config/test_asgi.py``),
no credentials at all (4401) and a suspended member's session (4403) on the space socket
(``tests/spaces/test_consumers.py``).
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.provisional import domains
from rest_framework.authtoken.models import Token

from config.asgi import application
from tests.spaces.factories import make_live_space, make_member, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)
db = sync_to_async


def _socket(
    space_id: int,
    *,
    origin: bytes | None = None,
    cookie=None,
    token=None,
    query="",
    host: bytes = b"127.0.0.1",
    scheme: str = "ws",
    extra_headers: tuple = (),
):
    headers = [(b"host", host), *extra_headers]
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", cookie))
    if token is not None:
        headers.append((b"authorization", token))
    path = f"/ws/spaces/{space_id}/" + (f"?{query}" if query else "")
    communicator = WebsocketCommunicator(application, path, headers=headers)
    communicator.scope["scheme"] = scheme  # the scope is read when the handshake starts
    return communicator


async def _first_output(communicator) -> dict | None:
    """None when the handshake is refused; else the first thing the server sends."""
    connected, _ = await communicator.connect()
    try:
        return await communicator.receive_output(timeout=10) if connected else None
    finally:
        await communicator.disconnect()


@pytest.fixture
async def space_and_member():
    def setup():
        host = make_member("hana", host=True)
        member = make_member("mo")
        return make_live_space(host), member, session_cookie(member)

    return await db(setup)()


foreign_origins = st.one_of(
    st.builds(
        "{}://{}".format,
        st.sampled_from(["http", "https", "ws", "file", "chrome-extension"]),
        domains(),
    ),
    st.text(max_size=60),
)


# Pinned: look-alikes of an allowed host, the opaque origin of sandboxed pages and files.
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(origin=foreign_origins)
@example(origin="http://127.0.0.1.evil.example")
@example(origin="http://evil.example/127.0.0.1")
@example(origin="http://localhost@evil.example")
@example(origin="null")
@example(origin="")
async def test_a_session_cookie_from_any_other_origin_is_refused(space_and_member, origin):
    """A member's cookie sent from a page on another origin never opens their space socket."""
    space, _member, cookie = space_and_member
    if origin == "http://127.0.0.1":
        return  # generated the allowed origin after all

    assert await _first_output(_socket(space.pk, origin=origin.encode(), cookie=cookie)) is None


@pytest.mark.parametrize(
    "origin",
    # Each got the snapshot with a member's cookie: channels' AllowedHostsOriginValidator
    # compares host names only, not the scheme and port Django's CSRF check compares.
    [b"http://127.0.0.1:9999", b"http://localhost:1234", b"https://127.0.0.1"],
)
@pytest.mark.parametrize("host", [b"127.0.0.1", b"127.0.0.1:8000"])
async def test_an_allowed_host_on_another_scheme_or_port_is_another_origin(
    space_and_member, origin, host
):
    """Salon on http://127.0.0.1(:8000) does not trust a page on the same host name served
    with another scheme or port, on the socket as on the API."""
    space, _member, cookie = space_and_member
    assert await _first_output(_socket(space.pk, origin=origin, cookie=cookie, host=host)) is None


def _joins(first) -> bool:
    return first is not None and first["type"] == "websocket.send" and '"snapshot"' in first["text"]


async def test_the_own_origin_with_its_port_joins(space_and_member):
    """The page's own origin, port included, as a browser sends it for make run."""
    space, _member, cookie = space_and_member
    socket = _socket(
        space.pk, origin=b"http://127.0.0.1:8000", cookie=cookie, host=b"127.0.0.1:8000"
    )
    assert _joins(await _first_output(socket))


async def test_over_tls_the_own_origin_is_https(space_and_member):
    """A handshake over TLS (wss) comes from the https origin; its http twin is refused."""
    space, _member, cookie = space_and_member
    tls = {"cookie": cookie, "host": b"127.0.0.1", "scheme": "wss"}
    assert _joins(await _first_output(_socket(space.pk, origin=b"https://127.0.0.1", **tls)))
    assert await _first_output(_socket(space.pk, origin=b"http://127.0.0.1", **tls)) is None


async def test_behind_the_tls_proxy_the_forwarded_scheme_decides(space_and_member, settings):
    """Production: TLS ends at the proxy, which says so in X-Forwarded-Proto
    (SECURE_PROXY_SSL_HEADER), as for HTTP requests."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["salon.example"]
    space, _member, cookie = space_and_member
    proxied = {
        "cookie": cookie,
        "host": b"salon.example",
        "extra_headers": ((b"x-forwarded-proto", b"https"),),
    }

    assert _joins(
        await _first_output(_socket(space.pk, origin=b"https://salon.example", **proxied))
    )
    assert await _first_output(_socket(space.pk, origin=b"http://salon.example", **proxied)) is None


@pytest.mark.parametrize(
    ("origin", "joins"),
    [
        (b"https://app.example", True),
        (b"https://eu.salon.example", True),
        (b"http://app.example", False),
        (b"https://app.example:8443", False),
        (b"http://eu.salon.example", False),
    ],
)
async def test_csrf_trusted_origins_are_trusted_as_on_the_api(
    space_and_member, settings, origin, joins
):
    """CSRF_TRUSTED_ORIGINS, exact and wildcard entries, with the scheme and port they name."""
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example", "https://*.salon.example"]
    space, _member, cookie = space_and_member
    first = await _first_output(_socket(space.pk, origin=origin, cookie=cookie))
    assert _joins(first) is joins


async def test_a_session_cookie_without_origin_is_refused(space_and_member):
    """A handshake carrying the cookie but no Origin header is refused, not trusted."""
    space, _member, cookie = space_and_member
    assert await _first_output(_socket(space.pk, cookie=cookie)) is None


async def test_same_origin_cookie_joins(space_and_member):
    """The control case: the same cookie from Salon's own origin gets the snapshot."""
    space, _member, cookie = space_and_member
    first = await _first_output(_socket(space.pk, origin=b"http://127.0.0.1", cookie=cookie))
    assert first["type"] == "websocket.send" and '"snapshot"' in first["text"]


@pytest.mark.parametrize(
    "authorization",
    [b"Token not-a-real-key", b"Token " + b"A" * 4000, b"token \x00\xff", b"Bearer x"],
    # "binary": a NUL byte made PostgreSQL raise and the handshake crash (now 4401).
    ids=["unknown", "huge", "binary", "other-scheme"],
)
async def test_a_bad_token_never_falls_back_to_the_session(space_and_member, authorization):
    """A wrong token next to a valid cookie is refused (4401 or the origin check): the cookie
    is not used instead, even from Salon's own origin."""
    space, _member, cookie = space_and_member
    first = await _first_output(
        _socket(space.pk, origin=b"http://127.0.0.1", cookie=cookie, token=authorization)
    )
    if authorization.startswith(b"Bearer"):
        # Not a token at all: the handshake is a browser's, the cookie decides.
        assert '"snapshot"' in first["text"]
    else:
        assert first == {
            "type": "websocket.close",
            "code": 4401,
            "reason": "authentication required",
        }


async def test_a_token_is_accepted_from_any_origin_by_design(space_and_member):
    """Tokens are never sent ambiently by a browser, so no origin check applies to them
    (docs/protocol.md): a bot's token works whatever Origin it sends, or none."""
    space, member, _cookie = space_and_member
    key = await db(lambda: Token.objects.create(user=member).key)()
    for origin in (None, b"https://evil.example"):
        first = await _first_output(_socket(space.pk, origin=origin, token=f"Token {key}".encode()))
        assert '"snapshot"' in first["text"]


async def test_a_suspended_members_token_in_the_query_string_is_refused(space_and_member):
    """``?token=`` of a member suspended after it was issued: 4403 with the reason."""
    space, member, _cookie = space_and_member

    def suspend_keeping_the_token():
        key = Token.objects.create(user=member).key
        type(member).objects.filter(pk=member.pk).update(is_active=False)
        return key

    key = await db(suspend_keeping_the_token)()
    first = await _first_output(_socket(space.pk, query=f"token={key}"))
    assert first == {"type": "websocket.close", "code": 4403, "reason": "your account is suspended"}

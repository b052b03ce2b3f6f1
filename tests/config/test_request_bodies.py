"""The request body caps (config.request_bodies): which cap applies, and the 413 at the ASGI
level. Through real daphne: tests/hostile/test_request_bodies.py."""

import json

import pytest
from channels.testing import HttpCommunicator

from config.request_bodies import RequestBodyLimitMiddleware, RequestBodyLimits, too_large_body

LIMITS = RequestBodyLimits.build(
    default=10_000,
    anonymous=500,
    by_prefix={"/api/v1/voicetweets/": 50_000, "/api/": 20_000},
    session_cookie_name="sessionid",
)


@pytest.mark.parametrize(
    ("path", "cookie", "authorization", "limit"),
    [
        ("/api/v1/voicetweets/", None, b"Token abc", 50_000),  # the longest prefix wins
        ("/api/v1/spaces/", None, b"Token abc", 20_000),
        ("/accounts/profile/", b"csrftoken=x; sessionid=abc", None, 10_000),
        # Anonymous: neither credential, whatever the path.
        ("/api/v1/voicetweets/", None, None, 500),
        ("/accounts/login/", b"csrftoken=x", None, 500),
        ("/accounts/login/", b"sessionid=", None, 500),  # an empty cookie is no session
        ("/accounts/login/", b"xsessionid=abc", None, 500),
    ],
)
def test_the_cap_depends_on_the_path_and_on_credentials(path, cookie, authorization, limit):
    assert LIMITS.limit_for(path, cookie=cookie, authorization=authorization) == limit


def test_the_413_is_json_for_the_api_and_a_page_for_forms():
    content_type, body = too_large_body(28 * 1024 * 1024, path="/api/v1/voicetweets/", accept=None)
    assert content_type == b"application/json"
    assert json.loads(body)["detail"] == "Request body too large: the limit here is 28 MB."

    content_type, body = too_large_body(256 * 1024, path="/accounts/login/", accept=b"text/html")
    assert content_type.startswith(b"text/html")
    assert b"256 kB" in body


async def _post(middleware, path: str, headers: list, body: bytes = b"") -> dict:
    communicator = HttpCommunicator(middleware, "POST", path, body=body, headers=headers)
    return await communicator.get_response()


async def test_an_anonymous_body_over_its_cap_is_refused_before_the_application_runs():
    reached = []

    async def app(scope, receive, send):
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = RequestBodyLimitMiddleware(app, limits=LIMITS)
    declared = [(b"content-length", b"501")]

    anonymous = await _post(middleware, "/accounts/login/", declared)
    member = await _post(middleware, "/accounts/login/", [*declared, (b"cookie", b"sessionid=a")])

    assert anonymous["status"] == 413
    assert b"500 bytes" in anonymous["body"]
    assert member["status"] == 200
    assert reached == ["/accounts/login/"]

"""The Content-Security-Policy: every page sends it, in every mode, and it leaves an injected
script or style nothing to run on.

That the pages really work under it (scripts, styles, audio, sockets, the admin, Swagger UI) is
pinned in a real browser: ``tests/e2e/test_csp.py``.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts import services as accounts_services
from tests.config.test_settings import BASE_DIR, _clean_env
from tests.spaces.factories import make_live_space, make_member, make_replay
from tests.voicetweets.factories import ready_message, ready_tweet

pytestmark = pytest.mark.django_db

HEADER = "Content-Security-Policy"

# Keywords that name no other origin: with only these (and nonces or hashes, which injected
# markup cannot carry), a <script src> or stylesheet from elsewhere is refused.
KEYWORDS = {
    "'self'",
    "'none'",
    "'report-sample'",
    "'strict-dynamic'",
    "'unsafe-inline'",
    "'unsafe-hashes'",
    "'unsafe-eval'",
    "'wasm-unsafe-eval'",
}


def parse_policy(header: str) -> dict[str, list[str]]:
    policy: dict[str, list[str]] = {}
    for part in header.lower().split(";"):
        words = part.split()
        # Browsers ignore a directive repeated after its first occurrence.
        if words and words[0] not in policy:
            policy[words[0]] = words[1:]
    return policy


def effective(policy: dict[str, list[str]], *names: str) -> list[str] | None:
    """The sources a browser applies: the first of ``names`` present, else default-src (CSP 3's
    fallback order), else None: anything goes."""
    for name in (*names, "default-src"):
        if name in policy:
            return policy[name]
    return None


def _nonce_or_hash(source: str) -> bool:
    return source.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-"))


def _inline_allowed(sources: list[str]) -> bool:
    # A nonce or hash turns 'unsafe-inline' off (CSP 2 and later).
    return "'unsafe-inline'" in sources and not any(_nonce_or_hash(s) for s in sources)


def _other_origins(sources: list[str]) -> list[str]:
    """'*', schemes (https:, data:, blob:) and hosts: places a file may come from."""
    return [s for s in sources if s not in KEYWORDS and not _nonce_or_hash(s)]


def ways_in_for_a_script(header: str) -> list[str]:
    """How an attacker who injects markup into a page could run script under this policy."""
    policy = parse_policy(header)
    elements = effective(policy, "script-src-elem", "script-src")
    attributes = effective(policy, "script-src-attr", "script-src")
    ways = []
    for kind, sources in (
        ("an inline <script>", elements),
        ("an event handler attribute or javascript: URL", attributes),
    ):
        if sources is None:
            ways.append(f"{kind}: no script-src or default-src")
        elif _inline_allowed(sources) or "'unsafe-hashes'" in sources:
            ways.append(f"{kind}: {' '.join(sources)}")
    if elements and _other_origins(elements):
        ways.append(f"<script src> from elsewhere: {' '.join(_other_origins(elements))}")
    if "'unsafe-eval'" in (effective(policy, "script-src") or []):
        ways.append("eval() of injected text: 'unsafe-eval'")
    if effective(policy, "object-src") != ["'none'"]:
        ways.append(f"plugins: object-src is {effective(policy, 'object-src')}")
    # base-uri has no fallback: without it, an injected <base> sends relative scripts elsewhere.
    if policy.get("base-uri") != ["'none'"]:
        ways.append(f"an injected <base>: base-uri is {policy.get('base-uri')}")
    return ways


def ways_in_for_a_style(header: str) -> list[str]:
    """How injected markup could restyle a page (fake a login box, hide a warning)."""
    policy = parse_policy(header)
    ways = []
    for names in (("style-src-elem", "style-src"), ("style-src-attr", "style-src")):
        sources = effective(policy, *names)
        if sources is None or _inline_allowed(sources):
            ways.append(f"{names[0]}: inline styles allowed ({sources})")
        elif _other_origins(sources):
            ways.append(f"{names[0]}: styles from {' '.join(_other_origins(sources))}")
    return ways


@pytest.mark.parametrize(
    ("header", "way_in"),
    [
        ("", "no script-src or default-src"),
        ("img-src 'self'", "no script-src or default-src"),
        ("default-src *", "<script src> from elsewhere: *"),
        ("default-src 'self'; script-src 'self' 'unsafe-inline'", "an inline <script>: 'self'"),
        ("default-src 'self'; script-src-attr 'unsafe-inline'", "javascript: URL: 'unsafe-inline'"),
        ("default-src 'self'; script-src 'sha256-x' 'unsafe-hashes'", "javascript: URL: 'sha256"),
        ("default-src 'self'; script-src 'self' https:", "from elsewhere: https:"),
        ("default-src 'self'; script-src 'self' data:", "from elsewhere: data:"),
        ("default-src 'self'; script-src 'self' 'unsafe-eval'", "'unsafe-eval'"),
        ("default-src 'self'; object-src 'none'", "an injected <base>"),
        ("default-src 'self'; base-uri 'none'", "plugins"),
    ],
)
def test_the_check_finds_a_way_in_where_there_is_one(header, way_in):
    """The policy check itself: each of these policies lets an injected script run."""
    ways = ways_in_for_a_script(header)
    assert any(way_in in way for way in ways), ways


def test_the_check_accepts_a_nonce_in_place_of_unsafe_inline():
    """'unsafe-inline' beside a nonce is ignored by browsers: an injected script has no nonce."""
    header = "default-src 'self'; script-src 'nonce-abc' 'unsafe-inline'; object-src 'none'"
    assert ways_in_for_a_script(header + "; base-uri 'none'") == []


# --- Every page ----------------------------------------------------------------------------

# Every route of these must be requested by the test below (``home`` too).
OUR_URLCONFS = ("accounts.urls", "voicetweets.urls", "spaces.urls")


def _route_names() -> set[str]:
    names = {"home"}
    for resolver in get_resolver().url_patterns:
        if isinstance(resolver, URLResolver) and resolver.urlconf_name in OUR_URLCONFS:
            for pattern in resolver.url_patterns:
                assert isinstance(pattern, URLPattern)
                names.add(f"{resolver.namespace}:{pattern.name}")
    return names


@pytest.fixture
def site(alice, bob):
    """Something on every page: a live space, a replay, a voice tweet, a message, an invitation."""
    host = make_member("hana", host=True)
    host.is_staff = host.is_superuser = True
    host.save()
    return {
        "host": host,
        "live": make_live_space(host, title="Policy check"),
        "replay": make_replay(host),
        "tweet": ready_tweet(host, text="Policy check"),
        "message": ready_message(bob, alice),
        "invitation": accounts_services.invitation_create(inviter=alice),
    }


def _clients(site, alice):
    visitor, member, admin = Client(), Client(), Client()
    member.force_login(alice)
    admin.force_login(site["host"])
    return visitor, member, admin


def test_every_page_sends_a_policy_that_leaves_injected_script_nothing(site, alice):
    """Every HTML page, error pages included, as a visitor, a member or an admin, carries a
    policy under which injected markup runs no script and no inline style."""
    visitor, member, admin = _clients(site, alice)
    live, replay, tweet, message = site["live"], site["replay"], site["tweet"], site["message"]
    pages = {
        visitor: [
            "/",
            f"/invite/{site['invitation'].token}/",
            "/waitlist/",
            "/accounts/login/",
            "/accounts/signup/",
            "/accounts/password/reset/",
            "/no-such-page/",
        ],
        member: [
            "/",
            "/spaces/",
            f"/spaces/{live.pk}/",
            f"/spaces/{replay.space_id}/",
            f"/spaces/{replay.space_id}/replay/",
            f"/voicetweets/{tweet.pk}/",
            f"/voicetweets/{tweet.pk}/card",
            "/messages/",
            "/messages/bob/",
            f"/voicemessages/{message.pk}/card",
            "/u/bob/",
            "/u/bob/followers/",
            "/u/bob/following/",
            "/settings/profile/",
            "/invitations/",
            f"/report/voicetweet/{tweet.pk}/",
            "/accounts/logout/",
            "/accounts/password/change/",
            "/accounts/email/",
            "/api/docs/",
        ],
        admin: [
            "/spaces/new/",
            "/admin/",
            "/admin/spaces/space/",
            f"/admin/spaces/space/{live.pk}/change/",
            f"/admin/accounts/user/{alice.pk}/change/",
        ],
    }
    # Actions that answer POST only (a GET gets 405) and audio files: not pages, but every
    # response carries the header.
    not_pages = {
        member: [
            f"/invitations/{site['invitation'].pk}/revoke/",
            "/u/bob/follow/",
            f"/spaces/{live.pk}/remind/",
            f"/spaces/{live.pk}/start/",
            f"/spaces/{live.pk}/cancel/",
            f"/spaces/{replay.space_id}/replay/delete/",
            f"/spaces/{replay.space_id}/replay/audio",
            "/voicetweets/new",
            f"/voicetweets/{tweet.pk}/audio",
            f"/voicetweets/{tweet.pk}/delete",
            f"/voicetweets/{tweet.pk}/like",
            f"/voicemessages/{message.pk}/audio",
        ]
    }
    problems = []
    visited = set()
    for client, paths in pages.items():
        for path in paths:
            response = client.get(path)
            expected = 404 if path == "/no-such-page/" else 200
            if response.status_code != expected:
                problems.append(f"{path}: {response.status_code}, not {expected}")
            if response.status_code != 404:
                visited.add(response.resolver_match.view_name)
            problems += _check_page(path, response)
    for client, paths in not_pages.items():
        for path in paths:
            response = client.get(path)
            visited.add(response.resolver_match.view_name)
            if HEADER not in response.headers:
                problems.append(f"{path} ({response.status_code}): no {HEADER}")
    assert problems == []
    unvisited = _route_names() - visited
    assert unvisited == set(), (
        f"routes this test never requested: {unvisited}; add each to `pages` or `not_pages`"
    )


def test_error_pages_send_the_policy(site, alice):
    """A refused CSRF token (Salon's own page in place of Django's inline-styled one) and a
    rate limit answer with a page under the same policy."""
    csrf_checked = Client(enforce_csrf_checks=True)
    refused = csrf_checked.post("/accounts/login/", {"login": "alice", "password": "x"})
    assert refused.status_code == 403
    assert b"<style" not in refused.content
    problems = _check_page("CSRF failure", refused)

    visitor = Client()
    for attempt in range(10):
        limited = visitor.post("/waitlist/", {"email": f"waiting-{attempt}@example.org"})
        if limited.status_code == 429:
            break
    assert limited.status_code == 429
    assert b"javascript:" not in limited.content
    problems += _check_page("rate limited", limited)
    assert problems == []


def test_swagger_ui_runs_no_inline_script():
    """/api/docs/ loads its init script as a same-origin file, which the policy allows."""
    page = Client().get("/api/docs/")
    html = page.content.decode()
    assert "<script>" not in html and "<style" not in html
    script = Client().get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()


def _check_page(name: str, response) -> list[str]:
    header = response.headers.get(HEADER)
    if header is None:
        return [f"{name} ({response.status_code}): no {HEADER}"]
    if not response["Content-Type"].startswith("text/html"):
        return [f"{name} ({response.status_code}): {response['Content-Type']}, not a page"]
    ways = ways_in_for_a_script(header) + ways_in_for_a_style(header)
    policy = parse_policy(header)
    if policy.get("frame-ancestors") != ["'none'"]:
        ways.append(f"frame-ancestors is {policy.get('frame-ancestors')}")
    return [f"{name} ({response.status_code}): {way}" for way in ways]


def test_production_settings_send_the_policy(tmp_path):
    """config.settings_production sends the same policy (it inherits it): checked on a page
    that needs no database."""
    # Our 404 page links the stylesheet; production resolves it through collectstatic's manifest,
    # which this check does not build, so static files are served unhashed here.
    script = (
        "import json, django; from django.conf import settings; "
        "settings.STORAGES = {**settings.STORAGES, 'staticfiles': "
        "{'BACKEND': 'django.contrib.staticfiles.storage.StaticFilesStorage'}}; "
        "django.setup(); from django.test import Client; "
        "r = Client().get('/no-such-page/', secure=True, HTTP_HOST='salon.example.org'); "
        "print(json.dumps([r.status_code, r.headers.get('Content-Security-Policy')]))"
    )
    env = _clean_env(
        DJANGO_SETTINGS_MODULE="config.settings_production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="salon.example.org",
        SALON_DATA_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    status, header = json.loads(result.stdout.strip().splitlines()[-1])
    assert status == 404
    assert header is not None
    assert ways_in_for_a_script(header) == [] and ways_in_for_a_style(header) == []

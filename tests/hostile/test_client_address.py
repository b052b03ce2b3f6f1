"""A client cannot choose the address its limits are counted by, and wrong passwords sent to the
token endpoint count in allauth's per-account lockout, the same one the login page uses.

Every limit keyed on an address (DRF's throttles, the HTML forms', allauth's) asks
``config.client_address``: ``X-Forwarded-For`` is read only when the TCP peer is one of
``SALON_TRUSTED_PROXIES`` (none by default), from the right.
"""

from __future__ import annotations

import pytest
from allauth.account.adapter import get_adapter
from django.core.management import CommandError, call_command
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.settings import api_settings
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
PASSWORD = "x-pass-12345"  # the hostile suite's alice


def _guess(client, login: str, password: str, **headers):
    return client.post(TOKEN_URL, {"login": login, "password": password}, format="json", **headers)


def test_a_new_forwarded_for_per_guess_does_not_reset_the_token_budget(alice, monkeypatch):
    """Password guessing with a fresh X-Forwarded-For on every request used to get a fresh
    budget each time (DRF counted the header's text); the peer is counted instead."""
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "auth_token", "3/hour")
    api = APIClient()

    statuses = [
        _guess(api, "alice", f"guess-{n}", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(4)
    ]

    assert statuses == [400, 400, 400, 429]


def test_a_new_address_in_the_same_ipv6_network_does_not_reset_the_budget(alice, monkeypatch):
    """One IPv6 subscriber holds a whole /64: each of its addresses used to be a new budget.
    They count as one, as allauth's own limits count them (ALLAUTH_RATE_LIMIT_IPV6_PREFIX)."""
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "auth_token", "3/hour")
    api = APIClient()

    statuses = [
        _guess(api, "alice", f"guess-{n}", REMOTE_ADDR=f"2001:db8:7:9::{n + 1:x}").status_code
        for n in range(4)
    ]
    elsewhere = _guess(api, "alice", "guess", REMOTE_ADDR="2001:db8:7:a::1").status_code

    assert statuses == [400, 400, 400, 429]
    assert elsewhere == 400


def test_a_new_forwarded_for_per_post_does_not_reset_the_waitlist_form_budget(monkeypatch):
    """The same bypass through the HTML form that shares the API's waitlist limit."""
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "waitlist_join", "2/hour")
    page = Client()

    statuses = [
        page.post(
            "/waitlist/", {"email": f"w{n}@example.org"}, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}"
        ).status_code
        for n in range(3)
    ]

    assert 429 not in statuses[:2] and statuses[2] == 429


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted_not_a_spoofed_entry(
    alice, settings, monkeypatch
):
    """With the test client's peer (127.0.0.1) configured as the proxy, the address the proxy
    appended is the client: a different spoofed leftmost entry on each request shares one
    budget, and another client behind the same proxy has a budget of its own."""
    settings.SALON_TRUSTED_PROXIES = ["127.0.0.1"]
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "auth_token", "2/hour")
    api = APIClient()

    def from_client(client_address: str, spoofed: str):
        chain = f"{spoofed}, {client_address}"
        return _guess(api, "alice", "wrong", HTTP_X_FORWARDED_FOR=chain).status_code

    spoofing = [from_client("192.0.2.7", f"10.0.0.{n}") for n in range(3)]
    neighbour = from_client("192.0.2.8", "10.0.0.1")

    assert spoofing == [400, 400, 429]
    assert neighbour == 400


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded_for", "client"),
    [
        # No proxy configured: the header is never read.
        ([], "192.0.2.1", "203.0.113.9", "192.0.2.1"),
        # A configured proxy, but this peer is not it: the header is the client's own text.
        (["10.0.0.0/8"], "192.0.2.1", "203.0.113.9", "192.0.2.1"),
        # Two proxies in a row, both trusted; the client tried to prepend an address.
        (["10.0.0.0/8"], "10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.1", "203.0.113.9"),
        # IPv6 proxy, client written with its port.
        (["2001:db8::/32"], "2001:db8::1", "203.0.113.9:4242", "203.0.113.9"),
        # Garbage where a proxy would have written an address: the last vouched-for hop.
        (["10.0.0.0/8"], "10.0.0.2", "evil, 10.0.0.1", "10.0.0.1"),
    ],
    ids=["no-proxy", "untrusted-peer", "proxy-chain", "ipv6-proxy", "garbage-hop"],
)
def test_every_limit_counts_the_same_address(settings, trusted, peer, forwarded_for, client):
    """Every throttle an API view uses (the forms use the same classes) and allauth's rate
    limits agree on the address."""
    settings.SALON_TRUSTED_PROXIES = trusted
    request = RequestFactory().post(
        "/api/v1/auth/token/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded_for
    )

    assert {throttle().get_ident(request) for throttle in _throttle_classes()} == {client}
    assert get_adapter().get_client_ip(request) == client


def _throttle_classes() -> set[type]:
    classes = set(api_settings.DEFAULT_THROTTLE_CLASSES)
    patterns = list(get_resolver().url_patterns)
    while patterns:
        pattern = patterns.pop()
        if isinstance(pattern, URLResolver):
            patterns.extend(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "cls", None)
            classes.update(getattr(view_class, "throttle_classes", ()))
    assert ScopedRateThrottle in {base for cls in classes for base in cls.__mro__}
    return classes


def test_allauth_lockout_from_the_login_page_refuses_the_token(alice):
    """Five wrong passwords on the HTML login lock the account (allauth); the token endpoint
    then refuses even the right password, with 429 and the reason (it used to issue it)."""
    page = Client()
    for n in range(5):
        page.post("/accounts/login/", {"login": "alice", "password": f"guess-{n}"})
    locked = page.post("/accounts/login/", {"login": "alice", "password": PASSWORD})
    assert b"Too many failed login attempts" in locked.content

    response = _guess(APIClient(), "alice", PASSWORD)

    assert response.status_code == 429
    assert response.json()["code"] == "too_many_login_attempts"
    assert "Too many failed login attempts" in response.json()["detail"]


def test_wrong_passwords_on_the_token_endpoint_lock_the_login_page(alice):
    """The other way round: guesses on the token endpoint count in the same allauth counter,
    so the page refuses the right password too."""
    api = APIClient()
    guesses = [_guess(api, "alice", f"guess-{n}").status_code for n in range(5)]
    assert guesses == [400] * 5

    page = Client()
    response = page.post("/accounts/login/", {"login": "alice", "password": PASSWORD})

    assert response.status_code == 200  # the form again, not the redirect of a login
    assert b"Too many failed login attempts" in response.content
    assert "_auth_user_id" not in page.session
    assert _guess(api, "alice", PASSWORD).status_code == 429


def test_a_right_password_before_the_lockout_still_gets_the_token(alice):
    """The control case: four wrong guesses, one below allauth's limit, and the right password
    still gets the token."""
    api = APIClient()
    for n in range(4):
        _guess(api, "alice", f"guess-{n}")

    assert "token" in _guess(api, "alice", PASSWORD).json()


def test_serve_never_hands_forwarded_headers_to_daphne(settings, monkeypatch):
    """daphne's --proxy-headers takes X-Forwarded-For from any peer as the client; serve keeps
    its flag but leaves the address to config.client_address, and refuses the flag without a
    trusted proxy to read it from."""
    from config import background
    from config.management.commands import serve

    argv_seen: list[list[str]] = []
    monkeypatch.setattr(serve, "run_daphne", argv_seen.append)
    monkeypatch.setattr(serve, "_tune_the_garbage_collector", lambda: None)

    class IdleBeat:
        def start(self):
            pass

    monkeypatch.setattr(background, "EmbeddedBeat", IdleBeat)

    settings.SALON_TRUSTED_PROXIES = []
    with pytest.raises(CommandError, match="SALON_TRUSTED_PROXIES"):
        call_command("serve", "--proxy-headers")

    settings.SALON_TRUSTED_PROXIES = ["127.0.0.1"]
    call_command("serve", "--proxy-headers")

    assert len(argv_seen) == 1
    assert "--proxy-headers" not in argv_seen[0]

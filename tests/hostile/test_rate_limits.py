"""Rate limits answer 429, through the API and through the HTML form that does the same thing,
and both count against one budget.

Pinned elsewhere: invitation creation, profile listing and token login over the API
(``tests/accounts/test_api.py``), allauth's login (``tests/accounts/test_suspension.py``),
reactions on the space socket (``tests/spaces/test_consumers.py``), and message floods on it
(``test_space_socket_floods.py`` here).
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle, UserRateThrottle

from tests.voicetweets.factories import sine_wav

pytestmark = pytest.mark.django_db


def _audio():
    return SimpleUploadedFile("voice.wav", sine_wav(1), content_type="audio/wav")


def _clients(user):
    api, page = APIClient(), Client()
    if user is not None:
        api.force_authenticate(user)
        page.force_login(user)
    return api, page


# scope → (the API request, the form's request), each a function of (api client, page client)
CASES = {
    "voicetweet_create": (
        lambda api, page: api.post("/api/v1/voicetweets/", {"audio": _audio()}),
        lambda api, page: page.post("/voicetweets/new", {"audio": _audio()}),
    ),
    "voicemessage_send": (
        lambda api, page: api.post("/api/v1/conversations/bob/", {"audio": _audio()}),
        lambda api, page: page.post("/messages/bob/", {"audio": _audio()}),
    ),
    "report_create": (
        lambda api, page: api.post(
            "/api/v1/reports/", {"target_kind": "member", "target": "bob", "reason": "spam"}
        ),
        lambda api, page: page.post("/report/member/bob/", {"reason": "spam"}),
    ),
    "invitation_create": (
        lambda api, page: api.post("/api/v1/invitations/", {}, format="json"),
        lambda api, page: page.post("/invitations/", {"email": ""}),
    ),
    "waitlist_join": (
        lambda api, page: api.post("/api/v1/waitlist/", {"email": "a@example.org"}),
        lambda api, page: page.post("/waitlist/", {"email": "b@example.org"}),
    ),
}


@pytest.mark.parametrize("scope", CASES)
@pytest.mark.parametrize("first", ["api", "form"])
def test_the_api_and_its_form_share_one_limit_and_answer_429(alice, bob, monkeypatch, scope, first):
    """Two requests at a limit of two an hour, one through each door; the third, through
    either, is 429 with Retry-After (the form used to be a way around the API's limit)."""
    # DRF binds the rates dict at import: patch it in place (restored after the test).
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, scope, "2/hour")
    api, page = _clients(None if scope == "waitlist_join" else alice)
    by_api, by_form = CASES[scope]
    order = [by_api, by_form] if first == "api" else [by_form, by_api]

    allowed = [request(api, page).status_code for request in order]
    refused = [request(api, page) for request in order]

    assert 429 not in allowed, allowed
    assert [r.status_code for r in refused] == [429, 429]
    assert all(int(r["Retry-After"]) > 0 for r in refused)


def test_the_form_refusal_is_a_page_that_says_why(alice, monkeypatch):
    """Someone posting from the page without JavaScript reads why, not a bare status."""
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "voicetweet_create", "1/hour")
    _api, page = _clients(alice)
    page.post("/voicetweets/new", {"audio": _audio()})

    response = page.post("/voicetweets/new", {"audio": _audio()})

    assert response.status_code == 429
    assert b"too often" in response.content


def test_every_scoped_throttle_has_a_rate():
    """A scope without a rate makes DRF raise on the first request (500), not throttle."""
    from django.conf import settings

    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert set(CASES) <= rates.keys()


def test_the_default_member_limit_answers_429(alice, monkeypatch):
    """Past the per-member rate every API endpoint answers 429 (here: the feed)."""
    monkeypatch.setitem(UserRateThrottle.THROTTLE_RATES, "user", "3/minute")
    api, _page = _clients(alice)

    statuses = [api.get("/api/v1/voicetweets/feed/").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]

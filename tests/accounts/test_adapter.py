"""Signup goes through allauth's own views; the adapter opens them only to valid invitations."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts import services
from accounts.models import Invitation, User

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def signup_data(username: str) -> dict:
    return {
        "username": username,
        "email": f"{username}@example.org",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }


def accept_link(client: Client, invitation: Invitation):
    return client.post(f"/invite/{invitation.token}/")


def test_signup_without_invitation_is_closed(client, alice):
    """Without an invitation the signup page says so, links the waitlist, and creates nothing."""
    page = client.get("/accounts/signup/")
    posted = client.post("/accounts/signup/", signup_data("mallory"))

    assert b"invite-only" in page.content and b"/waitlist/" in page.content
    assert b"invite-only" in posted.content
    assert not User.objects.filter(username="mallory").exists()


def test_invitation_page_shows_who_invited_you(client, invitation):
    """The link's landing page names the inviter and leads into allauth's signup."""
    page = client.get(f"/invite/{invitation.token}/")
    response = accept_link(client, invitation)

    assert page.status_code == 200 and b"@alice" in page.content
    assert response.status_code == 302 and response["Location"].startswith("/accounts/signup/")
    assert client.get("/accounts/signup/").status_code == 200


def test_signup_with_valid_invitation_records_the_inviter(client, alice, invitation):
    """A valid invitation creates exactly one member, invited by the inviter, and logs them in."""
    accept_link(client, invitation)
    response = client.post("/accounts/signup/", signup_data("newbie"))

    assert response.status_code == 302
    newbie = User.objects.get(username="newbie")
    assert newbie.invited_by == alice
    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.ACCEPTED and invitation.accepted_by == newbie
    assert client.get("/api/v1/me/").json()["invited_by"] == "alice"


def test_unknown_invitation_gives_a_clear_404(client):
    """A made-up token is a 404 page explaining the link is not valid."""
    response = client.get("/invite/not-a-real-token/")

    assert response.status_code == 404
    assert b"not valid" in response.content


def test_used_invitation_cannot_sign_up_anyone_else(client, invitation):
    """Once used, the link shows 'already been used' and a second signup creates nothing."""
    accept_link(client, invitation)
    client.post("/accounts/signup/", signup_data("first"))
    other = Client()

    page = other.get(f"/invite/{invitation.token}/")
    posted = other.post(f"/invite/{invitation.token}/")

    assert page.status_code == 410 and b"already been used" in page.content
    assert posted.status_code == 410
    assert other.post("/accounts/signup/", signup_data("second")).status_code == 200  # closed
    assert not User.objects.filter(username="second").exists()


def test_expired_invitation_is_refused(client, invitation):
    """An invitation past its expiry gives 'expired' and creates nothing."""
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    response = client.get(f"/invite/{invitation.token}/")

    assert response.status_code == 410 and b"expired" in response.content


def test_revoked_invitation_is_refused(client, alice, invitation):
    """A revoked invitation gives 'revoked' and creates nothing."""
    services.invitation_revoke(invitation=invitation, by=alice)
    response = client.get(f"/invite/{invitation.token}/")

    assert response.status_code == 410 and b"revoked" in response.content


def test_invitation_revoked_after_landing_refuses_the_signup(client, alice, invitation):
    """Revoking between the landing page and the signup form: clear error, no account."""
    accept_link(client, invitation)
    services.invitation_revoke(invitation=invitation, by=alice)

    response = client.post("/accounts/signup/", signup_data("late"))

    assert response.status_code == 410 and b"revoked" in response.content
    assert not User.objects.filter(username="late").exists()


def test_invitation_taken_mid_signup_rolls_the_account_back(client, invitation, monkeypatch):
    """If the invitation is taken while the signup POST runs, the new account is rolled back."""
    accept_link(client, invitation)
    original = services.invitation_check
    calls = {"n": 0}

    def check_then_lose_race(*, token):
        # The adapter's is_open_for_signup passes; then another signup takes the invitation.
        calls["n"] += 1
        result = original(token=token)
        if calls["n"] == 2:
            Invitation.objects.filter(pk=invitation.pk).update(state=Invitation.State.REVOKED)
        return result

    monkeypatch.setattr(services, "invitation_check", check_then_lose_race)
    response = client.post("/accounts/signup/", signup_data("loser"))

    assert response.status_code == 410
    assert not User.objects.filter(username="loser").exists()


@pytest.mark.django_db(transaction=True)
def test_two_people_racing_on_one_invitation_create_one_account(make_member):
    """Two simultaneous signups with the same invitation: the database lets exactly one win."""
    alice = make_member("alice")
    invitation = services.invitation_create(inviter=alice)
    clients = [Client(), Client()]
    for client in clients:
        assert accept_link(client, invitation).status_code == 302
    barrier = threading.Barrier(2)
    statuses: dict[str, int] = {}

    def sign_up(client: Client, username: str) -> None:
        try:
            barrier.wait(timeout=10)
            statuses[username] = client.post("/accounts/signup/", signup_data(username)).status_code
        finally:
            connection.close()

    threads = [
        threading.Thread(target=sign_up, args=(clients[0], "racer1")),
        threading.Thread(target=sign_up, args=(clients[1], "racer2")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(statuses.values()) == [302, 410]
    created = User.objects.filter(username__in=["racer1", "racer2"])
    assert created.count() == 1
    invitation.refresh_from_db()
    assert invitation.accepted_by == created.get()
    assert created.get().invited_by == alice


def _wait_for_a_lock_wait(timeout: float = 10) -> None:
    """Block until some PostgreSQL backend waits on a row lock (the second acceptance)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                return
        time.sleep(0.02)
    raise AssertionError("the second acceptance never waited for the row lock")


@pytest.mark.django_db(transaction=True)
def test_database_refuses_two_accepts_of_one_invitation(make_member):
    """Held row lock: a second acceptance waits, then finds the invitation used, in PostgreSQL."""
    from django.db import transaction

    alice = make_member("alice")
    bob = make_member("bob")
    carol = make_member("carol")
    invitation = services.invitation_create(inviter=alice)
    first_holds_lock = threading.Event()
    release = threading.Event()
    outcome: dict[str, object] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                services.invitation_accept(token=invitation.token, user=bob)
                first_holds_lock.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    def second() -> None:
        try:
            first_holds_lock.wait(timeout=10)
            with transaction.atomic():
                services.invitation_accept(token=invitation.token, user=carol)
            outcome["second"] = "accepted"
        except Exception as exc:
            outcome["second"] = type(exc).__name__
        finally:
            connection.close()

    t1, t2 = threading.Thread(target=first), threading.Thread(target=second)
    t1.start()
    t2.start()
    first_holds_lock.wait(timeout=10)
    _wait_for_a_lock_wait()
    release.set()
    t1.join(timeout=30)
    t2.join(timeout=30)

    assert outcome["second"] == "InvalidInvitation"
    invitation.refresh_from_db()
    assert invitation.accepted_by == bob

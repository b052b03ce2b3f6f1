"""Signups racing each other on PostgreSQL: the database decides, and nobody gets a 500.

Pinned elsewhere: two signups on one invitation (one account, the other 410) and the row lock
that makes a second acceptance wait (``tests/accounts/test_adapter.py``). Added here: many
browsers on one invitation at once, and two invitations racing for one username.
"""

from __future__ import annotations

import contextlib
import threading

import pytest
from allauth.account.adapter import DefaultAccountAdapter
from django.db import connection
from django.test import Client

from accounts import services
from accounts.adapter import INVITATION_SESSION_KEY
from accounts.models import Invitation, User
from tests.accounts.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def _signup_data(username: str, email: str | None = None) -> dict:
    return {
        "username": username,
        "email": email or f"{username}@example.org",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }


def _race(attempts: list[tuple[Client, dict]]) -> list[int]:
    """POST every signup at the same moment, each from its own thread; their statuses."""
    barrier = threading.Barrier(len(attempts))
    statuses: list[int | str] = [0] * len(attempts)

    def sign_up(index: int, client: Client, data: dict) -> None:
        try:
            barrier.wait(timeout=10)
            statuses[index] = client.post("/accounts/signup/", data).status_code
        except Exception as error:  # a crash is a result here, not a test error
            statuses[index] = type(error).__name__
        finally:
            connection.close()

    threads = [
        threading.Thread(target=sign_up, args=(index, client, data))
        for index, (client, data) in enumerate(attempts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


def _holding(invitation: Invitation) -> Client:
    client = Client()
    assert client.post(f"/invite/{invitation.token}/").status_code == 302
    return client


def test_six_browsers_on_one_invitation_make_one_account():
    """Six signups with the same invitation at once: one account, five clear refusals (410)."""
    alice = User.objects.create_user(username="alice", password=PASSWORD)
    invitation = services.invitation_create(inviter=alice)
    attempts = [(_holding(invitation), _signup_data(f"racer{n}")) for n in range(6)]

    statuses = _race(attempts)

    assert sorted(statuses) == [302] + [410] * 5, statuses
    created = User.objects.filter(username__startswith="racer")
    assert created.count() == 1
    invitation.refresh_from_db()
    assert invitation.accepted_by == created.get()


def test_two_invitations_racing_for_one_username_make_one_account(monkeypatch):
    """Two invitees choose the same username at the same moment: one account; the other is
    sent back to the form (it used to be a 500 from the unique constraint) with their
    invitation intact, and signs up under another name."""
    alice = User.objects.create_user(username="alice", password=PASSWORD, invitations_left=5)
    first, second = (services.invitation_create(inviter=alice) for _ in range(2))
    attempts = [
        (_holding(first), _signup_data("sameuser", "one@example.org")),
        (_holding(second), _signup_data("sameuser", "two@example.org")),
    ]
    # "The same moment": both forms have checked that the name is free before either insert
    # (with real password hashing that window is wide; here it is made certain).
    both_checked = threading.Barrier(2)
    save_user = DefaultAccountAdapter.save_user

    def save_once_both_checked(self, request, user, form, commit=True):
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait(timeout=10)
        return save_user(self, request, user, form, commit=commit)

    monkeypatch.setattr(DefaultAccountAdapter, "save_user", save_once_both_checked)

    statuses = _race(attempts)
    monkeypatch.undo()

    assert 302 in statuses and all(isinstance(s, int) and s < 500 for s in statuses), statuses
    assert User.objects.filter(username__iexact="sameuser").count() == 1
    pending = [
        inv for inv in Invitation.objects.filter(pk__in=[first.pk, second.pk])
        if inv.accepted_by_id is None
    ]  # fmt: skip
    assert len(pending) == 1
    loser = next(c for c, data in attempts if c.session.get(INVITATION_SESSION_KEY))
    assert b"taken a moment ago" in loser.get("/accounts/signup/").content
    assert loser.post("/accounts/signup/", _signup_data("otheruser")).status_code == 302
    pending[0].refresh_from_db()
    assert pending[0].accepted_by == User.objects.get(username="otheruser")

"""Leases on background work: how a sweep tells work whose worker died from work in progress.

A worker that starts on a row (a recording to process, a replay to join) takes its lease: a
fresh token and an expiry SALON_WORK_LEASE_SECONDS ahead. While its child process runs, the
worker renews the lease every SALON_WORK_LEASE_RENEW_SECONDS (the child runner's heartbeat).
A worker that dies stops renewing, and within SALON_WORK_LEASE_SECONDS the lease has expired:
the sweep queues the work again, and the next worker takes a new lease. Age alone says
nothing: a long recording may process for minutes under a live lease, and a killed one is
taken up within a lease's length.

The token fences out a worker that lost its lease (it stalled past the expiry, the work was
taken over): its renewals fail, so its child is killed, and it may write a result only while
the row still carries its token.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Leased(models.Model):
    """A row that background workers take turns on, one at a time."""

    # The running attempt's token ("" when no worker has started on it); it also names the
    # attempt's work folder, so the sweep can tell a live attempt's folder from a dead one's.
    lease_token = models.CharField(max_length=32, blank=True)
    # Until when the worker holding the token counts as alive; renewed while it works.
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def lease_is_alive(self, now: datetime | None = None) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at > (now or timezone.now())

    def lease_take(self, now: datetime | None = None) -> str:
        """Give the lease to a new attempt and return its token. The caller holds the row lock,
        has checked that no live lease is held, and saves ``LEASE_FIELDS``."""
        self.lease_token = secrets.token_hex(8)
        self.lease_expires_at = _expiry(now or timezone.now())
        return self.lease_token

    def lease_release(self) -> None:
        """The work is done (the caller holds the row lock and saves ``LEASE_FIELDS``)."""
        self.lease_token = ""
        self.lease_expires_at = None


LEASE_FIELDS = ["lease_token", "lease_expires_at"]


def _expiry(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.SALON_WORK_LEASE_SECONDS)


def lease_renew(model: type[Leased], pk: int, token: str) -> bool:
    """Extend the lease ``token`` holds on row ``pk``; False if it no longer holds it."""
    now = timezone.now()
    return bool(
        model.objects.filter(pk=pk, lease_token=token).update(lease_expires_at=_expiry(now))
    )


def lease_heartbeat(model: type[Leased], pk: int, token: str) -> Callable[[], bool]:
    """The heartbeat to hand the child runner (voicetweets.children.run_child)."""
    return lambda: lease_renew(model, pk, token)


def lease_expired(now: datetime | None = None) -> Q:
    """Rows whose worker took the lease and stopped renewing it: it died."""
    return Q(lease_expires_at__lt=now or timezone.now())

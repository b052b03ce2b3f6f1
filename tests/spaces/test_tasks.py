"""Reminders and sweeps run by Celery beat: schedule entries and what the tasks do."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from notifications.models import Notification
from spaces import services, tasks

from .factories import make_member

pytestmark = pytest.mark.django_db


def test_beat_schedule_runs_reminders_and_sweep():
    """CELERY_BEAT_SCHEDULE runs the reminders every minute and the sweep every few seconds."""
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["spaces.send-reminders"]["task"] == tasks.send_reminders.name
    assert schedule["spaces.sweep"]["task"] == tasks.sweep.name
    assert schedule["spaces.sweep"]["schedule"].total_seconds() <= 10


def _scheduled_with_subscriber(minutes: int):
    host = make_member("hana", host=True)
    member = make_member("leo")
    member.email = "leo@example.org"
    member.save()
    space = services.space_create(
        host=host, title="Later", scheduled_start=timezone.now() + timedelta(minutes=minutes)
    )
    services.space_subscribe(space=space, user=member)
    return host, member, space


def test_reminder_30_minutes_before_then_when_live(django_capture_on_commit_callbacks):
    """Subscribers get 'starts soon' once within 30 minutes, then 'is live' once it starts."""
    host, member, space = _scheduled_with_subscriber(minutes=90)
    assert tasks.send_reminders() == 0  # too early
    assert services.space_send_reminders(now=timezone.now() + timedelta(minutes=61)) == 1
    assert services.space_send_reminders(now=timezone.now() + timedelta(minutes=62)) == 0
    services.space_start(space=space, by=host)
    assert tasks.send_reminders() == 1
    assert tasks.send_reminders() == 0
    kinds = list(Notification.objects.filter(user=member).values_list("kind", flat=True))
    assert sorted(kinds) == ["space.soon", "space.started"]


def test_reminder_is_emailed_when_email_is_configured(settings, django_capture_on_commit_callbacks):
    """With email configured, the reminder also goes out by email."""
    settings.EMAIL_CONFIGURED = True
    _scheduled_with_subscriber(minutes=10)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.send_reminders()
    assert [m.to for m in mail.outbox] == [["leo@example.org"]]


def test_cancel_notifies_subscribers():
    """Cancelling a scheduled space tells its subscribers."""
    host, member, space = _scheduled_with_subscriber(minutes=90)
    services.space_cancel(space=space, by=host)
    assert Notification.objects.filter(user=member, kind="space.cancelled").exists()


def test_live_space_the_host_never_opens_ends_after_grace():
    """A space created live whose host never connects ends once the grace period is over."""
    host = make_member("hana", host=True)
    space = services.space_create(host=host, title="Nobody came")
    later = timezone.now() + timedelta(seconds=settings.SALON_SPACE_HOST_GRACE_SECONDS + 1)
    assert services.space_sweep(now=later)["host_grace_applied"] == 1
    space.refresh_from_db()
    assert (space.state, space.ended_at is not None) == ("ended", True)

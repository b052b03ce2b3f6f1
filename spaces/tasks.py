"""Celery tasks of spaces: thin adapters over services, run by beat (CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from . import services


@shared_task(name="spaces.sweep")
def sweep() -> dict:
    """Presence and the host grace period (every few seconds)."""
    return services.space_sweep()


@shared_task(name="spaces.send_reminders")
def send_reminders() -> int:
    """ "Starts soon" and "is live" notices to subscribers (every minute)."""
    return services.space_send_reminders()

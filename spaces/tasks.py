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


# Late acks with a hard limit above the child's own timeout: a lost worker is not redelivered in
# a loop; the lease, the stalled sweep and the attempts counter decide what happens next.
@shared_task(name="spaces.process_replay", acks_late=True, time_limit=1200, soft_time_limit=1000)
def process_replay(replay_id: int) -> None:
    """Join an ended space's recorded segments into its replay (audio queue)."""
    services.replay_process(replay_id=replay_id)


@shared_task(name="spaces.requeue_stalled_replays")
def requeue_stalled_replays() -> int:
    """Replays whose mixer or worker died before processing finished (every half lease, and
    when a worker starts)."""
    return services.replays_requeue_stalled()


@shared_task(name="spaces.delete_expired_replays")
def delete_expired_replays() -> int:
    """Retention: replays past their date, except held ones (hourly)."""
    return services.replays_delete_expired()

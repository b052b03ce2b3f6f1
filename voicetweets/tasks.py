"""Celery adapters: receive ids, call services."""

from celery import shared_task

from . import services
from .models import VoiceMessage, VoiceTweet


# The hard limit is a backstop above the child process's own timeout; late acks with no
# requeue on a lost worker mean a crash is not redelivered in a loop (the lease, the stalled
# sweep and the attempts counter decide what happens next).
@shared_task(name="voicetweets.process", acks_late=True, time_limit=300, soft_time_limit=240)
def process_voicetweet(voicetweet_id: int) -> None:
    services.voicetweet_process(voicetweet_id=voicetweet_id)


@shared_task(
    name="voicetweets.process_message", acks_late=True, time_limit=300, soft_time_limit=240
)
def process_voicemessage(voicemessage_id: int) -> None:
    services.voicemessage_process(voicemessage_id=voicemessage_id)


# On the transcribe queue (settings.CELERY_TASK_ROUTES), apart from processing: a backlog of
# transcripts never delays a voice tweet becoming playable. The child has its own deadline
# (SALON_TRANSCRIBE_SECONDS); the task's limits are a backstop above it.
@shared_task(name="voicetweets.transcribe", acks_late=True, time_limit=420, soft_time_limit=360)
def transcribe_voicetweet(voicetweet_id: int) -> None:
    services.recording_transcribe(model=VoiceTweet, pk=voicetweet_id)


@shared_task(
    name="voicetweets.transcribe_message", acks_late=True, time_limit=420, soft_time_limit=360
)
def transcribe_voicemessage(voicemessage_id: int) -> None:
    services.recording_transcribe(model=VoiceMessage, pk=voicemessage_id)


@shared_task(name="voicetweets.requeue_stalled")
def requeue_stalled_voicetweets(queue_lost: bool = False) -> int:
    return services.voicetweets_requeue_stalled(queue_lost=queue_lost)

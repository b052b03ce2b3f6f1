"""The player's captions markup (templates/voicetweets/_player.html): a CC toggle, a caption
line and the readable transcript, only once the transcript is ready."""

import pytest
from django.contrib.auth import get_user_model

from voicetweets.models import Recording

from .factories import ready_message, ready_tweet

pytestmark = pytest.mark.django_db
User = get_user_model()
SEGMENTS = [{"text": "Meet me at noon.", "start": 0.0, "end": 1.4}]


def with_transcript(recording, state=Recording.TranscriptState.READY):
    recording.transcript_state = state
    recording.transcript_segments = SEGMENTS
    recording.transcript = SEGMENTS[0]["text"]
    recording.save()
    return recording


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        (Recording.TranscriptState.READY, True),
        (Recording.TranscriptState.PENDING, False),
        (Recording.TranscriptState.FAILED, False),
        (Recording.TranscriptState.OFF, False),
    ],
)
def test_a_voice_tweet_card_has_captions_only_when_its_transcript_is_ready(client, state, shown):
    alice = User.objects.create_user(username="alice")
    tweet = with_transcript(ready_tweet(alice), state)
    client.force_login(User.objects.create_user(username="bob"))
    page = client.get(f"/voicetweets/{tweet.pk}/").content.decode()
    assert ('class="caption-line"' in page) is shown
    assert ("Read transcript" in page) is shown
    assert ('data-start="0.00" data-end="1.40"' in page) is shown
    assert ('class="cc"' in page) is shown


def test_a_voice_messages_transcript_shows_in_its_conversation(client):
    alice, bob = (
        User.objects.create_user(username="alice"),
        User.objects.create_user(username="bob"),
    )
    with_transcript(ready_message(alice, bob))
    client.force_login(bob)
    page = client.get("/messages/alice/").content.decode()
    assert "Meet me at noon." in page and 'class="caption-line"' in page

"""Space services that have no adapter-specific test file: the audio mode."""

import pytest

from spaces import errors, selectors, services
from spaces.models import Space

from .factories import make_live_space, make_member, put_on_stage

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """The events services hand to the channel layer (after commit)."""
    events = []
    monkeypatch.setattr(services._shared, "_send_now", lambda space_id, event: events.append(event))
    return events


def test_the_host_switches_a_live_space_to_music_and_the_room_hears_of_it_on_commit(
    sent, django_capture_on_commit_callbacks
):
    """The mode is stored, in the snapshot, and audio_mode.changed goes out once committed;
    setting the same mode again sends nothing."""
    host = make_member("hana", host=True)
    space = make_live_space(host)
    with django_capture_on_commit_callbacks() as callbacks:
        services.space_set_audio_mode(space=space, by=host, audio_mode="music")
        assert sent == []  # not before the commit
    for callback in callbacks:
        callback()
    assert sent == [{"type": "audio_mode.changed", "audio_mode": "music", "by": host.pk}]
    space.refresh_from_db()
    assert space.audio_mode == "music"
    assert selectors.space_snapshot(space=space, user=host)["space"]["audio_mode"] == "music"
    with django_capture_on_commit_callbacks(execute=True):
        services.space_set_audio_mode(space=space, by=host, audio_mode="music")
    assert len(sent) == 1


def test_only_the_host_chooses_the_audio_mode(sent):
    """A co-host, a speaker or a stranger is refused; nothing changes, nothing is sent."""
    host = make_member("hana", host=True)
    space = make_live_space(host)
    cohost = make_member("cora")
    services.participant_join(space_id=space.pk, user=host)
    services.participant_join(space_id=space.pk, user=cohost)
    put_on_stage(space, host, cohost, "cohost")
    sent.clear()
    for member in (cohost, make_member("sam")):
        with pytest.raises(errors.SpaceForbidden):
            services.space_set_audio_mode(space=space, by=member, audio_mode="music")
    space.refresh_from_db()
    assert space.audio_mode == "speech"


def test_audio_mode_while_scheduled_but_not_once_over():
    """A scheduled space may be set to music before it starts; an ended one may not."""
    from datetime import timedelta

    from django.utils import timezone

    host = make_member("hana", host=True)
    scheduled = services.space_create(
        host=host, title="Later", scheduled_start=timezone.now() + timedelta(days=1)
    )
    services.space_set_audio_mode(space=scheduled, by=host, audio_mode="music")
    scheduled.refresh_from_db()
    assert scheduled.audio_mode == "music"
    services.space_cancel(space=scheduled, by=host)
    with pytest.raises(errors.SpaceStateError):
        services.space_set_audio_mode(space=scheduled, by=host, audio_mode="speech")
    live = make_live_space(host)
    services.space_end(space=live, by=host)
    with pytest.raises(errors.SpaceStateError):
        services.space_set_audio_mode(space=live, by=host, audio_mode="music")


@pytest.mark.parametrize("bad", ["loud", "", None, 1, "MUSIC"])
def test_audio_mode_rejects_unknown_values(bad):
    """Only "speech" and "music", at creation and when switching."""
    host = make_member("hana", host=True)
    space = make_live_space(host)
    with pytest.raises(errors.InvalidInput, match="audio_mode"):
        services.space_set_audio_mode(space=space, by=host, audio_mode=bad)
    with pytest.raises(errors.InvalidInput, match="audio_mode"):
        services.space_create(host=host, title="x", audio_mode=bad)


def test_a_space_can_start_in_music_mode():
    """space_create takes the mode; the default is speech."""
    host = make_member("hana", host=True)
    assert services.space_create(host=host, title="Talk").audio_mode == Space.AudioMode.SPEECH
    assert services.space_create(host=host, title="Gig", audio_mode="music").audio_mode == "music"

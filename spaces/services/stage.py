"""The stage and its moderation: hands, invitations to speak, mutes, removals and
bans, co-hosts, the pinned voice tweet, recording, the audio mode and reactions."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.services import audit_record
from notifications.models import Notification
from notifications.services import notification_send

from .. import errors
from ..live.tickets import tickets_revoke_on_commit
from ..models import (
    Participant,
    Space,
    SpaceBan,
)
from ..protocol import REACTIONS
from ..selectors import (
    participant_data,
    user_moderates_all_spaces,
)
from ._shared import (
    RANK,
    Role,
    _broadcast,
    _check_audio_mode,
    _lock,
    _lock_live,
    _participant,
    _set_role,
)
from .lifecycle import _space_url
from .presence import _host_away


def _target(space: Space, user_id) -> Participant:
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise errors.InvalidInput("user_id must be an integer")
    participant = (
        Participant.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(space=space, user_id=user_id)
        .first()
    )
    if participant is None:
        raise errors.NotParticipant("that member is not in this space")
    return participant


def _moderator(space: Space, user) -> Participant:
    actor = _participant(space, user)
    if not actor.is_moderator:
        raise errors.SpaceForbidden("only the host or a co-host can do that")
    return actor


def _check_outranks(actor: Participant, target: Participant) -> None:
    if RANK[actor.role] <= RANK[target.role]:
        raise errors.SpaceForbidden(f"a {actor.role} cannot do that to a {target.role}")


def _check_stage_room(space: Space, role: str) -> None:
    limit = (
        settings.SALON_SPACE_MAX_COHOSTS
        if role == Role.COHOST
        else settings.SALON_SPACE_MAX_SPEAKERS
    )
    if Participant.objects.filter(space=space, role=role).count() >= limit:
        raise errors.RoleLimitReached(f"this space already has {limit} {role}s")


@transaction.atomic
def hand_raise(*, space: Space, user) -> None:
    space = _lock_live(space)
    participant = _participant(space, user)
    if participant.role != Role.LISTENER:
        raise errors.InvalidInput("you are already on stage")
    if not participant.hand_raised:
        participant.hand_raised = True
        participant.save(update_fields=["hand_raised"])
        _broadcast(
            space.pk,
            "hand.raised",
            user_id=participant.user_id,
            participant=participant_data(participant),
        )


@transaction.atomic
def hand_lower(*, space: Space, user) -> None:
    space = _lock_live(space)
    participant = _participant(space, user)
    if participant.hand_raised:
        participant.hand_raised = False
        participant.save(update_fields=["hand_raised"])
        _broadcast(space.pk, "hand.lowered", user_id=participant.user_id, by=None)


@transaction.atomic
def hand_approve(*, space: Space, by, user_id: int) -> None:
    """Host or co-host brings a listener with a raised hand up to speak."""
    space = _lock_live(space)
    _moderator(space, by)
    target = _target(space, user_id)
    if target.role != Role.LISTENER or not target.hand_raised:
        raise errors.InvalidInput("that member has not raised their hand")
    _check_stage_room(space, Role.SPEAKER)
    _set_role(target, Role.SPEAKER, by=by)


@transaction.atomic
def hand_dismiss(*, space: Space, by, user_id: int) -> None:
    space = _lock_live(space)
    _moderator(space, by)
    target = _target(space, user_id)
    if not target.hand_raised:
        raise errors.InvalidInput("that member has not raised their hand")
    target.hand_raised = False
    target.save(update_fields=["hand_raised"])
    _broadcast(space.pk, "hand.lowered", user_id=target.user_id, by=by.pk)


@transaction.atomic
def speak_invite(*, space: Space, by, user_id: int) -> None:
    """Host or co-host asks a listener to speak; the listener accepts or declines."""
    space = _lock_live(space)
    _moderator(space, by)
    target = _target(space, user_id)
    if target.role != Role.LISTENER:
        raise errors.InvalidInput("that member is already on stage")
    if not target.invited_to_speak:
        target.invited_to_speak = True
        target.save(update_fields=["invited_to_speak"])
        _broadcast(space.pk, "speak.invited", user_id=target.user_id, by=by.pk)
        # In the bell too: the invitation waits there if the listener's page is in the background.
        notification_send(
            user=target.user,
            kind=Notification.Kind.SPEAK_INVITED,
            text=f"{by.name} invited you to speak in “{space.title}”.",
            url=_space_url(space),
            target=space,
            actor=by,
        )


@transaction.atomic
def speak_invite_accept(*, space: Space, user) -> None:
    space = _lock_live(space)
    participant = _participant(space, user)
    if participant.role != Role.LISTENER or not participant.invited_to_speak:
        raise errors.InvalidInput("you have not been invited to speak")
    _check_stage_room(space, Role.SPEAKER)
    _set_role(participant, Role.SPEAKER, by=user)


@transaction.atomic
def speak_invite_decline(*, space: Space, user) -> None:
    space = _lock_live(space)
    participant = _participant(space, user)
    if not participant.invited_to_speak:
        raise errors.InvalidInput("you have not been invited to speak")
    participant.invited_to_speak = False
    participant.save(update_fields=["invited_to_speak"])
    _broadcast(space.pk, "speak.declined", user_id=participant.user_id)


def _set_muted(participant: Participant, *, muted: bool, by) -> None:
    participant.is_muted = muted
    # A moderator's mute is remembered; the speaker unmuting themselves clears it.
    participant.muted_by_moderator = muted and by.pk != participant.user_id
    participant.save(update_fields=["is_muted", "muted_by_moderator"])
    _broadcast(
        participant.space_id,
        "mute.changed",
        user_id=participant.user_id,
        is_muted=muted,
        muted_by_moderator=participant.muted_by_moderator,
        by=by.pk,
    )


@transaction.atomic
def participant_set_muted(*, space: Space, user, muted: bool) -> None:
    """A member on stage mutes or unmutes themselves — also after a moderator muted them."""
    if not isinstance(muted, bool):
        raise errors.InvalidInput("muted must be true or false")
    space = _lock_live(space)
    participant = _participant(space, user)
    if not participant.on_stage:
        raise errors.SpaceForbidden("listeners cannot speak; raise your hand")
    if participant.is_muted != muted:
        _set_muted(participant, muted=muted, by=user)


@transaction.atomic
def speaker_mute(*, space: Space, by, user_id: int) -> None:
    space = _lock_live(space)
    actor = _moderator(space, by)
    target = _target(space, user_id)
    if not target.on_stage:
        raise errors.InvalidInput("that member is not on stage")
    _check_outranks(actor, target)
    if not target.is_muted:
        _set_muted(target, muted=True, by=by)


@transaction.atomic
def speakers_mute_all(*, space: Space, by) -> int:
    """Mute everyone on stage whom the actor outranks; returns how many were muted."""
    space = _lock_live(space)
    actor = _moderator(space, by)
    targets = Participant.objects.select_for_update().filter(
        space=space, role__in=Participant.STAGE_ROLES, is_muted=False
    )
    muted = 0
    for target in targets:
        if RANK[target.role] < RANK[actor.role]:
            _set_muted(target, muted=True, by=by)
            muted += 1
    return muted


@transaction.atomic
def speaker_move_to_listeners(*, space: Space, by, user_id: int) -> None:
    """Take a speaker off the stage: muted, and unable to unmute until brought back."""
    space = _lock_live(space)
    actor = _moderator(space, by)
    target = _target(space, user_id)
    if target.role != Role.SPEAKER:
        raise errors.InvalidInput("that member is not a speaker")
    _check_outranks(actor, target)
    _set_role(target, Role.LISTENER, by=by)


@transaction.atomic
def participant_remove(*, space: Space, by, user_id: int, ban: bool = False) -> None:
    """Host or co-host (or a site moderator, audited) removes someone, optionally for good.

    Every socket the member has in the space receives ``participant.removed`` and closes (4001,
    or 4002 when banned).
    """
    space = _lock_live(space)
    target = _target(space, user_id)
    site_moderator = user_moderates_all_spaces(user=by)
    actor = Participant.objects.filter(space=space, user=by).first()
    if not site_moderator:
        if actor is None or not actor.is_moderator:
            raise errors.SpaceForbidden("only the host or a co-host can do that")
        _check_outranks(actor, target)
    target.delete()
    if target.role == Role.HOST:
        _host_away(space, since=timezone.now())
    if ban:
        SpaceBan.objects.get_or_create(space=space, user=target.user, defaults={"banned_by": by})
        tickets_revoke_on_commit(user_id=target.user_id)
    if site_moderator or ban:
        audit_record(
            actor=by,
            action="space.ban" if ban else "space.remove_participant",
            target=space,
            extra={"user_id": target.user_id},
        )
    _broadcast(space.pk, "participant.removed", user_id=target.user_id, banned=ban, by=by.pk)


@transaction.atomic
def cohost_add(*, space: Space, by, user_id: int) -> None:
    space = _lock_live(space)
    actor = _participant(space, by)
    if actor.role != Role.HOST:
        raise errors.SpaceForbidden("only the host adds co-hosts")
    target = _target(space, user_id)
    if target.role in (Role.HOST, Role.COHOST):
        raise errors.InvalidInput(f"that member is already the {target.role}")
    _check_stage_room(space, Role.COHOST)
    _set_role(target, Role.COHOST, by=by)


@transaction.atomic
def cohost_remove(*, space: Space, by, user_id: int) -> None:
    """The host takes co-host rights away; the member stays on stage as a speaker."""
    space = _lock_live(space)
    actor = _participant(space, by)
    if actor.role != Role.HOST:
        raise errors.SpaceForbidden("only the host removes co-hosts")
    target = _target(space, user_id)
    if target.role != Role.COHOST:
        raise errors.InvalidInput("that member is not a co-host")
    _set_role(target, Role.SPEAKER, by=by)


def _check_voice_tweet(voice_tweet_id: int) -> None:
    try:
        VoiceTweet = apps.get_model("voicetweets", "VoiceTweet")
    except LookupError:  # a deployment without voice tweets pins plain ids
        return
    if not VoiceTweet.objects.filter(pk=voice_tweet_id).exists():
        raise errors.InvalidInput("no such voice tweet")


@transaction.atomic
def space_pin_tweet(*, space: Space, by, voice_tweet_id: int | None) -> None:
    """Host or co-host pins a voice tweet to the space (None unpins)."""
    space = _lock_live(space)
    _moderator(space, by)
    if voice_tweet_id is not None:
        if not isinstance(voice_tweet_id, int) or isinstance(voice_tweet_id, bool):
            raise errors.InvalidInput("voice_tweet_id must be an integer or null")
        _check_voice_tweet(voice_tweet_id)
    space.pinned_voice_tweet_id = voice_tweet_id
    space.save(update_fields=["pinned_voice_tweet_id"])
    _broadcast(space.pk, "pin.changed", voice_tweet_id=voice_tweet_id, by=by.pk)


@transaction.atomic
def space_set_recording(*, space: Space, by, is_recording: bool) -> None:
    """The host says whether the space is being recorded; everyone sees the state."""
    if not isinstance(is_recording, bool):
        raise errors.InvalidInput("is_recording must be true or false")
    space = _lock_live(space)
    if by.pk != space.host_id:
        raise errors.SpaceForbidden("only the host controls recording")
    if space.is_recording != is_recording:
        space.is_recording = is_recording
        space.save(update_fields=["is_recording"])
        _broadcast(space.pk, "recording.changed", is_recording=is_recording, by=by.pk)


@transaction.atomic
def space_set_audio_mode(*, space: Space, by, audio_mode: str) -> None:
    """The host switches the space between speech, music and stereo music audio
    (docs/audio.md, "Codec modes"), before it starts or while it is live. Everyone sees the
    mode; the room's mixer and the speakers' clients re-encode with its settings from the
    event on."""
    _check_audio_mode(audio_mode)
    space = _lock(space)
    if space.state not in (Space.State.SCHEDULED, Space.State.LIVE):
        raise errors.SpaceStateError(f"the space is {space.state}")
    if by.pk != space.host_id:
        raise errors.SpaceForbidden("only the host chooses the audio mode")
    if space.audio_mode != audio_mode:
        space.audio_mode = audio_mode
        space.save(update_fields=["audio_mode"])
        _broadcast(space.pk, "audio_mode.changed", audio_mode=audio_mode, by=by.pk)


def reaction_send(*, space: Space, user, emoji: str) -> None:
    """Ephemeral: broadcast, never stored; SALON_SPACE_REACTION_RATE per member per space."""
    if emoji not in REACTIONS:
        raise errors.InvalidInput(f"reactions are {' '.join(REACTIONS)}")
    if not Participant.objects.filter(space=space, user=user, space__state="live").exists():
        raise errors.NotParticipant("you are not in this space")
    limit, window = settings.SALON_SPACE_REACTION_RATE
    key = f"spaces:reactions:{space.pk}:{user.pk}"
    cache.add(key, 0, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:  # the window expired between add and incr
        cache.add(key, 1, timeout=window)
        count = 1
    if count > limit:
        raise errors.RateLimited(f"at most {limit} reactions every {window} seconds")
    _broadcast(space.pk, "reaction", user_id=user.pk, emoji=emoji)

"""What every part of the space services shares: the room's channel-layer group,
events to its members, row locks, role ranks and the state rule."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from .. import errors
from ..live.tickets import tickets_revoke_on_commit
from ..models import (
    Participant,
    Space,
)
from ..selectors import (
    participant_data,
    room_version_bump,
    space_is_visible_to,
)

logger = logging.getLogger(__name__)

Role = Participant.Role
# Who outranks whom: moderators act only on participants ranked below them.
RANK = {Role.HOST: 3, Role.COHOST: 2, Role.SPEAKER: 1, Role.LISTENER: 0}


def space_group(space_id: int) -> str:
    return f"space-{space_id}"


def channel_message_type(event_type: str) -> str:
    """``participant.joined`` travels as ``space.participant_joined`` (handler
    ``space_participant_joined`` on the consumer)."""
    return "space." + event_type.replace(".", "_")


# Events that change nothing a snapshot shows: they leave the shared snapshot in place.
_SNAPSHOT_UNCHANGED = frozenset({"reaction"})


def _send_now(space_id: int, event: dict) -> None:
    if event["type"] not in _SNAPSHOT_UNCHANGED:
        # Before the event: a member who joins after it must not get the room from before.
        room_version_bump(space_id=space_id)
    # The space id: a process's relay reads every room's group on one channel
    # (spaces/live/relay.py).
    message = {"type": channel_message_type(event["type"]), "space_id": space_id, "event": event}
    async_to_sync(get_channel_layer().group_send)(space_group(space_id), message)


def _broadcast(space_id: int, event_type: str, **fields) -> None:
    """Send an event to everyone in the space once the current transaction commits."""
    event = {"type": event_type, **fields}
    transaction.on_commit(lambda: _send_now(space_id, event))


def presence_group(space_id: int) -> str:
    """One member per server process with sockets in the space (spaces/live/presence.py)."""
    return f"space-{space_id}-presence"


def _audience_change(
    space_id: int,
    *,
    joined: dict | None = None,
    left: int | None = None,
    joined_many: list[dict] | None = None,
):
    """Listeners came or went. Not an event to every member (a join wave would cost N² sends):
    each server process folds these into at most one ``audience.changed`` a second."""
    message = {"type": "space.presence", "space_id": space_id, "joined": joined, "left": left}
    if joined_many:
        message["joined_many"] = joined_many
    transaction.on_commit(
        lambda: async_to_sync(get_channel_layer().group_send)(presence_group(space_id), message)
    )


def _is_audience(participant: Participant) -> bool:
    """A plain listener: nothing about them needs every member's attention."""
    return (
        participant.role == Role.LISTENER
        and not participant.hand_raised
        and not participant.invited_to_speak
    )


def _transition(space: Space, state: str) -> None:
    if not space.can_transition_to(state):
        raise errors.SpaceStateError(f"a {space.state} space cannot become {state}")
    space.state = state


def _check_audio_mode(audio_mode: str) -> None:
    if audio_mode not in Space.AudioMode.values:
        raise errors.InvalidInput(f"audio_mode is one of {', '.join(Space.AudioMode.values)}")


def _lock(space: Space) -> Space:
    """Reload ``space`` with its row locked for the rest of the transaction."""
    try:
        return Space.objects.select_for_update().select_related("host").get(pk=space.pk)
    except Space.DoesNotExist:
        raise errors.SpaceNotFound("no such space") from None


def _lock_live(space: Space) -> Space:
    locked = _lock(space)
    if locked.state != Space.State.LIVE:
        raise errors.SpaceStateError(f"the space is {locked.state}")
    return locked


def _check_visible(space: Space, user) -> None:
    if not space_is_visible_to(space=space, user=user):
        raise errors.SpaceNotFound("no such space")


def _participant(space: Space, user, *, lock: bool = True) -> Participant:
    queryset = Participant.objects.select_related("user")
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    participant = queryset.filter(space=space, user=user).first()
    if participant is None:
        raise errors.NotParticipant("you are not in this space")
    return participant


def _set_role(participant: Participant, role: str, *, by) -> None:
    previous = participant.role
    participant.role = role
    participant.hand_raised = False
    participant.invited_to_speak = False
    if role == Role.LISTENER:
        participant.is_muted = True
        participant.muted_by_moderator = False
    participant.save(
        update_fields=["role", "hand_raised", "invited_to_speak", "is_muted", "muted_by_moderator"]
    )
    # A ticket carries the role: one issued before this change would rejoin with the old one.
    tickets_revoke_on_commit(user_id=participant.user_id)
    if (previous == Role.LISTENER) != (role == Role.LISTENER):
        # The listener count changed: the next audience digest carries it, counted.
        _audience_change(participant.space_id)
    _broadcast(
        participant.space_id,
        "role.changed",
        user_id=participant.user_id,
        role=role,
        previous_role=previous,
        by=by.pk if by else None,
        participant=participant_data(participant),
    )

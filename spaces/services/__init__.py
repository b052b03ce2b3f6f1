"""Every write and every rule of spaces. Adapters (API, pages, consumer, admin, tasks) call these.

Conventions: live-space actions lock the space row (``_lock_live``) so role limits and capacity
hold under concurrency; events go to the space's group with ``transaction.on_commit``, so no
client sees a change the database rolled back; illegal actions raise ``spaces.errors``.

The package splits by subject: ``replays``, ``lifecycle``, ``presence``, ``stage``;
``_shared`` holds what they share.
Callers import from ``spaces.services``, which re-exports each public name."""

from __future__ import annotations

from ._shared import (
    RANK,
    Role,
    channel_message_type,
    logger,
    presence_group,
    space_group,
)
from .lifecycle import (
    hallway_changed,
    space_cancel,
    space_create,
    space_end,
    space_invite,
    space_send_reminders,
    space_start,
    space_subscribe,
    space_unsubscribe,
)
from .presence import (
    listeners_apply,
    participant_disconnect,
    participant_join,
    participant_leave,
    participants_refresh,
    space_check_access,
    space_host_take_over,
    space_sweep,
)
from .replays import (
    replay_delete,
    replay_hold,
    replay_process,
    replay_release,
    replay_segment_closed,
    replay_segment_start,
    replays_delete_expired,
    replays_requeue_stalled,
)
from .stage import (
    cohost_add,
    cohost_remove,
    hand_approve,
    hand_dismiss,
    hand_lower,
    hand_raise,
    participant_remove,
    participant_set_muted,
    reaction_send,
    space_pin_tweet,
    space_set_audio_mode,
    space_set_recording,
    speak_invite,
    speak_invite_accept,
    speak_invite_decline,
    speaker_move_to_listeners,
    speaker_mute,
    speakers_mute_all,
)

__all__ = [
    "RANK",
    "Role",
    "channel_message_type",
    "cohost_add",
    "cohost_remove",
    "hallway_changed",
    "hand_approve",
    "hand_dismiss",
    "hand_lower",
    "hand_raise",
    "listeners_apply",
    "logger",
    "participant_disconnect",
    "participant_join",
    "participant_leave",
    "participant_remove",
    "participant_set_muted",
    "participants_refresh",
    "presence_group",
    "reaction_send",
    "replay_delete",
    "replay_hold",
    "replay_process",
    "replay_release",
    "replay_segment_closed",
    "replay_segment_start",
    "replays_delete_expired",
    "replays_requeue_stalled",
    "space_cancel",
    "space_check_access",
    "space_create",
    "space_end",
    "space_group",
    "space_host_take_over",
    "space_invite",
    "space_pin_tweet",
    "space_send_reminders",
    "space_set_audio_mode",
    "space_set_recording",
    "space_start",
    "space_subscribe",
    "space_sweep",
    "space_unsubscribe",
    "speak_invite",
    "speak_invite_accept",
    "speak_invite_decline",
    "speaker_move_to_listeners",
    "speaker_mute",
    "speakers_mute_all",
]

"""The live control channel's message shapes: the single source docs/protocol.md describes.

``EVENTS`` lists every server → client event with the keys it always carries; ``COMMANDS`` every
client → server message with its required keys. Tests check emitted frames against ``EVENTS``.
"""

# The reaction set every client offers; anything else is refused.
REACTIONS = ("👏", "😂", "❤️", "💯", "🙌", "🤔", "✋", "👍")

SPACE_KEYS = {
    "id", "title", "state", "visibility", "host", "cohost_ids", "speaker_ids",
    "participant_count", "listener_count", "scheduled_start", "started_at", "ended_at",
    "is_recording", "audio_mode", "pinned_voice_tweet_id", "host_away",
}  # fmt: skip
PARTICIPANT_KEYS = {
    "user_id", "username", "name", "role", "hand_raised", "is_muted", "muted_by_moderator",
    "invited_to_speak", "joined_at", "avatar_url",
}  # fmt: skip

# Server → client. Every event also has "type".
EVENTS: dict[str, set[str]] = {
    "snapshot": {"space", "participants", "you", "reactions"},
    # Someone joins the stage side (the host); listeners come and go in audience.changed.
    "participant.joined": {"participant"},
    "participant.left": {"user_id", "reason"},
    "participant.removed": {"user_id", "banned", "by"},
    "role.changed": {"user_id", "role", "previous_role", "by", "participant"},
    "hand.raised": {"user_id", "participant"},
    "hand.lowered": {"user_id", "by"},
    "speak.invited": {"user_id", "by"},
    "speak.declined": {"user_id"},
    "mute.changed": {"user_id", "is_muted", "muted_by_moderator", "by"},
    "reaction": {"user_id", "emoji"},
    "pin.changed": {"voice_tweet_id", "by"},
    "recording.changed": {"is_recording", "by"},
    "audio_mode.changed": {"audio_mode", "by"},
    # replay_url: the replay's page when the space was recorded (null otherwise).
    "space.ended": {"reason", "by", "replay_url"},
    # The host's last connection closed: "the host is reconnecting…"; a co-host may take over.
    "host.away": {"user_id"},
    # The space has its host in the room again: they came back, or a co-host took over.
    "host.back": {"user_id"},
    # About 5 times a second from the room's mixer: {"<user id>": {"level": 0..1, "talking"}}.
    "levels": {"speakers"},
    # At most once a second while listeners come and go: exact counts, and a capped sample of
    # who joined (participant objects) and left (user ids) since the last one.
    "audience.changed": {"participant_count", "listener_count", "joined", "left"},
    "error": {"code", "message", "request_id"},
    # A newer connection of the same member joined: it speaks for them, this one only listens.
    "stream.superseded": set(),
    # To a publishing speaker only, when the loss the server measures on their uplink moves
    # to another bucket (at most every 2 s): the client turns in-band FEC on (or off at 0).
    "uplink.quality": {"loss_percent", "jitter_ms"},
}

# Client → server. Every message has "type" and may carry "request_id", echoed in errors.
COMMANDS: dict[str, set[str]] = {
    "hand.raise": set(),
    "hand.lower": set(),
    "hand.approve": {"user_id"},
    "hand.dismiss": {"user_id"},
    "speak.invite": {"user_id"},
    "speak.accept": set(),
    "speak.decline": set(),
    "mute.set": {"muted"},
    "speaker.mute": {"user_id"},
    "speakers.mute_all": set(),
    "speaker.move_to_listeners": {"user_id"},
    "participant.remove": {"user_id"},  # optional "ban": true
    "cohost.add": {"user_id"},
    "cohost.remove": {"user_id"},
    "pin.set": {"voice_tweet_id"},  # null unpins
    "recording.set": {"is_recording"},
    "audio_mode.set": {"audio_mode"},  # "speech" | "music" | "music_stereo"
    "reaction.send": {"emoji"},
    "space.end": set(),
    "host.take_over": set(),  # a co-host, while the host is away
    "leave": set(),
}


def validate_event(event: dict) -> list[str]:
    """Problems with ``event`` against ``EVENTS`` (empty when it conforms)."""
    kind = event.get("type")
    if kind not in EVENTS:
        return [f"unknown event type {kind!r}"]
    problems = [f"{kind}: missing {key!r}" for key in sorted(EVENTS[kind] - event.keys())]
    if kind == "snapshot":
        problems += [f"snapshot.space: missing {k!r}" for k in SPACE_KEYS - event["space"].keys()]
        for participant in event["participants"]:
            problems += [
                f"snapshot participant: missing {k!r}"
                for k in PARTICIPANT_KEYS - participant.keys()
            ]
    if kind in {"participant.joined", "role.changed", "hand.raised"} and "participant" in event:
        problems += [
            f"{kind}.participant: missing {k!r}"
            for k in PARTICIPANT_KEYS - event["participant"].keys()
        ]
    if kind == "audience.changed":
        for participant in event.get("joined", []):
            problems += [
                f"audience.changed joined: missing {k!r}"
                for k in PARTICIPANT_KEYS - participant.keys()
            ]
    return problems

"""Reads of spaces: who may see what, hallway lists and the shapes sent to clients."""

from __future__ import annotations

import json
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Prefetch, Q, QuerySet

from accounts.models import Block, Follow
from accounts.selectors import following_ids

from .models import (
    Participant,
    Replay,
    Space,
    SpaceBan,
    SpaceInvite,
    SpaceSubscription,
)
from .protocol import REACTIONS


def user_can_host(*, user) -> bool:
    """Hosting is a staged rollout: a permission (via a group), or open to all by a setting."""
    if not user.is_authenticated or not user.is_active:
        return False
    return settings.SALON_SPACES_HOSTING_OPEN or user.has_perm("spaces.host_space")


def user_moderates_all_spaces(*, user) -> bool:
    return user.is_authenticated and user.has_perm("spaces.moderate_space")


def _seen_by_members(user, *, prefix: str = "") -> Q:
    """The visibility rule as a filter on spaces (``prefix`` reaches them from another model):
    open to members, followers = people the host follows, closed = invited members; the host
    sees their own; a block either way hides the space. Moderators see every space besides
    (``user_moderates_all_spaces``): permissions are not a column, so that is decided apart.

    A filter, not a check per row, so that lists cut to a length after it: one host's many
    hidden spaces can no longer fill the rows a list was cut to before filtering."""
    host = f"{prefix}host_id"
    hosts_blocked = Block.objects.filter(blocker_id=user.pk).values("blocked_id")
    hosts_blocking = Block.objects.filter(blocked_id=user.pk).values("blocker_id")
    hosts_following = Follow.objects.filter(followee_id=user.pk).values("follower_id")
    invited = Q(
        **{f"{prefix}id__in": SpaceInvite.objects.filter(user_id=user.pk).values("space_id")}
    )
    visibility = f"{prefix}visibility"
    allowed = (
        Q(**{visibility: Space.Visibility.OPEN})
        | (
            Q(**{visibility: Space.Visibility.FOLLOWERS})
            & (invited | Q(**{f"{host}__in": hosts_following}))
        )
        | (Q(**{visibility: Space.Visibility.CLOSED}) & invited)
    )
    not_blocked = ~Q(**{f"{host}__in": hosts_blocked}) & ~Q(**{f"{host}__in": hosts_blocking})
    return Q(**{host: user.pk}) | (not_blocked & allowed)


def _visible(queryset, *, user, prefix: str = ""):
    """``queryset`` narrowed to what the member may see (see ``_seen_by_members``)."""
    if not user.is_authenticated:
        return queryset.none()
    if user_moderates_all_spaces(user=user):
        return queryset
    return queryset.filter(_seen_by_members(user, prefix=prefix))


def spaces_seen_by(*, user) -> QuerySet[Space]:
    """Every space ``user`` may see, not cancelled, for lists that filter further (search)."""
    return _visible(Space.objects.exclude(state=Space.State.CANCELLED), user=user)


def space_is_visible_to(*, space: Space, user) -> bool:
    """Whether the member may see ``space`` (the rule is ``_seen_by_members``)."""
    if not user.is_authenticated:
        return False
    if user.pk == space.host_id:
        return True
    if Space.objects.filter(pk=space.pk).filter(_seen_by_members(user)).exists():
        return True  # the common case, decided without loading the member's permissions
    return user_moderates_all_spaces(user=user)


def space_is_banned(*, space: Space, user) -> bool:
    return SpaceBan.objects.filter(space=space, user=user).exists()


def avatar_url(name: str) -> str | None:
    """The URL of an avatar file (``User.avatar``'s name), None without one."""
    if not name:
        return None
    return get_user_model()._meta.get_field("avatar").storage.url(name)


def participant_data(participant: Participant) -> dict:
    user = participant.user
    return {
        "user_id": participant.user_id,
        "username": user.username,
        "name": user.name,
        "role": participant.role,
        "hand_raised": participant.hand_raised,
        "is_muted": participant.is_muted,
        "muted_by_moderator": participant.muted_by_moderator,
        "invited_to_speak": participant.invited_to_speak,
        "joined_at": participant.joined_at.isoformat(),
        "avatar_url": avatar_url(user.avatar.name),
    }


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def participant_counts(*, space_id: int) -> dict[str, int]:
    """Everyone in the space, and how many of them are listeners."""
    return Participant.objects.filter(space_id=space_id).aggregate(
        participant_count=Count("pk"),
        listener_count=Count("pk", filter=Q(role=Participant.Role.LISTENER)),
    )


def space_data(
    space: Space, *, stage: list[Participant] | None = None, counts: dict | None = None
) -> dict:
    """The Twitter-like shape of a space, shared by the API, snapshots and pages."""
    if stage is None:
        stage = list(space.participants.exclude(role=Participant.Role.LISTENER))
    if counts is None:
        counts = participant_counts(space_id=space.pk)
    return {
        "id": space.pk,
        "title": space.title,
        "state": space.state,
        "visibility": space.visibility,
        "host": {"id": space.host_id, "username": space.host.username, "name": space.host.name},
        "cohost_ids": [p.user_id for p in stage if p.role == Participant.Role.COHOST],
        "speaker_ids": [p.user_id for p in stage if p.role == Participant.Role.SPEAKER],
        "participant_count": counts["participant_count"],
        "listener_count": counts["listener_count"],
        "scheduled_start": _iso(space.scheduled_start),
        "started_at": _iso(space.started_at),
        "ended_at": _iso(space.ended_at),
        "is_recording": space.is_recording,
        "audio_mode": space.audio_mode,
        "pinned_voice_tweet_id": space.pinned_voice_tweet_id,
        # The host's last connection closed (services._host_away): "the host is reconnecting…".
        "host_away": space.state == Space.State.LIVE and space.host_absent_since is not None,
    }


# Listeners a snapshot lists by name; the rest are a count (audience.changed keeps both fresh).
SNAPSHOT_LISTENERS = 50


def space_snapshot(*, space: Space, user) -> dict:
    """The first frame a socket receives: the room as the member may see it. Everyone who needs
    attention (the stage, raised hands, invitations, the member) and the newest listeners.
    (Sockets send ``SharedSnapshot.frame``; this is its content, for the tests and the API.)"""
    you = space.participants.select_related("user").filter(user=user).first()
    shared = space_snapshot_shared(space_id=space.pk)
    return json.loads(shared.frame(participant_data(you) if you else None))


# --- The shared snapshot ---------------------------------------------------------------------
#
# Every joiner of a room gets the same room: it is loaded and serialized once per *room
# version* and process, and only the member's own part ("you") is added per socket. Every
# service event that changes what a snapshot shows bumps the version (services._send_now), in
# the cache, so every process sees it. Counts and the listener sample change with every join;
# they are reused for at most SHARED_SNAPSHOT_SECONDS (the audience digests bring the rest).
SHARED_SNAPSHOT_SECONDS = 1.0


def _room_version_key(space_id: int) -> str:
    return f"salon:room-version:{space_id}"


def room_version_bump(*, space_id: int) -> None:
    """What the room's snapshot shows changed: the next joiner loads it again."""
    from django.core.cache import cache

    cache.set(_room_version_key(space_id), time.time_ns(), timeout=24 * 3600)


async def room_version(*, space_id: int):
    from django.core.cache import cache

    return await cache.aget(_room_version_key(space_id))


class SharedSnapshot:
    """A room's snapshot without the member's part, serialized once (``frame`` adds it)."""

    def __init__(self, *, space: Space, notable: list[dict], counts: dict, sample: list[dict]):
        self.space = space
        self.state = space.state
        self.listener_count = counts["listener_count"]
        self.notable = {p["user_id"]: p for p in notable}
        stage = [p for p in notable if p["role"] != Participant.Role.LISTENER]
        head = {
            "type": "snapshot",
            "space": space_data(space, stage=_StageView.wrap(stage), counts=counts),
            "reactions": list(REACTIONS),
        }
        # '{"type": ..., "reactions": [...], "you": ' + you + ', "participants": [...]}'
        self._head = json.dumps(head)[:-1] + ', "you": '
        self._notable = [json.dumps(p) for p in notable]
        # One more than is listed: the member may be among the newest and is listed anyway.
        self._sample = [
            (p["user_id"], json.dumps(p)) for p in sample if p["user_id"] not in self.notable
        ][: SNAPSHOT_LISTENERS + 1]
        self.loaded_at = time.monotonic()

    def you(self, *, user_id: int, fallback: dict) -> dict:
        """The member as the room shows them: their row if it needs attention (stage, hand,
        invitation), else ``fallback`` (a plain listener, from their ticket)."""
        return self.notable.get(user_id, fallback)

    def frame(self, you: dict | None) -> str:
        """The snapshot frame for one member: the shared part, ``you``, and ``you`` among the
        participants; the other listeners are the newest SNAPSHOT_LISTENERS but the member."""
        you_id = you["user_id"] if you is not None else None
        items = list(self._notable)
        items += [text for user_id, text in self._sample if user_id != you_id][:SNAPSHOT_LISTENERS]
        you_json = json.dumps(you)
        if you is not None and you_id not in self.notable:
            items.append(you_json)
        return self._head + you_json + ', "participants": [' + ", ".join(items) + "]}"


class _StageView:
    """``space_data`` reads role and user_id of stage participants: a dict serves as well."""

    def __init__(self, data: dict):
        self.role = data["role"]
        self.user_id = data["user_id"]

    @classmethod
    def wrap(cls, stage: list[dict]) -> list:
        return [cls(p) for p in stage]


def space_snapshot_shared(*, space_id: int) -> SharedSnapshot:
    """Loads the room for ``SharedSnapshot`` (three queries; once per version and second)."""
    from .errors import SpaceNotFound

    space = Space.objects.select_related("host").filter(pk=space_id).first()
    if space is None:
        raise SpaceNotFound("no such space")
    notable = [
        participant_data(p)
        for p in space.participants.select_related("user").filter(
            ~Q(role=Participant.Role.LISTENER) | Q(hand_raised=True) | Q(invited_to_speak=True)
        )
    ]
    counts = participant_counts(space_id=space.pk)
    sample = _newest_listeners(space.pk, big=counts["listener_count"] > SNAPSHOT_LISTENERS)
    return SharedSnapshot(space=space, notable=notable, counts=counts, sample=sample)


# In a join wave every newcomer's snapshot lists the same newest listeners: a big room reuses
# the list for a second in this process (the audience digests bring what changed since).
SAMPLE_REUSE_SECONDS = 1.0
_samples: dict[int, tuple[float, list[dict]]] = {}


def _newest_listeners(space_id: int, *, big: bool) -> list[dict]:
    now = time.monotonic()
    reused = _samples.get(space_id)
    if big and reused is not None and now - reused[0] < SAMPLE_REUSE_SECONDS:
        return reused[1]
    newest = (
        Participant.objects.filter(space_id=space_id, role=Participant.Role.LISTENER)
        .select_related("user")
        .order_by("-joined_at", "-pk")
    )
    # Some slack: the newest are often the newcomer and hands already listed.
    sample = [participant_data(p) for p in newest[: SNAPSHOT_LISTENERS + 10]]
    if big:
        if len(_samples) > 1000:
            _samples.clear()
        _samples[space_id] = (now, sample)
    return sample


def spaces_visible(*, user, states: tuple[str, ...], limit: int = 100) -> list[Space]:
    """Spaces in ``states`` the member may see, newest first, with ``live_count`` annotated."""
    queryset = (
        _visible(Space.objects.filter(state__in=states), user=user)
        .select_related("host")
        .annotate(live_count=Count("participants"))
        .order_by("-started_at", "scheduled_start", "-pk")
    )
    return list(queryset[:limit])


def spaces_visible_data(*, user, states: tuple[str, ...], limit: int = 100) -> list[dict]:
    """``space_data`` of the spaces in ``states`` the member may see, newest first: three
    queries whatever their number (the spaces with their counts, their stages)."""
    queryset = (
        _visible(Space.objects.filter(state__in=states), user=user)
        .select_related("host")
        .annotate(
            participant_count=Count("participants"),
            listener_count=Count(
                "participants", filter=Q(participants__role=Participant.Role.LISTENER)
            ),
        )
        .prefetch_related(
            Prefetch(
                "participants",
                queryset=Participant.objects.exclude(role=Participant.Role.LISTENER),
                to_attr="stage",
            )
        )
        .order_by("-started_at", "scheduled_start", "-pk")
    )
    return [
        space_data(
            space,
            stage=space.stage,
            counts={
                "participant_count": space.participant_count,
                "listener_count": space.listener_count,
            },
        )
        for space in queryset[:limit]
    ]


def hallway(*, user, limit: int = 30) -> list[Space]:
    """Live spaces for the home page: hosted by people the member follows first, then the rest,
    each group busiest first."""
    spaces = spaces_visible(user=user, states=(Space.State.LIVE,), limit=limit)
    followed = following_ids(user=user)
    return sorted(spaces, key=lambda s: (s.host_id not in followed, -s.live_count))


def scheduled_spaces(*, user, limit: int = 50) -> list[Space]:
    """Upcoming spaces the member may see, soonest first, with ``is_subscribed`` set."""
    spaces = spaces_visible(user=user, states=(Space.State.SCHEDULED,), limit=limit)
    subscribed = set(
        SpaceSubscription.objects.filter(user=user, space__in=spaces).values_list(
            "space_id", flat=True
        )
    )
    for space in spaces:
        space.is_subscribed = space.pk in subscribed
    return sorted(spaces, key=lambda s: s.scheduled_start)


def space_for_member(*, user, pk: int) -> Space | None:
    space = Space.objects.select_related("host").filter(pk=pk).first()
    if space is None or not space_is_visible_to(space=space, user=user):
        return None
    return space


def participant_of(*, space: Space, user) -> Participant | None:
    return space.participants.filter(user=user).first()


def live_participant_counts(*, space_ids: list[int]) -> dict[int, int]:
    rows = (
        Participant.objects.filter(space_id__in=space_ids)
        .values("space_id")
        .annotate(n=Count("pk"))
    )
    return {row["space_id"]: row["n"] for row in rows}


HOSTS_GROUP = "Space hosts"


def space_publisher_ids(space_id: int) -> set[int]:
    """Members whose audio the room's mixer takes now: on stage and unmuted, in a live space."""
    return set(
        Participant.objects.filter(
            space_id=space_id,
            space__state=Space.State.LIVE,
            role__in=Participant.STAGE_ROLES,
            is_muted=False,
        ).values_list("user_id", flat=True)
    )


def space_audio_mode(space_id: int) -> str:
    """The space's audio mode ("speech" when it is gone: a mixer still needs settings)."""
    mode = Space.objects.filter(pk=space_id).values_list("audio_mode", flat=True).first()
    return mode or Space.AudioMode.SPEECH


# --- Replays ----------------------------------------------------------------------------------


def replay_for_member(*, user, space_id: int) -> Replay | None:
    """The space's replay, if the member may see the space: a replay has its space's
    visibility (a closed space's replay is for invited members, the host and moderators)."""
    replay = Replay.objects.select_related("space__host").filter(space_id=space_id).first()
    if replay is None or not space_is_visible_to(space=replay.space, user=user):
        return None
    return replay


def replay_timeline(replay: Replay) -> list[dict]:
    """The replay's speaker timeline with each speaker's current name (one query)."""
    ids = {entry["speaker_id"] for entry in replay.timeline}
    users = {user.pk: user for user in get_user_model().objects.filter(pk__in=ids)}
    timeline = []
    for entry in replay.timeline:
        user = users.get(entry["speaker_id"])
        timeline.append(
            {
                "speaker_id": entry["speaker_id"],
                "username": user.username if user else None,
                "name": user.name if user else "A former member",
                "start": entry["start"],
                "end": entry["end"],
            }
        )
    return timeline


def replay_data(replay: Replay) -> dict:
    """The API's shape of a replay (without its audio URL, which the adapter builds)."""
    ready = replay.state == Replay.State.READY
    return {
        "space_id": replay.space_id,
        "state": replay.state,
        "duration": replay.duration_seconds if ready else None,
        "waveform": replay.waveform if ready else [],
        "timeline": replay_timeline(replay) if ready else [],
        "delete_after": replay.delete_after,
    }


def replays_visible(*, user, host=None, limit: int = 20) -> list[Replay]:
    """Ready replays the member may see, newest first; only ``host``'s spaces if given."""
    queryset = Replay.objects.filter(state=Replay.State.READY).select_related("space__host")
    if host is not None:
        queryset = queryset.filter(space__host=host)
    queryset = _visible(queryset, user=user, prefix="space__").order_by("-space__ended_at", "-pk")
    return list(queryset[:limit])

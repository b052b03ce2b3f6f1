"""Every write and every rule of spaces. Adapters (API, pages, consumer, admin, tasks) call these.

Conventions: live-space actions lock the space row (``_lock_live``) so role limits and capacity
hold under concurrency; events go to the space's group with ``transaction.on_commit``, so no
client sees a change the database rolled back; illegal actions raise ``spaces.errors``.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.urls import reverse
from django.utils import timezone

from accounts.realtime import HALLWAY_GROUP, member_left_space, notify_user
from accounts.services import audit_record
from config.background import enqueue
from config.leases import LEASE_FIELDS, lease_expired, lease_heartbeat
from voicetweets.children import ChildAbandoned

from . import errors
from .audio.replay import ReplayJoinError, join_in_child, segment_is_closed
from .models import (
    Notification,
    Participant,
    Replay,
    Space,
    SpaceBan,
    SpaceInvite,
    SpaceSubscription,
)
from .protocol import REACTIONS
from .selectors import (
    participant_data,
    room_version_bump,
    space_is_banned,
    space_is_visible_to,
    user_can_host,
    user_moderates_all_spaces,
)
from .tickets import tickets_revoke_on_commit

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
    message = {"type": channel_message_type(event["type"]), "event": event}
    async_to_sync(get_channel_layer().group_send)(space_group(space_id), message)


def _broadcast(space_id: int, event_type: str, **fields) -> None:
    """Send an event to everyone in the space once the current transaction commits."""
    event = {"type": event_type, **fields}
    transaction.on_commit(lambda: _send_now(space_id, event))


def presence_group(space_id: int) -> str:
    """One member per server process with sockets in the space (spaces/presence.py)."""
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


# --- Lifecycle --------------------------------------------------------------------------------


def _transition(space: Space, state: str) -> None:
    if not space.can_transition_to(state):
        raise errors.SpaceStateError(f"a {space.state} space cannot become {state}")
    space.state = state


def _check_title(title: str) -> str:
    title = (title or "").strip()
    if not title:
        raise errors.InvalidInput("a space needs a title")
    if len(title) > 120:
        raise errors.InvalidInput("a title has at most 120 characters")
    return title


def _check_open_space_limit(host) -> None:
    """Caller holds the host's row lock, so two creations at once cannot both pass."""
    limit = settings.SALON_SPACE_MAX_OPEN_PER_HOST
    open_states = (Space.State.LIVE, Space.State.SCHEDULED)
    if Space.objects.filter(host_id=host.pk, state__in=open_states).count() >= limit:
        raise errors.OpenSpaceLimit(
            f"you already have {limit} live or scheduled spaces, the most one member may have; "
            "end or cancel one first"
        )


@transaction.atomic
def space_create(
    *,
    host,
    title: str,
    visibility: str = Space.Visibility.OPEN,
    scheduled_start=None,
    is_recording: bool = False,
    audio_mode: str = Space.AudioMode.SPEECH,
) -> Space:
    """Start a live space now, or schedule one up to SALON_SPACE_MAX_SCHEDULE_DAYS ahead;
    ``is_recording`` records it from the start, ``audio_mode`` is "speech" or "music". A
    member hosts at most SALON_SPACE_MAX_OPEN_PER_HOST live and scheduled spaces at once."""
    if not user_can_host(user=host):
        raise errors.SpaceForbidden("hosting spaces is not open to you yet")
    title = _check_title(title)
    if visibility not in Space.Visibility.values:
        raise errors.InvalidInput(f"visibility must be one of {', '.join(Space.Visibility)}")
    if not isinstance(is_recording, bool):
        raise errors.InvalidInput("is_recording must be true or false")
    _check_audio_mode(audio_mode)
    now = timezone.now()
    if scheduled_start is not None:
        if scheduled_start <= now:
            raise errors.InvalidInput("the start must be in the future")
        if scheduled_start > now + timedelta(days=settings.SALON_SPACE_MAX_SCHEDULE_DAYS):
            raise errors.InvalidInput(
                f"spaces are scheduled at most {settings.SALON_SPACE_MAX_SCHEDULE_DAYS} days ahead"
            )
    get_user_model().objects.select_for_update().filter(pk=host.pk).first()
    _check_open_space_limit(host)
    if scheduled_start is None:
        # The host has not connected yet: the grace period also bounds a space nobody opens.
        space = Space.objects.create(
            host=host,
            title=title,
            visibility=visibility,
            state=Space.State.LIVE,
            started_at=now,
            host_absent_since=now,
            is_recording=is_recording,
            audio_mode=audio_mode,
        )
        _went_live(space)
        return space
    return Space.objects.create(
        host=host,
        title=title,
        visibility=visibility,
        state=Space.State.SCHEDULED,
        scheduled_start=scheduled_start,
        is_recording=is_recording,
        audio_mode=audio_mode,
    )


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


@transaction.atomic
def space_start(*, space: Space, by) -> Space:
    """The host opens a scheduled space; subscribers hear of it from the reminders task."""
    space = _lock(space)
    if by.pk != space.host_id:
        raise errors.SpaceForbidden("only the host can start the space")
    _transition(space, Space.State.LIVE)
    space.started_at = space.host_absent_since = timezone.now()
    space.save(update_fields=["state", "started_at", "host_absent_since"])
    _went_live(space)
    return space


def _went_live(space: Space) -> None:
    """The space just became live: the host's followers hear of it (a closed space only tells
    the members it invites), and every open hallway shows it."""
    if space.visibility != Space.Visibility.CLOSED:
        from accounts.models import Follow

        # Members who asked for a reminder hear "is live now" from space_send_reminders.
        follower_ids = (
            Follow.objects.filter(followee_id=space.host_id)
            .exclude(follower_id__in=space.subscriptions.values("user_id"))
            .values_list("follower_id", flat=True)
        )
        notifications_send_many(
            user_ids=list(follower_ids),
            kind=Notification.Kind.FOLLOWED_LIVE,
            text=f"{space.host.name} is live: “{space.title}”.",
            space=space,
        )
    hallway_changed(space_id=space.pk)


@transaction.atomic
def space_cancel(*, space: Space, by) -> Space:
    space = _lock(space)
    if by.pk != space.host_id:
        raise errors.SpaceForbidden("only the host can cancel the space")
    _transition(space, Space.State.CANCELLED)
    space.save(update_fields=["state"])
    for subscription in space.subscriptions.select_related("user"):
        notification_send(
            user=subscription.user,
            kind=Notification.Kind.SPACE_CANCELLED,
            text=f"“{space.title}” was cancelled.",
            space=space,
        )
    return space


@transaction.atomic
def space_end(*, space: Space, by=None, reason: str = "ended") -> Space:
    """End a live space: everyone's socket gets ``space.ended`` and is closed (4410).

    ``by`` is the host, a member holding spaces.moderate_space (audited), or None for the
    system (host grace period over).
    """
    space = _lock_live(space)
    if by is not None and by.pk != space.host_id:
        if not user_moderates_all_spaces(user=by):
            raise errors.SpaceForbidden("only the host can end the space")
        audit_record(actor=by, action="space.end", target=space, reason=reason)
    _transition(space, Space.State.ENDED)
    space.ended_at = timezone.now()
    space.is_recording = False
    space.host_absent_since = None
    space.save(update_fields=["state", "ended_at", "is_recording", "host_absent_since"])
    space.participants.all().delete()
    replay_made = _replay_space_ended(space)
    # The page turns into the ended space at once, with the way to its replay when one is made.
    replay_url = reverse("spaces:replay", args=[space.pk]) if replay_made else None
    _broadcast(
        space.pk, "space.ended", reason=reason, by=by.pk if by else None, replay_url=replay_url
    )
    hallway_changed(space_id=space.pk)
    return space


# --- The hallway ------------------------------------------------------------------------------


def hallway_changed(*, space_id: int) -> None:
    """A space appeared in or left the hallway: every member's notification socket is told,
    once the transaction commits, and their page fetches its own hallway (which applies the
    member's visibility; the event names only the space id)."""
    message = {"type": "hallway.changed", "space_id": space_id}
    transaction.on_commit(
        lambda: async_to_sync(get_channel_layer().group_send)(HALLWAY_GROUP, message)
    )


# --- Subscriptions, invitations, notifications --------------------------------------------------


def notification_send(*, user, kind: str, text: str, space: Space | None = None) -> Notification:
    """In-app notification, pushed live to the member's sockets; emailed when email is set up."""
    url = reverse("spaces:detail", args=[space.pk]) if space else ""
    notification = Notification.objects.create(
        user=user, kind=kind, text=text, url=url, space=space
    )
    notify_user(
        user_id=user.pk,
        payload={"id": notification.pk, "kind": kind, "text": text, "url": url},
    )
    if settings.EMAIL_CONFIGURED and user.email:
        email = user.email
        transaction.on_commit(
            lambda: send_mail("Salon: " + text, text, None, [email], fail_silently=True)
        )
    return notification


def notifications_send_many(
    *, user_ids: list[int], kind: str, text: str, space: Space | None = None
) -> int:
    """One notification to each of ``user_ids``, in one insert (a host with many followers
    costs no query per follower); pushed live like ``notification_send``, not emailed."""
    if not user_ids:
        return 0
    url = reverse("spaces:detail", args=[space.pk]) if space else ""
    created = Notification.objects.bulk_create(
        [
            Notification(user_id=user_id, kind=kind, text=text, url=url, space=space)
            for user_id in user_ids
        ]
    )
    for notification in created:
        notify_user(
            user_id=notification.user_id,
            payload={"id": notification.pk, "kind": kind, "text": text, "url": url},
        )
    return len(created)


@transaction.atomic
def notifications_mark_all_read(*, user) -> int:
    """Mark every unread notification of the member read; their other pages' bells go to 0."""
    marked = Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    notify_user(user_id=user.pk, payload={"event": "notifications.read", "unread_count": 0})
    return marked


def _check_visible(space: Space, user) -> None:
    if not space_is_visible_to(space=space, user=user):
        raise errors.SpaceNotFound("no such space")


@transaction.atomic
def space_subscribe(*, space: Space, user) -> SpaceSubscription:
    _check_visible(space, user)
    if space.state != Space.State.SCHEDULED:
        raise errors.SpaceStateError("only scheduled spaces take reminders")
    subscription, _ = SpaceSubscription.objects.get_or_create(space=space, user=user)
    return subscription


@transaction.atomic
def space_unsubscribe(*, space: Space, user) -> None:
    SpaceSubscription.objects.filter(space=space, user=user).delete()


@transaction.atomic
def space_invite(*, space: Space, by, username: str) -> SpaceInvite:
    """Host or co-host invites a member (by username) into a closed or followers space."""
    space = _lock(space)
    if space.state not in (Space.State.SCHEDULED, Space.State.LIVE):
        raise errors.SpaceStateError(f"the space is {space.state}")
    if by.pk != space.host_id:
        actor = Participant.objects.filter(space=space, user=by).first()
        if actor is None or not actor.is_moderator:
            raise errors.SpaceForbidden("only the host or a co-host can invite")
    user = get_user_model().objects.filter(username__iexact=username, is_active=True).first()
    if user is None:
        raise errors.InvalidInput(f"no member called {username!r}")
    invite, created = SpaceInvite.objects.get_or_create(
        space=space, user=user, defaults={"invited_by": by}
    )
    if created:
        notification_send(
            user=user,
            kind=Notification.Kind.SPACE_INVITED,
            text=f"{by.name} invited you to “{space.title}”.",
            space=space,
        )
    return invite


def _due_subscriptions(queryset):
    # skip_locked: two beat runs (or workers) never notify the same subscription twice.
    return queryset.select_for_update(skip_locked=True, of=("self",)).select_related(
        "space", "user"
    )


@transaction.atomic
def space_send_reminders(*, now: datetime | None = None) -> int:
    """Notify subscribers 30 minutes before a scheduled start and when the space goes live."""
    now = now or timezone.now()
    soon = now + timedelta(minutes=settings.SALON_SPACE_REMINDER_MINUTES)
    sent = 0
    for subscription in _due_subscriptions(
        SpaceSubscription.objects.filter(
            space__state=Space.State.SCHEDULED,
            space__scheduled_start__lte=soon,
            soon_reminder_sent_at__isnull=True,
        )
    ):
        notification_send(
            user=subscription.user,
            kind=Notification.Kind.SPACE_SOON,
            text=f"“{subscription.space.title}” starts soon.",
            space=subscription.space,
        )
        subscription.soon_reminder_sent_at = now
        subscription.save(update_fields=["soon_reminder_sent_at"])
        sent += 1
    for subscription in _due_subscriptions(
        SpaceSubscription.objects.filter(
            space__state=Space.State.LIVE, started_notice_sent_at__isnull=True
        )
    ):
        notification_send(
            user=subscription.user,
            kind=Notification.Kind.SPACE_STARTED,
            text=f"“{subscription.space.title}” is live now.",
            space=subscription.space,
        )
        subscription.started_notice_sent_at = now
        subscription.save(update_fields=["started_notice_sent_at"])
        sent += 1
    return sent


# --- Presence ---------------------------------------------------------------------------------


def space_check_access(*, space: Space, user) -> None:
    """Whether ``user`` may enter ``space`` now; raises the reason why not."""
    if not user.is_authenticated:
        raise errors.SpaceForbidden("authentication required")
    if not user.is_active or getattr(user, "is_suspended", False):
        raise errors.SpaceSuspended("your account is suspended")
    if space.state != Space.State.LIVE:
        raise errors.SpaceStateError(f"the space is {space.state}")
    if space_is_banned(space=space, user=user):
        raise errors.SpaceBanned("you were removed from this space")
    if not space_is_visible_to(space=space, user=user):
        from accounts.selectors import is_blocked_between

        if is_blocked_between(user=space.host, other=user):
            raise errors.SpaceBlocked("you cannot join this host's spaces")
        raise errors.SpaceForbidden("this space is for invited members")


@transaction.atomic
def participant_join(*, space_id: int, user) -> Participant:
    """A socket opens: add the member (as host or listener) or count one more connection."""
    try:
        space = Space.objects.select_for_update().select_related("host").get(pk=space_id)
    except Space.DoesNotExist:
        raise errors.SpaceNotFound("no such space") from None
    now = timezone.now()
    existing = Participant.objects.filter(space=space, user=user).first()
    if existing is not None and space.state == Space.State.LIVE:
        Participant.objects.filter(pk=existing.pk).update(
            connection_count=F("connection_count") + 1, last_seen=now
        )
        existing.refresh_from_db()
        if existing.role == Role.HOST:
            _host_back(space)
        return existing
    space_check_access(space=space, user=user)
    role = Role.HOST if user.pk == space.host_id else Role.LISTENER
    if role == Role.LISTENER:
        listeners = Participant.objects.filter(space=space, role=Role.LISTENER).count()
        if listeners >= settings.SALON_SPACE_CAPACITY:
            raise errors.SpaceFull("this space is full")
    participant = Participant.objects.create(
        space=space, user=user, role=role, connection_count=1, last_seen=now
    )
    if role == Role.HOST:
        _host_back(space)
    if role == Role.LISTENER:
        _audience_change(space.pk, joined=participant_data(participant))
    else:
        _broadcast(space.pk, "participant.joined", participant=participant_data(participant))
    return participant


@transaction.atomic
def participant_disconnect(*, space_id: int, user_id: int) -> None:
    """A socket closed. The participant stays until the sweep finds no connection left; a host
    with no connection left is away from then on (``_host_away``)."""
    now = timezone.now()
    Participant.objects.filter(space_id=space_id, user_id=user_id).update(
        connection_count=Greatest(F("connection_count") - 1, 0), last_seen=now
    )
    if Participant.objects.filter(
        space_id=space_id, user_id=user_id, role=Role.HOST, connection_count=0
    ).exists():
        space = Space.objects.select_for_update().filter(pk=space_id).first()
        if space is not None and space.state == Space.State.LIVE:
            _host_away(space, since=now)


# --- The host away ------------------------------------------------------------------------------
#
# The host is *away* from the moment their last connection closes (a browser that just closes
# sends no "leave"), not only once the sweep removes them: the room says "the host is
# reconnecting…", the hallway too, and a co-host may take over at once (space_host_take_over).
# The grace period (SALON_SPACE_HOST_GRACE_SECONDS) counts from then. ``host_absent_since`` is
# the one mark of it, so lists read it without a query per space.


def _host_away(space: Space, *, since) -> None:
    """Caller holds the space lock; the host has no connection left."""
    if space.host_absent_since is not None:
        return
    space.host_absent_since = since
    space.save(update_fields=["host_absent_since"])
    _broadcast(space.pk, "host.away", user_id=space.host_id)
    hallway_changed(space_id=space.pk)


def _host_back(space: Space) -> None:
    """Caller holds the space lock; the host (returning, or a co-host who took over) is in."""
    if space.host_absent_since is None:
        return
    space.host_absent_since = None
    space.save(update_fields=["host_absent_since"])
    _broadcast(space.pk, "host.back", user_id=space.host_id)
    hallway_changed(space_id=space.pk)


def _hand_over(space: Space, cohost: Participant) -> None:
    """Caller holds the space lock: ``cohost`` becomes the host. The previous host, if still in
    the room (away, not yet swept), stays as a co-host, so the room never has two hosts."""
    previous = Participant.objects.filter(space=space, role=Role.HOST).exclude(pk=cohost.pk).first()
    if previous is not None:
        _set_role(previous, Role.COHOST, by=None)
    cohost.role = Role.HOST
    cohost.save(update_fields=["role"])
    space.host = cohost.user
    space.save(update_fields=["host"])
    tickets_revoke_on_commit(user_id=cohost.user_id)
    _broadcast(
        space.pk,
        "role.changed",
        user_id=cohost.user_id,
        role=Role.HOST,
        previous_role=Role.COHOST,
        by=None,
        participant=participant_data(cohost),
    )
    _host_back(space)


@transaction.atomic
def space_host_take_over(*, space: Space, by) -> None:
    """A co-host takes the host's place while the host is away (no connection left), without
    waiting out the grace period. The one rule of it: only a co-host in the room, only while
    the host is away."""
    space = _lock_live(space)
    actor = _participant(space, by)
    if actor.role != Role.COHOST:
        raise errors.SpaceForbidden("only a co-host can take over as host")
    if space.host_absent_since is None:
        raise errors.SpaceStateError("the host is here: only they can hand the space over")
    _hand_over(space, actor)


def participants_refresh(*, space_id: int, user_ids: set[int]) -> set[int]:
    """Open sockets on one server process are still there: refresh their participants at once.
    Returns those still in the space (the others were removed, or the space ended)."""
    present = Participant.objects.filter(space_id=space_id, user_id__in=user_ids)
    ids = set(present.values_list("user_id", flat=True))
    if ids:
        Participant.objects.filter(space_id=space_id, user_id__in=ids).update(
            last_seen=timezone.now()
        )
    return ids


def _by_count(counts: dict[int, int]) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = {}
    for user_id, count in counts.items():
        grouped.setdefault(count, []).append(user_id)
    return grouped


@transaction.atomic
def listeners_apply(
    *, space_id: int, joins: dict[int, int], leaves: dict[int, int]
) -> dict[int, errors.SpaceError]:
    """One batch of ticket joins and socket closes of one room (spaces/presence.py), in one
    transaction: ``joins``/``leaves`` map a member to how many of their sockets opened/closed.

    The same rules as ``participant_join``, for the whole batch at once: the space is live, the
    member is not banned, blocked by the host or suspended (a ticket checked these when it was
    issued; this catches what changed since), and listeners fit the capacity. Members already
    in the room (a reconnect, another tab) count one more connection whatever their role.
    Returns the refused members and why; their sockets close.
    """
    from accounts.models import Block

    User = get_user_model()
    refused: dict[int, errors.SpaceError] = {}
    space = Space.objects.select_for_update().filter(pk=space_id).first()
    now = timezone.now()
    for count, user_ids in _by_count(leaves).items():
        Participant.objects.filter(space_id=space_id, user_id__in=user_ids).update(
            connection_count=Greatest(F("connection_count") - count, 0), last_seen=now
        )
    if not joins:
        return refused
    if space is None or space.state != Space.State.LIVE:
        error = (
            errors.SpaceNotFound("no such space")
            if space is None
            else errors.SpaceStateError(f"the space is {space.state}")
        )
        return dict.fromkeys(joins, error)
    existing = set(
        Participant.objects.filter(space=space, user_id__in=joins).values_list("user_id", flat=True)
    )
    for count, user_ids in _by_count({u: n for u, n in joins.items() if u in existing}).items():
        Participant.objects.filter(space=space, user_id__in=user_ids).update(
            connection_count=F("connection_count") + count, last_seen=now
        )
    newcomers = [user_id for user_id in joins if user_id not in existing]
    if not newcomers:
        return refused
    for user_id in SpaceBan.objects.filter(space=space, user_id__in=newcomers).values_list(
        "user_id", flat=True
    ):
        refused[user_id] = errors.SpaceBanned("you were removed from this space")
    blocks = Block.objects.filter(
        Q(blocker_id=space.host_id, blocked_id__in=newcomers)
        | Q(blocked_id=space.host_id, blocker_id__in=newcomers)
    ).values_list("blocker_id", "blocked_id")
    for blocker_id, blocked_id in blocks:
        other = blocked_id if blocker_id == space.host_id else blocker_id
        refused.setdefault(other, errors.SpaceBlocked("you cannot join this host's spaces"))
    users = {
        user.pk: user
        for user in User.objects.filter(pk__in=newcomers).only(
            "username", "display_name", "is_active"
        )
    }
    for user_id in newcomers:
        user = users.get(user_id)
        if user is None or not user.is_active:
            refused.setdefault(user_id, errors.SpaceSuspended("your account is suspended"))
    admitted = [user_id for user_id in newcomers if user_id not in refused]
    room = settings.SALON_SPACE_CAPACITY - (
        Participant.objects.filter(space=space, role=Role.LISTENER).count()
    )
    for user_id in admitted[max(room, 0) :]:
        refused[user_id] = errors.SpaceFull("this space is full")
    admitted = admitted[: max(room, 0)]
    created = Participant.objects.bulk_create(
        [
            Participant(
                space=space,
                user=users[user_id],
                role=Role.HOST if user_id == space.host_id else Role.LISTENER,
                connection_count=joins[user_id],
                last_seen=now,
            )
            for user_id in admitted
        ]
    )
    audience = [participant_data(p) for p in created if p.role == Role.LISTENER]
    if audience:
        _audience_change(space.pk, joined_many=audience)
    return refused


def _depart(space: Space, participant: Participant, *, reason: str) -> None:
    """Caller holds the space lock. Removes the participant; a departing host starts the grace
    period."""
    participant.delete()
    if participant.role == Role.HOST:
        _host_away(space, since=timezone.now())
    if participant.role == Role.LISTENER:
        _audience_change(space.pk, left=participant.user_id)
    if not _is_audience(participant):
        _broadcast(space.pk, "participant.left", user_id=participant.user_id, reason=reason)
    elif reason == "left":
        # Everyone else learns from the audience digest; the member's other tabs close now.
        member_left_space(user_id=participant.user_id, space_id=space.pk)


@transaction.atomic
def participant_leave(*, space: Space, user) -> None:
    """The member leaves on purpose (all their tabs in this space close)."""
    space = _lock_live(space)
    _depart(space, _participant(space, user), reason="left")


def _promote_cohost_or_end(space: Space) -> None:
    """Caller holds the space lock; the host has been away for the whole grace period."""
    cohost = (
        Participant.objects.filter(space=space, role=Role.COHOST)
        .select_related("user")
        .order_by("joined_at")
        .first()
    )
    if cohost is None:
        space_end(space=space, by=None, reason="host_left")
        return
    _hand_over(space, cohost)


def space_sweep(*, now: datetime | None = None) -> dict:
    """Periodic: remove participants without a live connection, then apply the host grace.

    A participant is gone when no socket holds it for PRESENCE_TIMEOUT seconds, or when no
    socket has refreshed it for STALE_SECONDS (its server process died and never decremented
    the count): so a restart leaves no ghosts.
    """
    now = now or timezone.now()
    absent = now - timedelta(seconds=settings.SALON_SPACE_PRESENCE_TIMEOUT_SECONDS)
    stale = now - timedelta(seconds=settings.SALON_SPACE_STALE_SECONDS)
    gone = Q(connection_count=0, last_seen__lt=absent) | Q(last_seen__lt=stale)
    removed = 0
    space_ids = set(
        Participant.objects.filter(gone, space__state=Space.State.LIVE).values_list(
            "space_id", flat=True
        )
    )
    for space_id in space_ids:
        with transaction.atomic():
            space = Space.objects.select_for_update().get(pk=space_id)
            for participant in Participant.objects.filter(gone, space=space):
                _depart(space, participant, reason="timeout")
                removed += 1
    grace_over = now - timedelta(seconds=settings.SALON_SPACE_HOST_GRACE_SECONDS)
    handed_over = 0
    for space in Space.objects.filter(state=Space.State.LIVE, host_absent_since__lt=grace_over):
        with transaction.atomic():
            space = Space.objects.select_for_update().get(pk=space.pk)
            absent_since = space.host_absent_since
            if space.state == Space.State.LIVE and absent_since and absent_since < grace_over:
                _promote_cohost_or_end(space)
                handed_over += 1
    return {"removed": removed, "host_grace_applied": handed_over}


# --- Stage and moderation -----------------------------------------------------------------------


def _participant(space: Space, user, *, lock: bool = True) -> Participant:
    queryset = Participant.objects.select_related("user")
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    participant = queryset.filter(space=space, user=user).first()
    if participant is None:
        raise errors.NotParticipant("you are not in this space")
    return participant


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


# === Replays: recording, processing, retention ==================================================
# While a space is recorded, the process mixing its room (spaces.media) asks for a segment file
# whenever it starts recording and says when it closed one: a process taking the room over
# starts a new segment. The space's end starts processing (a Celery task on the audio queue),
# which joins the segments into the replay; beat deletes replays past their retention date.


def _new_replay_directory(space: Space) -> str:
    return f"replays/{space.pk}-{secrets.token_hex(8)}"


def _remove_replay_files(replay: Replay) -> None:
    """Delete the replay's folder once the current transaction commits (never before it)."""
    directory = replay.directory_path
    transaction.on_commit(lambda: shutil.rmtree(directory, ignore_errors=True))


@transaction.atomic
def replay_segment_start(*, space_id: int) -> Path | None:
    """The room's mixer is to record: the file for its new segment, or None when the space is
    not recorded now (not live, or recording off). The first segment creates the replay."""
    space = Space.objects.select_for_update().filter(pk=space_id).first()
    if space is None or space.state != Space.State.LIVE or not space.is_recording:
        return None
    replay, _ = Replay.objects.get_or_create(
        space=space, defaults={"directory": _new_replay_directory(space)}
    )
    if replay.state != Replay.State.RECORDING:
        return None
    replay.segments_path.mkdir(parents=True, exist_ok=True)
    # Named by start time: processing joins the segments in name order.
    return replay.segments_path / f"{time.time_ns():020d}-{secrets.token_hex(4)}.ogg"


def replay_segment_closed(*, space_id: int) -> None:
    """The room's mixer closed its segment. If the space has ended, process the replay now
    rather than when the grace period is over."""
    from .tasks import process_replay

    replay = Replay.objects.filter(space_id=space_id, state=Replay.State.PROCESSING).first()
    if replay is not None:
        enqueue(process_replay, replay.pk)


def _replay_space_ended(space: Space) -> bool:
    """Caller holds the space lock and has just ended ``space``: its recording is over.
    Whether a replay is being made of it."""
    from .tasks import process_replay

    replay = Replay.objects.select_for_update().filter(space=space).first()
    if replay is None or replay.state != Replay.State.RECORDING:
        return False
    replay.state = Replay.State.PROCESSING
    replay.delete_after = space.ended_at + timedelta(days=settings.SALON_REPLAY_RETENTION_DAYS)
    replay.save(update_fields=["state", "delete_after"])
    enqueue(process_replay, replay.pk)
    return True


def replay_process(*, replay_id: int) -> None:
    """Join an ended space's segments into its replay: ready, or failed with a reason.

    Safe to run twice, also at once: only a processing replay whose lease no live worker holds
    is touched (config.leases). While a segment may still be closing (the space ended less than
    SALON_REPLAY_CLOSE_GRACE_SECONDS ago) it returns; the mixer's close, or the stalled sweep,
    runs it again.
    """
    now = timezone.now()
    with transaction.atomic():
        replay = (
            Replay.objects.select_for_update()
            .select_related("space")
            .filter(pk=replay_id, state=Replay.State.PROCESSING)
            .first()
        )
        if replay is None or replay.lease_is_alive(now):
            return
        if replay.processing_attempts >= settings.SALON_REPLAY_MAX_ATTEMPTS:
            replay.lease_release()
            _replay_failed(replay, "The recording could not be processed.")
            return
        segments = sorted(replay.segments_path.glob("*.ogg"))
        closing = replay.space.ended_at + timedelta(
            seconds=settings.SALON_REPLAY_CLOSE_GRACE_SECONDS
        )
        if now < closing and not all(segment_is_closed(segment) for segment in segments):
            return
        token = replay.lease_take(now)
        replay.processing_attempts = F("processing_attempts") + 1
        replay.save(update_fields=["processing_attempts", *LEASE_FIELDS])
        directory, audio_path = replay.directory_path, replay.audio_path

    try:
        joined = join_in_child(
            segments,
            audio_path,
            timeout=settings.SALON_REPLAY_PROCESS_SECONDS,
            memory_bytes=settings.SALON_REPLAY_PROCESS_MEMORY_BYTES,
            heartbeat=lease_heartbeat(Replay, replay_id, token),
            heartbeat_seconds=settings.SALON_WORK_LEASE_RENEW_SECONDS,
        )
    except ChildAbandoned:
        logger.warning("replay %s: the lease was lost mid-way; another worker has it", replay_id)
        return
    except ReplayJoinError:
        logger.exception("replay %s: joining its segments failed", replay_id)
        joined = None

    with transaction.atomic():
        replay = Replay.objects.select_for_update().filter(pk=replay_id).first()
        if replay is None:
            # Deleted while we joined: its folder went then; remove what we wrote since.
            transaction.on_commit(lambda: shutil.rmtree(directory, ignore_errors=True))
            return
        if replay.state != Replay.State.PROCESSING or replay.lease_token != token:
            return  # our lease lapsed and another worker took the replay over
        replay.lease_release()
        if joined is None:
            _replay_failed(replay, "The recording could not be processed.")
        elif joined.packets == 0:
            _replay_failed(replay, "Nothing was recorded.")
        else:
            replay.state = Replay.State.READY
            replay.duration_ms = round(joined.duration * 1000)
            replay.size_bytes = audio_path.stat().st_size
            replay.waveform = joined.waveform
            replay.timeline = joined.timeline
            replay.processed_at = timezone.now()
            replay.save()
            segments_path = replay.segments_path
            transaction.on_commit(lambda: shutil.rmtree(segments_path, ignore_errors=True))


def _replay_failed(replay: Replay, reason: str) -> None:
    """Caller holds the row lock. The segments stay until retention: the reason may be ours."""
    replay.state = Replay.State.FAILED
    replay.failure_reason = reason[:300]
    replay.processed_at = timezone.now()
    replay.save(update_fields=["state", "failure_reason", "processed_at", *LEASE_FIELDS])


def replays_requeue_stalled(*, now: datetime | None = None) -> int:
    """Queue the replays whose processing is due and not running: their mixer never said it
    closed its segment (it died), or their worker died (its lease expired). Returns how many."""
    from .tasks import process_replay

    now = now or timezone.now()
    closing_over = now - timedelta(seconds=settings.SALON_REPLAY_CLOSE_GRACE_SECONDS)
    due = list(
        Replay.objects.filter(state=Replay.State.PROCESSING, space__ended_at__lt=closing_over)
        .filter(Q(lease_expires_at__isnull=True) | lease_expired(now))
        .values_list("pk", flat=True)
    )
    for pk in due:
        enqueue(process_replay, pk)
    return len(due)


def replays_delete_expired(*, now: datetime | None = None) -> int:
    """Retention: delete the replays past their date, files and rows, except held ones."""
    now = now or timezone.now()
    deleted = 0
    expired = Replay.objects.filter(delete_after__lte=now, held=False).values_list("pk", flat=True)
    for pk in list(expired):
        with transaction.atomic():
            # Checked again under the lock: a moderator may have held it meanwhile.
            replay = (
                Replay.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, delete_after__lte=now, held=False)
                .first()
            )
            if replay is not None:
                replay.delete()
                _remove_replay_files(replay)
                deleted += 1
    return deleted


@transaction.atomic
def replay_delete(*, replay: Replay, by) -> None:
    """The host deletes their space's replay before its retention date; the file goes at once.

    A site moderator may too (audited). Not while the space is still recorded, and not by the
    host while moderators hold it for review.
    """
    replay = _lock_replay(replay)
    moderator = user_moderates_all_spaces(user=by)
    if by.pk != replay.space.host_id and not moderator:
        raise errors.SpaceForbidden("only the host can delete the replay")
    if replay.state == Replay.State.RECORDING:
        raise errors.SpaceStateError("the space is still live; delete its replay once it ends")
    if replay.held and not moderator:
        raise errors.SpaceForbidden("moderators are reviewing this replay; it cannot be deleted")
    if by.pk != replay.space.host_id:
        audit_record(actor=by, action="replay.delete", target=replay.space)
    replay.delete()
    _remove_replay_files(replay)


def _lock_replay(replay: Replay) -> Replay:
    try:
        return Replay.objects.select_for_update().select_related("space").get(pk=replay.pk)
    except Replay.DoesNotExist:
        raise errors.SpaceNotFound("no such replay") from None


def _check_hold_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise errors.InvalidInput("say why the replay is held")
    if len(reason) > 300:
        raise errors.InvalidInput("a reason has at most 300 characters")
    return reason


@transaction.atomic
def replay_hold(*, replay: Replay, by, reason: str) -> None:
    """A moderator keeps a replay under review: retention skips it, the host cannot delete it."""
    if not user_moderates_all_spaces(user=by):
        raise errors.SpaceForbidden("only moderators hold replays")
    reason = _check_hold_reason(reason)
    replay = _lock_replay(replay)
    replay.held, replay.hold_reason = True, reason
    replay.save(update_fields=["held", "hold_reason"])
    audit_record(actor=by, action="replay.hold", target=replay.space, reason=reason)


@transaction.atomic
def replay_release(*, replay: Replay, by, reason: str = "") -> None:
    """The review is over: retention applies again (at its next run, if the date has passed)."""
    if not user_moderates_all_spaces(user=by):
        raise errors.SpaceForbidden("only moderators release replays")
    replay = _lock_replay(replay)
    replay.held, replay.hold_reason = False, ""
    replay.save(update_fields=["held", "hold_reason"])
    audit_record(actor=by, action="replay.release", target=replay.space, reason=reason.strip())

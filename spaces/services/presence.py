"""Who is in the room: access checks, joins, departures, the batched listener
writes, host hand-over and the sweep of stale participants."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.realtime import member_left_space

from .. import errors
from ..live.tickets import tickets_revoke_on_commit
from ..models import (
    Participant,
    Space,
    SpaceBan,
)
from ..selectors import (
    participant_data,
    space_is_banned,
    space_is_visible_to,
)
from ._shared import (
    Role,
    _audience_change,
    _broadcast,
    _is_audience,
    _lock_live,
    _participant,
    _set_role,
)
from .lifecycle import hallway_changed, space_end


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
    """One batch of ticket joins and socket closes of one room (spaces/live/presence.py), in one
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

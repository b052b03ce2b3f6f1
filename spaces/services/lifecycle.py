"""A space's life: creating, starting, cancelling and ending it, and the
subscriptions, invitations, reminders and notifications around it."""

from __future__ import annotations

from datetime import datetime, timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.realtime import HALLWAY_GROUP
from accounts.services import audit_record
from notifications.models import Notification
from notifications.services import notification_send, notifications_send_many

from .. import errors
from ..models import (
    Participant,
    Space,
    SpaceInvite,
    SpaceSubscription,
)
from ..selectors import (
    user_can_host,
    user_moderates_all_spaces,
)
from ._shared import _broadcast, _check_audio_mode, _check_visible, _lock, _lock_live, _transition
from .replays import _replay_space_ended


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


def _space_url(space: Space) -> str:
    return reverse("spaces:detail", args=[space.pk])


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
            url=_space_url(space),
            target=space,
            actor=space.host,
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
            url=_space_url(space),
            target=space,
            actor=space.host,
            email=True,
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


def hallway_changed(*, space_id: int) -> None:
    """A space appeared in or left the hallway: every member's notification socket is told,
    once the transaction commits, and their page fetches its own hallway (which applies the
    member's visibility; the event names only the space id)."""
    message = {"type": "hallway.changed", "space_id": space_id}
    transaction.on_commit(
        lambda: async_to_sync(get_channel_layer().group_send)(HALLWAY_GROUP, message)
    )


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
            url=_space_url(space),
            target=space,
            actor=by,
            email=True,
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
            url=_space_url(subscription.space),
            target=subscription.space,
            email=True,
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
            url=_space_url(subscription.space),
            target=subscription.space,
            email=True,
        )
        subscription.started_notice_sent_at = now
        subscription.save(update_fields=["started_notice_sent_at"])
        sent += 1
    return sent

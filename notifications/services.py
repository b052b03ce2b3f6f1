"""Every write to notifications, and the rules every kind obeys.

Each app decides *whom* to tell of its own events (spaces: a host's followers, voice tweets: a
reply's parent author) and calls these; the rules that hold for every kind live here only:

* nobody is notified of their own action;
* blocked members never notify each other (either direction);
* a stored notification is pushed to the member's notification socket once the transaction
  commits (``{"type": "notification", "id", "kind", "text", "url"}``, docs/protocol.md), so no
  page shows one the database rolled back.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.mail import send_mail
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Block
from accounts.realtime import notify_user
from accounts.selectors import is_blocked_between

from .models import Notification


def _target_fields(target: models.Model | None) -> dict:
    if target is None:
        return {"target_type": None, "target_id": None}
    return {"target_type": ContentType.objects.get_for_model(target), "target_id": target.pk}


def _push(notification: Notification) -> None:
    notify_user(
        user_id=notification.user_id,
        payload={
            "id": notification.pk,
            "kind": notification.kind,
            "text": notification.text,
            "url": notification.url,
        },
    )


def _may_notify(*, user, actor) -> bool:
    """The rule for every kind: not of one's own action, never across a block."""
    if actor is None:
        return True
    return actor.pk != user.pk and not is_blocked_between(user=user, other=actor)


def notification_send(
    *,
    user,
    kind: str,
    text: str,
    url: str = "",
    target: models.Model | None = None,
    actor=None,
    email: bool = False,
    unless_unread: bool = False,
) -> Notification | None:
    """Store a notification for ``user`` and push it live; with ``email``, also mail it when
    email is set up. With ``unless_unread``, an unread one of the same kind, actor and target
    stands for it (follow, unfollow, follow again rings once). Returns None when ``user`` is
    not told (see the module's rules)."""
    if not _may_notify(user=user, actor=actor):
        return None
    if (
        unless_unread
        and Notification.objects.filter(
            user=user, kind=kind, actor=actor, read_at__isnull=True, **_target_fields(target)
        ).exists()
    ):
        return None
    notification = Notification.objects.create(
        user=user, kind=kind, text=text[:300], url=url, actor=actor, **_target_fields(target)
    )
    _push(notification)
    if email and settings.EMAIL_CONFIGURED and user.email:
        address = user.email
        transaction.on_commit(
            lambda: send_mail("Salon: " + text, text, None, [address], fail_silently=True)
        )
    return notification


def notifications_send_many(
    *,
    user_ids: list[int],
    kind: str,
    text: str,
    url: str = "",
    target: models.Model | None = None,
    actor=None,
) -> int:
    """One notification to each of ``user_ids`` in one insert (a host with many followers costs
    no query per follower), pushed live like ``notification_send``, not emailed."""
    user_ids = set(user_ids)
    if actor is not None and user_ids:
        user_ids.discard(actor.pk)
        blocked = Block.objects.filter(
            Q(blocker_id=actor.pk, blocked_id__in=user_ids)
            | Q(blocked_id=actor.pk, blocker_id__in=user_ids)
        ).values_list("blocker_id", "blocked_id")
        for pair in blocked:
            user_ids.difference_update(pair)
    if not user_ids:
        return 0
    fields = _target_fields(target)
    created = Notification.objects.bulk_create(
        [
            Notification(
                user_id=user_id, kind=kind, text=text[:300], url=url, actor=actor, **fields
            )
            for user_id in sorted(user_ids)
        ]
    )
    for notification in created:
        _push(notification)
    return len(created)


def _aggregate_text(actor, count: int, action: str) -> str:
    if count <= 1:
        return f"{actor.name} {action}."
    others = count - 1
    return f"{actor.name} and {others} {'other' if others == 1 else 'others'} {action}."


@transaction.atomic
def notification_aggregate(
    *, user, kind: str, actor, target: models.Model, url: str, action: str
) -> Notification | None:
    """Tell ``user`` that ``actor`` did ``action`` (e.g. "liked your voice tweet") to ``target``,
    folded into the one unread notification of that kind and target: "Alice and 2 others liked
    your voice tweet." Each member counts once per target, ever: liking, unliking and liking
    again tells nobody twice. A fresh one starts once the last was read.

    Folding into an existing one rings no bell (it is still one unread): its pages are told
    ``{"event": "notification.updated", ...}`` with the new text.
    """
    if not _may_notify(user=user, actor=actor):
        return None
    fields = _target_fields(target)
    same = Notification.objects.filter(user=user, kind=kind, **fields)
    if same.filter(actor_ids__contains=[actor.pk]).exists():
        return None
    unread = same.filter(read_at__isnull=True).select_for_update().order_by("-pk").first()
    if unread is None:
        try:
            with transaction.atomic():
                notification = Notification.objects.create(
                    user=user,
                    kind=kind,
                    text=_aggregate_text(actor, 1, action),
                    url=url,
                    actor=actor,
                    actor_ids=[actor.pk],
                    **fields,
                )
        except IntegrityError:
            # A concurrent first like won (the model's one-unread constraint): fold into it.
            unread = same.filter(read_at__isnull=True).select_for_update().get()
        else:
            _push(notification)
            return notification
    # Only an unread one grows: it starts afresh once read, so its list stays short.
    unread.actor_ids = [*unread.actor_ids, actor.pk]
    count = len(unread.actor_ids)
    unread.actor = actor
    unread.text = _aggregate_text(actor, count, action)[:300]
    unread.created_at = timezone.now()  # the newest activity puts it on top again
    unread.save(update_fields=["actor_ids", "actor", "text", "created_at"])
    notify_user(
        user_id=user.pk,
        payload={
            "event": "notification.updated",
            "id": unread.pk,
            "kind": kind,
            "text": unread.text,
            "url": unread.url,
            "count": count,
        },
    )
    return unread


@transaction.atomic
def notification_mark_read(*, user, notification_id: int) -> bool:
    """Mark one of the member's notifications read; False if it was not theirs or not unread."""
    marked = Notification.objects.filter(
        pk=notification_id, user=user, read_at__isnull=True
    ).update(read_at=timezone.now())
    if marked:
        from .selectors import notifications_unread_count

        notify_user(
            user_id=user.pk,
            payload={
                "event": "notifications.read",
                "unread_count": notifications_unread_count(user=user),
            },
        )
    return bool(marked)


@transaction.atomic
def notifications_mark_all_read(*, user) -> int:
    """Mark every unread notification of the member read; their other pages' bells go to 0."""
    marked = Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    notify_user(user_id=user.pk, payload={"event": "notifications.read", "unread_count": 0})
    return marked

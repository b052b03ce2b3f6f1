"""Every write of the accounts app, and every rule about who may do it.

Adapters (pages, API, admin actions, tasks, allauth's adapter) call these and map the domain
errors in accounts.errors to responses. Transitions of an invitation are conditional UPDATEs on
``state='pending'`` so concurrent callers cannot both win.
"""

from __future__ import annotations

import io
import logging
import secrets

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils import timezone
from PIL import Image, ImageOps, UnidentifiedImageError
from rest_framework.authtoken.models import Token

from notifications.models import Notification
from notifications.services import notification_send

from . import errors
from .models import AuditEntry, Block, Follow, Invitation, Report, User, WaitlistEntry
from .realtime import CLOSE_FORBIDDEN, disconnect_user, notify_user

logger = logging.getLogger(__name__)

# --- Audit ------------------------------------------------------------------------------------


def audit_record(
    *,
    actor: User | None,
    action: str,
    target: models.Model | None,
    reason: str = "",
    extra: dict | None = None,
) -> AuditEntry:
    """Append one entry to the audit log. Any app may record any action on any model."""
    return AuditEntry.objects.create(
        actor=actor,
        action=action,
        target_type=ContentType.objects.get_for_model(target) if target is not None else None,
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        reason=reason,
        extra=extra or {},
    )


# --- Suspension -------------------------------------------------------------------------------


def _check_moderator(by: User, user: User) -> None:
    if not (by.is_active and by.is_staff):
        raise errors.PermissionDenied("Only staff can suspend members.")
    if by.pk == user.pk:
        raise errors.PermissionDenied("You cannot suspend yourself.")
    if user.is_superuser and not by.is_superuser:
        raise errors.PermissionDenied("Only a superuser can suspend a superuser.")


def _revoke_join_tickets(user_id: int) -> None:
    """The member's space join tickets stop working on commit (spaces/live/tickets.py)."""
    from spaces.live.tickets import tickets_revoke_on_commit

    tickets_revoke_on_commit(user_id=user_id)


@transaction.atomic
def user_suspend(*, user: User, by: User, reason: str) -> User:
    """Suspend a member: no login, no session, no API token, open sockets closed on commit."""
    reason = (reason or "").strip()
    if not reason:
        raise errors.AccountsError("A reason is required to suspend a member.", code="reason")
    _check_moderator(by, user)
    locked = User.objects.select_for_update().get(pk=user.pk)
    if locked.is_suspended:
        raise errors.InvalidTransition(f"{user.username} is already suspended.")
    now = timezone.now()
    User.objects.filter(pk=user.pk).update(
        is_active=False, suspended_at=now, suspended_reason=reason, suspended_by=by
    )
    user.is_active, user.suspended_at, user.suspended_reason, user.suspended_by = (
        False,
        now,
        reason,
        by,
    )
    # Inactive users are refused by TokenAuthentication already; deleting the token also means
    # an unsuspended member logs in again rather than reusing a token issued before.
    Token.objects.filter(user_id=user.pk).delete()
    audit_record(actor=by, action="user.suspend", target=user, reason=reason)
    disconnect_user(user_id=user.pk, code=CLOSE_FORBIDDEN, reason="account suspended")
    _revoke_join_tickets(user.pk)
    return user


@transaction.atomic
def user_unsuspend(*, user: User, by: User) -> User:
    _check_moderator(by, user)
    locked = User.objects.select_for_update().get(pk=user.pk)
    if not locked.is_suspended:
        raise errors.InvalidTransition(f"{user.username} is not suspended.")
    User.objects.filter(pk=user.pk).update(
        is_active=True, suspended_at=None, suspended_reason="", suspended_by=None
    )
    user.is_active, user.suspended_at, user.suspended_reason, user.suspended_by = (
        True,
        None,
        "",
        None,
    )
    audit_record(actor=by, action="user.unsuspend", target=user)
    return user


# --- Invitations ------------------------------------------------------------------------------


@transaction.atomic
def user_grant_invitations(*, user: User, by: User, count: int, reason: str = "") -> User:
    if not (by.is_active and by.is_staff):
        raise errors.PermissionDenied("Only staff can grant invitations.")
    if not 1 <= count <= 1000:
        raise errors.AccountsError("Grant between 1 and 1000 invitations.", code="count")
    User.objects.filter(pk=user.pk).update(invitations_left=F("invitations_left") + count)
    user.refresh_from_db(fields=["invitations_left"])
    audit_record(
        actor=by, action="user.grant_invitations", target=user, reason=reason,
        extra={"count": count},
    )  # fmt: skip
    return user


def _normalise_email(email: str) -> str:
    from django.core.validators import validate_email

    email = (email or "").strip()
    if not email:
        return ""
    if len(email) > 254:
        raise errors.AccountsError("Enter a valid email address.", code="email")
    try:
        validate_email(email)
    except ValidationError:
        raise errors.AccountsError("Enter a valid email address.", code="email") from None
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


@transaction.atomic
def invitation_create(*, inviter: User, email: str = "", use_quota: bool = True) -> Invitation:
    """Create a pending invitation, taking one from the inviter's quota.

    ``use_quota=False`` is for staff inviting from the waitlist.
    """
    if not inviter.is_active:
        raise errors.PermissionDenied("Suspended members cannot invite.")
    email = _normalise_email(email)
    if use_quota:
        # Conditional decrement: two concurrent creations cannot both take the last one.
        taken = User.objects.filter(pk=inviter.pk, invitations_left__gt=0).update(
            invitations_left=F("invitations_left") - 1
        )
        if not taken:
            raise errors.QuotaExhausted("You have no invitations left.")
        inviter.refresh_from_db(fields=["invitations_left"])
    elif not inviter.is_staff:
        raise errors.PermissionDenied("Only staff can invite without quota.")
    return Invitation.objects.create(inviter=inviter, email=email)


def _close_pending(invitation: Invitation, state: str, **extra) -> bool:
    """Move a pending invitation to ``state``; False if it was no longer pending."""
    now = timezone.now()
    changed = Invitation.objects.filter(pk=invitation.pk, state=Invitation.State.PENDING).update(
        state=state, closed_at=now, **extra
    )
    if changed:
        invitation.state, invitation.closed_at = state, now
        for field, value in extra.items():
            setattr(invitation, field, value)
    return bool(changed)


def _refund(invitation: Invitation) -> None:
    # Staff invitations sent from the waitlist never took quota, so they give none back.
    if hasattr(invitation, "waitlist_entry"):
        return
    User.objects.filter(pk=invitation.inviter_id).update(invitations_left=F("invitations_left") + 1)


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, by: User) -> Invitation:
    """Revoke an unused invitation; the inviter gets the invitation back."""
    if by.pk != invitation.inviter_id and not by.is_staff:
        raise errors.NotFound("No such invitation.")
    if invitation.state == Invitation.State.PENDING and invitation.is_expired:
        invitation_expire(invitation=invitation)
    if not _close_pending(invitation, Invitation.State.REVOKED):
        invitation.refresh_from_db()
        raise errors.InvalidTransition(f"This invitation is already {invitation.state}.")
    _refund(invitation)
    if by.pk != invitation.inviter_id:
        audit_record(actor=by, action="invitation.revoke", target=invitation)
    return invitation


@transaction.atomic
def invitation_expire(*, invitation: Invitation) -> Invitation:
    """Mark a pending invitation past its expiry as expired and give the inviter it back."""
    if not invitation.is_expired:
        raise errors.InvalidTransition("This invitation has not expired yet.")
    if _close_pending(invitation, Invitation.State.EXPIRED):
        _refund(invitation)
    return invitation


def invitations_expire_due() -> int:
    """Expire every pending invitation past its expiry; run periodically by Celery beat."""
    due = Invitation.objects.filter(
        state=Invitation.State.PENDING, expires_at__lte=timezone.now()
    ).only("pk", "inviter_id", "expires_at")
    count = 0
    for invitation in due.iterator():
        invitation_expire(invitation=invitation)
        count += 1
    return count


_INVALID_MESSAGES = {
    Invitation.State.ACCEPTED: "This invitation has already been used.",
    Invitation.State.REVOKED: "This invitation was revoked by the member who sent it.",
    Invitation.State.EXPIRED: "This invitation has expired.",
}


def invitation_check(*, token: str) -> Invitation:
    """The usable invitation for ``token``, or InvalidInvitation saying why not."""
    from .selectors import invitation_get_by_token

    invitation = invitation_get_by_token(token=token)
    if invitation is None:
        raise errors.InvalidInvitation(
            "This invitation link is not valid.", code="invitation_unknown"
        )
    if invitation.state == Invitation.State.PENDING and invitation.is_expired:
        raise errors.InvalidInvitation(
            _INVALID_MESSAGES[Invitation.State.EXPIRED], code="invitation_expired"
        )
    if invitation.state != Invitation.State.PENDING:
        raise errors.InvalidInvitation(
            _INVALID_MESSAGES[invitation.state], code=f"invitation_{invitation.state}"
        )
    if not invitation.inviter.is_active:
        raise errors.InvalidInvitation(
            "This invitation is not valid any more.", code="invitation_inviter_inactive"
        )
    return invitation


def invitation_accept(*, token: str, user: User) -> Invitation:
    """Use the invitation for the just-created ``user`` and record who invited them.

    Precondition: the caller runs inside the transaction that created ``user``, so a failure
    here rolls the account back. The conditional UPDATE takes the row lock; a concurrent
    acceptance waits for it, then finds the state no longer pending and fails.
    """
    invitation = invitation_check(token=token)
    accepted = Invitation.objects.filter(
        pk=invitation.pk, state=Invitation.State.PENDING, expires_at__gt=timezone.now()
    ).update(state=Invitation.State.ACCEPTED, closed_at=timezone.now(), accepted_by=user)
    if not accepted:
        # Someone else won the race (or it just expired): report the state they left.
        invitation_check(token=token)
        raise errors.InvalidInvitation(_INVALID_MESSAGES[Invitation.State.ACCEPTED])
    invitation.refresh_from_db()
    User.objects.filter(pk=user.pk).update(invited_by=invitation.inviter_id)
    user.invited_by_id = invitation.inviter_id
    WaitlistEntry.objects.filter(email__iexact=user.email).delete()
    notify_user(
        user_id=invitation.inviter_id,
        payload={"kind": "invitation.accepted", "username": user.username},
    )
    return invitation


# --- Waitlist ---------------------------------------------------------------------------------


def waitlist_join(*, email: str, note: str = "") -> WaitlistEntry:
    """Put an email on the waitlist. Joining twice is not an error and changes nothing."""
    email = _normalise_email(email)
    if not email:
        raise errors.AccountsError("Enter your email address.", code="email")
    note = (note or "").strip()
    if len(note) > 280:
        raise errors.AccountsError("Keep the note under 280 characters.", code="note")
    entry, _ = WaitlistEntry.objects.get_or_create(
        email__iexact=email, defaults={"email": email, "note": note}
    )
    return entry


def invitation_url(*, invitation: Invitation, base_url: str = "") -> str:
    return base_url.rstrip("/") + reverse("accounts:invitation", args=[invitation.token])


@transaction.atomic
def waitlist_invite(*, entry: WaitlistEntry, by: User, base_url: str = "") -> Invitation:
    """Send an invitation from staff to a waitlisted email, without using anyone's quota."""
    if not (by.is_active and by.is_staff):
        raise errors.PermissionDenied("Only staff can invite from the waitlist.")
    entry = WaitlistEntry.objects.select_for_update().get(pk=entry.pk)
    if entry.invitation_id and entry.invitation.valid:
        raise errors.InvalidTransition(f"{entry.email} already has a pending invitation.")
    invitation = invitation_create(inviter=by, email=entry.email, use_quota=False)
    entry.invitation = invitation
    entry.save(update_fields=["invitation"])
    audit_record(actor=by, action="waitlist.invite", target=entry, extra={"email": entry.email})
    link = invitation_url(invitation=invitation, base_url=base_url)
    transaction.on_commit(
        lambda: send_mail(
            "Your invitation to Salon",
            f"You are invited to join Salon. Sign up here: {link}\n",
            None,
            [entry.email],
            fail_silently=True,
        )
    )
    return invitation


# --- Follows and blocks -----------------------------------------------------------------------


def follow_create(*, follower: User, followee: User) -> Follow:
    """Follow a member. Following twice is not an error."""
    from .selectors import is_blocked_between

    if follower.pk == followee.pk:
        raise errors.AccountsError("You cannot follow yourself.", code="self")
    if not followee.is_active:
        raise errors.NotFound("No such member.")
    if is_blocked_between(user=follower, other=followee):
        raise errors.PermissionDenied("You cannot follow this member.", code="blocked")
    try:
        with transaction.atomic():
            follow, created = Follow.objects.get_or_create(follower=follower, followee=followee)
    except IntegrityError:  # a concurrent identical follow won
        return Follow.objects.get(follower=follower, followee=followee)
    if created:
        # Following again after an unfollow tells nobody twice while the first is unread.
        notification_send(
            user=followee,
            kind=Notification.Kind.FOLLOWED,
            text=f"{follower.name} (@{follower.username}) followed you.",
            url=reverse("accounts:profile", args=[follower.username]),
            actor=follower,
            unless_unread=True,
        )
    return follow


def follow_delete(*, follower: User, followee: User) -> None:
    """Stop following. Unfollowing someone you do not follow is not an error."""
    Follow.objects.filter(follower_id=follower.pk, followee_id=followee.pk).delete()


@transaction.atomic
def block_create(*, blocker: User, blocked: User) -> Block:
    """Block a member: follows both ways end, and is_blocked_between holds from now on."""
    if blocker.pk == blocked.pk:
        raise errors.AccountsError("You cannot block yourself.", code="self")
    block, _ = Block.objects.get_or_create(blocker=blocker, blocked=blocked)
    # Either may host the other's space: neither's join tickets may open it any more.
    _revoke_join_tickets(blocker.pk)
    _revoke_join_tickets(blocked.pk)
    Follow.objects.filter(follower_id=blocker.pk, followee_id=blocked.pk).delete()
    Follow.objects.filter(follower_id=blocked.pk, followee_id=blocker.pk).delete()
    return block


def block_delete(*, blocker: User, blocked: User) -> None:
    Block.objects.filter(blocker_id=blocker.pk, blocked_id=blocked.pk).delete()


# --- Profile ----------------------------------------------------------------------------------


def user_update_profile(
    *,
    user: User,
    display_name: str | None = None,
    bio: str | None = None,
    messages_from_anyone: bool | None = None,
) -> User:
    changed = []
    if messages_from_anyone is not None:
        user.messages_from_anyone = bool(messages_from_anyone)
        changed.append("messages_from_anyone")
    if display_name is not None:
        user.display_name = display_name.strip()
        changed.append("display_name")
    if bio is not None:
        user.bio = bio.strip()
        changed.append("bio")
    if not changed:
        return user
    try:
        user.clean_fields(exclude=[f.name for f in User._meta.fields if f.name not in changed])
    except ValidationError as exc:
        user.refresh_from_db(fields=changed)
        raise errors.AccountsError(
            "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()), code="invalid"
        ) from None
    user.save(update_fields=changed)
    return user


AVATAR_FORMATS = {"PNG", "JPEG", "GIF", "WEBP"}


def _avatar_webp(data: bytes) -> bytes:
    """Decode, check and square-crop an uploaded image; raise InvalidAvatar if it is not one."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in AVATAR_FORMATS:
                raise errors.InvalidAvatar()
            width, height = probe.size
            if width * height > settings.SALON_AVATAR_MAX_PIXELS:
                raise errors.InvalidAvatar("The image has too many pixels.", code="avatar_too_big")
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            image = image.convert("RGBA")
            size = settings.SALON_AVATAR_SIZE
            square = ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            square.save(out, format="WEBP", quality=85)
            return out.getvalue()
    except errors.InvalidAvatar:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise errors.InvalidAvatar("That file is not a readable image.") from None


def user_set_avatar(*, user: User, upload) -> User:
    """Replace the member's avatar with a 256 px square WebP made from ``upload``."""
    if upload.size is not None and upload.size > settings.SALON_AVATAR_MAX_BYTES:
        raise errors.InvalidAvatar(
            f"The image must be at most {settings.SALON_AVATAR_MAX_BYTES // (1024 * 1024)} MB.",
            code="avatar_too_big",
        )
    data = upload.read(settings.SALON_AVATAR_MAX_BYTES + 1)
    if len(data) > settings.SALON_AVATAR_MAX_BYTES:
        raise errors.InvalidAvatar("The image is too large.", code="avatar_too_big")
    webp = _avatar_webp(data)
    old_name = user.avatar.name if user.avatar else ""
    user.avatar.save(f"{secrets.token_urlsafe(16)}.webp", ContentFile(webp), save=False)
    user.save(update_fields=["avatar"])
    if old_name:
        storage = user.avatar.storage
        transaction.on_commit(lambda: storage.delete(old_name))
    return user


def user_remove_avatar(*, user: User) -> User:
    if user.avatar:
        old_name, storage = user.avatar.name, user.avatar.storage
        user.avatar = ""
        user.save(update_fields=["avatar"])
        transaction.on_commit(lambda: storage.delete(old_name))
    return user


# --- API tokens -------------------------------------------------------------------------------


def auth_token_login(*, request: HttpRequest, login: str, password: str) -> Token:
    """Log in with a username (or email) and password for an API token.

    The password is checked by allauth's own login form, so a wrong one counts in allauth's
    per-account and per-address failure limits, the very counters of the HTML login: guesses
    here lock the login page, and a lockout there refuses the token too.
    """
    from allauth.account.forms import LoginForm  # its module needs the app registry ready

    form = LoginForm(data={"login": login, "password": password}, request=request)
    if form.is_valid():
        return auth_token_issue(user=form.user)
    refusals = form.errors.as_data().get("__all__", [])
    if any(error.code == "too_many_login_attempts" for error in refusals):
        raise errors.TooManyLoginAttempts(
            "Too many failed login attempts. Try again later.", code="too_many_login_attempts"
        )
    # Django's backends treat a suspended member as unknown; the right password says which.
    candidates = User.objects.filter(
        models.Q(username__iexact=login) | models.Q(email__iexact=login)
    )
    if any(not u.is_active and u.check_password(password) for u in candidates[:2]):
        raise errors.PermissionDenied("This account is suspended.", code="suspended")
    raise errors.AccountsError("Wrong username/email or password.", code="credentials")


def auth_token_issue(*, user: User) -> Token:
    """The member's API token, created on first use. Suspended members get none."""
    if not user.is_active:
        raise errors.PermissionDenied("This account is suspended.", code="suspended")
    token, _ = Token.objects.get_or_create(user=user)
    return token


def auth_token_revoke(*, user: User) -> None:
    Token.objects.filter(user_id=user.pk).delete()


# --- Reports and moderation -------------------------------------------------------------------
#
# The apps that can be reported (voicetweets, spaces) build on accounts and import it at module
# level, so their selectors and services are imported here inside the functions that use them.


def _target_pk(key) -> int:
    try:
        pk = int(str(key).strip())
    except ValueError:
        raise errors.NotFound("Nothing to report there.") from None
    if pk <= 0:
        raise errors.NotFound("Nothing to report there.")
    return pk


def report_check_target(*, reporter: User, target_kind: str, target) -> tuple[models.Model, User]:
    """What ``reporter`` wants to report, and the member who answers for it.

    Only what the reporter can see can be reported; anything else is NotFound, as everywhere
    (hidden things do not exist). ``target`` is the id, or the username for a member. Pages call
    this to show the report form; report_create calls it again.
    """
    kind, key = target_kind, target
    from .selectors import profile_visible_to, user_get_active

    if kind == Report.Kind.VOICETWEET:
        from voicetweets.selectors import voicetweet_for_viewer

        try:
            tweet = voicetweet_for_viewer(viewer=reporter, pk=_target_pk(key))
        except Http404:
            raise errors.NotFound("No such voice tweet.") from None
        return _not_own(tweet, tweet.author, reporter)
    if kind == Report.Kind.VOICEMESSAGE:
        from voicetweets.selectors import voicemessage_for_viewer

        try:
            message = voicemessage_for_viewer(viewer=reporter, pk=_target_pk(key))
        except Http404:
            raise errors.NotFound("No such voice message.") from None
        return _not_own(message, message.sender, reporter)
    if kind == Report.Kind.SPACE:
        from spaces.models import Space
        from spaces.selectors import space_for_member

        space = space_for_member(user=reporter, pk=_target_pk(key))
        if space is None:
            raise errors.NotFound("No such space.")
        if space.state not in (Space.State.LIVE, Space.State.ENDED):
            raise errors.InvalidTransition(
                "A space can be reported while it is live, or its replay once it has ended."
            )
        return _not_own(space, space.host, reporter)
    if kind == Report.Kind.MEMBER:
        member = user_get_active(username=str(key))
        if member is None or not profile_visible_to(owner=member, viewer=reporter):
            raise errors.NotFound("No such member.")
        return _not_own(member, member, reporter)
    raise errors.AccountsError(
        f"What you report must be one of: {', '.join(Report.Kind.values)}.", code="target_kind"
    )


def _not_own(obj: models.Model, owner: User, reporter: User) -> tuple[models.Model, User]:
    if owner.pk == reporter.pk:
        raise errors.AccountsError("You cannot report yourself or your own posts.", code="own")
    return obj, owner


def report_create(
    *, reporter: User, target_kind: str, target, reason: str, note: str = ""
) -> Report:
    """A member reports a voice tweet, a voice message, a space (live or its replay) or a
    member. Reporting the same thing twice is refused, by the database in the end."""
    if not reporter.is_active:
        raise errors.PermissionDenied("Suspended members cannot report.", code="suspended")
    if reason not in Report.Reason.values:
        choices = ", ".join(Report.Reason.values)
        raise errors.AccountsError(f"Choose a reason from the list: {choices}.", code="reason")
    note = (note or "").strip()
    if len(note) > 500:
        raise errors.AccountsError("Keep the note under 500 characters.", code="note")
    obj, owner = report_check_target(reporter=reporter, target_kind=target_kind, target=target)
    try:
        with transaction.atomic():
            return Report.objects.create(
                reporter=reporter, target_kind=target_kind, target_id=obj.pk, target_user=owner,
                reason=reason, note=note,
            )  # fmt: skip
    except IntegrityError:
        if Report.objects.filter(
            reporter=reporter, target_kind=target_kind, target_id=obj.pk
        ).exists():
            raise errors.AlreadyReported("You already reported this.") from None
        raise


def _check_staff(by: User) -> None:
    if not (by.is_active and by.is_staff):
        raise errors.PermissionDenied("Only staff can handle reports.")


def _lock_open_reports(report: Report) -> list[Report]:
    """Lock every open report on ``report``'s target; InvalidTransition if ``report`` is no
    longer open (another moderator handled it first). Caller runs in a transaction."""
    same = Report.objects.select_for_update().filter(
        target_kind=report.target_kind, target_id=report.target_id, state=Report.State.OPEN
    )
    locked = list(same.order_by("pk"))
    if report.pk not in {r.pk for r in locked}:
        raise errors.InvalidTransition("These reports were already handled.")
    return locked


def _close_reports(
    reports: list[Report], *, by: User, state: str, resolution: str, reason: str, target
) -> None:
    """Close ``reports`` (locked by the caller) and write the report.* audit entry."""
    now = timezone.now()
    ids = [r.pk for r in reports]
    Report.objects.filter(pk__in=ids).update(
        state=state, resolved_at=now, resolved_by=by, resolution=resolution
    )
    for report in reports:
        report.state, report.resolved_at, report.resolved_by, report.resolution = (
            state, now, by, resolution,
        )  # fmt: skip
    first = reports[0]
    action = "report.dismiss" if state == Report.State.DISMISSED else "report.act"
    audit_record(
        actor=by, action=action, target=target if target is not None else first, reason=reason,
        extra={
            "reports": ids, "resolution": resolution, "target_kind": first.target_kind,
            "target_id": first.target_id,
        },
    )  # fmt: skip


@transaction.atomic
def report_dismiss(*, report: Report, by: User, reason: str = "") -> int:
    """Close every open report on ``report``'s target without acting; returns how many."""
    from .selectors import reported_object

    _check_staff(by)
    reports = _lock_open_reports(report)
    _close_reports(
        reports, by=by, state=Report.State.DISMISSED, resolution="report.dismiss",
        reason=(reason or "").strip(), target=reported_object(report=report),
    )  # fmt: skip
    return len(reports)


class ReportAction(models.TextChoices):
    """What a moderator can do from a report, each through the service that owns the rule."""

    HIDE = "hide", "Hide the voice tweet"
    END = "end", "End the space"
    SUSPEND = "suspend", "Suspend the member"


@transaction.atomic
def report_act(*, report: Report, by: User, action: str, reason: str) -> int:
    """Act on what ``report`` is about, at once, then close every open report on it.

    The acting service does the work and writes its own audit entry (voicetweet.hide, space.end
    closing every socket in the room, user.suspend closing the member's sockets); this adds a
    report.act entry naming the reports it closed. Returns how many were closed.
    """
    from .selectors import reported_object

    _check_staff(by)
    reason = (reason or "").strip()
    if not reason:
        raise errors.AccountsError("Say why: the reason goes into the audit log.", code="reason")
    reports = _lock_open_reports(report)
    target = reported_object(report=report)
    if action == ReportAction.HIDE:
        resolution = _act_hide(report, target, by=by, reason=reason)
    elif action == ReportAction.END:
        resolution = _act_end(report, target, by=by)
    elif action == ReportAction.SUSPEND:
        user_suspend(user=report.target_user, by=by, reason=reason)
        resolution = "user.suspend"
    else:
        raise errors.AccountsError(
            f"The action must be one of: {', '.join(ReportAction.values)}.", code="action"
        )
    _close_reports(
        reports, by=by, state=Report.State.ACTIONED, resolution=resolution, reason=reason,
        target=target,
    )  # fmt: skip
    return len(reports)


def _act_hide(report: Report, tweet, *, by: User, reason: str) -> str:
    from voicetweets.services import VoiceTweetError, voicetweet_hide

    if report.target_kind != Report.Kind.VOICETWEET:
        raise errors.ActionFailed("Only a voice tweet can be hidden.")
    if tweet is None:
        raise errors.ActionFailed("The voice tweet no longer exists.")
    try:
        voicetweet_hide(voicetweet=tweet, by=by, reason=reason)
    except VoiceTweetError as error:
        raise errors.ActionFailed(error.message, code=error.code) from None
    return "voicetweet.hide"


def _act_end(report: Report, space, *, by: User) -> str:
    from spaces.errors import SpaceError
    from spaces.services import space_end

    if report.target_kind != Report.Kind.SPACE:
        raise errors.ActionFailed("Only a space can be ended.")
    if space is None:
        raise errors.ActionFailed("The space no longer exists.")
    try:
        # The reason travels to every listener's screen as a code, not the moderator's words.
        space_end(space=space, by=by, reason="ended_by_admin")
    except SpaceError as error:
        message = f"Cannot end the space: {error.message}."
        raise errors.ActionFailed(message, code=error.code) from None
    return "space.end"

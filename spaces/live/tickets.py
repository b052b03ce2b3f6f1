"""Join tickets: a short-lived signed pass to open ``/ws/spaces/<id>/`` without a database query.

The page or the API (``POST /api/v1/spaces/{id}/ticket/``) checks access once, with the
database, and signs what the socket needs: the member, the space, the role and an expiry
(docs/protocol.md, "Join tickets"). The socket then checks the signature and the expiry in
memory, and one revocation entry in the cache, as LiveKit checks its access tokens.

Revocation keeps the check query-free: a ban, a block, a suspension or a change of the member's
role records a *not-before* time for the member in the cache (Redis in production, shared by
every process), on commit. A ticket issued before it is refused; the client asks for a new one,
which is checked against the database again. An entry only needs to outlive the tickets it
refuses, so it expires after one ticket lifetime. The database stays the authority: the batch
that writes listeners' presence (spaces/live/presence.py) checks bans, blocks and suspensions again
and closes a socket that slipped through.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.cache import cache

from .. import errors
from ..models import Participant, Space

# Distinct from every other signed value of the site: a signed cookie or a password-reset
# token never passes for a ticket (the salt derives a key of its own from SECRET_KEY).
SALT = "salon.spaces.join-ticket"
# Clocks of the processes that issue and check tickets differ by up to this much: a ticket
# issued less than this after a revocation is refused as well.
CLOCK_SKEW = 1.0


class TicketRefused(errors.SpaceError):
    """The ticket is not valid for this join; the client asks for a new one."""

    code = "ticket_refused"
    close_code = errors.CLOSE_TICKET_REFUSED


@dataclass(frozen=True)
class JoinTicket:
    user_id: int
    space_id: int
    role: str
    username: str
    display_name: str
    # Moderation rights are decided from this without loading the member (has_perm short-cut).
    is_superuser: bool
    issued_at: float
    expires_at: float
    # The avatar's file name ("" without one), for the tiles (selectors.avatar_url).
    avatar: str = ""


def _revoked_key(user_id: int) -> str:
    return f"salon:tickets:not-before:{user_id}"


def ticket_lifetime() -> int:
    return settings.SALON_JOIN_TICKET_SECONDS


def ticket_issue(*, space: Space, user, now: float | None = None) -> dict:
    """A ticket for ``user`` to join ``space`` now, after the same access check as a join.

    The role is the member's current one (host, a stage role they hold, else listener): a
    listener's ticket lets the socket join without the database; other roles still join
    through ``services.participant_join``, as there are few of them.
    """
    from ..services import space_check_access

    # Stricter than a join, which lets a participant already in the room back without the
    # access check: a ticket is also what a member blocked by the host since would rejoin with.
    space_check_access(space=space, user=user)
    existing = Participant.objects.filter(space=space, user=user).only("role").first()
    if existing is not None:
        role = existing.role
    else:
        role = Participant.Role.HOST if user.pk == space.host_id else Participant.Role.LISTENER
    now = time.time() if now is None else now
    expires = now + ticket_lifetime()
    payload = {
        "m": user.pk,
        "s": space.pk,
        "r": role,
        "u": user.username,
        "n": user.display_name,
        "su": bool(user.is_superuser),
        "a": user.avatar.name or "",
        "i": round(now, 3),
        "e": round(expires, 3),
    }
    return {
        "ticket": signing.dumps(payload, salt=SALT, compress=False),
        "expires_in": ticket_lifetime(),
        "role": role,
    }


def ticket_read(value: str, *, space_id: int, now: float | None = None) -> JoinTicket:
    """The ticket's content if its signature holds, it has not expired and it is for
    ``space_id``; no revocation check (``ticket_check``). Pure: no query, no cache."""
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise TicketRefused("invalid join ticket")
    try:
        payload = signing.loads(value, salt=SALT)
        ticket = JoinTicket(
            user_id=int(payload["m"]),
            space_id=int(payload["s"]),
            role=str(payload["r"]),
            username=str(payload["u"]),
            display_name=str(payload["n"]),
            is_superuser=bool(payload["su"]),
            issued_at=float(payload["i"]),
            expires_at=float(payload["e"]),
            avatar=str(payload.get("a", "")),  # tickets issued before avatars had none
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise TicketRefused("invalid join ticket") from None
    now = time.time() if now is None else now
    if now >= ticket.expires_at:
        raise TicketRefused("join ticket expired; ask for a new one")
    if ticket.space_id != space_id:
        raise TicketRefused("this join ticket is for another space")
    return ticket


def _check_not_revoked(ticket: JoinTicket, not_before: float | None) -> None:
    if not_before is not None and ticket.issued_at <= not_before + CLOCK_SKEW:
        raise TicketRefused("join ticket revoked; ask for a new one")


def ticket_check_sync(value: str, *, space_id: int) -> JoinTicket:
    ticket = ticket_read(value, space_id=space_id)
    _check_not_revoked(ticket, cache.get(_revoked_key(ticket.user_id)))
    return ticket


async def ticket_check(value: str, *, space_id: int, read: JoinTicket | None = None) -> JoinTicket:
    """``ticket_read`` and the revocation check: one cache read, no database query. ``read``:
    the ticket already read from ``value`` (the consumer reads it before it starts)."""
    ticket = read if read is not None else ticket_read(value, space_id=space_id)
    _check_not_revoked(ticket, await cache.aget(_revoked_key(ticket.user_id)))
    return ticket


def tickets_revoke(*, user_id: int) -> None:
    """Refuse every ticket ``user_id`` holds now (every space). Call it on commit of what
    caused it: a ticket issued between this and the commit would not see the change."""
    # Kept a little longer than a ticket lives, so no ticket it refuses outlives it.
    cache.set(_revoked_key(user_id), time.time(), timeout=ticket_lifetime() + 2 * CLOCK_SKEW + 1)


def tickets_revoke_on_commit(*, user_id: int) -> None:
    from django.db import transaction

    transaction.on_commit(lambda: tickets_revoke(user_id=user_id))


def ticket_member(ticket: JoinTicket):
    """The member as the socket needs them, built from the ticket, not loaded: their id, names
    and (for moderation commands, which load permissions when asked) superuser flag."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    return User(
        pk=ticket.user_id,
        username=ticket.username,
        display_name=ticket.display_name,
        is_superuser=ticket.is_superuser,
        is_active=True,
    )


def listener_data(ticket: JoinTicket) -> dict:
    """``selectors.participant_data`` of a plain listener who joins now, from the ticket."""
    from django.utils import timezone

    from ..selectors import avatar_url

    return {
        "user_id": ticket.user_id,
        "username": ticket.username,
        "name": ticket.display_name or ticket.username,
        "role": Participant.Role.LISTENER,
        "hand_raised": False,
        "is_muted": True,
        "muted_by_moderator": False,
        "invited_to_speak": False,
        "joined_at": timezone.now().isoformat(),
        "avatar_url": avatar_url(ticket.avatar),
    }

"""Domain errors of spaces. Adapters map them: ``http_status`` for the API, ``close_code`` when
a websocket must not stay open (joining), ``code`` in websocket error events."""

from accounts.realtime import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED

CLOSE_LEFT = 4000
CLOSE_REMOVED = 4001
CLOSE_BANNED = 4002
CLOSE_NOT_FOUND = 4404
# The server stopped counting this socket as present (its participant was swept): reconnect.
CLOSE_PRESENCE_LOST = 4408
CLOSE_CAPACITY = 4409
CLOSE_ENDED = 4410
# The join ticket is invalid, expired, for another space or revoked: ask for a new one.
CLOSE_TICKET_REFUSED = 4411

__all__ = [
    "CLOSE_BANNED",
    "CLOSE_CAPACITY",
    "CLOSE_ENDED",
    "CLOSE_FORBIDDEN",
    "CLOSE_LEFT",
    "CLOSE_NOT_FOUND",
    "CLOSE_PRESENCE_LOST",
    "CLOSE_REMOVED",
    "CLOSE_TICKET_REFUSED",
    "CLOSE_UNAUTHENTICATED",
]


class SpaceError(Exception):
    """Base of every refused spaces action."""

    code = "invalid"
    http_status = 400
    close_code = CLOSE_FORBIDDEN

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class SpaceNotFound(SpaceError):
    code = "not_found"
    http_status = 404
    close_code = CLOSE_NOT_FOUND


class SpaceForbidden(SpaceError):
    """The member's role or relation to the space does not allow this."""

    code = "forbidden"
    http_status = 403


class SpaceBlocked(SpaceForbidden):
    code = "blocked"


class SpaceSuspended(SpaceForbidden):
    code = "suspended"


class SpaceBanned(SpaceForbidden):
    code = "banned"
    close_code = CLOSE_BANNED


class SpaceFull(SpaceError):
    code = "capacity_full"
    http_status = 409
    close_code = CLOSE_CAPACITY


class SpaceStateError(SpaceError):
    """The space is not in a state that allows this (e.g. ending a scheduled space)."""

    code = "invalid_state"
    http_status = 409
    close_code = CLOSE_ENDED


class NotParticipant(SpaceError):
    """The member (or the target) is not in the live space."""

    code = "not_participant"
    http_status = 409


class RoleLimitReached(SpaceError):
    code = "role_limit"
    http_status = 409


class RateLimited(SpaceError):
    code = "rate_limited"
    http_status = 429


class OpenSpaceLimit(SpaceError):
    """The host already has as many live and scheduled spaces as one member may."""

    code = "open_space_limit"
    http_status = 409


class InvalidInput(SpaceError):
    code = "invalid"
    http_status = 400

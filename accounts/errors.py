"""Domain errors of the accounts app; adapters map them to 4xx responses or pages."""


class AccountsError(Exception):
    """Base class. ``code`` is stable and machine-readable; the message is for people."""

    code = "accounts_error"
    status = 400

    def __init__(self, message: str = "", *, code: str | None = None):
        super().__init__(message or self.__class__.__doc__)
        if code:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])


class PermissionDenied(AccountsError):
    """You are not allowed to do that."""

    code = "forbidden"
    status = 403


class NotFound(AccountsError):
    """Not found."""

    code = "not_found"
    status = 404


class InvalidInvitation(AccountsError):
    """This invitation cannot be used."""

    code = "invitation_invalid"
    status = 410


class QuotaExhausted(AccountsError):
    """You have no invitations left."""

    code = "invitation_quota_exhausted"
    status = 409


class InvalidTransition(AccountsError):
    """That change is not possible in the current state."""

    code = "invalid_transition"
    status = 409


class InvalidAvatar(AccountsError):
    """The avatar must be a PNG, JPEG, GIF or WebP image."""

    code = "avatar_invalid"
    status = 400


class AlreadyReported(AccountsError):
    """You already reported this."""

    code = "already_reported"
    status = 409


class ActionFailed(AccountsError):
    """A moderator's action could not be carried out (the target changed, or a rule refused)."""

    code = "action_failed"
    status = 409


class TooManyLoginAttempts(AccountsError):
    """Too many failed login attempts. Try again later."""

    code = "too_many_login_attempts"
    status = 429

"""allauth adapter: signup is open only to the holder of a valid invitation.

``/invite/<token>/`` (accounts.views.invitation) stashes the token in the session; allauth's own
signup view then asks ``is_open_for_signup`` and, on submit, ``save_user``, which creates the
account and accepts the invitation in one transaction.
"""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.shortcuts import redirect, render

from config.client_address import request_client_address

from . import errors, services

INVITATION_SESSION_KEY = "salon_invitation_token"


def invitation_invalid_response(request: HttpRequest, error: errors.AccountsError):
    return render(
        request,
        "accounts/invitation_invalid.html",
        {"error": error},
        status=404 if error.code == "invitation_unknown" else error.status,
    )


class AccountAdapter(DefaultAccountAdapter):
    def get_client_ip(self, request: HttpRequest) -> str:
        # allauth's rate limits key on this; the address is decided where every other limit's
        # is (allauth alone would read X-Forwarded-For after its own ALLAUTH_TRUSTED_PROXY_COUNT).
        return request_client_address(request)

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        token = request.session.get(INVITATION_SESSION_KEY) if request else None
        if not token:
            return False  # allauth shows account/signup_closed.html, which offers the waitlist
        try:
            services.invitation_check(token=token)
        except errors.InvalidInvitation as exc:
            request.session.pop(INVITATION_SESSION_KEY, None)
            raise ImmediateHttpResponse(invitation_invalid_response(request, exc)) from None
        return True

    def save_user(self, request, user, form, commit=True):
        token = request.session.get(INVITATION_SESSION_KEY)
        try:
            with transaction.atomic():
                user = super().save_user(request, user, form, commit=True)
                if not token:
                    raise errors.InvalidInvitation(
                        "An invitation is required to sign up.", code="invitation_unknown"
                    )
                services.invitation_accept(token=token, user=user)
        except errors.InvalidInvitation as exc:
            # The account was rolled back with the failed acceptance; nothing was created.
            request.session.pop(INVITATION_SESSION_KEY, None)
            raise ImmediateHttpResponse(invitation_invalid_response(request, exc)) from None
        except IntegrityError:
            # Someone took the username or email between the form's check and this insert.
            # Nothing was created and the invitation is still theirs: back to the form.
            messages.error(
                request, "That username or email was taken a moment ago. Please choose another."
            )
            raise ImmediateHttpResponse(redirect("account_signup")) from None
        request.session.pop(INVITATION_SESSION_KEY, None)
        return user

from django import template

from accounts import errors, services
from accounts.adapter import INVITATION_SESSION_KEY

register = template.Library()


@register.simple_tag(takes_context=True)
def signup_inviter(context):
    """On the sign-up page: who invited the visitor (their invitation is in the session)."""
    request = context.get("request")
    token = request.session.get(INVITATION_SESSION_KEY) if request else None
    if not token:
        return None
    try:
        return services.invitation_check(token=token).inviter
    except errors.InvalidInvitation:
        return None

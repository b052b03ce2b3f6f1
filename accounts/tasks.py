from celery import shared_task

from . import services


@shared_task(name="accounts.expire_invitations")
def expire_invitations() -> int:
    """Move pending invitations past their expiry to expired, returning them to the inviters."""
    return services.invitations_expire_due()

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from accounts.models import AuditEntry, Invitation, User, WaitlistEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def test_member_changelist_search_and_filter(admin_client, alice, bob):
    """Admins search members and filter the suspended ones."""
    found = admin_client.get("/admin/accounts/user/", {"q": "alice"})
    suspended = admin_client.get("/admin/accounts/user/", {"suspended": "yes"})

    assert b"alice" in found.content and b">bob<" not in found.content
    assert suspended.status_code == 200


def test_suspend_action_asks_for_a_reason_then_suspends_and_audits(admin_client, alice):
    """The suspend action shows a reason form first; submitting it suspends and audits."""
    data = {"action": "suspend_members", ACTION_CHECKBOX_NAME: [alice.pk]}
    form = admin_client.post("/admin/accounts/user/", data)
    assert form.status_code == 200 and b"reason" in form.content

    empty = admin_client.post("/admin/accounts/user/", {**data, "apply": "1", "reason": ""})
    assert empty.status_code == 200  # the form again, nothing done
    assert User.objects.get(pk=alice.pk).is_active

    done = admin_client.post("/admin/accounts/user/", {**data, "apply": "1", "reason": "spam"})
    alice.refresh_from_db()
    assert done.status_code == 302
    assert alice.is_suspended and not alice.is_active and alice.suspended_reason == "spam"
    assert AuditEntry.objects.get(action="user.suspend").reason == "spam"

    admin_client.post(
        "/admin/accounts/user/", {"action": "unsuspend_members", ACTION_CHECKBOX_NAME: [alice.pk]}
    )
    assert User.objects.get(pk=alice.pk).is_active
    assert AuditEntry.objects.filter(action="user.unsuspend").count() == 1


def test_grant_invitations_bulk_action(admin_client, alice, bob):
    """Granting invitations to several members at once adds to each quota, audited per member."""
    data = {
        "action": "grant_invitations",
        ACTION_CHECKBOX_NAME: [alice.pk, bob.pk],
        "apply": "1",
        "count": "3",
        "reason": "event",
    }
    admin_client.post("/admin/accounts/user/", data)

    assert set(
        User.objects.filter(pk__in=[alice.pk, bob.pk]).values_list("invitations_left", flat=True)
    ) == {5}
    assert AuditEntry.objects.filter(action="user.grant_invitations").count() == 2


def test_waitlist_send_invitation_action(admin_client, mailoutbox):
    """One action sends an invitation to a waitlisted email."""
    entry = WaitlistEntry.objects.create(email="v@example.org")

    admin_client.post(
        "/admin/accounts/waitlistentry/",
        {"action": "send_invitation", ACTION_CHECKBOX_NAME: [entry.pk]},
    )

    entry.refresh_from_db()
    assert entry.invitation and entry.invitation.state == Invitation.State.PENDING
    assert AuditEntry.objects.filter(action="waitlist.invite").count() == 1


def test_admin_pages_render(admin_client, alice, invitation):
    """Invitation, waitlist and audit log admin pages render; the audit log is read-only."""
    for url in [
        "/admin/accounts/invitation/", f"/admin/accounts/invitation/{invitation.pk}/change/",
        "/admin/accounts/waitlistentry/", "/admin/accounts/auditentry/",
        f"/admin/accounts/user/{alice.pk}/change/",
    ]:  # fmt: skip
        assert admin_client.get(url).status_code == 200, url
    assert admin_client.get("/admin/accounts/auditentry/add/").status_code == 403

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from accounts import errors, selectors, services
from accounts.models import AuditEntry, Follow, Invitation, User

pytestmark = pytest.mark.django_db


def test_new_member_gets_the_configured_quota(make_member, settings):
    """The default quota comes from SALON_INVITATION_QUOTA."""
    settings.SALON_INVITATION_QUOTA = 3
    assert make_member("zed").invitations_left == 3


def test_creating_invitations_exhausts_the_quota(alice):
    """Two invitations by default; the third is refused and nothing is created."""
    services.invitation_create(inviter=alice)
    services.invitation_create(inviter=alice, email="friend@Example.ORG")

    with pytest.raises(errors.QuotaExhausted):
        services.invitation_create(inviter=alice)

    assert Invitation.objects.filter(inviter=alice).count() == 2
    assert User.objects.get(pk=alice.pk).invitations_left == 0
    assert Invitation.objects.filter(email="friend@example.org").exists()


def test_revoking_gives_the_invitation_back(alice):
    """Revoking an unused invitation returns it to the quota and kills the link."""
    first = services.invitation_create(inviter=alice)
    services.invitation_create(inviter=alice)

    services.invitation_revoke(invitation=first, by=alice)

    assert User.objects.get(pk=alice.pk).invitations_left == 1
    assert Invitation.objects.get(pk=first.pk).state == Invitation.State.REVOKED
    with pytest.raises(errors.InvalidInvitation) as exc:
        services.invitation_check(token=first.token)
    assert exc.value.code == "invitation_revoked"
    services.invitation_create(inviter=alice)  # the returned invitation can be used again


def test_revoking_twice_is_an_invalid_transition(invitation, alice):
    """A revoked invitation cannot be revoked again, and the quota is refunded only once."""
    services.invitation_revoke(invitation=invitation, by=alice)
    with pytest.raises(errors.InvalidTransition):
        services.invitation_revoke(invitation=invitation, by=alice)
    assert User.objects.get(pk=alice.pk).invitations_left == 2


def test_only_the_inviter_may_revoke(invitation, bob):
    """Another member cannot revoke someone else's invitation."""
    with pytest.raises(errors.NotFound):
        services.invitation_revoke(invitation=invitation, by=bob)
    assert Invitation.objects.get(pk=invitation.pk).state == Invitation.State.PENDING


def test_expiry_marks_due_invitations_and_refunds(alice):
    """Invitations past their expiry become expired and return to the quota."""
    old = services.invitation_create(inviter=alice)
    fresh = services.invitation_create(inviter=alice)
    Invitation.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert services.invitations_expire_due() == 1

    assert Invitation.objects.get(pk=old.pk).state == Invitation.State.EXPIRED
    assert Invitation.objects.get(pk=fresh.pk).state == Invitation.State.PENDING
    assert User.objects.get(pk=alice.pk).invitations_left == 1


def test_invitation_expires_after_the_configured_days(alice, settings):
    """The expiry is SALON_INVITATION_TTL_DAYS after creation."""
    settings.SALON_INVITATION_TTL_DAYS = 3
    invitation = services.invitation_create(inviter=alice)
    assert timedelta(days=2, hours=23) < invitation.expires_at - timezone.now() <= timedelta(days=3)


def test_invalid_email_on_invitation_is_refused(alice):
    """A malformed address gives a clear error and does not consume quota."""
    with pytest.raises(errors.AccountsError):
        services.invitation_create(inviter=alice, email="not-an-email")
    assert User.objects.get(pk=alice.pk).invitations_left == 2


def test_follow_and_unfollow(alice, bob):
    """Following is idempotent, shows up in the selectors, and unfollowing removes it."""
    services.follow_create(follower=alice, followee=bob)
    services.follow_create(follower=alice, followee=bob)

    assert selectors.is_following(follower=alice, followee=bob)
    assert not selectors.is_following(follower=bob, followee=alice)
    assert selectors.following_ids(user=alice) == {bob.pk}
    assert selectors.profile_counts(user=bob)["followers"] == 1

    services.follow_delete(follower=alice, followee=bob)
    assert not selectors.is_following(follower=alice, followee=bob)


def test_cannot_follow_yourself(alice):
    """Self-follows are refused."""
    with pytest.raises(errors.AccountsError):
        services.follow_create(follower=alice, followee=alice)


def test_block_ends_follows_and_prevents_new_ones(alice, bob):
    """After a block, follows in both directions are gone and neither can follow the other."""
    services.follow_create(follower=alice, followee=bob)
    services.follow_create(follower=bob, followee=alice)

    services.block_create(blocker=alice, blocked=bob)

    assert not Follow.objects.exists()
    assert selectors.is_blocked_between(user=alice, other=bob)
    assert selectors.is_blocked_between(user=bob, other=alice)
    with pytest.raises(errors.PermissionDenied):
        services.follow_create(follower=bob, followee=alice)
    with pytest.raises(errors.PermissionDenied):
        services.follow_create(follower=alice, followee=bob)


def test_blocked_member_cannot_see_the_blockers_profile(alice, bob):
    """Profile content is hidden from the blocked member, not from the blocker."""
    services.block_create(blocker=alice, blocked=bob)

    assert not selectors.profile_visible_to(owner=alice, viewer=bob)
    assert selectors.profile_visible_to(owner=bob, viewer=alice)


def test_unblock_lifts_the_rule(alice, bob):
    """Unblocking allows following again."""
    services.block_create(blocker=alice, blocked=bob)
    services.block_delete(blocker=alice, blocked=bob)

    assert not selectors.is_blocked_between(user=alice, other=bob)
    services.follow_create(follower=bob, followee=alice)


def test_suspend_requires_a_reason_and_staff(alice, bob, staff):
    """No reason or a non-staff actor is refused and leaves the member active."""
    with pytest.raises(errors.AccountsError):
        services.user_suspend(user=alice, by=staff, reason="  ")
    with pytest.raises(errors.PermissionDenied):
        services.user_suspend(user=alice, by=bob, reason="spam")
    alice.refresh_from_db()
    assert alice.is_active and not alice.is_suspended


def test_suspend_and_unsuspend_are_audited(alice, staff):
    """Suspension deactivates the account, unsuspension restores it, each leaves an audit entry."""
    services.user_suspend(user=alice, by=staff, reason="harassment")
    alice.refresh_from_db()
    assert alice.is_suspended and not alice.is_active
    assert alice.suspended_reason == "harassment" and alice.suspended_by == staff
    with pytest.raises(errors.InvalidTransition):
        services.user_suspend(user=alice, by=staff, reason="again")

    services.user_unsuspend(user=alice, by=staff)
    alice.refresh_from_db()
    assert alice.is_active and not alice.is_suspended

    entries = list(AuditEntry.objects.order_by("created_at", "id"))
    assert [e.action for e in entries] == ["user.suspend", "user.unsuspend"]
    assert entries[0].reason == "harassment"
    assert entries[0].target_type == ContentType.objects.get_for_model(User)
    assert entries[0].target_id == str(alice.pk) and entries[0].actor == staff


def test_grant_invitations_adds_to_quota_and_audits(alice, staff):
    """Admins grant extra invitations; the grant is recorded with its count."""
    services.user_grant_invitations(user=alice, by=staff, count=5, reason="community host")

    assert User.objects.get(pk=alice.pk).invitations_left == 7
    entry = AuditEntry.objects.get(action="user.grant_invitations")
    assert entry.extra == {"count": 5} and entry.reason == "community host"


def test_audit_record_accepts_any_target(alice, invitation):
    """The audit log is generic: any model, or no target at all."""
    services.audit_record(actor=alice, action="test.thing", target=invitation, extra={"a": 1})
    services.audit_record(actor=None, action="system.tick", target=None)

    entry = AuditEntry.objects.get(action="test.thing")
    assert entry.target_type.model == "invitation" and entry.target_id == str(invitation.pk)


def test_waitlist_join_is_idempotent(db):
    """Joining twice with differently cased email keeps one entry."""
    first = services.waitlist_join(email="Visitor@Example.org", note="hi")
    second = services.waitlist_join(email="Visitor@example.ORG")
    assert first.pk == second.pk


def test_waitlist_invite_sends_an_invitation_without_quota(
    staff, mailoutbox, django_capture_on_commit_callbacks
):
    """Staff invite a waitlisted email in one step; it is mailed and audited."""
    entry = services.waitlist_join(email="visitor@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        invitation = services.waitlist_invite(entry=entry, by=staff, base_url="http://testserver")

    assert invitation.email == "visitor@example.org" and invitation.valid
    assert User.objects.get(pk=staff.pk).invitations_left == 2
    assert invitation.token in mailoutbox[0].body
    assert AuditEntry.objects.filter(action="waitlist.invite").count() == 1
    with pytest.raises(errors.InvalidTransition):
        services.waitlist_invite(entry=entry, by=staff)


def test_voice_tweet_count_does_not_crash(alice):
    """The profile counts include voice tweets whether or not that app has models yet."""
    assert selectors.profile_counts(user=alice)["voice_tweets"] == 0


def test_expiry_task_runs_the_service(alice):
    """The beat task expires due invitations through the same service."""
    from accounts.tasks import expire_invitations

    invitation = services.invitation_create(inviter=alice)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now())

    assert expire_invitations.delay().get() == 1
    assert Invitation.objects.get(pk=invitation.pk).state == Invitation.State.EXPIRED


def test_seed_demo_creates_follows_and_invitations_idempotently():
    """seed_demo gives demo members an inviter, an invitation and follows, once."""
    from django.core.management import call_command

    call_command("seed_demo", force=True)
    call_command("seed_demo", force=True)

    alice = User.objects.get(username="alice")
    assert alice.invited_by.username == "admin"
    assert Invitation.objects.filter(inviter=alice).count() == 1
    assert selectors.following_ids(user=alice) == {User.objects.get(username="bob").pk}
    assert Follow.objects.count() == 3

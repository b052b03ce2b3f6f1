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


# --- Moderation queue and reports -------------------------------------------------------------

QUEUE = "/admin/accounts/moderationqueueitem/"


def _report(reporter, kind, target, reason="spam"):
    from accounts import services

    return services.report_create(reporter=reporter, target_kind=kind, target=target, reason=reason)


def test_queue_lists_each_reported_thing_once_with_its_count(admin_client, alice, bob, make_member):
    """The queue shows one row per target, most reported first, with counts and reasons."""
    from tests.voicetweets.factories import ready_tweet

    tweet = ready_tweet(bob)
    for name in ("carol", "dave"):
        _report(make_member(name), "voicetweet", tweet.pk, reason="hate")
    _report(alice, "voicetweet", tweet.pk, reason="spam")
    _report(alice, "member", "bob", reason="impersonation")

    page = admin_client.get(QUEUE)

    assert page.status_code == 200
    rows = page.context["cl"].result_list
    assert [(r.target_kind, r.open_count) for r in rows] == [("voicetweet", 3), ("member", 1)]
    html = page.content.decode()
    assert "Hate speech ×2, Spam or scam" in html and "Impersonation" in html
    assert f"/admin/voicetweets/voicetweet/{tweet.pk}/change/" in html
    history = admin_client.get(
        "/admin/accounts/report/", {"target_kind": "voicetweet", "target_id": tweet.pk}
    )
    assert history.status_code == 200 and len(history.context["cl"].result_list) == 3
    assert admin_client.get("/admin/accounts/report/add/").status_code == 403


def test_hide_action_asks_for_a_reason_then_hides_and_closes_the_reports(admin_client, alice, bob):
    """From the queue, 'hide' hides the voice tweet at once; the queue empties; it is audited."""
    from tests.voicetweets.factories import ready_tweet
    from voicetweets.models import VoiceTweet

    tweet = ready_tweet(bob)
    filed = _report(alice, "voicetweet", tweet.pk)
    data = {"action": "hide_voicetweet", ACTION_CHECKBOX_NAME: [filed.pk]}

    form = admin_client.post(QUEUE, data)
    assert form.status_code == 200 and b"reason" in form.content
    done = admin_client.post(QUEUE, {**data, "apply": "1", "reason": "scam links"})

    assert done.status_code == 302
    assert VoiceTweet.objects.get(pk=tweet.pk).is_hidden
    assert not admin_client.get(QUEUE).context["cl"].result_list
    assert {"voicetweet.hide", "report.act"} <= set(
        AuditEntry.objects.values_list("action", flat=True)
    )


def test_suspend_action_suspends_the_member_answerable(admin_client, alice, bob):
    """'Suspend member' on a voice tweet's report suspends its author."""
    from tests.voicetweets.factories import ready_tweet

    filed = _report(alice, "voicetweet", ready_tweet(bob).pk)

    admin_client.post(
        QUEUE,
        {"action": "suspend_member", ACTION_CHECKBOX_NAME: [filed.pk], "apply": "1",
         "reason": "spam ring"},
    )  # fmt: skip

    assert User.objects.get(pk=bob.pk).is_suspended
    assert AuditEntry.objects.get(action="user.suspend").reason == "spam ring"


def test_end_space_action_ends_the_live_space(admin_client, alice):
    """'End space' from the queue ends a reported live space (sockets: see test_reports)."""
    from spaces.models import Space
    from tests.spaces.factories import make_live_space
    from tests.spaces.factories import make_member as make_host

    space = make_live_space(make_host("hana", host=True))
    filed = _report(alice, "space", space.pk, reason="hate")

    response = admin_client.post(
        QUEUE,
        {"action": "end_space", ACTION_CHECKBOX_NAME: [filed.pk], "apply": "1", "reason": "hate"},
    )

    assert response.status_code == 302
    assert Space.objects.get(pk=space.pk).state == Space.State.ENDED
    assert AuditEntry.objects.filter(action="space.end").count() == 1


def test_a_wrong_action_shows_an_error_and_changes_nothing(admin_client, alice, bob):
    """'End space' on a member report is refused with a message; the report stays open."""
    filed = _report(alice, "member", "bob")

    response = admin_client.post(
        QUEUE,
        {"action": "end_space", ACTION_CHECKBOX_NAME: [filed.pk], "apply": "1", "reason": "x"},
        follow=True,
    )

    assert "Only a space can be ended." in response.content.decode()
    assert admin_client.get(QUEUE).context["cl"].result_list[0].pk == filed.pk


def test_dismiss_action_needs_no_reason(admin_client, alice, bob):
    """Dismissing closes the reports without touching the member; it is audited."""
    from accounts.models import Report

    filed = _report(alice, "member", "bob")

    admin_client.post(
        QUEUE, {"action": "dismiss", ACTION_CHECKBOX_NAME: [filed.pk], "apply": "1", "reason": ""}
    )

    assert Report.objects.get(pk=filed.pk).state == Report.State.DISMISSED
    assert User.objects.get(pk=bob.pk).is_active
    assert AuditEntry.objects.filter(action="report.dismiss").count() == 1


def test_voice_tweet_admin_counts_reports(admin_client, alice, bob, make_member):
    """The voice tweet changelist has a reports column linking to the reports."""
    from tests.voicetweets.factories import ready_tweet

    tweet = ready_tweet(bob)
    quiet = ready_tweet(bob)
    _report(alice, "voicetweet", tweet.pk)
    _report(make_member("carol"), "voicetweet", tweet.pk)

    page = admin_client.get("/admin/voicetweets/voicetweet/", {})

    counts = {t.pk: t.report_count for t in page.context["cl"].result_list}
    assert counts == {tweet.pk: 2, quiet.pk: 0}
    assert f"target_kind=voicetweet&amp;target_id={tweet.pk}" in page.content.decode()
    assert "(2 open)" in page.content.decode()

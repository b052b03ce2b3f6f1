"""Reports and the moderator's actions on them (accounts.services.report_*)."""

import pytest
from django.db import IntegrityError, transaction

from accounts import errors, selectors, services
from accounts.models import AuditEntry, Block, Report
from spaces import services as space_services
from spaces.models import Space
from tests.spaces.factories import make_live_space
from tests.spaces.factories import make_member as make_space_member
from tests.voicetweets.factories import ready_tweet
from voicetweets.models import VoiceTweet

pytestmark = pytest.mark.django_db


def report(reporter, kind, target, reason="spam", note=""):
    return services.report_create(
        reporter=reporter, target_kind=kind, target=target, reason=reason, note=note
    )


def test_a_member_reports_a_voice_tweet_a_member_and_a_space(alice, bob):
    """Each kind of target is stored with the member who answers for it."""
    tweet = ready_tweet(bob)
    host = make_space_member("hana", host=True)
    space = make_live_space(host)

    on_tweet = report(alice, "voicetweet", tweet.pk, note="  selling pills  ")
    on_member = report(alice, "member", "BOB", reason="impersonation")
    on_space = report(alice, "space", str(space.pk), reason="hate")

    assert (on_tweet.target_id, on_tweet.target_user, on_tweet.note) == (
        tweet.pk,
        bob,
        "selling pills",
    )
    assert (on_member.target_id, on_member.target_user) == (bob.pk, bob)
    assert (on_space.target_id, on_space.target_user) == (space.pk, host)
    assert {r.state for r in (on_tweet, on_member, on_space)} == {Report.State.OPEN}


def test_an_ended_space_can_be_reported_for_its_replay_but_not_a_scheduled_one(alice):
    """Live or ended (its replay): yes; scheduled: there is nothing to hear yet."""
    from datetime import timedelta

    from django.utils import timezone

    host = make_space_member("hana", host=True)
    ended = make_live_space(host)
    space_services.space_end(space=ended, by=host)
    scheduled = space_services.space_create(
        host=host, title="Later", scheduled_start=timezone.now() + timedelta(days=1)
    )

    assert report(alice, "space", ended.pk).target_id == ended.pk
    with pytest.raises(errors.InvalidTransition):
        report(alice, "space", scheduled.pk)


def test_reporting_the_same_thing_twice_is_refused(alice, bob):
    """The second report is a 409-style error, and the database alone also refuses it."""
    tweet = ready_tweet(bob)
    first = report(alice, "voicetweet", tweet.pk)

    with pytest.raises(errors.AlreadyReported):
        report(alice, "voicetweet", tweet.pk, reason="hate")
    services.report_dismiss(report=first, by=_staff())
    with pytest.raises(errors.AlreadyReported):
        report(alice, "voicetweet", tweet.pk)  # a dismissed report still counts
    with pytest.raises(IntegrityError), transaction.atomic():
        Report.objects.create(
            reporter=alice, target_kind="voicetweet", target_id=tweet.pk, target_user=bob,
            reason="other",
        )  # fmt: skip
    assert Report.objects.filter(reporter=alice).count() == 1


def test_what_one_cannot_see_or_wrote_oneself_cannot_be_reported(alice, bob, staff):
    """Own posts and oneself are refused; hidden, blocked or missing things are not found."""
    own = ready_tweet(alice)
    hidden = ready_tweet(bob)
    services_hide(hidden, staff)

    with pytest.raises(errors.AccountsError) as refused:
        report(alice, "voicetweet", own.pk)
    assert refused.value.code == "own"
    with pytest.raises(errors.AccountsError):
        report(alice, "member", "alice")
    with pytest.raises(errors.NotFound):
        report(alice, "voicetweet", hidden.pk)
    with pytest.raises(errors.NotFound):
        report(alice, "voicetweet", "not-a-number")
    Block.objects.create(blocker=bob, blocked=alice)
    with pytest.raises(errors.NotFound):
        report(alice, "member", "bob")
    assert not Report.objects.exists()


def test_reason_and_kind_come_from_fixed_lists(alice, bob):
    """An unknown reason or kind, or an overlong note, is refused with a message."""
    with pytest.raises(errors.AccountsError) as reason:
        report(alice, "member", "bob", reason="boring")
    with pytest.raises(errors.AccountsError) as kind:
        report(alice, "planet", "bob")
    with pytest.raises(errors.AccountsError) as note:
        report(alice, "member", "bob", note="x" * 501)

    assert (reason.value.code, kind.value.code, note.value.code) == (
        "reason",
        "target_kind",
        "note",
    )
    assert "spam" in reason.value.message


def test_the_model_constraint_lists_every_reason():
    """The database check and the choices are the same list."""
    from accounts.models import REPORT_REASONS

    assert Report.Reason.values == REPORT_REASONS


def test_queue_groups_open_reports_by_target_with_counts(alice, bob, make_member):
    """One row per target, with its count of open reports; closed ones leave the queue."""
    carol, dave = make_member("carol"), make_member("dave")
    busy, quiet = ready_tweet(bob), ready_tweet(bob)
    for reporter in (alice, carol, dave):
        report(reporter, "voicetweet", busy.pk)
    only = report(alice, "voicetweet", quiet.pk)
    report(carol, "member", "bob")

    rows = {(r.target_kind, r.target_id): r.open_count for r in selectors.report_queue()}
    assert rows == {("voicetweet", busy.pk): 3, ("voicetweet", quiet.pk): 1, ("member", bob.pk): 1}

    services.report_dismiss(report=only, by=_staff())
    assert ("voicetweet", quiet.pk) not in {
        (r.target_kind, r.target_id) for r in selectors.report_queue()
    }


def test_dismissing_closes_every_open_report_on_the_target_and_is_audited(alice, bob, make_member):
    """Dismiss resolves all open reports on the target at once, with an audit entry."""
    staff = _staff()
    first = report(alice, "member", "bob")
    second = report(make_member("carol"), "member", "bob")

    assert services.report_dismiss(report=first, by=staff, reason="banter") == 2

    assert set(Report.objects.values_list("state", flat=True)) == {Report.State.DISMISSED}
    entry = AuditEntry.objects.get(action="report.dismiss")
    assert (entry.actor, entry.target_repr, entry.reason) == (staff, "bob", "banter")
    assert sorted(entry.extra["reports"]) == sorted([first.pk, second.pk])
    assert bob.is_active


def test_only_staff_handle_reports(alice, bob, make_member):
    """A member cannot dismiss or act on reports."""
    filed = report(alice, "member", "bob")
    carol = make_member("carol")

    with pytest.raises(errors.PermissionDenied):
        services.report_dismiss(report=filed, by=carol)
    with pytest.raises(errors.PermissionDenied):
        services.report_act(report=filed, by=carol, action="suspend", reason="x")
    assert Report.objects.get(pk=filed.pk).is_open


def test_hiding_from_a_report_hides_the_tweet_for_others_and_audits_both(alice, bob, staff):
    """'Hide' hides the tweet at once, closes its reports, and the audit log shows both the
    hide and the reports it closed."""
    tweet = ready_tweet(bob)
    filed = report(alice, "voicetweet", tweet.pk)

    services.report_act(report=filed, by=staff, action="hide", reason="spam links")

    tweet.refresh_from_db()
    assert tweet.is_hidden and tweet.hidden_reason == "spam links"
    filed.refresh_from_db()
    assert (filed.state, filed.resolution, filed.resolved_by) == (
        "actioned",
        "voicetweet.hide",
        staff,
    )
    assert AuditEntry.objects.get(action="voicetweet.hide").reason == "spam links"
    assert AuditEntry.objects.get(action="report.act").extra["reports"] == [filed.pk]


def test_suspending_from_a_report_suspends_the_answerable_member(alice, bob, staff):
    """'Suspend' on a voice tweet report suspends its author, audited with the reason."""
    filed = report(alice, "voicetweet", ready_tweet(bob).pk)

    services.report_act(report=filed, by=staff, action="suspend", reason="repeated spam")

    bob.refresh_from_db()
    assert bob.is_suspended and not bob.is_active
    assert AuditEntry.objects.get(action="user.suspend").reason == "repeated spam"
    assert AuditEntry.objects.filter(action="report.act").count() == 1


def test_an_action_that_does_not_fit_the_target_changes_nothing(alice, bob, staff):
    """Hide on a member report, or end on a tweet, fails; the reports stay open."""
    on_member = report(alice, "member", "bob")
    on_tweet = report(alice, "voicetweet", ready_tweet(bob).pk)

    with pytest.raises(errors.ActionFailed):
        services.report_act(report=on_member, by=staff, action="hide", reason="x")
    with pytest.raises(errors.ActionFailed):
        services.report_act(report=on_tweet, by=staff, action="end", reason="x")
    with pytest.raises(errors.AccountsError):
        services.report_act(report=on_tweet, by=staff, action="hide", reason="  ")

    assert set(Report.objects.values_list("state", flat=True)) == {"open"}
    assert not AuditEntry.objects.exists()


def test_a_handled_report_cannot_be_handled_again(alice, bob, staff):
    """The second moderator to act on the same reports gets a clear refusal."""
    filed = report(alice, "member", "bob")
    services.report_dismiss(report=filed, by=staff)

    with pytest.raises(errors.InvalidTransition):
        services.report_act(report=filed, by=staff, action="suspend", reason="late")
    assert bob.is_active


def test_ending_a_space_that_already_ended_fails_and_keeps_the_reports_open(alice, staff):
    """A replay report cannot 'end' the space again; the moderator dismisses or suspends."""
    host = make_space_member("hana", host=True)
    space = make_live_space(host)
    filed = report(alice, "space", space.pk)
    space_services.space_end(space=space, by=host)

    with pytest.raises(errors.ActionFailed):
        services.report_act(report=filed, by=staff, action="end", reason="hate")
    assert Report.objects.get(pk=filed.pk).is_open


def services_hide(tweet: VoiceTweet, staff) -> None:
    from voicetweets.services import voicetweet_hide

    voicetweet_hide(voicetweet=tweet, by=staff, reason="spam")


def _staff():
    from accounts.models import User

    return User.objects.create_user(username="mod", is_staff=True, is_superuser=True)


# --- Acting reaches live sockets --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_ending_a_reported_live_space_closes_every_socket():
    """'End space' from a report sends space.ended to everyone in the room and closes them."""
    from asgiref.sync import sync_to_async

    from tests.spaces.factories import SpaceSocket

    def setup():
        from rest_framework.authtoken.models import Token

        host = make_space_member("hana", host=True)
        listener = make_space_member("leo")
        space = make_live_space(host)
        filed = report(listener, "space", space.pk, reason="hate")
        tokens = [Token.objects.create(user=u).key for u in (host, listener)]
        return space, filed, tokens

    space, filed, tokens = await sync_to_async(setup)()
    sockets = [SpaceSocket(space.pk, token=token) for token in tokens]
    try:
        for socket in sockets:
            await socket.connect()
            await socket.receive_type("snapshot")

        await sync_to_async(services.report_act)(
            report=filed, by=await sync_to_async(_staff)(), action="end", reason="hate speech"
        )

        for socket in sockets:
            assert (await socket.receive_type("space.ended"))["reason"] == "ended_by_admin"
            assert (await socket.receive_close())["code"] == 4410
    finally:
        for socket in sockets:
            await socket.disconnect()
    assert (await sync_to_async(Space.objects.get)(pk=space.pk)).state == "ended"
    actions = await sync_to_async(
        lambda: set(AuditEntry.objects.values_list("action", flat=True))
    )()
    assert actions == {"space.end", "report.act"}


@pytest.mark.django_db(transaction=True)
async def test_suspending_from_a_report_closes_the_members_open_sockets():
    """'Suspend member' closes the member's open sockets at once (4403)."""
    from asgiref.sync import sync_to_async

    from tests.spaces.factories import SpaceSocket

    def setup():
        from rest_framework.authtoken.models import Token

        host = make_space_member("hana", host=True)
        troll = make_space_member("troll")
        space = make_live_space(host)
        filed = report(host, "member", "troll", reason="harassment")
        return space, filed, Token.objects.create(user=troll).key

    space, filed, token = await sync_to_async(setup)()
    socket = SpaceSocket(space.pk, token=token)
    try:
        await socket.connect()
        await socket.receive_type("snapshot")

        await sync_to_async(services.report_act)(
            report=filed, by=await sync_to_async(_staff)(), action="suspend", reason="abuse"
        )

        assert (await socket.receive_close())["code"] == 4403
    finally:
        await socket.disconnect()

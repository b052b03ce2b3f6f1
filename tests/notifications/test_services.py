"""The notifications each app stores and pushes: a new follower, a voice message, a reply, likes
(aggregated), an invitation to speak; and the rules for all of them (not of your own action,
never across a block) in notifications.services."""

import pytest
from rest_framework.test import APIClient

from accounts import services as accounts_services
from accounts.models import Block, Follow
from notifications import selectors, services
from notifications.models import Notification
from spaces import services as spaces_services
from tests.spaces.factories import make_live_space, make_member
from tests.voicetweets.factories import ready_tweet, sine_wav, upload
from voicetweets import services as voicetweets_services

pytestmark = pytest.mark.django_db


def _kinds(user) -> list[tuple[str, str]]:
    return list(Notification.objects.filter(user=user).order_by("pk").values_list("kind", "text"))


# --- Followers -----------------------------------------------------------------------------------


def test_a_new_follower_is_stored_with_a_link_to_their_profile():
    """Following notifies the followee once, linking to the follower; following twice, or
    unfollowing and following again while it is unread, rings no second time."""
    alice, bob = make_member("alice"), make_member("bob")
    accounts_services.follow_create(follower=bob, followee=alice)
    (notification,) = Notification.objects.filter(user=alice)
    assert notification.kind == Notification.Kind.FOLLOWED
    assert notification.url == "/u/bob/"
    assert notification.actor == bob and "bob" in notification.text
    accounts_services.follow_create(follower=bob, followee=alice)
    accounts_services.follow_delete(follower=bob, followee=alice)
    accounts_services.follow_create(follower=bob, followee=alice)
    assert selectors.notifications_unread_count(user=alice) == 1
    assert not Notification.objects.filter(user=bob).exists()


def test_a_blocked_member_cannot_follow_so_nothing_is_stored():
    alice, bob = make_member("alice"), make_member("bob")
    accounts_services.block_create(blocker=alice, blocked=bob)
    with pytest.raises(accounts_services.errors.PermissionDenied):
        accounts_services.follow_create(follower=bob, followee=alice)
    assert not Notification.objects.exists()


# --- The rules every kind obeys ------------------------------------------------------------------


@pytest.mark.parametrize("blocker_is_recipient", [True, False])
def test_blocked_members_never_notify_each_other_whichever_blocked(blocker_is_recipient):
    """The rule sits in notifications.services: one, many and aggregated sends all obey it."""
    alice, bob, carl = make_member("alice"), make_member("bob"), make_member("carl")
    blocker, blocked = (alice, bob) if blocker_is_recipient else (bob, alice)
    Block.objects.create(blocker=blocker, blocked=blocked)
    tweet = ready_tweet(alice)
    kind = Notification.Kind.REPLIED
    assert services.notification_send(user=alice, kind=kind, text="x", actor=bob) is None
    assert (
        services.notifications_send_many(
            user_ids=[alice.pk, carl.pk], kind=kind, text="x", actor=bob
        )
        == 1
    )
    assert (
        services.notification_aggregate(
            user=alice, kind=Notification.Kind.LIKED, actor=bob, target=tweet, url="/", action="a"
        )
        is None
    )
    assert not Notification.objects.filter(user=alice).exists()
    assert Notification.objects.filter(user=carl).count() == 1


def test_nobody_is_notified_of_their_own_action():
    alice = make_member("alice")
    tweet = ready_tweet(alice)
    assert (
        services.notification_send(user=alice, kind="follow.created", text="x", actor=alice) is None
    )
    assert (
        services.notifications_send_many(user_ids=[alice.pk], kind="x", text="x", actor=alice) == 0
    )
    assert voicetweets_services.voicetweet_like(user=alice, voicetweet=tweet) is not False
    assert not Notification.objects.exists()


# --- Likes ---------------------------------------------------------------------------------------


def test_likes_fold_into_one_unread_notification_per_voice_tweet():
    """Two likers make one unread "Carl and 1 other liked"; an unlike and like again counts no
    one twice; a like after it was read starts a fresh one; another tweet has its own."""
    alice, bob, carl, dave = (make_member(n) for n in ("alice", "bob", "carl", "dave"))
    tweet, other = ready_tweet(alice), ready_tweet(alice)
    voicetweets_services.voicetweet_like(user=bob, voicetweet=tweet)
    (notification,) = Notification.objects.filter(user=alice)
    assert notification.kind == Notification.Kind.LIKED
    assert notification.text == "bob liked your voice tweet."
    assert notification.url == f"/voicetweets/{tweet.pk}/"
    voicetweets_services.voicetweet_like(user=carl, voicetweet=tweet)
    voicetweets_services.voicetweet_unlike(user=bob, voicetweet=tweet)
    voicetweets_services.voicetweet_like(user=bob, voicetweet=tweet)
    (notification,) = Notification.objects.filter(user=alice)
    assert notification.text == "carl and 1 other liked your voice tweet."
    assert selectors.notifications_unread_count(user=alice) == 1

    services.notifications_mark_all_read(user=alice)
    voicetweets_services.voicetweet_unlike(user=carl, voicetweet=tweet)
    voicetweets_services.voicetweet_like(user=carl, voicetweet=tweet)  # counted already
    assert selectors.notifications_unread_count(user=alice) == 0
    voicetweets_services.voicetweet_like(user=dave, voicetweet=tweet)
    voicetweets_services.voicetweet_like(user=bob, voicetweet=other)
    assert sorted(
        Notification.objects.filter(user=alice, read_at__isnull=True).values_list("text", flat=True)
    ) == ["bob liked your voice tweet.", "dave liked your voice tweet."]


def test_a_deleted_voice_tweet_takes_its_notifications_with_it():
    alice, bob = make_member("alice"), make_member("bob")
    tweet = ready_tweet(alice)
    voicetweets_services.voicetweet_like(user=bob, voicetweet=tweet)
    voicetweets_services.voicetweet_delete(voicetweet=tweet, by=alice)
    assert not Notification.objects.exists()


# --- Replies and voice messages (through the real pipeline) ---------------------------------------


def test_a_ready_reply_notifies_the_parent_author_with_a_link_to_the_reply(
    django_capture_on_commit_callbacks,
):
    """Only once it is ready; a reply to yourself tells nobody."""
    alice, bob = make_member("alice"), make_member("bob")
    parent = ready_tweet(alice)
    with django_capture_on_commit_callbacks(execute=True):
        reply = voicetweets_services.voicetweet_create(
            author=bob, upload=upload(sine_wav(2)), parent=parent
        )
    reply.refresh_from_db()
    assert reply.state == reply.State.READY
    (notification,) = Notification.objects.filter(user=alice)
    assert notification.kind == Notification.Kind.REPLIED
    assert notification.url == f"/voicetweets/{reply.pk}/"
    assert notification.text == "bob replied to your voice tweet."
    with django_capture_on_commit_callbacks(execute=True):
        voicetweets_services.voicetweet_create(
            author=alice, upload=upload(sine_wav(2)), parent=parent
        )
    assert Notification.objects.filter(user=alice).count() == 1


def test_a_block_while_the_reply_is_processing_keeps_it_from_the_parent_author(
    django_capture_on_commit_callbacks,
):
    alice, bob = make_member("alice"), make_member("bob")
    parent = ready_tweet(alice)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        voicetweets_services.voicetweet_create(
            author=bob, upload=upload(sine_wav(2)), parent=parent
        )
    Block.objects.create(blocker=alice, blocked=bob)
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    assert not Notification.objects.filter(user=alice).exists()


def test_a_ready_voice_message_notifies_the_recipient_and_a_rejected_one_does_not(
    django_capture_on_commit_callbacks,
):
    alice, bob = make_member("alice"), make_member("bob")
    Follow.objects.create(follower=alice, followee=bob)
    Follow.objects.create(follower=bob, followee=alice)
    with django_capture_on_commit_callbacks(execute=True):
        voicetweets_services.voicemessage_send(
            sender=alice, recipient=bob, upload=upload(sine_wav(2))
        )
    (notification,) = Notification.objects.filter(user=bob)
    assert notification.kind == Notification.Kind.VOICE_MESSAGE
    assert notification.url == "/messages/alice/"
    assert notification.text == "alice sent you a voice message."
    with django_capture_on_commit_callbacks(execute=True):
        voicetweets_services.voicemessage_send(
            sender=alice, recipient=bob, upload=upload(sine_wav(141))
        )
    assert Notification.objects.filter(user=bob).count() == 1
    assert not Notification.objects.filter(user=alice).exists()


# --- Spaces: an invitation to speak --------------------------------------------------------------


def test_an_invitation_to_speak_waits_in_the_listeners_bell():
    host, bob = make_member("host", host=True), make_member("bob")
    space = make_live_space(host, title="Jazz")
    spaces_services.participant_join(space_id=space.pk, user=host)
    spaces_services.participant_join(space_id=space.pk, user=bob)
    spaces_services.speak_invite(space=space, by=host, user_id=bob.pk)
    spaces_services.speak_invite(space=space, by=host, user_id=bob.pk)  # asked already
    (notification,) = Notification.objects.filter(user=bob)
    assert notification.kind == Notification.Kind.SPEAK_INVITED
    assert notification.url == f"/spaces/{space.pk}/"
    assert "Jazz" in notification.text
    assert list(Notification.objects.filter(space=space)) == [notification]


# --- Mark read ------------------------------------------------------------------------------------


def test_one_notification_is_marked_read_by_its_member_only():
    alice, bob = make_member("alice"), make_member("bob")
    accounts_services.follow_create(follower=bob, followee=alice)
    accounts_services.follow_create(follower=alice, followee=bob)
    mine = Notification.objects.get(user=alice)
    assert not services.notification_mark_read(user=bob, notification_id=mine.pk)
    assert services.notification_mark_read(user=alice, notification_id=mine.pk)
    assert not services.notification_mark_read(user=alice, notification_id=mine.pk)
    assert selectors.notifications_unread_count(user=alice) == 0
    assert selectors.notifications_unread_count(user=bob) == 1
    api = APIClient()
    api.force_authenticate(bob)
    theirs = Notification.objects.get(user=bob)
    assert api.post(f"/api/v1/notifications/{mine.pk}/read/").status_code == 404
    response = api.post(f"/api/v1/notifications/{theirs.pk}/read/")
    assert response.status_code == 200 and response.json() == {"marked": 1, "unread_count": 0}


def test_the_api_lists_every_kind_with_its_link():
    alice, bob = make_member("alice"), make_member("bob")
    tweet = ready_tweet(alice)
    accounts_services.follow_create(follower=bob, followee=alice)
    voicetweets_services.voicetweet_like(user=bob, voicetweet=tweet)
    api = APIClient()
    api.force_authenticate(alice)
    data = api.get("/api/v1/notifications/").json()
    assert data["unread_count"] == 2
    assert {(n["kind"], n["url"]) for n in data["results"]} == {
        ("follow.created", "/u/bob/"),
        ("voicetweet.liked", f"/voicetweets/{tweet.pk}/"),
    }


def test_the_database_holds_one_unread_like_notification_per_voice_tweet():
    """What keeps two first likes at once from making two: the folding service relies on it."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import IntegrityError, transaction

    alice, bob, carl = make_member("alice"), make_member("bob"), make_member("carl")
    tweet = ready_tweet(alice)
    voicetweets_services.voicetweet_like(user=bob, voicetweet=tweet)
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(
            user=alice,
            kind=Notification.Kind.LIKED,
            text="x",
            actor=carl,
            target_type=ContentType.objects.get_for_model(tweet),
            target_id=tweet.pk,
        )
    services.notifications_mark_all_read(user=alice)
    voicetweets_services.voicetweet_like(user=carl, voicetweet=tweet)  # a read one is no bar
    assert Notification.objects.filter(user=alice, kind=Notification.Kind.LIKED).count() == 2

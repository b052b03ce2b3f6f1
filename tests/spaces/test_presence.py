"""Big audiences: listener changes folded into digests, and snapshots that stay small."""

import asyncio
import json

import pytest
from django.utils import timezone

from spaces import selectors, services
from spaces.live.presence import DIGEST_MAX_JOINED, AudiencePresence, Heartbeats
from spaces.models import Participant

from .factories import make_live_space, make_member, put_on_stage


def _joined(user_id: int) -> dict:
    return {"user_id": user_id, "username": f"u{user_id}", "role": "listener"}


class _Digests:
    def __init__(self):
        self.sent: list[tuple[int, dict]] = []
        self.arrived = asyncio.Event()

    def __call__(self, space_id: int, text: str) -> None:
        self.sent.append((space_id, json.loads(text)))
        self.arrived.set()


async def _presence(digests, counts=None):
    presence = AudiencePresence(
        deliver_text=digests,
        load_counts=lambda space_id: counts or {"participant_count": 7, "listener_count": 5},
        interval=0.05,
    )
    await presence.start()
    return presence


async def test_a_wave_of_changes_is_one_digest_with_exact_counts():
    """300 joins and a few leaves noted at once: one digest, the newest 50 joined, no one who
    left listed as joined, and the counts from the database (not from the changes)."""
    digests = _Digests()
    presence = await _presence(digests)
    await presence.watch(3)

    for user_id in range(1, 301):
        presence.note({"space_id": 3, "joined": _joined(user_id), "left": None})
    for user_id in (300, 299, 1000):
        presence.note({"space_id": 3, "joined": None, "left": user_id})
    await asyncio.wait_for(digests.arrived.wait(), timeout=10)
    await presence.stop()

    assert len(digests.sent) == 1
    space_id, event = digests.sent[0]
    assert space_id == 3 and event["type"] == "audience.changed"
    assert (event["participant_count"], event["listener_count"]) == (7, 5)
    assert [p["user_id"] for p in event["joined"]] == list(range(249, 299))
    assert len(event["joined"]) == DIGEST_MAX_JOINED
    assert event["left"] == [299, 300, 1000]
    assert presence.changes_seen == 303 and presence.digests_sent == 1


async def test_rooms_without_local_sockets_are_ignored_and_digests_are_per_room():
    digests = _Digests()
    presence = await _presence(digests)
    await presence.watch(3)
    await presence.watch(4)

    presence.note({"space_id": 4, "joined": _joined(1), "left": None})
    presence.note({"space_id": 9, "joined": _joined(2), "left": None})  # not watched here
    await asyncio.wait_for(digests.arrived.wait(), timeout=10)
    await presence.stop()

    assert [(space_id, e["joined"][0]["user_id"]) for space_id, e in digests.sent] == [(4, 1)]


async def test_changes_reach_the_process_through_its_presence_group(transactional_db):
    """What services send to the space's presence group arrives at the process's channel."""
    from asgiref.sync import sync_to_async

    host = await sync_to_async(make_member)("hana", host=True)
    space = await sync_to_async(make_live_space)(host)
    listener = await sync_to_async(make_member)("leo")
    digests = _Digests()
    presence = AudiencePresence(deliver_text=digests, interval=0.05)
    await presence.start()
    await presence.watch(space.pk)

    await sync_to_async(services.participant_join)(space_id=space.pk, user=listener)
    await asyncio.wait_for(digests.arrived.wait(), timeout=10)
    await presence.stop()

    (_space_id, event), *_ = digests.sent
    assert [p["user_id"] for p in event["joined"]] == [listener.pk]
    # The host's socket never joined: only the listener is in.
    assert (event["participant_count"], event["listener_count"]) == (1, 1)


@pytest.mark.django_db
def test_a_big_rooms_snapshot_lists_who_needs_attention_and_the_newest_listeners():
    host = make_member("hana", host=True)
    space = make_live_space(host)
    services.participant_join(space_id=space.pk, user=host)
    speaker = make_member("sam")
    services.participant_join(space_id=space.pk, user=speaker)
    put_on_stage(space, host, speaker, "speaker")
    crowd = [make_member(f"listener{n:03d}") for n in range(120)]
    now = timezone.now()
    Participant.objects.bulk_create(
        Participant(
            space=space, user=user, role="listener", last_seen=now, connection_count=1,
        )
        for user in crowd
    )  # fmt: skip
    # An early listener raises a hand: listed though not among the newest.
    Participant.objects.filter(space=space, user=crowd[0]).update(hand_raised=True)
    newcomer = make_member("late")
    services.participant_join(space_id=space.pk, user=newcomer)

    snapshot = selectors.space_snapshot(space=space, user=newcomer)

    listed = {p["user_id"] for p in snapshot["participants"]}
    assert {host.pk, speaker.pk, crowd[0].pk, newcomer.pk} <= listed
    listeners = [p for p in snapshot["participants"] if p["role"] == "listener"]
    assert len(listeners) == selectors.SNAPSHOT_LISTENERS + 2  # the sample, the hand, "you"
    assert snapshot["you"]["user_id"] == newcomer.pk
    assert snapshot["space"]["listener_count"] == 121
    assert snapshot["space"]["participant_count"] == 123
    assert snapshot["space"]["speaker_ids"] == [speaker.pk]


async def test_heartbeats_refresh_a_room_in_one_round_and_tell_the_removed(transactional_db):
    """One round refreshes every local participant of the room; a socket whose participant
    was removed meanwhile is told (its consumer closes so the client rejoins)."""
    from datetime import timedelta

    from asgiref.sync import sync_to_async

    host = await sync_to_async(make_member)("hana", host=True)
    space = await sync_to_async(make_live_space)(host)
    stays = await sync_to_async(make_member)("sid")
    removed = await sync_to_async(make_member)("rex")
    for member in (stays, removed):
        await sync_to_async(services.participant_join)(space_id=space.pk, user=member)
    long_ago = timezone.now() - timedelta(minutes=5)
    await sync_to_async(Participant.objects.update)(last_seen=long_ago)
    await sync_to_async(Participant.objects.filter(user=removed).delete)()
    told = asyncio.Event()

    async def gone():
        told.set()

    async def not_gone():
        raise AssertionError("a present participant was told they are gone")

    late = await sync_to_async(make_member)("lou")

    def refresh_while_someone_joins(**kwargs):
        # A socket that joins while the round's query runs was not asked about: not gone.
        heartbeats.add(space.pk, "socket-3", late.pk, not_gone)
        return services.participants_refresh(**kwargs)

    heartbeats = Heartbeats(interval=3600, refresh=refresh_while_someone_joins)
    heartbeats.add(space.pk, "socket-1", stays.pk, not_gone)
    heartbeats.add(space.pk, "socket-2", removed.pk, gone)
    await heartbeats.beat()
    await asyncio.wait_for(told.wait(), timeout=10)
    heartbeats.stop()

    participant = await sync_to_async(Participant.objects.get)(user=stays)
    assert participant.last_seen > long_ago
    assert set(heartbeats.rooms[space.pk]) == {"socket-1", "socket-3"}


@pytest.mark.django_db
def test_a_join_wave_reuses_the_listener_sample_of_a_big_room(django_assert_num_queries):
    """Newcomers of a big room joining within a second share one query for the newest
    listeners; each still gets its own counts, stage and "you"."""
    host = make_member("hana", host=True)
    space = make_live_space(host)
    crowd = [make_member(f"listener{n:03d}") for n in range(60)]
    Participant.objects.bulk_create(
        Participant(space=space, user=user, role="listener", last_seen=timezone.now())
        for user in crowd
    )
    selectors.space_snapshot(space=space, user=crowd[0])
    # The member, the space, who needs attention, and the counts: not the sample.
    with django_assert_num_queries(4):
        second = selectors.space_snapshot(space=space, user=crowd[1])

    assert second["you"]["user_id"] == crowd[1].pk
    listeners = [p for p in second["participants"] if p["role"] == "listener"]
    assert len(listeners) == selectors.SNAPSHOT_LISTENERS + 1  # the sample, and "you"
    assert second["space"]["listener_count"] == 60

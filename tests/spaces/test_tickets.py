"""Join tickets, the shared snapshot, batched listener presence and the join line."""

import re
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import services as accounts_services
from salon_client.client import retry_after_seconds
from spaces import errors, services
from spaces.live import tickets
from spaces.live.joins import JoinGate, JoinsBusy, join_gate, snapshot_cache
from spaces.live.presence import listener_batch
from spaces.models import Participant, SpaceBan

from .factories import SpaceSocket, make_live_space, make_member

pytestmark = pytest.mark.django_db(transaction=True)

db = sync_to_async


@pytest.fixture(autouse=True)
def _batches_by_hand(settings):
    # The tests write the batches themselves (listener_batch().flush()), never a timer.
    settings.SALON_LISTENER_BATCH_SECONDS = 3600


def _issue(space, user, **kwargs) -> str:
    return tickets.ticket_issue(space=space, user=user, **kwargs)["ticket"]


async def _open(space_id: int, ticket: str) -> SpaceSocket:
    socket = SpaceSocket(space_id, path=f"/ws/spaces/{space_id}/?ticket={ticket}")
    return await socket.connect()


@pytest.fixture
async def opened():
    sockets = []

    async def open_(space_id, ticket):
        socket = await _open(space_id, ticket)
        sockets.append(socket)
        return socket

    yield open_
    for socket in sockets:
        await socket.disconnect()


async def _room():
    host = await db(make_member)("hana", host=True)
    space = await db(make_live_space)(host)
    return space, host


async def test_a_ticket_joins_as_listener_and_is_written_with_the_batch(opened):
    """A listener ticket joins with a snapshot at once; the participant row comes with the batch."""
    space, _host = await _room()
    leo = await db(make_member)("leo")
    socket = await opened(space.pk, await db(_issue)(space, leo))
    snapshot = await socket.receive_type("snapshot")
    assert snapshot["you"]["user_id"] == leo.pk and snapshot["you"]["role"] == "listener"
    assert leo.pk in {p["user_id"] for p in snapshot["participants"]}
    assert snapshot["space"]["id"] == space.pk
    await listener_batch().flush()
    row = await db(Participant.objects.get)(space=space, user=leo)
    assert (row.role, row.connection_count) == ("listener", 1)


def test_checking_a_ticket_makes_no_query(django_assert_max_num_queries):
    """The socket's check is signature, expiry, space and the revocation cache: no query."""
    host = make_member("hana", host=True)
    space = make_live_space(host)
    ticket = _issue(space, make_member("leo"))
    with CaptureQueriesContext(connection) as queries:
        checked = tickets.ticket_check_sync(ticket, space_id=space.pk)
    assert checked.role == "listener" and len(queries) == 0


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        ("expired", "join ticket expired; ask for a new one"),
        ("tampered", "invalid join ticket"),
        ("other_space", "this join ticket is for another space"),
        ("garbage", "invalid join ticket"),
    ],
)
async def test_bad_tickets_are_refused(opened, spoil, reason):
    """Expired, tampered, another space's or garbage tickets close 4411 with the reason."""
    space, _host = await _room()
    leo = await db(make_member)("leo")
    space_id = space.pk
    if spoil == "expired":
        ticket = await db(_issue)(space, leo, now=time.time() - 61)
    elif spoil == "tampered":
        ticket = await db(_issue)(space, leo)
        payload, _, rest = ticket.partition(":")
        ticket = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + ":" + rest
    elif spoil == "other_space":
        other = await db(make_live_space)(await db(make_member)("olga", host=True))
        ticket = await db(_issue)(other, leo)
    else:
        ticket = "not-a-ticket"
    close = await (await opened(space_id, ticket)).receive_close()
    assert (close["code"], close["reason"]) == (4411, reason)
    assert not await db(Participant.objects.filter(user=leo).exists)()


async def _ban(space, host, member):
    await db(services.participant_remove)(space=space, by=host, user_id=member.pk, ban=True)


async def _block(space, host, member):
    await db(accounts_services.block_create)(blocker=host, blocked=member)


async def _suspend(space, host, member):
    staff = await db(make_member)("staff")
    staff.is_staff = True
    await db(staff.save)()
    await db(accounts_services.user_suspend)(user=member, by=staff, reason="spam")


@pytest.mark.parametrize("revoke", [_ban, _block, _suspend])
async def test_a_ticket_issued_before_a_ban_block_or_suspension_is_refused(opened, revoke):
    """After a ban, a block by the host or a suspension, the member's unused ticket is refused."""
    space, host = await _room()
    # The host joins with a ticket too: the host's role takes the database path.
    host_socket = await opened(space.pk, await db(_issue)(space, host))
    assert (await host_socket.receive_type("snapshot"))["you"]["role"] == "host"
    troll = await db(make_member)("troll")
    first = await opened(space.pk, await db(_issue)(space, troll))
    await first.receive_type("snapshot")
    await listener_batch().flush()
    spare = await db(_issue)(space, troll)
    await revoke(space, host, troll)
    close = await (await opened(space.pk, spare)).receive_close()
    assert (close["code"], close["reason"]) == (4411, "join ticket revoked; ask for a new one")
    with pytest.raises(errors.SpaceError):
        await db(_issue)(space, troll)


async def test_a_ban_the_ticket_missed_is_caught_by_the_batch(opened):
    """A ban written without revoking the ticket still closes the socket when its batch is
    written (4002): the database stays the authority."""
    space, host = await _room()
    troll = await db(make_member)("troll")
    socket = await opened(space.pk, await db(_issue)(space, troll))
    await socket.receive_type("snapshot")
    await db(SpaceBan.objects.create)(space=space, user=troll, banned_by=host)
    await listener_batch().flush()
    close = await socket.receive_close()
    assert (close["code"], close["reason"]) == (4002, "you were removed from this space")
    assert not await db(Participant.objects.filter(user=troll).exists)()


async def test_a_change_to_the_room_shows_to_the_next_joiner(opened, monkeypatch):
    """The shared snapshot is loaded once and reused until a service changes the room: then the
    next joiner sees the change (a raised hand, recording on), without waiting for it to age."""
    monkeypatch.setattr("spaces.live.joins.SHARED_SNAPSHOT_SECONDS", 3600)
    space, host = await _room()
    await (await opened(space.pk, await db(_issue)(space, host))).receive_type("snapshot")
    leo, kim, mia, ned = [await db(make_member)(n) for n in ("leo", "kim", "mia", "ned")]

    async def join(member) -> dict:
        return await (await opened(space.pk, await db(_issue)(space, member))).receive_type(
            "snapshot"
        )

    await join(leo)
    loads = snapshot_cache().loads
    await join(kim)
    assert snapshot_cache().loads == loads  # nothing changed: the same snapshot
    await listener_batch().flush()
    await db(services.hand_raise)(space=space, user=leo)
    snapshot = await join(mia)
    hands = {p["user_id"]: p["hand_raised"] for p in snapshot["participants"]}
    assert hands[leo.pk] is True
    assert snapshot["you"]["user_id"] == mia.pk
    await db(services.space_set_recording)(space=space, by=host, is_recording=True)
    assert (await join(ned))["space"]["is_recording"] is True


async def test_the_batch_counts_joins_and_leaves(opened):
    """Counts after a batch are exact: joins counted, closed sockets counted out, a socket that
    opened and closed before its batch never written."""
    space, _host = await _room()
    members = [await db(make_member)(f"m{n}") for n in range(4)]
    sockets = []
    for member in members:
        socket = await opened(space.pk, await db(_issue)(space, member))
        await socket.receive_type("snapshot")
        sockets.append(socket)
    await sockets[3].disconnect()  # before its batch
    await listener_batch().flush()
    rows = await db(
        lambda: dict(
            Participant.objects.filter(space=space, role="listener").values_list(
                "user_id", "connection_count"
            )
        )
    )()
    assert rows == {members[0].pk: 1, members[1].pk: 1, members[2].pk: 1}
    await sockets[0].disconnect()
    await listener_batch().flush()
    row = await db(Participant.objects.get)(space=space, user=members[0])
    assert row.connection_count == 0


async def test_a_process_that_dies_leaves_rows_the_sweep_removes(opened, settings):
    """A process gone without writing its closes: nothing refreshes its listeners, and the
    sweep removes them after SALON_SPACE_STALE_SECONDS, as for any dead process."""
    from datetime import timedelta

    from django.utils import timezone

    space, _host = await _room()
    leo = await db(make_member)("leo")
    socket = await opened(space.pk, await db(_issue)(space, leo))
    await socket.receive_type("snapshot")
    await listener_batch().flush()
    later = timezone.now() + timedelta(seconds=settings.SALON_SPACE_STALE_SECONDS + 1)
    listener_batch().rooms.clear()  # the process dies: its pending closes are lost
    await db(services.space_sweep)(now=later)
    assert not await db(Participant.objects.filter(user=leo).exists)()


async def test_a_full_join_line_closes_1013_with_retry_after(opened, settings):
    """Past the joins in progress and the line, a socket is closed 1013 "retry after N s", and
    the client reads N from it."""
    settings.SALON_JOIN_CONCURRENCY = 1
    settings.SALON_JOIN_QUEUE = 0
    space, _host = await _room()
    ticket = await db(_issue)(space, await db(make_member)("leo"))
    async with join_gate().admit():  # the one slot is taken
        close = await (await opened(space.pk, ticket)).receive_close()
    assert close["code"] == 1013
    assert re.fullmatch(r"retry after \d+ s", close["reason"])
    assert retry_after_seconds(1013, close["reason"]) >= 1


async def test_the_join_line_is_bounded():
    """With one slot and a line of one, a second join waits and a third is refused."""
    gate = JoinGate(concurrency=1, queue=1)
    async with gate.admit():
        import asyncio

        waiting = asyncio.ensure_future(gate.admit().__aenter__())
        while gate.waiting == 0:
            await asyncio.sleep(0)
        with pytest.raises(JoinsBusy):
            async with gate.admit():
                pass
    await waiting
    assert gate.active == 1 and gate.refused == 1


def test_the_api_gives_tickets_to_members_who_may_join(client):
    """POST /api/v1/spaces/{id}/ticket/ gives a ticket; a banned member gets 403."""
    host = make_member("hana", host=True)
    space = make_live_space(host)
    leo = make_member("leo")
    client.force_login(leo)
    response = client.post(f"/api/v1/spaces/{space.pk}/ticket/")
    assert response.status_code == 200
    assert response.json()["role"] == "listener" and response.json()["expires_in"] == 60
    assert tickets.ticket_check_sync(response.json()["ticket"], space_id=space.pk).user_id == leo.pk
    SpaceBan.objects.create(space=space, user=leo, banned_by=host)
    assert client.post(f"/api/v1/spaces/{space.pk}/ticket/").status_code == 403

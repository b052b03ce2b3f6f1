"""The host away (spaces.services: _host_away, space_host_take_over): a host whose browser just
closes is away at once, the room and the hallway say so, and a co-host may take over."""

import pytest

from spaces import errors, selectors, services
from spaces.models import Participant, Space

from .factories import make_live_space, make_member, put_on_stage

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """The space events services hand to the channel layer (run on commit here)."""
    events = []
    # _broadcast (spaces/services/_shared.py) looks _send_now up in its own module.
    monkeypatch.setattr(
        "spaces.services._shared._send_now", lambda space_id, event: events.append(event)
    )
    return events


@pytest.fixture
def room(sent, django_capture_on_commit_callbacks):
    """A live space with its host connected and a co-host on stage."""
    host = make_member("hana", host=True)
    cohost = make_member("cora")
    space = make_live_space(host)
    with django_capture_on_commit_callbacks(execute=True):
        services.participant_join(space_id=space.pk, user=host)
        services.participant_join(space_id=space.pk, user=cohost)
        put_on_stage(space, host, cohost, "cohost")
    sent.clear()
    return {"space": space, "host": host, "cohost": cohost}


def test_the_hosts_last_connection_closing_makes_the_host_away(
    room, sent, django_capture_on_commit_callbacks
):
    """Two tabs: closing one changes nothing; closing the last one marks the host away at once
    (before any sweep), in the snapshot and as host.away; reconnecting brings them back."""
    space, host = room["space"], room["host"]
    services.participant_join(space_id=space.pk, user=host)  # a second tab
    with django_capture_on_commit_callbacks(execute=True):
        services.participant_disconnect(space_id=space.pk, user_id=host.pk)
    space.refresh_from_db()
    assert space.host_absent_since is None and sent == []

    with django_capture_on_commit_callbacks(execute=True):
        services.participant_disconnect(space_id=space.pk, user_id=host.pk)
    space.refresh_from_db()
    assert space.host_absent_since is not None
    assert sent == [{"type": "host.away", "user_id": host.pk}]
    assert selectors.space_data(space)["host_away"] is True
    # A second close (a late socket) does not announce it again.
    with django_capture_on_commit_callbacks(execute=True):
        services.participant_disconnect(space_id=space.pk, user_id=host.pk)
    assert len(sent) == 1

    with django_capture_on_commit_callbacks(execute=True):
        services.participant_join(space_id=space.pk, user=host)
    space.refresh_from_db()
    assert space.host_absent_since is None
    assert sent[-1] == {"type": "host.back", "user_id": host.pk}


def test_a_cohost_takes_over_at_once_while_the_host_is_away(
    room, sent, django_capture_on_commit_callbacks
):
    """No grace period to wait out: the co-host becomes the host, the host who is still in the
    room (not swept yet) becomes a co-host, and the room has one host."""
    space, host, cohost = room["space"], room["host"], room["cohost"]
    services.participant_disconnect(space_id=space.pk, user_id=host.pk)
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.space_host_take_over(space=space, by=cohost)
    space.refresh_from_db()
    assert (space.state, space.host_id, space.host_absent_since) == ("live", cohost.pk, None)
    roles = dict(Participant.objects.filter(space=space).values_list("user_id", "role"))
    assert roles == {cohost.pk: "host", host.pk: "cohost"}
    assert [(e["type"], e.get("user_id"), e.get("role")) for e in sent] == [
        ("role.changed", host.pk, "cohost"),
        ("role.changed", cohost.pk, "host"),
        ("host.back", cohost.pk, None),
    ]


def test_no_take_over_while_the_host_is_here_nor_by_anyone_but_a_cohost(room):
    """The host present: refused (invalid_state). A speaker or a listener: refused (forbidden)."""
    space, host, cohost = room["space"], room["host"], room["cohost"]
    with pytest.raises(errors.SpaceStateError):
        services.space_host_take_over(space=space, by=cohost)
    services.participant_disconnect(space_id=space.pk, user_id=host.pk)
    speaker, listener = make_member("sam"), make_member("leo")
    for member in (speaker, listener):
        services.participant_join(space_id=space.pk, user=member)
    put_on_stage(space, host, speaker, "speaker")
    for member in (speaker, listener):
        with pytest.raises(errors.SpaceForbidden):
            services.space_host_take_over(space=space, by=member)
    space.refresh_from_db()
    assert space.host_id == host.pk


def test_the_grace_period_counts_from_the_hosts_last_close():
    """The sweep removing an away host later does not restart the grace period."""
    host = make_member("hana", host=True)
    space = make_live_space(host)
    services.participant_join(space_id=space.pk, user=host)
    services.participant_disconnect(space_id=space.pk, user_id=host.pk)
    away_since = Space.objects.get(pk=space.pk).host_absent_since
    from datetime import timedelta

    from django.utils import timezone

    assert services.space_sweep(now=timezone.now() + timedelta(seconds=20))["removed"] == 1
    assert Space.objects.get(pk=space.pk).host_absent_since == away_since


def test_the_api_take_over_calls_the_same_rule(room):
    """POST host-take-over: 409 while the host is here, 200 with the new host once away."""
    from rest_framework.test import APIClient

    space, host, cohost = room["space"], room["host"], room["cohost"]
    api = APIClient()
    api.force_authenticate(cohost)
    url = f"/api/v1/spaces/{space.pk}/host-take-over/"
    response = api.post(url)
    assert response.status_code == 409, response.content
    services.participant_disconnect(space_id=space.pk, user_id=host.pk)
    response = api.post(url)
    assert response.status_code == 200
    assert response.json()["host"]["id"] == cohost.pk
    assert response.json()["host_away"] is False

"""One host cannot empty everyone else's hallway: lists filter visibility in the query, before
they are cut to a length, and a member hosts at most SALON_SPACE_MAX_OPEN_PER_HOST live and
scheduled spaces at once.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from spaces import errors, selectors, services
from spaces.models import Space
from tests.spaces.factories import make_live_space, make_member

pytestmark = pytest.mark.django_db

# More hidden rows than any list read before filtering (the API read 200, the hallway 60).
FLOOD = 205


@pytest.fixture
def flooded():
    """Mallory's flood of live closed spaces, newer than the one open space of another host.

    Put straight into the table: they stand for spaces created before the cap, or under a cap
    an operator raised; the cap itself is tested below."""
    host = make_member("hana", host=True)
    open_space = make_live_space(host, title="Open to all")
    mallory = make_member("mallory", host=True)
    later = timezone.now() + timedelta(seconds=1)
    Space.objects.bulk_create(
        Space(
            host=mallory,
            title=f"hidden {n}",
            visibility=Space.Visibility.CLOSED,
            state=Space.State.LIVE,
            started_at=later + timedelta(milliseconds=n),
        )
        for n in range(FLOOD)
    )
    return open_space, make_member("mo")


def test_a_flood_of_closed_spaces_does_not_empty_the_hallway(flooded):
    """The hallway used to be [] for everyone but mallory: it read 60 rows, all hidden."""
    open_space, member = flooded

    assert [space.pk for space in selectors.hallway(user=member)] == [open_space.pk]


def test_nor_the_pages_that_show_it(flooded):
    """The home page and the spaces page show the open space through the flood."""
    open_space, member = flooded
    page = Client()
    page.force_login(member)

    for url in ("/", "/spaces/"):
        content = page.get(url).content.decode()
        assert open_space.title in content, url
        assert "hidden 0" not in content


def test_nor_the_api_list(flooded):
    """GET /api/v1/spaces/ read 200 rows before filtering."""
    open_space, member = flooded
    api = APIClient()
    api.force_authenticate(member)

    listed = api.get("/api/v1/spaces/", {"state": "live"}).json()

    assert [space["id"] for space in listed] == [open_space.pk]


def test_the_flooding_host_still_sees_their_own(flooded):
    """The filter keeps the host's own closed spaces for the host."""
    _open_space, _member = flooded
    mallory = Space.objects.filter(title="hidden 0").get().host

    assert all(s.host_id == mallory.pk for s in selectors.hallway(user=mallory, limit=10))


def _create_through_api(api, n: int, **extra):
    return api.post("/api/v1/spaces/", {"title": f"space {n}", "visibility": "closed", **extra})


def test_a_host_may_have_only_so_many_live_and_scheduled_spaces(settings):
    """Past the cap the API answers 409 with the reason, live or scheduled alike; ending or
    cancelling one makes room again."""
    settings.SALON_SPACE_MAX_OPEN_PER_HOST = 3
    mallory = make_member("mallory", host=True)
    api = APIClient()
    api.force_authenticate(mallory)
    soon = (timezone.now() + timedelta(hours=2)).isoformat()

    created = [
        _create_through_api(api, 0).status_code,
        _create_through_api(api, 1, scheduled_start=soon).status_code,
        _create_through_api(api, 2).status_code,
    ]
    refused_live = _create_through_api(api, 3)
    refused_scheduled = _create_through_api(api, 4, scheduled_start=soon)

    assert created == [201, 201, 201]
    for refused in (refused_live, refused_scheduled):
        assert refused.status_code == 409
        assert refused.json()["code"] == "open_space_limit"
        assert "3 live or scheduled spaces" in refused.json()["detail"]
    assert Space.objects.filter(host=mallory).count() == 3

    live = Space.objects.filter(host=mallory, state=Space.State.LIVE).first()
    services.space_end(space=live, by=mallory)
    assert _create_through_api(api, 5).status_code == 201


def test_the_cap_holds_on_the_html_form_too(settings):
    """The form answers with a 4xx and the reason, not a silent redirect or a 500."""
    settings.SALON_SPACE_MAX_OPEN_PER_HOST = 1
    mallory = make_member("mallory", host=True)
    make_live_space(mallory)
    page = Client()
    page.force_login(mallory)

    response = page.post("/spaces/new/", {"title": "one more", "visibility": "closed"})

    assert response.status_code == 409
    assert "1 live or scheduled spaces" in response.content.decode()
    assert Space.objects.filter(host=mallory).count() == 1


@pytest.mark.django_db(transaction=True)
def test_creations_at_once_cannot_pass_the_cap_together(settings):
    """Six creations racing for the last place: exactly one wins (the host's row is locked)."""
    settings.SALON_SPACE_MAX_OPEN_PER_HOST = 2
    mallory = make_member("mallory", host=True)
    make_live_space(mallory)
    start = threading.Barrier(6)
    outcomes: list[str] = []

    def create(n: int) -> None:
        try:
            start.wait()
            services.space_create(host=mallory, title=f"race {n}")
            outcomes.append("created")
        except errors.OpenSpaceLimit:
            outcomes.append("refused")
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=create, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["created"] + ["refused"] * 5
    assert Space.objects.filter(host=mallory).count() == 2

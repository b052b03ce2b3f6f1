"""Admin for replays: what retention needs to show, holds and deletion through services."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model

from accounts.models import AuditEntry
from spaces.models import Replay

from .factories import make_member, make_replay

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    staff = get_user_model().objects.create_user(
        username="staff", password="x-pass-12345", is_staff=True, is_superuser=True
    )
    client.force_login(staff)
    return client


def test_replay_changelist_shows_size_duration_retention_date_and_hold(admin_client):
    """The list shows each replay's size, duration, retention date and whether it is held."""
    replay = make_replay(make_member("hana", host=True), seconds=3.0)

    page = admin_client.get("/admin/spaces/replay/").content.decode()
    detail = admin_client.get(f"/admin/spaces/replay/{replay.pk}/change/").content.decode()

    for column in ("size", "duration", "retention date", "held"):
        assert column in page.lower()
    assert "0:03" in page and "KB" in page
    assert replay.delete_after.strftime("%Y") in page
    assert f'src="/spaces/{replay.space_id}/replay/audio"' in detail


def test_hold_action_asks_for_a_reason_then_holds_and_audits(admin_client):
    """Hold for review: a reason form first; then the replay is held and the hold audited."""
    replay = make_replay(make_member("hana", host=True))
    data = {"action": "hold", ACTION_CHECKBOX_NAME: [replay.pk]}
    assert b"reason" in admin_client.post("/admin/spaces/replay/", data).content

    admin_client.post("/admin/spaces/replay/", {**data, "apply": "1", "reason": "reported"})
    replay.refresh_from_db()
    assert (replay.held, replay.hold_reason) == (True, "reported")
    assert AuditEntry.objects.get(action="replay.hold").reason == "reported"

    admin_client.post("/admin/spaces/replay/", {**data, "action": "release"})
    replay.refresh_from_db()
    assert not replay.held


def test_delete_now_removes_the_file(admin_client, django_capture_on_commit_callbacks):
    """Admins delete through the service: the row and the file go, audited."""
    replay = make_replay(make_member("hana", host=True))
    data = {"action": "delete_now", ACTION_CHECKBOX_NAME: [replay.pk]}
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/spaces/replay/", data)
    assert not Replay.objects.exists()
    assert not replay.directory_path.exists()
    assert AuditEntry.objects.filter(action="replay.delete").exists()

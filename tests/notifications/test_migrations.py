"""The move of Notification from spaces to this app keeps its table and its rows, and a row
about a space points at that space afterwards."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from notifications.models import Notification

BEFORE = [("spaces", "0008_notification_followed_live"), ("notifications", None)]


def test_the_table_is_the_one_spaces_made():
    assert Notification._meta.db_table == "spaces_notification"


@pytest.mark.django_db(transaction=True)
def test_a_row_made_before_the_move_is_there_after_it_with_its_space_as_target():
    """Migrate back to before the move, store a notification through the old model, migrate
    forward: the same row, its fields, and its space as the target."""
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate(BEFORE)
        old = executor.loader.project_state(BEFORE[0]).apps
        # The accounts table is as it is now: only the spaces side went back.
        user = get_user_model().objects.create_user(username="bob", password="x-pass-12345")
        space = old.get_model("spaces", "Space").objects.create(
            host_id=user.pk, title="Jazz", state="live", started_at=timezone.now()
        )
        before = old.get_model("spaces", "Notification").objects.create(
            user_id=user.pk,
            kind="space.followed_live",
            text="Alice is live",
            url="/s/",
            space=space,
        )
        executor = MigrationExecutor(connection)
        executor.migrate(leaves)
    finally:
        MigrationExecutor(connection).migrate(leaves)
    after = Notification.objects.get(pk=before.pk)
    assert (after.user_id, after.kind, after.text, after.url, after.read_at) == (
        user.pk,
        "space.followed_live",
        "Alice is live",
        "/s/",
        None,
    )
    assert after.target_type.model_class()._meta.label == "spaces.Space"
    assert after.target_id == space.pk
    assert list(Notification.objects.filter(space__title="Jazz")) == [after]

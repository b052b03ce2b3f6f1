# Takes over spaces.Notification as it stood at spaces.0008: the same table
# (spaces_notification), its rows and indexes; nothing changes in the database here.
# notifications.0002-0004 then replace its space column with a target of any app, so that
# from then on this app's state names no model of spaces.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("spaces", "0009_notification_moves_to_notifications"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Notification",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("space.soon", "Space Soon"),
                                    ("space.started", "Space Started"),
                                    ("space.followed_live", "Followed Live"),
                                    ("space.invited", "Space Invited"),
                                    ("space.cancelled", "Space Cancelled"),
                                ],
                                max_length=32,
                            ),
                        ),
                        ("text", models.CharField(max_length=300)),
                        ("url", models.CharField(blank=True, max_length=300)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("read_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="notifications",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        # Only until notifications.0004: the target replaces it.
                        (
                            "space",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="spaces.space",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "spaces_notification",
                        "ordering": ["-created_at"],
                        "indexes": [
                            models.Index(
                                fields=["user", "-created_at"],
                                name="spaces_noti_user_id_1464ef_idx",
                            ),
                            models.Index(
                                condition=models.Q(("read_at__isnull", True)),
                                fields=["user"],
                                name="notification_unread",
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]

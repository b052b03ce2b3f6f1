# Every existing notification about a space points at it as its target (same id), so the space
# column can go in 0004. A migration of its own: PostgreSQL refuses to alter a table with
# pending (deferred) foreign-key checks in the same transaction.

from django.db import migrations
from django.db.models import F


def space_to_target(apps, schema_editor):
    Notification = apps.get_model("notifications", "Notification")
    if not Notification.objects.filter(space__isnull=False).exists():
        return
    ContentType = apps.get_model("contenttypes", "ContentType")
    space_type, _ = ContentType.objects.get_or_create(app_label="spaces", model="space")
    Notification.objects.filter(space__isnull=False).update(
        target_type=space_type, target_id=F("space_id")
    )


def target_to_space(apps, schema_editor):
    Notification = apps.get_model("notifications", "Notification")
    ContentType = apps.get_model("contenttypes", "ContentType")
    space_type = ContentType.objects.filter(app_label="spaces", model="space").first()
    if space_type is None:
        return
    Notification.objects.filter(target_type=space_type).update(space_id=F("target_id"))


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0002_notification_targets"),
    ]

    operations = [
        migrations.RunPython(space_to_target, target_to_space, elidable=False),
    ]

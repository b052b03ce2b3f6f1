"""The "Space hosts" group: admins add members to it to let them host (staged rollout)."""

from django.db import migrations

GROUP = "Space hosts"  # also spaces.selectors.HOSTS_GROUP


def create_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    # Permissions are normally created after migrate (post_migrate); create this one now so the
    # group can hold it. post_migrate later finds it and leaves it alone.
    content_type, _ = ContentType.objects.get_or_create(app_label="spaces", model="space")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="host_space", defaults={"name": "Can host spaces"}
    )
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(permission)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("spaces", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]

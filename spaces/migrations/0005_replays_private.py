from django.db import migrations

import config.private_media

# Replay folders (segments and the joined file) move from MEDIA_ROOT to the private root; a
# replay's ``directory`` is relative, so every row stays valid.
PRIVATE_FOLDERS = ["replays"]


def move_files_to_private_root(apps, schema_editor):
    config.private_media.move_to_private_root(PRIVATE_FOLDERS)


def move_files_back(apps, schema_editor):
    config.private_media.move_to_public_root(PRIVATE_FOLDERS)


class Migration(migrations.Migration):
    dependencies = [
        ("spaces", "0004_replay_lease"),
    ]

    operations = [
        migrations.RunPython(move_files_to_private_root, move_files_back, elidable=False),
    ]

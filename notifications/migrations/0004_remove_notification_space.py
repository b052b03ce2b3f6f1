# The target (0003) holds what the space column held: this app's state names no spaces model.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0003_space_becomes_target"),
    ]

    operations = [
        migrations.RemoveField(model_name="notification", name="space"),
    ]

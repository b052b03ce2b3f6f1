# The Notification model moves to the notifications app (issue 18): its table stays, with its
# rows; only the spaces app's idea of the model goes. notifications.0001 takes it over.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("spaces", "0008_notification_followed_live"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Notification")],
            database_operations=[],
        ),
    ]

# A notification names who caused it (actor) and what it is about (a target of any app), and
# the kinds beyond spaces: followers, voice messages, replies and likes (issue 18).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("notifications", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="notification",
            name="actor_ids",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="notification",
            name="target_id",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="notification",
            name="target_type",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="contenttypes.contenttype",
            ),
        ),
        migrations.AlterField(
            model_name="notification",
            name="kind",
            field=models.CharField(
                choices=[
                    ("space.soon", "Space Soon"),
                    ("space.started", "Space Started"),
                    ("space.followed_live", "Followed Live"),
                    ("space.invited", "Space Invited"),
                    ("space.cancelled", "Space Cancelled"),
                    ("space.speak_invited", "Speak Invited"),
                    ("follow.created", "Followed"),
                    ("voicemessage.received", "Voice Message"),
                    ("voicetweet.replied", "Replied"),
                    ("voicetweet.liked", "Liked"),
                ],
                max_length=32,
            ),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(fields=["target_type", "target_id"], name="notification_target"),
        ),
    ]

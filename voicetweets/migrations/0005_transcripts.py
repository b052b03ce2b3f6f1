# Recordings made before captions existed were never transcribed: they are "off" (no captions),
# not "pending" (nothing would ever take them up). New ones start pending.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("voicetweets", "0004_private_media"),
    ]

    operations = [
        migrations.AddField(
            model_name="voicemessage",
            name="transcript",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="voicemessage",
            name="transcript_language",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AddField(
            model_name="voicemessage",
            name="transcript_segments",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="voicemessage",
            name="transcript_state",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("ready", "Ready"),
                    ("failed", "Failed"),
                    ("off", "Off"),
                ],
                default="off",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="voicetweet",
            name="transcript",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="voicetweet",
            name="transcript_language",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AddField(
            model_name="voicetweet",
            name="transcript_segments",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="voicetweet",
            name="transcript_state",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("ready", "Ready"),
                    ("failed", "Failed"),
                    ("off", "Off"),
                ],
                default="off",
                max_length=8,
            ),
        ),
        migrations.AlterField(
            model_name="voicemessage",
            name="transcript_state",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("ready", "Ready"),
                    ("failed", "Failed"),
                    ("off", "Off"),
                ],
                default="pending",
                max_length=8,
            ),
        ),
        migrations.AlterField(
            model_name="voicetweet",
            name="transcript_state",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("ready", "Ready"),
                    ("failed", "Failed"),
                    ("off", "Off"),
                ],
                default="pending",
                max_length=8,
            ),
        ),
    ]

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("spaces", "0005_replays_private"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="space",
            name="audio_mode",
            field=models.CharField(
                choices=[("speech", "Speech"), ("music", "Music: high-quality audio")],
                default="speech",
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="space",
            constraint=models.CheckConstraint(
                condition=models.Q(("audio_mode__in", ["speech", "music"])),
                name="space_audio_mode_valid",
            ),
        ),
    ]

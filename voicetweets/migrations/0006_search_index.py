# Full-text search index: PostgreSQL only (config.pg_operations); a no-op on SQLite.

import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.conf import settings
from django.db import migrations

from config.pg_operations import AddIndexOnPostgres


class Migration(migrations.Migration):
    dependencies = [
        ("voicetweets", "0005_transcripts"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexOnPostgres(
            model_name="voicetweet",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.search.SearchVector("text", "transcript", config="english"),
                name="voicetweet_search",
            ),
        ),
    ]

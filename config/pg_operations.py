"""Migration operations that exist on PostgreSQL only: full-text search indexes (GIN over a
tsvector expression) have no SQLite counterpart, and the embedded install searches without them
(search.selectors). The model state is the same on both, so makemigrations stays quiet."""

from django.db.migrations.operations import AddIndex


class AddIndexOnPostgres(AddIndex):
    """``AddIndex`` that creates (and drops) the index on PostgreSQL and does nothing elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)

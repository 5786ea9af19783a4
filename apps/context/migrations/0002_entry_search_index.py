"""Full-text search index over entries' title and body, on PostgreSQL only.

SQLite has no GIN indexes; there the search selector filters and ranks in Python instead.
The indexed expression must stay the one apps/context/selectors.py searches with
(`SearchVector("title", "body", config="english")`), or PostgreSQL will not use the index.
"""

from django.db import migrations

INDEX_NAME = "contextentry_fts"


def _index():
    from django.contrib.postgres.indexes import GinIndex
    from django.contrib.postgres.search import SearchVector

    return GinIndex(SearchVector("title", "body", config="english"), name=INDEX_NAME)


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.add_index(apps.get_model("context", "ContextEntry"), _index())


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.remove_index(apps.get_model("context", "ContextEntry"), _index())


class Migration(migrations.Migration):
    dependencies = [("context", "0001_context_spaces")]

    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]

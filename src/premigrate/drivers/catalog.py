"""Catalog look-ups a changelog's preconditions ask (does this table or view exist): one query per dialect,
with the dialect's parameter style. Dumb: the SQL only; engine/preconditions.py runs it and judges."""

from __future__ import annotations

# Names compare case-insensitively: Liquibase corrects an unquoted name to the database's case before it looks
# (Database.correctObjectName), and a folder's `table:person` means the table `CREATE TABLE Person` made.
_POSTGRES = {
    "table": "SELECT 1 FROM information_schema.tables WHERE table_schema = COALESCE(%s, current_schema()) "
             "AND lower(table_name) = lower(%s) AND table_type = 'BASE TABLE'",
    "view": "SELECT 1 FROM information_schema.views WHERE table_schema = COALESCE(%s, current_schema()) "
            "AND lower(table_name) = lower(%s)",
}
_MYSQL = {
    "table": "SELECT 1 FROM information_schema.tables WHERE table_schema = COALESCE(%s, DATABASE()) "
             "AND lower(table_name) = lower(%s) AND table_type = 'BASE TABLE'",
    "view": "SELECT 1 FROM information_schema.views WHERE table_schema = COALESCE(%s, DATABASE()) "
            "AND lower(table_name) = lower(%s)",
}
# SQLite: the schema is an attached database's name (main by default); it cannot be a parameter, so the caller
# passes it quoted through `sqlite_schema`.
_SQLITE = {
    "table": "SELECT 1 FROM {schema}.sqlite_master WHERE ? IS NOT NULL AND type = 'table' AND name = ? COLLATE NOCASE",
    "view": "SELECT 1 FROM {schema}.sqlite_master WHERE ? IS NOT NULL AND type = 'view' AND name = ? COLLATE NOCASE",
}


def exists_query(dialect: str, kind: str, schema: str | None, name: str) -> tuple[str, tuple[str | None, ...]]:
    """The query (and its parameters) that returns a row when the `kind` (table or view) named `name` exists in
    `schema` (None: the session's current schema or database)."""
    if dialect == "sqlite":
        quoted = '"' + (schema or "main").replace('"', '""') + '"'
        return _SQLITE[kind].format(schema=quoted), (schema or "main", name)
    return (_POSTGRES if dialect == "postgresql" else _MYSQL)[kind], (schema, name)

"""Read a database schema from its catalogs into a model.schema_diff.Schema that compares equal when the schemas are.

What is read, per dialect:
- PostgreSQL (pg_catalog, whose pg_get_*def functions give canonical definitions): tables, columns (format_type,
  NOT NULL, default expression, identity, generated, collation), indexes not owned by a constraint, constraints
  (primary key, unique, foreign key, check, exclusion), views and materialized views, functions and procedures
  (pg_get_functiondef; extension members left out), triggers, sequences (identity sequences belong to their column),
  enum types with their labels in order.
- MySQL/MariaDB (information_schema): tables (engine, collation), columns (COLUMN_TYPE, nullability, default, extra,
  collation, generation expression), indexes (columns in order, prefix lengths, uniqueness, type), primary keys,
  foreign keys (columns, referenced columns, rules), checks, views, routines with their parameters, triggers,
  sequences (MariaDB). ENUM types are column types there.
- SQLite (sqlite_master + pragmas): tables, columns (pragma table_xinfo), indexes (pragma index_list/index_xinfo,
  the CREATE INDEX text for partial and expression indexes), primary key, unique and foreign-key constraints, views,
  triggers. CHECK constraints live only inside CREATE TABLE text there, which ALTER TABLE rewrites: not compared.

Normalisation, so that a schema built two ways compares equal:
- every object is keyed by kind and name, sorted; column order is the rank among the live columns (PostgreSQL keeps
  holes for dropped columns);
- a name the database invented (PostgreSQL `t_pkey`, `t_a_key`, `t_a_fkey`, `t_a_check`, `t_a_idx`; MySQL
  `t_ibfk_1`, `t_chk_1`, MariaDB `CONSTRAINT_1`, an index named after its first column; SQLite
  `sqlite_autoindex_t_1` and every unnamed constraint) is replaced by the object's definition, so a constraint
  re-created by a down/up round trip under the next generated number is still the same constraint;
- whitespace outside string literals is collapsed in definitions, a trailing semicolon dropped, and the schema's own
  name removed from qualified references (`public.t`, `` `db`.`t` ``), so the same folder applied to two databases
  compares equal;
- the history table (and everything on it) is left out by name.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from premigrate.model.schema_diff import Schema, SchemaObject

Fetch = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]
DEFAULT_HISTORY_TABLE = "premigrate_history"


def fetcher(connection: Any) -> Fetch:
    """A read-only query function over a psycopg, PyMySQL or sqlite3 connection, or anything with
    fetch(sql, params) (a premigrate driver). SQL is written with %s placeholders; SQLite queries take none."""
    if isinstance(connection, sqlite3.Connection):
        def via_sqlite(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
            return list(connection.execute(sql, params).fetchall())

        return via_sqlite
    driver_fetch = getattr(connection, "fetch", None)
    if callable(driver_fetch):
        def via_driver(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
            return list(driver_fetch(sql, params))

        return via_driver
    if hasattr(connection, "pgconn"):  # psycopg 3
        def via_psycopg(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
            return list(connection.execute(sql, params or None).fetchall())

        return via_psycopg

    def via_cursor(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with connection.cursor() as cur:
            cur.execute(sql, params or None)
            return [tuple(row) for row in cur.fetchall()]

    return via_cursor


def snapshot(connection: Any, dialect: str, schema: str | None = None, *,
             history_table: str = DEFAULT_HISTORY_TABLE) -> Schema:
    """The schema `schema` (PostgreSQL: a schema, default current_schema(); MySQL: a database, default the current
    one; SQLite: an attached database name, default main) as seen through `connection`."""
    fetch = fetcher(connection)
    if dialect == "postgresql":
        objects = _postgres(fetch, schema or fetch("SELECT current_schema()", ())[0][0], history_table)
    elif dialect == "mysql":
        objects = _mysql(fetch, schema or fetch("SELECT DATABASE()", ())[0][0], history_table)
    elif dialect == "sqlite":
        objects = _sqlite(fetch, schema or "main", history_table)
    else:
        raise ValueError(f"unknown dialect {dialect!r}")
    return Schema.build(objects)


# --- normalisation --------------------------------------------------------------------------------------------

# Dollar-quoted bodies are code, not literals: their whitespace is collapsed like the rest.
_LITERAL = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`", re.DOTALL)


def _squeeze(code: str) -> str:
    code = re.sub(r"\s+", " ", code)
    # No space just inside brackets or before a comma: "( a , b )" and "(a, b)" are one definition.
    return re.sub(r" (?=[),])", "", re.sub(r"\( ", "(", code))


def normalise_sql(text: str | None) -> str | None:
    """Collapse whitespace outside string literals and quoted names; drop a trailing semicolon."""
    if text is None:
        return None
    parts: list[str] = []
    position = 0
    for match in _LITERAL.finditer(text):
        parts.append(_squeeze(text[position:match.start()]))
        parts.append(match.group(0))
        position = match.end()
    parts.append(_squeeze(text[position:]))
    return "".join(parts).strip().rstrip(";").rstrip()


def _unqualify(text: str | None, schema: str) -> str | None:
    """Remove `schema.` / "schema". / `schema`. in front of names: the schema's own name is not part of its shape."""
    if text is None:
        return None
    name = re.escape(schema)
    return re.sub(rf'(?<![\w"`$])(?:"{name}"|`{name}`|{name})\.(?=[\w"`])', "", text)


def _definition(text: str | None, schema: str) -> str | None:
    return normalise_sql(_unqualify(text, schema))


def _yes_no(value: Any) -> str:
    return "yes" if value in (True, 1, "YES", "yes", "1") else "no"


# --- PostgreSQL -----------------------------------------------------------------------------------------------

_PG_GENERATED = re.compile(r"_(?:pkey|key|fkey|check|excl|idx|not_null)\d*\Z")


def _pg_generated(name: str, table: str) -> bool:
    # PostgreSQL builds these as <table>_<columns>_<suffix>, truncated to 63 bytes, with a number when taken.
    return bool(_PG_GENERATED.search(name)) and name.startswith(table[:16])


def _postgres(fetch: Fetch, schema: str, history: str) -> Iterable[SchemaObject]:
    p = (schema,)
    tables = {name: kind for name, kind in fetch(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'f')", p) if name != history}
    for name, kind in tables.items():
        yield SchemaObject.of("table", name, {"kind": {"r": "table", "p": "partitioned", "f": "foreign"}[kind]})

    rank: dict[str, int] = {}
    for table, column, type_, notnull, default, identity, generated, collation in fetch(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, "
            "CASE WHEN a.attcollation <> t.typcollation THEN co.collname END "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid "
            "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "LEFT JOIN pg_collation co ON co.oid = a.attcollation "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY c.relname, a.attnum", p):
        if table not in tables:
            continue
        rank[table] = rank.get(table, 0) + 1
        attributes = {"type": type_, "nullable": _yes_no(not notnull), "position": rank[table],
                      "default": _definition(default, schema) if not generated else None,
                      "identity": {"a": "always", "d": "by default"}.get(identity or ""),
                      "generated": _definition(default, schema) if generated else None, "collation": collation}
        yield SchemaObject.of("column", f"{table}.{column}", attributes)

    for table, index, definition in fetch(
            "SELECT t.relname, i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = %s AND NOT EXISTS ("
            "SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid "
            "AND k.contype IN ('p', 'u', 'x'))", p):
        if table not in tables:
            continue
        text = _definition(definition, schema) or ""
        anonymous = re.sub(r"^(CREATE (?:UNIQUE )?INDEX) \S+ ON ", r"\1 ON ", text)
        name = f"{table}: {anonymous}" if _pg_generated(index, table) else f"{table}.{index}"
        yield SchemaObject.of("index", name, {"definition": anonymous})

    kinds = {"p": "primary key", "u": "unique", "f": "foreign key", "c": "check", "x": "exclusion"}
    for table, constraint, contype, definition in fetch(
            "SELECT t.relname, k.conname, k.contype, pg_get_constraintdef(k.oid) FROM pg_constraint k "
            "JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = %s AND k.contype IN ('p', 'u', 'f', 'c', 'x')", p):
        if table not in tables:
            continue
        condef = _definition(definition, schema)
        name = f"{table}: {condef}" if _pg_generated(constraint, table) else f"{table}.{constraint}"
        yield SchemaObject.of("constraint", name, {"type": kinds[contype], "definition": condef})
    yield from _postgres_code(fetch, schema, history)


def _postgres_code(fetch: Fetch, schema: str, history: str) -> Iterable[SchemaObject]:
    """Views, functions, procedures, triggers, sequences and enums of a PostgreSQL schema: the rest of _postgres."""
    p = (schema,)
    for view, kind, definition in fetch(
            "SELECT c.relname, c.relkind, pg_get_viewdef(c.oid, true) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('v', 'm')", p):
        yield SchemaObject.of("view", view, {"materialized": _yes_no(kind == "m"),
                                             "definition": _definition(definition, schema)})

    for function, arguments, kind, definition in fetch(
            "SELECT p.proname, pg_get_function_identity_arguments(p.oid), p.prokind, pg_get_functiondef(p.oid) "
            "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = %s AND p.prokind IN ('f', 'p') AND NOT EXISTS (SELECT 1 FROM pg_depend d "
            "WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')", p):
        yield SchemaObject.of("function", f"{function}({arguments})", {
            "kind": "procedure" if kind == "p" else "function", "definition": _definition(definition, schema)})

    for table, trigger, definition, enabled in fetch(
            "SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid, true), t.tgenabled FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND NOT t.tgisinternal", p):
        if table == history:
            continue
        yield SchemaObject.of("trigger", f"{table}.{trigger}", {
            "definition": _definition(definition, schema), "enabled": str(enabled)})

    for sequence, type_, start, increment, minimum, maximum, cache, cycle, owner in fetch(
            "SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, "
            "s.seqcache, s.seqcycle, (SELECT o.relname FROM pg_depend d JOIN pg_class o ON o.oid = d.refobjid "
            "WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass "
            "AND d.deptype = 'a' LIMIT 1) FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND NOT EXISTS ("
            "SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid "
            "AND d.deptype = 'i')", p):
        if owner == history:
            continue
        yield SchemaObject.of("sequence", sequence, {
            "type": type_, "start": start, "increment": increment, "min": minimum, "max": maximum, "cache": cache,
            "cycle": _yes_no(cycle), "owned_by": owner})

    for enum, labels in fetch(
            "SELECT t.typname, array_to_json(array_agg(e.enumlabel ORDER BY e.enumsortorder))::text FROM pg_type t "
            "JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = %s GROUP BY t.typname", p):
        yield SchemaObject.of("enum", enum, {"labels": labels})


# --- MySQL / MariaDB ------------------------------------------------------------------------------------------

_MY_GENERATED_CONSTRAINT = re.compile(r"(?:_ibfk_\d+|_chk_\d+)\Z|\ACONSTRAINT_\d+\Z")


def _mysql(fetch: Fetch, schema: str, history: str) -> Iterable[SchemaObject]:
    p = (schema,)
    tables: set[str] = set()
    for name, type_, engine, collation in fetch(
            "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = %s", p):
        if name == history or type_ == "VIEW":
            continue
        if type_ == "SEQUENCE":
            yield SchemaObject.of("sequence", name, {})
            continue
        tables.add(name)
        yield SchemaObject.of("table", name, {"engine": engine, "collation": collation,
                                               "versioned": _yes_no(type_ == "SYSTEM VERSIONED")})

    columns_of: dict[str, set[str]] = {}
    for table, column, position, type_, nullable, default, extra, collation, generation in fetch(
            "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, "
            "COLLATION_NAME, GENERATION_EXPRESSION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s", p):
        if table not in tables:
            continue
        columns_of.setdefault(table, set()).add(column)
        yield SchemaObject.of("column", f"{table}.{column}", {
            "type": type_, "nullable": _yes_no(nullable), "position": position,
            "default": _definition(default, schema), "extra": normalise_sql(extra) or None,
            "collation": collation, "generated": _definition(generation, schema) or None})

    indexes: dict[tuple[str, str], dict[str, Any]] = {}
    for table, index, non_unique, column, sub_part, index_type, collation in fetch(
            "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, INDEX_TYPE, COLLATION "
            "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, INDEX_NAME, "
            "SEQ_IN_INDEX", p):
        if table not in tables or index == "PRIMARY":
            continue
        entry = indexes.setdefault((table, index), {"unique": _yes_no(not int(non_unique)), "type": index_type,
                                                    "columns": []})
        part = f"{column}({sub_part})" if sub_part else str(column)
        entry["columns"].append(part + (" DESC" if collation == "D" else ""))
    for (table, index), entry in indexes.items():
        columns = ", ".join(entry["columns"])
        first = entry["columns"][0].split("(")[0].split(" ")[0]
        # An unnamed index is named after its first column (`email`, then `email_2`, ...).
        generated = re.fullmatch(rf"{re.escape(first)}(?:_\d+)?", index) is not None
        unique = "UNIQUE " if entry["unique"] == "yes" else ""
        definition = f"CREATE {unique}INDEX ON {table} ({columns}) USING {entry['type']}"
        name = f"{table}: {definition}" if generated else f"{table}.{index}"
        yield SchemaObject.of("index", name, {"definition": definition})

    key_columns: dict[tuple[str, str], list[tuple[str, str | None, str | None]]] = {}
    for table, constraint, column, ref_table, ref_column in fetch(
            "SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME "
            "FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = %s "
            "ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION", p):
        key_columns.setdefault((table, constraint), []).append((column, ref_table, ref_column))
    rules = {(table, name): (update, delete) for name, table, update, delete in fetch(
        "SELECT CONSTRAINT_NAME, TABLE_NAME, UPDATE_RULE, DELETE_RULE FROM information_schema.REFERENTIAL_CONSTRAINTS "
        "WHERE CONSTRAINT_SCHEMA = %s", p)}
    checks = _mysql_checks(fetch, schema)
    for table, constraint, type_ in fetch(
            "SELECT TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE FROM information_schema.TABLE_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = %s", p):
        if table not in tables or type_ == "UNIQUE":  # a unique constraint is its unique index, listed above
            continue
        key_cols = key_columns.get((table, constraint), [])
        own = ", ".join(c for c, _, _ in key_cols)
        if type_ == "PRIMARY KEY":
            definition = f"PRIMARY KEY ({own})"
        elif type_ == "FOREIGN KEY":
            ref_table = key_cols[0][1] if key_cols else None
            update, delete = rules.get((table, constraint), (None, None))
            definition = (f"FOREIGN KEY ({own}) REFERENCES {ref_table} ({', '.join(str(r) for _, _, r in key_cols)})"
                          f" ON UPDATE {update} ON DELETE {delete}")
        else:
            definition = f"CHECK ({checks.get((table, constraint), checks.get(('', constraint)))})"
        generated = (type_ == "PRIMARY KEY" or _MY_GENERATED_CONSTRAINT.search(constraint) is not None
                     or constraint in columns_of.get(table, set()))  # MariaDB names a column CHECK after it
        name = f"{table}: {definition}" if generated else f"{table}.{constraint}"
        yield SchemaObject.of("constraint", name, {"type": type_.lower(), "definition": definition})
    yield from _mysql_code(fetch, schema, history)


def _mysql_code(fetch: Fetch, schema: str, history: str) -> Iterable[SchemaObject]:
    """Views, routines and triggers of a MySQL/MariaDB schema: the rest of _mysql."""
    p = (schema,)
    for view, definition, check_option, updatable, security in fetch(
            "SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, IS_UPDATABLE, SECURITY_TYPE "
            "FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s", p):
        yield SchemaObject.of("view", view, {"definition": _definition(definition, schema),
                                             "check_option": check_option, "updatable": updatable,
                                             "security": security})

    parameters: dict[str, list[str]] = {}
    for routine, mode, name, type_ in fetch(
            "SELECT SPECIFIC_NAME, PARAMETER_MODE, PARAMETER_NAME, DTD_IDENTIFIER FROM information_schema.PARAMETERS "
            "WHERE SPECIFIC_SCHEMA = %s AND ORDINAL_POSITION > 0 ORDER BY SPECIFIC_NAME, ORDINAL_POSITION", p):
        parameters.setdefault(routine, []).append(" ".join(str(x) for x in (mode, name, type_) if x))
    for routine, kind, returns, definition, deterministic, access, security in fetch(
            "SELECT ROUTINE_NAME, ROUTINE_TYPE, DTD_IDENTIFIER, ROUTINE_DEFINITION, IS_DETERMINISTIC, "
            "SQL_DATA_ACCESS, SECURITY_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s", p):
        yield SchemaObject.of("function", f"{routine}({', '.join(parameters.get(routine, []))})", {
            "kind": str(kind).lower(), "returns": returns, "definition": _definition(definition, schema),
            "deterministic": deterministic, "data_access": access, "security": security})

    for trigger, event, table, timing, statement in fetch(
            "SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_TIMING, ACTION_STATEMENT "
            "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s", p):
        if table == history:
            continue
        yield SchemaObject.of("trigger", f"{table}.{trigger}", {
            "definition": f"{timing} {event} ON {table} FOR EACH ROW {_definition(statement, schema)}"})


def _mysql_checks(fetch: Fetch, schema: str) -> dict[tuple[str, str], str]:
    """CHECK clauses by (table, name). MariaDB's CHECK_CONSTRAINTS has TABLE_NAME (names are per table there);
    MySQL's has not (names are per schema), keyed by ('', name)."""
    try:
        rows = fetch("SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                     "WHERE CONSTRAINT_SCHEMA = %s", (schema,))
    except Exception:  # noqa: BLE001 - MySQL: no TABLE_NAME column
        rows = [("", name, clause) for name, clause in fetch(
            "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = %s", (schema,))]
    return {(table, name): str(_definition(clause, schema)) for table, name, clause in rows}


# --- SQLite ---------------------------------------------------------------------------------------------------

def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sqlite(fetch: Fetch, schema: str, history: str) -> Iterable[SchemaObject]:
    master = f'"{schema}".sqlite_master' if schema != "main" else "sqlite_master"
    rows = fetch(f"SELECT type, name, tbl_name, sql FROM {master} WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'", ())
    s = _quote(schema)
    for type_, name, table, sql in sorted(rows):
        if table == history:
            continue
        if type_ == "view":
            yield SchemaObject.of("view", name, {"definition": normalise_sql(sql)})
        elif type_ == "trigger":
            yield SchemaObject.of("trigger", f"{table}.{name}", {"definition": normalise_sql(sql)})
        elif type_ == "table":
            yield from _sqlite_table(fetch, name, s, sql or "")
    # Indexes the user created (origin 'c') by name; their text covers partial and expression indexes.
    for name, table, sql in sorted((n, t, q) for kind, n, t, q in rows if kind == "index" and q):
        if table == history:
            continue
        definition = normalise_sql(re.sub(r"^\s*(CREATE\s+(?:UNIQUE\s+)?INDEX)\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                                          r"(?:\"[^\"]+\"|`[^`]+`|\[[^\]]+\]|\S+)\s+ON\s+", r"\1 ON ", sql,
                                          flags=re.IGNORECASE))
        yield SchemaObject.of("index", f"{table}.{name}", {"definition": definition})


def _sqlite_table(fetch: Fetch, table: str, schema: str, sql: str) -> Iterable[SchemaObject]:
    t = _quote(table)
    without_rowid = re.search(r"\)\s*WITHOUT\s+ROWID", sql, re.IGNORECASE)
    yield SchemaObject.of("table", table, {"without_rowid": _yes_no(without_rowid is not None)})
    primary: list[tuple[int, str]] = []
    for cid, column, type_, notnull, default, pk, hidden in fetch(
            f'SELECT cid, name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo({t}, {schema})', ()):
        if pk:
            primary.append((pk, column))
        yield SchemaObject.of("column", f"{table}.{column}", {
            "type": str(type_).upper(), "nullable": _yes_no(not notnull), "position": cid + 1,
            "default": normalise_sql(default), "generated": {2: "virtual", 3: "stored"}.get(hidden)})
    if primary:
        columns = ", ".join(c for _, c in sorted(primary))
        yield SchemaObject.of("constraint", f"{table}: PRIMARY KEY ({columns})",
                              {"type": "primary key", "definition": f"PRIMARY KEY ({columns})"})
    for index, _unique, origin, _partial in fetch(
            f'SELECT name, "unique", origin, partial FROM pragma_index_list({t}, {schema})', ()):
        if origin != "u":  # 'pk' is the primary key above; 'c' (CREATE INDEX) is read from its text
            continue
        columns = ", ".join(str(r[0]) for r in fetch(
            f"SELECT name FROM pragma_index_info({_quote(index)}, {schema}) ORDER BY seqno", ()))
        yield SchemaObject.of("constraint", f"{table}: UNIQUE ({columns})",
                              {"type": "unique", "definition": f"UNIQUE ({columns})"})
    keys: dict[int, list[tuple[Any, ...]]] = {}
    for row in fetch(f'SELECT id, seq, "table", "from", "to", on_update, on_delete, "match" '
                     f"FROM pragma_foreign_key_list({t}, {schema})", ()):
        keys.setdefault(row[0], []).append(row)
    for group in keys.values():
        group.sort(key=lambda r: r[1])
        own = ", ".join(str(r[3]) for r in group)
        referenced = ", ".join(str(r[4]) for r in group if r[4] is not None)
        definition = (f"FOREIGN KEY ({own}) REFERENCES {group[0][2]}" + (f" ({referenced})" if referenced else "")
                      + f" ON UPDATE {group[0][5]} ON DELETE {group[0][6]}")
        yield SchemaObject.of("constraint", f"{table}: {definition}", {"type": "foreign key",
                                                                       "definition": definition})

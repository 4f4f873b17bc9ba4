"""PostgreSQL statements, read by pglast (PostgreSQL's own parser): which rules they trigger."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from premigrate.model.transactions import incompatible
from premigrate.commands.lint.rules import Analyzer, Effects, Hit, LintUnavailable, Table, Unparsable, display

# -- PostgreSQL: pglast ----------------------------------------------------------------------------------------------
# Nodes are told apart by class name and enum member name, so only parse_sql needs the import.

def postgres_analyzer() -> Analyzer:
    try:
        # Imported here, not at the top: importing premigrate.commands.lint (and a no-op `up`) stays cheap.
        import pglast
        from pglast.parser import ParseError, parse_sql_json
    except ImportError:
        raise LintUnavailable("linting PostgreSQL needs the pglast package: pip install pglast") from None

    checks = _NotNullChecks()  # shared by all files of the run: the safe SET NOT NULL path spans three files

    def analyze(text: str, transactional: bool) -> Effects:
        try:
            # First the parser's JSON tree, about 25 times cheaper than pglast's Python nodes: enough for the
            # shapes of nearly every migration (CREATE TABLE, CREATE INDEX), which then never pay for the nodes.
            quick = _quick_effects(json.loads(parse_sql_json(text)), text, transactional)
            if quick is not None:
                return quick
            raw_statements = pglast.parse_sql(text)
        except ParseError as exc:
            offset = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
            raise Unparsable(str(exc.args[0]), offset) from None
        effects = Effects()
        encoded = text.encode()
        for raw in raw_statements:
            stmt: Any = raw.stmt  # pglast's nodes are told apart by class name, not by type
            # Locations are byte offsets into the UTF-8 text; a length of 0 means "to the end".
            start = raw.stmt_location or 0
            end = start + raw.stmt_len if raw.stmt_len else len(encoded)
            own_text = encoded[start:end].decode(errors="replace")
            effects.hits.extend(_pg_hits(stmt, own_text, transactional, checks))
            effects.created.extend(_pg_created(stmt))
            if _kind(stmt) == "RenameStmt" and _enum(stmt.renameType) == "OBJECT_TABLE":
                old = _pg_table(stmt.relation)
                effects.renamed.append((old, (old[0], stmt.newname)))
        return effects

    return analyze


def _kind(node: object) -> str:
    return type(node).__name__


def _enum(value: object) -> str:
    return getattr(value, "name", "")


def _pg_table(range_var: Any) -> Table:
    return (getattr(range_var, "schemaname", None) or None, range_var.relname)


@dataclass
class _NotNullChecks:
    """CHECK (col IS NOT NULL) constraints seen in this run, so that SET NOT NULL after VALIDATE is not flagged."""

    not_valid: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, constraint) -> column
    proven: set[tuple[str, str]] = field(default_factory=set)  # (table, column)


def _pg_hits(stmt: Any, text: str, transactional: bool, checks: _NotNullChecks) -> list[Hit]:
    hits: list[Hit] = []
    if transactional:
        hits.extend(_pg_transaction_hits(stmt, text))
    if _kind(stmt) == "AlterTableStmt":
        hits.extend(_pg_alter_table(stmt, checks))
    check = _PG_CHECKS.get(_kind(stmt))
    if check is not None:
        hits.extend(check(stmt))
    for dml in _pg_dml(stmt):
        table = _pg_table(dml.relation)
        if dml.whereClause is None:
            if _kind(dml) == "UpdateStmt":
                hits.append(Hit("update-without-where", f"updates every row of {display(table)}", (table,)))
            else:
                hits.append(Hit("delete-without-where", f"deletes every row of {display(table)}", (table,)))
    return hits


# Statements that end or nest the transaction premigrate runs the file in. SAVEPOINT and friends are fine.
_TRANSACTION_CONTROL = {
    "TRANS_STMT_BEGIN": "BEGIN", "TRANS_STMT_START": "START TRANSACTION", "TRANS_STMT_COMMIT": "COMMIT",
    "TRANS_STMT_ROLLBACK": "ROLLBACK", "TRANS_STMT_PREPARE": "PREPARE TRANSACTION",
    "TRANS_STMT_COMMIT_PREPARED": "COMMIT PREPARED", "TRANS_STMT_ROLLBACK_PREPARED": "ROLLBACK PREPARED",
}


def _pg_transaction_hits(stmt: Any, text: str) -> list[Hit]:
    """Transaction control, read from the parse tree; and what cannot run inside a transaction block, from the
    runner's own catalogue (model/transactions.py), so that lint flags exactly what `up` would refuse."""
    if _kind(stmt) == "TransactionStmt" and _enum(stmt.kind) in _TRANSACTION_CONTROL:
        verb = _TRANSACTION_CONTROL[_enum(stmt.kind)]
        return [Hit("transaction-incompatible",
                    f"{verb} ends or nests the transaction premigrate runs this file in")]
    entry = incompatible(text, "postgresql")
    if entry is None:
        return []
    return [Hit("transaction-incompatible", f"{entry.what} {entry.effect}")]


def _pg_alter_table(stmt: Any, checks: _NotNullChecks) -> list[Hit]:
    if _enum(stmt.objtype) != "OBJECT_TABLE":  # not ALTER INDEX, ALTER VIEW, ...
        return []
    table = _pg_table(stmt.relation)
    name = display(table)
    hits: list[Hit] = []

    def hit(rule: str, subject: str) -> None:
        hits.append(Hit(rule, subject, (table,)))

    for cmd in stmt.cmds or ():
        subtype = _enum(cmd.subtype)
        if subtype == "AT_DropColumn":
            hit("drop-column", f"drops column {name}.{cmd.name}")
        elif subtype == "AT_AlterColumnType":
            hit("change-column-type", f"changes the type of column {name}.{cmd.name}")
        elif subtype == "AT_SetNotNull":
            # PostgreSQL 12+ skips the scan when a valid CHECK (col IS NOT NULL) proves it: the safe path.
            if (table[1], cmd.name) not in checks.proven:
                hit("set-not-null", f"sets NOT NULL on column {name}.{cmd.name}")
        elif subtype == "AT_AddColumn":
            _pg_add_column(cmd.def_, name, hit)
        elif subtype == "AT_AddConstraint":
            _pg_add_constraint(cmd.def_, name, hit)
            _pg_note_not_null_check(cmd.def_, table, checks)
        elif subtype == "AT_ValidateConstraint" and (table[1], cmd.name) in checks.not_valid:
            checks.proven.add((table[1], checks.not_valid[(table[1], cmd.name)]))
    return hits


def _pg_note_not_null_check(constraint: Any, table: Table, checks: _NotNullChecks) -> None:
    expr: Any = getattr(constraint, "raw_expr", None)
    if _enum(constraint.contype) != "CONSTR_CHECK" or _kind(expr) != "NullTest":
        return
    if _enum(expr.nulltesttype) != "IS_NOT_NULL" or _kind(expr.arg) != "ColumnRef" or len(expr.arg.fields) != 1:
        return
    column = getattr(expr.arg.fields[0], "sval", None)
    if column is None:
        return
    if not constraint.skip_validation:
        checks.proven.add((table[1], column))
    elif constraint.conname:
        checks.not_valid[(table[1], constraint.conname)] = column


_SERIAL_TYPES = {"smallserial", "serial", "bigserial", "serial2", "serial4", "serial8"}


def _pg_add_column(column: Any, table: str, hit: Callable[[str, str], None]) -> None:
    column_name = f"{table}.{column.colname}"
    kinds = {_enum(c.contype) for c in column.constraints or ()}
    type_name = column.typeName.names[-1].sval if column.typeName else ""
    not_null = bool({"CONSTR_NOTNULL", "CONSTR_PRIMARY"} & kinds) or column.is_not_null
    # DEFAULT NULL (or NULL::type) gives existing rows no value: it fails on a non-empty table as no default does.
    defaults = [c for c in column.constraints or () if _enum(c.contype) == "CONSTR_DEFAULT"]
    gets_values = (bool({"CONSTR_IDENTITY", "CONSTR_GENERATED"} & kinds) or type_name in _SERIAL_TYPES
                   or any(not _is_null(c.raw_expr) for c in defaults))
    if not_null and not gets_values:
        hit("add-not-null-column-without-default", f"adds NOT NULL column {column_name} without a default")
    # Column constraints cannot say NOT VALID, so each is checked against every row under lock.
    if "CONSTR_FOREIGN" in kinds:
        hit("add-foreign-key-without-not-valid", f"adds column {column_name} with REFERENCES")
    if "CONSTR_CHECK" in kinds:
        hit("add-check-without-not-valid", f"adds column {column_name} with a CHECK")
    if {"CONSTR_UNIQUE", "CONSTR_PRIMARY"} & kinds:
        hit("create-index-not-concurrently", f"adds column {column_name} with a unique index built under lock")


def _is_null(expr: Any) -> bool:
    """A NULL constant, possibly cast (NULL::int)."""
    while _kind(expr) == "TypeCast":
        expr = expr.arg
    return _kind(expr) == "A_Const" and bool(getattr(expr, "isnull", False))


def _pg_add_constraint(constraint: Any, table: str, hit: Callable[[str, str], None]) -> None:
    kind = _enum(constraint.contype)
    label = f"{constraint.conname} " if constraint.conname else ""
    if kind == "CONSTR_FOREIGN" and not constraint.skip_validation:
        hit("add-foreign-key-without-not-valid", f"adds foreign key {label}on {table} without NOT VALID")
    elif kind == "CONSTR_CHECK" and not constraint.skip_validation:
        hit("add-check-without-not-valid", f"adds check constraint {label}on {table} without NOT VALID")
    elif kind in ("CONSTR_UNIQUE", "CONSTR_PRIMARY") and not constraint.indexname:
        what = "UNIQUE" if kind == "CONSTR_UNIQUE" else "PRIMARY KEY"
        hit("create-index-not-concurrently",
            f"adds {what} constraint {label}on {table}, which builds its index under lock")


def _pg_rename(stmt: Any) -> list[Hit]:
    rename = _enum(stmt.renameType)
    if rename == "OBJECT_TABLE":
        table = _pg_table(stmt.relation)
        return [Hit("rename-table", f"renames table {display(table)} to {stmt.newname}", (table,))]
    if rename == "OBJECT_COLUMN" and _enum(stmt.relationType) == "OBJECT_TABLE":
        table = _pg_table(stmt.relation)
        return [Hit("rename-column", f"renames column {display(table)}.{stmt.subname} to {stmt.newname}",
                     (table,))]
    return []


def _pg_drop(stmt: Any) -> list[Hit]:
    if _enum(stmt.removeType) == "OBJECT_SCHEMA" and _enum(stmt.behavior) == "DROP_CASCADE":
        schemas = ", ".join(name.sval for name in stmt.objects)
        return [Hit("drop-table", f"drops schema {schemas} with every table in it (CASCADE)")]
    if _enum(stmt.removeType) != "OBJECT_TABLE":
        return []
    tables = []
    for names in stmt.objects:
        parts = [n.sval for n in names]
        tables.append((parts[-2] if len(parts) > 1 else None, parts[-1]))
    return [Hit("drop-table", f"drops table {', '.join(display(t) for t in tables)}", tuple(tables))]


def _pg_index(stmt: Any) -> list[Hit]:
    return _index_hits(bool(stmt.concurrent), stmt.idxname, _pg_table(stmt.relation))


def _index_hits(concurrent: bool, name: str | None, table: Table) -> list[Hit]:
    if concurrent:
        return []
    label = f"index {name}" if name else "an index"
    return [Hit("create-index-not-concurrently", f"builds {label} on {display(table)} without CONCURRENTLY",
                 (table,))]


# The statement kinds read from the JSON tree; a text holding any other kind takes the full path (pglast's nodes).
_QUICK_KINDS = frozenset({"CreateStmt", "IndexStmt"})


def _quick_effects(tree: dict[str, Any], text: str, transactional: bool) -> Effects | None:
    """The effects of `text` from libpg_query's JSON parse tree, when it holds only CREATE TABLE and CREATE INDEX
    statements: what _pg_hits and _pg_created find for those two kinds (neither has a WITH clause or DML inside),
    read from the same tree without building pglast's Python nodes. None: another kind is present."""
    raws = tree.get("stmts") or []
    if not all(len(raw["stmt"]) == 1 and next(iter(raw["stmt"])) in _QUICK_KINDS for raw in raws):
        return None
    effects = Effects()
    encoded = text.encode()
    for raw in raws:
        ((kind, node),) = raw["stmt"].items()
        relation = node["relation"]
        table: Table = (relation.get("schemaname") or None, relation["relname"])
        if transactional:
            start = raw.get("stmt_location", 0)
            end = start + raw["stmt_len"] if raw.get("stmt_len") else len(encoded)
            entry = incompatible(encoded[start:end].decode(errors="replace"), "postgresql")
            if entry is not None:
                effects.hits.append(Hit("transaction-incompatible", f"{entry.what} {entry.effect}"))
        if kind == "CreateStmt":
            effects.created.append(table)
        else:
            effects.hits.extend(_index_hits(bool(node.get("concurrent")), node.get("idxname"), table))
    return effects


def _pg_truncate(stmt: Any) -> list[Hit]:
    tables = tuple(_pg_table(rv) for rv in stmt.relations)
    return [Hit("truncate", f"truncates {', '.join(display(t) for t in tables)}", tables)]


_PG_CHECKS: dict[str, Callable[[Any], list[Hit]]] = {
    "DropdbStmt": lambda stmt: [Hit("drop-table", f"drops database {stmt.dbname} with every table in it")],
    "RenameStmt": _pg_rename,
    "DropStmt": _pg_drop,
    "IndexStmt": _pg_index,
    "TruncateStmt": _pg_truncate,
}


def _pg_dml(stmt: Any) -> list[Any]:
    """UPDATE and DELETE that run now: the statement itself and those in its WITH clause (not function bodies)."""
    found = [stmt] if _kind(stmt) in ("UpdateStmt", "DeleteStmt") else []
    with_clause = getattr(stmt, "withClause", None)
    for cte in getattr(with_clause, "ctes", None) or ():
        found.extend(_pg_dml(cte.ctequery))
    return found


def _pg_created(stmt: Any) -> list[Table]:
    kind = _kind(stmt)
    if kind == "CreateStmt":
        return [_pg_table(stmt.relation)]
    if kind == "CreateTableAsStmt" and stmt.into is not None:  # also materialized views
        return [_pg_table(stmt.into.rel)]
    if kind == "SelectStmt" and getattr(stmt, "intoClause", None) is not None:
        return [_pg_table(stmt.intoClause.rel)]
    return []

"""MySQL/MariaDB and SQLite statements, read through model/sql.py's tokens by a reader of the few statement shapes
the rules are about: which rules they trigger."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from premigrate.model.tokens import Token, tokens
from premigrate.model.transactions import incompatible
from premigrate.commands.lint.rules import Analyzer, Effects, Hit, Table, display

# -- MySQL/MariaDB and SQLite: the statement shapes the rules are about, over model/sql.py's tokens -----------------


class _Reader:
    """A cursor over one statement's tokens."""

    def __init__(self, tokens: Sequence[Token], dialect: str) -> None:
        self.tokens = tokens
        self.dialect = dialect
        self.i = 0

    def peek(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.tokens[j].word if j < len(self.tokens) else ""

    def accept(self, *words: str) -> bool:
        """Consume the given words if they come next, in order."""
        for offset, word in enumerate(words):
            if self.peek(offset) != word:
                return False
        self.i += len(words)
        return True

    def at_end(self) -> bool:
        return self.i >= len(self.tokens)

    def name(self) -> Table | None:
        """A possibly qualified table or column name; None when the next token is not one."""
        parts: list[str] = []
        while self.i < len(self.tokens) and self.tokens[self.i].kind in ("word", "name"):
            parts.append(self.tokens[self.i].text)
            self.i += 1
            if self.i < len(self.tokens) and self.tokens[self.i].text == "." and self.tokens[self.i].kind == "punct":
                self.i += 1
                continue
            break
        if not parts:
            return None
        # MySQL on Linux compares table names case-sensitively, but a migration that mixes cases for one table is
        # rare enough; SQLite folds. Lowercase so that CREATE TABLE Users ... ALTER TABLE users matches.
        return (parts[-2].lower() if len(parts) > 1 else None, parts[-1].lower())


def _split_commas(tokens: Sequence[Token]) -> list[list[Token]]:
    """Split at commas outside parentheses."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "punct" and token.text in "()":
            depth += 1 if token.text == "(" else -1
        if depth == 0 and token.kind == "punct" and token.text == ",":
            parts.append([])
        else:
            parts[-1].append(token)
    return [p for p in parts if p]


def _top_level_words(tokens: Sequence[Token]) -> list[str]:
    words, depth = [], 0
    for token in tokens:
        if token.kind == "punct" and token.text in "()":
            depth += 1 if token.text == "(" else -1
        elif depth == 0 and token.word:
            words.append(token.word)
    return words


def generic_analyzer(dialect: str) -> Analyzer:
    def analyze(text: str, transactional: bool) -> Effects:
        effects = Effects()
        effects.hits = _generic_statement(text, list(tokens(text, dialect)), dialect, transactional, effects)
        return effects

    return analyze


def _generic_statement(text: str, tokens: list[Token], dialect: str, transactional: bool,
                       effects: Effects) -> list[Hit]:
    reader = _Reader(tokens, dialect)
    first = reader.peek()
    if dialect == "sqlite" and transactional:
        hit = _sqlite_transaction_hit(text, reader)
        if hit is not None:
            return [hit]
    if first == "WITH":
        # WITH ... UPDATE/DELETE: the verb is the first top-level one after the common table expressions.
        depth = 0
        for index, token in enumerate(tokens):
            if token.kind == "punct" and token.text in "()":
                depth += 1 if token.text == "(" else -1
            elif depth == 0 and token.word in ("UPDATE", "DELETE", "SELECT", "INSERT", "REPLACE"):
                reader.i = index
                break
        first = reader.peek()
    if first == "CREATE":
        return _generic_create(reader, effects.created)
    if first == "ALTER":
        return _generic_alter(reader, effects)
    if first == "DROP":
        return _generic_drop(reader)
    if first == "RENAME" and dialect == "mysql":
        return _mysql_rename_table(reader, effects)
    if first == "TRUNCATE" and dialect == "mysql":
        reader.i += 1
        reader.accept("TABLE")
        table = reader.name()
        return [Hit("truncate", f"truncates {display(table)}", (table,))] if table else []
    if first in ("UPDATE", "DELETE"):
        return _generic_dml(reader, tokens[reader.i:])
    return []


def _generic_create(reader: _Reader, created: list[Table]) -> list[Hit]:
    reader.i += 1
    reader.accept("OR", "REPLACE")
    reader.accept("TEMPORARY") or reader.accept("TEMP")
    if reader.accept("TABLE"):
        reader.accept("IF", "NOT", "EXISTS")
        table = reader.name()
        if table:
            created.append(table)
    return []


def _generic_drop(reader: _Reader) -> list[Hit]:
    reader.i += 1
    if reader.peek() in ("DATABASE", "SCHEMA") and reader.dialect == "mysql":
        reader.i += 1
        reader.accept("IF", "EXISTS")
        database = reader.name()
        return [Hit("drop-table", f"drops database {database[1] if database else '?'} with every table in it")]
    if reader.accept("TEMPORARY") or not reader.accept("TABLE"):
        return []  # a temporary table belongs to this session only; DROP INDEX/VIEW/... are not table drops
    reader.accept("IF", "EXISTS")
    tables = []
    for part in _split_commas(reader.tokens[reader.i:]):
        table = _Reader(part, reader.dialect).name()
        if table:
            tables.append(table)
    if not tables:
        return []
    return [Hit("drop-table", f"drops table {', '.join(display(t) for t in tables)}", tuple(tables))]


def _mysql_rename_table(reader: _Reader, effects: Effects) -> list[Hit]:
    reader.i += 1
    if not reader.accept("TABLE") and not reader.accept("TABLES"):
        return []  # RENAME USER
    hits = []
    for part in _split_commas(reader.tokens[reader.i:]):
        pair = _Reader(part, reader.dialect)
        old = pair.name()
        if old and pair.accept("TO"):
            new = pair.name()
            if new:
                effects.renamed.append((old, new))
            hits.append(Hit("rename-table", f"renames table {display(old)} to {display(new) if new else '?'}",
                             (old,)))
    return hits


# ALTER TABLE ... ADD/DROP followed by these is about an index, key or constraint, not a column (unless COLUMN)
_NOT_A_COLUMN = {"INDEX", "KEY", "UNIQUE", "PRIMARY", "FOREIGN", "CONSTRAINT", "FULLTEXT", "SPATIAL", "CHECK",
                 "PARTITION", "PERIOD", "SYSTEM", "DEFAULT", "VECTOR"}


def _generic_alter(reader: _Reader, effects: Effects) -> list[Hit]:
    reader.i += 1
    reader.accept("ONLINE")
    reader.accept("IGNORE")
    if not reader.accept("TABLE"):
        return []
    reader.accept("IF", "EXISTS")
    table = reader.name()
    if table is None:
        return []
    hits: list[Hit] = []
    for spec in _split_commas(reader.tokens[reader.i:]):
        hits.extend(_alter_spec(_Reader(spec, reader.dialect), table, effects))
    return hits


def _alter_spec(spec: _Reader, table: Table, effects: Effects) -> list[Hit]:
    name = display(table)

    def hit(rule: str, subject: str) -> list[Hit]:
        return [Hit(rule, subject, (table,))]

    verb = spec.peek()
    spec.i += 1
    is_my = spec.dialect == "mysql"
    if verb == "ADD":
        has_column_word = spec.accept("COLUMN")
        if not has_column_word and spec.peek() in _NOT_A_COLUMN:
            return []
        spec.accept("IF", "NOT", "EXISTS")
        rest = spec.tokens[spec.i:]
        if rest and rest[0].kind == "punct" and rest[0].text == "(":  # MySQL: ADD COLUMN (a ..., b ...)
            definitions = _split_commas(rest[1:-1] if rest[-1].text == ")" else rest[1:])
        else:
            definitions = [list(rest)]
        hits = []
        for definition in definitions:
            hits.extend(_generic_add_column(_Reader(definition, spec.dialect), name, hit))
        return hits
    if verb == "DROP":
        has_column_word = spec.accept("COLUMN")
        if not has_column_word and spec.peek() in _NOT_A_COLUMN:
            return []
        spec.accept("IF", "EXISTS")
        column = spec.name()
        return hit("drop-column", f"drops column {name}.{column[1]}") if column else []
    if verb == "MODIFY" and is_my:
        spec.accept("COLUMN")
        spec.accept("IF", "EXISTS")
        column = spec.name()
        return hit("change-column-type", f"redefines column {name}.{column[1]} (MODIFY)") if column else []
    if verb == "CHANGE" and is_my:
        spec.accept("COLUMN")
        spec.accept("IF", "EXISTS")
        old, new = spec.name(), spec.name()
        if not old or not new:
            return []
        if old[1] != new[1]:
            return hit("rename-column", f"renames column {name}.{old[1]} to {new[1]} (CHANGE)")
        return hit("change-column-type", f"redefines column {name}.{old[1]} (CHANGE)")
    if verb == "CONVERT" and is_my:
        return hit("change-column-type", f"converts every text column of {name} to another character set")
    if verb == "RENAME":
        if spec.peek() in ("INDEX", "KEY", "CONSTRAINT"):
            return []
        if spec.accept("COLUMN") or (not is_my and spec.peek() not in ("TO", "AS") and spec.peek(1) == "TO"):
            old = spec.name()
            spec.accept("TO")
            new = spec.name()
            return hit("rename-column", f"renames column {name}.{old[1] if old else '?'} to {new[1] if new else '?'}")
        if spec.accept("TO") or spec.accept("AS") or is_my:  # MySQL: RENAME [TO|AS] new_name
            new = spec.name()
            if new:
                effects.renamed.append((table, new))
            return hit("rename-table", f"renames table {name} to {display(new) if new else '?'}")
    return []


def _generic_add_column(column: _Reader, table: str, hit: Callable[[str, str], list[Hit]]) -> list[Hit]:
    name = column.name()
    if name is None:
        return []
    words = _top_level_words(column.tokens[column.i:])
    not_null = any(a == "NOT" and b == "NULL" for a, b in zip(words, words[1:])) or "PRIMARY" in words
    # DEFAULT, AUTO_INCREMENT and generated columns (AS (...) / GENERATED ALWAYS) give existing rows a value;
    # DEFAULT NULL gives them none, so it fails on a non-empty table exactly as no default does.
    gets_values = bool({"AUTO_INCREMENT", "AUTOINCREMENT", "AS", "GENERATED"} & set(words)) or (
        "DEFAULT" in words and not _default_is_null(column.tokens[column.i:]))
    if not_null and not gets_values:
        return hit("add-not-null-column-without-default", f"adds NOT NULL column {table}.{name[1]} without a default")
    return []


def _default_is_null(tokens: Sequence[Token]) -> bool:
    """Whether the column's top-level DEFAULT is NULL (also written DEFAULT (NULL))."""
    depth = 0
    for j, token in enumerate(tokens):
        if token.kind == "punct" and token.text in "()":
            depth += 1 if token.text == "(" else -1
        elif depth == 0 and token.word == "DEFAULT":
            following = [t for t in tokens[j + 1:] if not (t.kind == "punct" and t.text == "(")]
            return bool(following) and following[0].word == "NULL"
    return False


def _generic_dml(reader: _Reader, tokens: Sequence[Token]) -> list[Hit]:
    verb = reader.peek()
    reader.i += 1
    while reader.peek() in ("LOW_PRIORITY", "QUICK", "IGNORE"):
        reader.i += 1
    if reader.accept("OR"):  # SQLite: UPDATE OR REPLACE ...
        reader.i += 1
    reader.accept("FROM")
    table = reader.name()
    words = _top_level_words(tokens)
    # A join restricts the rows as a WHERE does (MySQL multi-table UPDATE/DELETE).
    if table is None or {"WHERE", "JOIN", "STRAIGHT_JOIN"} & set(words):
        return []
    if verb == "UPDATE":
        return [Hit("update-without-where", f"updates every row of {display(table)}", (table,))]
    return [Hit("delete-without-where", f"deletes every row of {display(table)}", (table,))]


def _sqlite_transaction_hit(text: str, reader: _Reader) -> Hit | None:
    """What SQLite refuses, or silently ignores, inside the transaction premigrate runs the file in: transaction
    control, and the runner's own catalogue (model/transactions.py)."""
    first = reader.peek()
    # ROLLBACK [TRANSACTION] TO a savepoint stays inside the transaction.
    if first in ("BEGIN", "COMMIT", "END") or (first == "ROLLBACK" and "TO" not in _top_level_words(reader.tokens)):
        return Hit("transaction-incompatible", f"{first} ends or nests the transaction premigrate runs this file in")
    entry = incompatible(text, "sqlite", noops=True)
    if entry is None:
        return None
    return Hit("transaction-noop" if entry.noop else "transaction-incompatible", f"{entry.what} {entry.effect}")

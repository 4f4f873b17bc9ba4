from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from premigrate.errors import UsageError
from premigrate.commands.lint import (
    RULES,
    Finding,
    LintUnavailable,
    exit_code,
    has_errors,
    lint_migrations,
    render_json,
    render_text,
)
from premigrate.model.migrations import load_migrations

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lint"


def lint_dir(path: Path, dialect: str) -> list[Finding]:
    return lint_migrations(load_migrations(path).all, dialect)


def lint_sql(tmp_path: Path, sql: str, dialect: str = "postgresql", name: str = "001_x.sql") -> list[Finding]:
    # Through load_migrations, so that every allow comment also passes the file parser's directive check.
    (tmp_path / name).write_text(sql)
    return lint_dir(tmp_path, dialect)


def where(findings: list[Finding]) -> set[tuple[str, str, int]]:
    return {(f.rule, f.script, f.line) for f in findings}


def rules_at(findings: list[Finding]) -> set[tuple[str, int]]:
    return {(f.rule, f.line) for f in findings}


def finding(rule: str = "drop-table", severity: str = "error", line: int = 3) -> Finding:
    return Finding(rule, severity, "002_drop.sql", line, "DROP TABLE users", "drops table users: why", "how")


class TestRuleTable:
    def test_severity_policy(self) -> None:
        """Data loss, a broken running release, a failing file: error; a lock that ends by itself: warning."""
        assert {
            "drop-column": "error",
            "drop-table": "error",
            "rename-column": "error",
            "rename-table": "error",
            "change-column-type": "warning",
            "add-not-null-column-without-default": "error",
            "set-not-null": "warning",
            "create-index-not-concurrently": "warning",
            "add-foreign-key-without-not-valid": "warning",
            "add-check-without-not-valid": "warning",
            "truncate": "error",
            "update-without-where": "warning",
            "delete-without-where": "error",
            "transaction-incompatible": "error",
            "transaction-noop": "warning",
            "parse-error": "warning",
        } == {rule.id: rule.severity for rule in RULES.values()}

    def test_documented_rules_match_the_code(self) -> None:
        """docs/commands/lint.md's rules table lists exactly the rules the code defines, with their severity and
        dialects, in the same order (the order findings come in)."""
        docs = (Path(__file__).resolve().parents[2] / "docs" / "commands" / "lint.md").read_text(encoding="utf-8")
        table = docs.split("## Rules", 1)[1].split("\n\n", 2)[1]
        names = {"all": ("postgresql", "mysql", "sqlite"), "PostgreSQL": ("postgresql",), "MySQL": ("mysql",),
                 "SQLite": ("sqlite",)}
        documented = []
        for row in table.splitlines()[2:]:
            rule, severity, dialects = (cell.strip() for cell in row.strip("|").split("|")[:3])
            documented.append((rule.strip("`"), severity,
                               tuple(d for name in dialects.split(", ") for d in names[name])))
        assert [(rule.id, rule.severity, rule.dialects) for rule in RULES.values()] == documented

    @pytest.mark.parametrize("rule_id", sorted(RULES))
    def test_every_rule_says_why_and_what_instead(self, rule_id: str) -> None:
        """Each rule has a kebab-case id, a title, why it is unsafe, a safe alternative and known dialects."""
        rule = RULES[rule_id]
        assert rule_id == rule.id == rule.id.lower()
        assert " " not in rule.id
        assert rule.title and len(rule.why) > 20 and len(rule.fix) > 20
        assert set(rule.dialects) <= {"postgresql", "mysql", "sqlite"} and rule.dialects

    def test_unknown_dialect_is_a_usage_error(self) -> None:
        """A dialect lint cannot read is refused, not guessed."""
        with pytest.raises(UsageError, match="oracle"):
            lint_migrations([], "oracle")


class TestPostgresFixtures:
    UNSAFE = FIXTURES / "postgresql" / "unsafe"
    EXPECTED = {
        ("drop-column", "001_drop_and_rename.sql", 2),
        ("drop-table", "001_drop_and_rename.sql", 3),
        ("rename-column", "001_drop_and_rename.sql", 4),
        ("rename-table", "001_drop_and_rename.sql", 5),
        ("change-column-type", "001_drop_and_rename.sql", 6),
        ("truncate", "001_drop_and_rename.sql", 8),
        ("add-not-null-column-without-default", "002_locks.sql", 1),
        ("set-not-null", "002_locks.sql", 2),
        ("create-index-not-concurrently", "002_locks.sql", 3),
        ("add-foreign-key-without-not-valid", "002_locks.sql", 4),
        ("add-check-without-not-valid", "002_locks.sql", 5),
        ("create-index-not-concurrently", "002_locks.sql", 6),  # ADD PRIMARY KEY builds an index under lock
        ("add-foreign-key-without-not-valid", "002_locks.sql", 7),  # ADD COLUMN ... REFERENCES
        ("update-without-where", "003_data.sql", 1),
        ("delete-without-where", "003_data.sql", 2),
        ("delete-without-where", "003_data.sql", 3),  # DELETE inside WITH
        *{("transaction-incompatible", "004_transaction_incompatible.sql", n) for n in range(1, 8)},
        ("parse-error", "005_parse_error.sql", 5),
        ("drop-column", "006_dbmate_sections.sql", 3),  # the down part is not linted
        ("delete-without-where", "007_no_transaction.sql", 3),  # VACUUM is fine outside a transaction
        ("drop-column", "008_placeholders.sql", 2),
    }

    def test_unsafe_set_finds_each_rule_where_expected(self) -> None:
        """Every unsafe statement in the fixture set is found at its file and line, and nothing else is."""
        assert self.EXPECTED == where(lint_dir(self.UNSAFE, "postgresql"))

    def test_unsafe_set_covers_every_postgresql_rule(self) -> None:
        """The fixture set exercises every PostgreSQL rule, so a new rule without a fixture fails here."""
        expected = {rule.id for rule in RULES.values() if "postgresql" in rule.dialects}
        assert expected == {f.rule for f in lint_dir(self.UNSAFE, "postgresql")}

    def test_one_finding_per_rule_and_statement(self) -> None:
        """No statement yields the same rule twice."""
        findings = lint_dir(self.UNSAFE, "postgresql")
        assert len(findings) == len(where(findings))

    def test_clean_set_has_no_findings(self) -> None:
        """Realistic safe migrations (new tables, CONCURRENTLY, NOT VALID + VALIDATE, bodies) yield nothing."""
        findings = lint_dir(FIXTURES / "postgresql" / "clean", "postgresql")
        assert "no findings\n" == render_text(findings)


class TestMysqlFixtures:
    UNSAFE = FIXTURES / "mysql" / "unsafe"
    EXPECTED = {
        ("drop-column", "001_destructive.sql", 1),
        ("drop-table", "001_destructive.sql", 2),
        ("rename-column", "001_destructive.sql", 3),
        ("rename-column", "001_destructive.sql", 4),  # CHANGE with a new name
        ("rename-table", "001_destructive.sql", 5),
        ("rename-table", "001_destructive.sql", 6),
        ("truncate", "001_destructive.sql", 7),
        ("change-column-type", "002_alter.sql", 1),
        ("change-column-type", "002_alter.sql", 2),  # CHANGE with the same name
        ("add-not-null-column-without-default", "002_alter.sql", 3),
        ("add-not-null-column-without-default", "002_alter.sql", 4),  # ADD COLUMN (a ..., b ...)
        ("drop-column", "002_alter.sql", 7),  # inside a /*! executable comment */
        ("update-without-where", "003_data.sql", 2),
        ("delete-without-where", "003_data.sql", 3),
        ("delete-without-where", "003_data.sql", 4),
        ("update-without-where", "003_data.sql", 5),
    }

    def test_unsafe_set_finds_each_rule_where_expected(self) -> None:
        """Every unsafe MySQL statement in the fixture set is found at its file and line, and nothing else is."""
        assert self.EXPECTED == where(lint_dir(self.UNSAFE, "mysql"))

    def test_unsafe_set_covers_every_mysql_rule(self) -> None:
        """The MySQL fixture set exercises every rule that applies to MySQL."""
        expected = {rule.id for rule in RULES.values() if "mysql" in rule.dialects}
        assert expected == {f.rule for f in lint_dir(self.UNSAFE, "mysql")}

    def test_clean_set_has_no_findings(self) -> None:
        """Safe MySQL migrations (online DDL, joins as filters, procedures, scratch tables) yield nothing."""
        assert "no findings\n" == render_text(lint_dir(FIXTURES / "mysql" / "clean", "mysql"))


class TestDefaultNull:
    @pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
    @pytest.mark.parametrize(("sql", "flagged"), [
        pytest.param("ALTER TABLE t ADD COLUMN a int NOT NULL DEFAULT NULL", True, id="default-null"),
        pytest.param("ALTER TABLE t ADD COLUMN a int DEFAULT NULL NOT NULL", True, id="default-null-first"),
        pytest.param("ALTER TABLE t ADD COLUMN a int NOT NULL DEFAULT (NULL)", True, id="default-null-parens"),
        pytest.param("ALTER TABLE t ADD COLUMN a int NOT NULL DEFAULT 0", False, id="default-zero"),
        pytest.param("ALTER TABLE t ADD COLUMN a varchar(9) NOT NULL DEFAULT 'NULL'", False, id="default-string"),
        pytest.param("ALTER TABLE t ADD COLUMN a int DEFAULT NULL", False, id="nullable"),
    ])
    def test_default_null_is_no_default(self, tmp_path: Path, dialect: str, sql: str, flagged: bool) -> None:
        """DEFAULT NULL gives existing rows no value: NOT NULL with it fails on a non-empty table exactly as NOT NULL
        with no default does, on every dialect."""
        expected = {("add-not-null-column-without-default", 1)} if flagged else set()
        assert expected == rules_at(lint_sql(tmp_path, sql, dialect))

    def test_postgres_cast_null(self, tmp_path: Path) -> None:
        assert {("add-not-null-column-without-default", 1)} == rules_at(
            lint_sql(tmp_path, "ALTER TABLE t ADD COLUMN a int NOT NULL DEFAULT NULL::int", "postgresql"))


class TestPostgresStatements:
    @pytest.mark.parametrize(("sql", "expected"), [
        pytest.param("ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0", set(), id="not-null-with-default"),
        pytest.param("ALTER TABLE t ADD COLUMN c int GENERATED ALWAYS AS IDENTITY", set(), id="identity"),
        pytest.param("ALTER TABLE t ADD COLUMN c int PRIMARY KEY",
                     {("add-not-null-column-without-default", 1), ("create-index-not-concurrently", 1)},
                     id="primary-key-column"),
        pytest.param("ALTER TABLE t ADD COLUMN c int CHECK (c > 0)", {("add-check-without-not-valid", 1)},
                     id="column-check"),
        pytest.param("ALTER TABLE t ADD CONSTRAINT u UNIQUE (c)", {("create-index-not-concurrently", 1)},
                     id="unique-constraint"),
        pytest.param("ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX i", set(), id="unique-using-index"),
        pytest.param("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID", set(), id="check-not-valid"),
        pytest.param("ALTER TABLE t ALTER COLUMN a SET DATA TYPE text", {("change-column-type", 1)},
                     id="set-data-type"),
        pytest.param("ALTER TABLE t RENAME a TO b", {("rename-column", 1)}, id="rename-without-column-word"),
        pytest.param("ALTER TABLE t RENAME CONSTRAINT a TO b", set(), id="rename-constraint"),
        pytest.param("ALTER INDEX i RENAME TO j", set(), id="rename-index"),
        pytest.param("DROP VIEW v;\nDROP INDEX i;\nDROP MATERIALIZED VIEW m", set(), id="drop-non-tables"),
        pytest.param("WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x", {("update-without-where", 1)},
                     id="update-in-with"),
        pytest.param("DELETE FROM t USING u WHERE t.id = u.id", set(), id="delete-using-where"),
        pytest.param("ANALYZE t;\nCLUSTER t USING i;\nSAVEPOINT a", set(), id="allowed-in-transaction"),
        pytest.param("ALTER TYPE e ADD VALUE 'x'", set(), id="enum-add-value"),
        pytest.param("CLUSTER", {("transaction-incompatible", 1)}, id="cluster-all"),
        pytest.param("REINDEX DATABASE d", {("transaction-incompatible", 1)}, id="reindex-database"),
        pytest.param("REINDEX (CONCURRENTLY false) TABLE t", set(), id="reindex-concurrently-false"),
        pytest.param("BEGIN", {("transaction-incompatible", 1)}, id="begin"),
        # A file that opens and ends its own transaction (a sqitch script) runs as written.
        pytest.param("BEGIN;\nCREATE TABLE t (a int);\nCOMMIT", set(), id="own-transaction-block"),
        pytest.param("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", {("transaction-incompatible", 1)},
                     id="detach-concurrently"),
        pytest.param("CREATE TABLESPACE ts LOCATION '/x'", {("transaction-incompatible", 1)}, id="tablespace"),
        pytest.param("CREATE TABLE app.t (a int);\nCREATE INDEX ON t (a)", set(), id="new-table-unqualified-use"),
        pytest.param("CREATE TABLE app.t (a int);\nCREATE INDEX ON other.t (a)",
                     {("create-index-not-concurrently", 2)}, id="same-name-other-schema"),
        pytest.param("CREATE TABLE t (a int);\nALTER TABLE t RENAME TO u;\nCREATE INDEX ON u (a)", set(),
                     id="renamed-new-table-stays-new"),
        pytest.param("SELECT * INTO t2 FROM t;\nCREATE INDEX ON t2 (a)", set(), id="select-into-creates"),
        pytest.param("CREATE INDEX ON t (a);\nCREATE TABLE t (a int)", {("create-index-not-concurrently", 1)},
                     id="created-only-after"),
        pytest.param("DROP SCHEMA app CASCADE;\nDROP SCHEMA empty", {("drop-table", 1)}, id="drop-schema-cascade"),
        pytest.param("-- premigrate:no-transaction\nDROP DATABASE d", {("drop-table", 2)}, id="drop-database"),
    ])
    def test_rules(self, tmp_path: Path, sql: str, expected: set[tuple[str, int]]) -> None:
        """Each statement shape triggers exactly the rules listed, at its line."""
        assert expected == rules_at(lint_sql(tmp_path, sql))

    @pytest.mark.parametrize("sql, expected", [
        pytest.param("CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);", set(), id="new-table"),
        pytest.param("CREATE TABLE app.t (a int);\nCREATE INDEX ON other.t (a);",
                     {("create-index-not-concurrently", 2)}, id="other-schema"),
        pytest.param("CREATE INDEX CONCURRENTLY i ON t (a);", {("transaction-incompatible", 1)}, id="concurrently"),
    ])
    def test_create_table_and_index_never_build_pglast_nodes(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               sql: str, expected: set[tuple[str, int]]) -> None:
        """The common migration (CREATE TABLE, CREATE INDEX) is read from the parser's JSON tree, without pglast's
        Python nodes, which cost `up --lint=warn` about 0.3 ms per migration; the findings are the same."""
        import pglast

        def refuse(text: str) -> None:
            raise AssertionError(f"pglast.parse_sql called for {text!r}")

        monkeypatch.setattr(pglast, "parse_sql", refuse)
        assert expected == rules_at(lint_sql(tmp_path, sql))

    def test_one_finding_names_every_subject(self, tmp_path: Path) -> None:
        """Two dropped columns in one statement make one finding that names both."""
        [only] = lint_sql(tmp_path, "ALTER TABLE t DROP COLUMN a, DROP COLUMN b")
        assert "drops column t.a; drops column t.b" == only.message.split(": ")[0]

    def test_placeholders_read_as_names(self, tmp_path: Path) -> None:
        """A ${NAME} placeholder parses as a name, even a reserved word, and is shown as written."""
        [only] = lint_sql(tmp_path, "-- premigrate:placeholders\nALTER TABLE ${user}.t DROP COLUMN a;")
        assert ("drop-column", 2, "drops column ${user}.t.a") == (only.rule, only.line, only.message.split(": ")[0])

    def test_set_not_null_needs_a_validated_check(self, tmp_path: Path) -> None:
        """A NOT VALID check that was never validated does not make SET NOT NULL safe."""
        sql = ("ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID;\n"
               "ALTER TABLE t ALTER COLUMN a SET NOT NULL;")
        assert {("set-not-null", 2)} == rules_at(lint_sql(tmp_path, sql))

    def test_validated_check_on_another_column_does_not_count(self, tmp_path: Path) -> None:
        """The check must prove the very column that is set NOT NULL."""
        sql = ("ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID;\n"
               "ALTER TABLE t VALIDATE CONSTRAINT c;\n"
               "ALTER TABLE t ALTER COLUMN b SET NOT NULL;")
        assert {("set-not-null", 3)} == rules_at(lint_sql(tmp_path, sql))

    def test_transaction_incompatible_only_in_transactional_files(self, tmp_path: Path) -> None:
        """The same statement is fine in a file marked no-transaction."""
        sql = "-- premigrate:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\nVACUUM t;\nALTER SYSTEM SET x = 1;"
        assert [] == lint_sql(tmp_path, sql)

    def test_parse_error_is_a_finding_not_a_crash(self, tmp_path: Path) -> None:
        """A statement pglast rejects is a warning at the line where it stopped; the rest is still linted."""
        sql = "SELECT 1;\nALTER TABLE t\n  DROPP c;\nDROP TABLE t;"
        findings = lint_sql(tmp_path, sql)
        assert {("parse-error", 3), ("drop-table", 4)} == rules_at(findings)
        parse_error = findings[0]
        assert ("warning", 'syntax error at or near "DROPP"') == (parse_error.severity,
                                                                 parse_error.message.split(": ")[0])

    def test_unterminated_dollar_quote_is_a_parse_error(self, tmp_path: Path) -> None:
        """A file the statement splitter cannot split is one parse-error finding."""
        [only] = lint_sql(tmp_path, "SELECT 1;\nDO $$ BEGIN")
        assert ("parse-error", 2) == (only.rule, only.line)

    def test_missing_pglast_is_reported(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without pglast, linting PostgreSQL raises a usage error that says what to install."""
        monkeypatch.setitem(sys.modules, "pglast", None)
        monkeypatch.setitem(sys.modules, "pglast.parser", None)
        with pytest.raises(LintUnavailable, match="pip install pglast"):
            lint_migrations([], "postgresql")


class TestMysqlStatements:
    @pytest.mark.parametrize(("sql", "expected"), [
        pytest.param("ALTER TABLE t ADD COLUMN c INT NOT NULL AUTO_INCREMENT PRIMARY KEY", set(), id="auto-increment"),
        pytest.param("ALTER TABLE t ADD c INT NOT NULL", {("add-not-null-column-without-default", 1)},
                     id="add-without-column-word"),
        pytest.param("ALTER TABLE t ADD INDEX (a), ADD KEY k (a), ADD UNIQUE u (a), ADD FULLTEXT f (b)", set(),
                     id="add-indexes"),
        pytest.param("ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL)", set(), id="add-constraint"),
        pytest.param("ALTER TABLE t DROP a", {("drop-column", 1)}, id="drop-without-column-word"),
        pytest.param("ALTER TABLE t DROP PRIMARY KEY, DROP FOREIGN KEY fk, DROP CHECK c, DROP KEY k", set(),
                     id="drop-keys"),
        pytest.param("ALTER TABLE t CHANGE a A INT", {("change-column-type", 1)}, id="change-case-only"),
        pytest.param("ALTER TABLE t RENAME AS u", {("rename-table", 1)}, id="rename-as"),
        pytest.param("ALTER TABLE t RENAME u", {("rename-table", 1)}, id="rename-bare"),
        pytest.param("ALTER TABLE t RENAME KEY a TO b", set(), id="rename-key"),
        pytest.param("ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4", {("change-column-type", 1)}, id="convert"),
        pytest.param("ALTER TABLE t COMMENT = 'DROP COLUMN x'", set(), id="words-in-string"),
        pytest.param("RENAME USER a TO b", set(), id="rename-user"),
        pytest.param("DELETE FROM t ORDER BY id LIMIT 100", {("delete-without-where", 1)}, id="delete-limit"),
        pytest.param("DELETE t1, t2 FROM t1 INNER JOIN t2 ON t1.id = t2.id", set(), id="delete-join"),
        pytest.param("WITH o AS (SELECT id FROM u) DELETE FROM t WHERE id IN (SELECT id FROM o)", set(),
                     id="with-delete-where"),
        pytest.param("WITH o AS (SELECT id FROM u WHERE x) DELETE FROM t", {("delete-without-where", 1)},
                     id="with-delete-no-where"),
        pytest.param("UPDATE t SET a = (SELECT b FROM u WHERE u.id = 1)", {("update-without-where", 1)},
                     id="where-only-in-subquery"),
        pytest.param("SELECT 1 -- DELETE FROM t", set(), id="comment"),
        pytest.param("BEGIN;\nVACUUM;\nSET FOREIGN_KEY_CHECKS = 0", set(), id="no-transaction-rules"),
        pytest.param("CREATE INDEX i ON t (a)", set(), id="index-is-online"),
        pytest.param("DROP DATABASE IF EXISTS app", {("drop-table", 1)}, id="drop-database"),
    ])
    def test_rules(self, tmp_path: Path, sql: str, expected: set[tuple[str, int]]) -> None:
        """Each MySQL statement shape triggers exactly the rules listed."""
        assert expected == rules_at(lint_sql(tmp_path, sql, "mysql"))


class TestSqliteStatements:
    @pytest.mark.parametrize(("sql", "expected"), [
        pytest.param("ALTER TABLE t ADD COLUMN c TEXT NOT NULL", {("add-not-null-column-without-default", 1)},
                     id="add-not-null"),
        pytest.param("ALTER TABLE t ADD COLUMN c TEXT NOT NULL DEFAULT ''", set(), id="add-not-null-default"),
        pytest.param("ALTER TABLE t DROP COLUMN c", {("drop-column", 1)}, id="drop-column"),
        pytest.param("ALTER TABLE t RENAME COLUMN a TO b", {("rename-column", 1)}, id="rename-column"),
        pytest.param("ALTER TABLE t RENAME a TO b", {("rename-column", 1)}, id="rename-column-bare"),
        pytest.param("ALTER TABLE [t] RENAME TO u", {("rename-table", 1)}, id="rename-table"),
        pytest.param("DROP TABLE IF EXISTS t", {("drop-table", 1)}, id="drop-table"),
        pytest.param("UPDATE OR IGNORE t SET a = 1", {("update-without-where", 1)}, id="update-or"),
        pytest.param("DELETE FROM t", {("delete-without-where", 1)}, id="delete"),
        pytest.param("VACUUM", {("transaction-incompatible", 1)}, id="vacuum"),
        pytest.param("PRAGMA foreign_keys = OFF", {("transaction-noop", 1)}, id="pragma-foreign-keys"),
        pytest.param("PRAGMA journal_mode = WAL", {("transaction-incompatible", 1)}, id="pragma-journal-mode"),
        pytest.param("PRAGMA foreign_keys", set(), id="pragma-read"),
        pytest.param("COMMIT", {("transaction-incompatible", 1)}, id="commit"),
        pytest.param("BEGIN;\nCREATE TABLE t (a TEXT);\nCOMMIT", set(), id="own-transaction-block"),
        pytest.param("SAVEPOINT sp;\nROLLBACK TO sp;\nRELEASE sp", set(), id="savepoints"),
        pytest.param("CREATE INDEX i ON t (a)", set(), id="index"),
        pytest.param("CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM u; END", set(), id="trigger-body"),
        pytest.param('CREATE TABLE "t" (a TEXT);\nALTER TABLE t ADD COLUMN c TEXT NOT NULL', set(), id="new-table"),
    ])
    def test_rules(self, tmp_path: Path, sql: str, expected: set[tuple[str, int]]) -> None:
        """Each SQLite statement shape triggers exactly the rules listed."""
        assert expected == rules_at(lint_sql(tmp_path, sql, "sqlite"))

    def test_no_transaction_file(self, tmp_path: Path) -> None:
        """VACUUM in a file marked no-transaction is fine."""
        assert [] == lint_sql(tmp_path, "-- premigrate:no-transaction\nVACUUM;", "sqlite")


class TestAllowComment:
    @pytest.mark.parametrize(("sql", "expected"), [
        pytest.param("-- premigrate:allow drop-table\nDROP TABLE t;", set(), id="line-before"),
        pytest.param("-- premigrate:allow drop-table\n\n-- retired in 2024\nDROP TABLE t;", set(),
                     id="lines-before-with-gap"),
        pytest.param("DROP TABLE t; -- premigrate:allow drop-table", set(), id="after-terminator"),
        pytest.param("DROP TABLE\n-- premigrate:allow drop-table\nt;", set(), id="inside"),
        pytest.param("-- premigrate:allow drop-table\nDROP TABLE a;\nDROP TABLE b;", {("drop-table", 3)},
                     id="one-statement-only"),
        pytest.param("-- premigrate:allow drop-table\nSELECT 1;\nDROP TABLE b;", {("drop-table", 3)},
                     id="belongs-to-the-statement-it-precedes"),
        pytest.param("SELECT 1; -- premigrate:allow drop-table\nDROP TABLE b;", {("drop-table", 2)},
                     id="trailing-belongs-to-previous"),
        pytest.param("-- premigrate:allow drop-column\nALTER TABLE t DROP COLUMN a, ALTER COLUMN b TYPE text;",
                     {("change-column-type", 2)}, id="only-named-rules"),
        pytest.param("-- premigrate:allow drop-column, change-column-type\n"
                     "ALTER TABLE t DROP COLUMN a, ALTER COLUMN b TYPE text;", set(), id="rule-list"),
        pytest.param("-- premigrate:allow parse-error\nALTER TABLE t DROPP c;", set(), id="parse-error"),
        pytest.param("-- premigrate:allow drop-tabel\nDROP TABLE t;", {("drop-table", 2)}, id="typo-still-reports"),
    ])
    def test_postgresql(self, tmp_path: Path, sql: str, expected: set[tuple[str, int]]) -> None:
        """An allow comment silences the named rules for the one statement it belongs to."""
        assert expected == rules_at(lint_sql(tmp_path, sql))

    def test_mysql(self, tmp_path: Path) -> None:
        """Allow comments work the same way in MySQL files."""
        sql = "-- premigrate:allow truncate\nTRUNCATE TABLE logs;\nTRUNCATE TABLE events;"
        assert {("truncate", 3)} == rules_at(lint_sql(tmp_path, sql, "mysql"))


class TestRender:
    def test_text_block(self) -> None:
        """A finding is a location line, the statement and the fix, then a count line."""
        text = render_text([finding()])
        assert ("002_drop.sql:3: error drop-table: drops table users: why\n"
                "  DROP TABLE users\n"
                "  fix: how\n"
                "\n"
                "1 finding: 1 error, 0 warnings\n") == text

    def test_text_counts(self) -> None:
        """The count line adds up errors and warnings."""
        text = render_text([finding(), finding("set-not-null", "warning", 4), finding("truncate", "error", 5)])
        assert "3 findings: 2 errors, 1 warning" == text.splitlines()[-1]

    def test_text_when_clean(self) -> None:
        """No findings prints one line saying so."""
        assert "no findings\n" == render_text([])

    def test_json_shape(self, tmp_path: Path) -> None:
        """JSON output is {"findings": [...], "counts": {"error": n, "warning": n}} with every Finding field."""
        findings = lint_sql(tmp_path, "DROP TABLE t;\nCREATE INDEX i ON u (a);")
        document = json.loads(render_json(findings))
        assert ["findings", "counts"] == list(document)
        assert {"error": 1, "warning": 1} == document["counts"]
        assert [
            {"rule": "drop-table", "severity": "error", "script": "001_x.sql", "line": 1,
             "statement": "DROP TABLE t", "message": "drops table t: " + RULES["drop-table"].why,
             "fix": RULES["drop-table"].fix},
            {"rule": "create-index-not-concurrently", "severity": "warning", "script": "001_x.sql", "line": 2,
             "statement": "CREATE INDEX i ON u (a)",
             "message": "builds index i on u without CONCURRENTLY: " + RULES["create-index-not-concurrently"].why,
             "fix": RULES["create-index-not-concurrently"].fix},
        ] == document["findings"]

    def test_json_when_clean(self) -> None:
        """An empty run is still the full document."""
        assert {"findings": [], "counts": {"error": 0, "warning": 0}} == json.loads(render_json([]))

    def test_statement_is_one_abbreviated_line(self, tmp_path: Path) -> None:
        """A long multi-line statement is shown on one line, cut with an ellipsis."""
        columns = ",\n".join(f"    DROP COLUMN column_number_{n}" for n in range(20))
        [only] = lint_sql(tmp_path, f"ALTER TABLE t\n{columns};")
        assert (120, "ALTER TABLE t DROP COLUMN column_number_0, ", "...") == (
            len(only.statement), only.statement[:43], only.statement[-3:])


class TestExitCode:
    @pytest.mark.parametrize(("findings", "expected"), [
        pytest.param([], (False, 0), id="clean"),
        pytest.param([finding("set-not-null", "warning")], (False, 0), id="warnings-only"),
        pytest.param([finding("set-not-null", "warning"), finding()], (True, 5), id="an-error"),
    ])
    def test_errors_exit_5(self, findings: list[Finding], expected: tuple[bool, int]) -> None:
        """Only error-level findings fail the run, with exit code 5."""
        assert expected == (has_errors(findings), exit_code(findings))


class TestLazyImport:
    @pytest.mark.parametrize("module", ["premigrate.commands.lint", "premigrate.cli"])
    def test_import_does_not_load_parsers(self, module: str) -> None:
        """Importing lint (or the CLI) loads neither pglast nor sqlglot: a no-op `up` pays nothing for them."""
        code = f"import sys, {module}; print(sorted(m for m in ('pglast', 'sqlglot') if m in sys.modules))"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert "[]" == result.stdout.strip()

    def test_linting_postgresql_loads_pglast(self) -> None:
        """pglast is loaded when PostgreSQL statements are linted (so the check above is not vacuous)."""
        code = ("import sys; from premigrate.commands.lint import lint_migrations; lint_migrations([], 'postgresql'); "
                "print('pglast' in sys.modules)")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert "True" == result.stdout.strip()

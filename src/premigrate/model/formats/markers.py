"""The names and markers that tell goose and sql-migrate files apart, without their parsers: detecting the format of
a folder of plain, Flyway or golang-migrate files loads these regexes only (goose.py and sqlmigrate.py, with their
dataclasses, cost a no-op `up` about 1.5 ms and load only for a file that is theirs)."""

from __future__ import annotations

import re

from premigrate.lazy_re import LazyPattern

# goose (pressly/goose internal/sqlparser): a comment line holding "+goose" (case-sensitive in goose too,
# strings.Contains); the version is the digits before the first `_`.
GOOSE_MARKER = LazyPattern(r"^\s*--[^\n]*\+goose", re.MULTILINE)
GOOSE_NAME = LazyPattern(r"(?P<version>\d+)_(?P<description>.*)\.sql\Z", re.DOTALL)
# sql-migrate (rubenv/sql-migrate sqlparse): `-- +migrate Up` / `Down` at the start of a line.
SQL_MIGRATE_MARKER = LazyPattern(r"^-- \+migrate (?:Up|Down)\b", re.MULTILINE)
# A comment line that, ignoring case and spacing, is one of these tools' up/down lines (with at most their
# transaction option): `-- +migrate up`, `-- goose Up`, `-- migrate:UP`. In a file not read as that tool's it is
# refused (files._refuse_near_miss): the tool would not run such a file as plain SQL.
NEAR_MISS = LazyPattern(
    r"^[ \t]*--+[ \t]*(?:(?P<sql_migrate>\+[ \t]*migrate[ \t]*:?[ \t]*(?:up|down))"
    r"|(?P<goose>\+?[ \t]*goose[ \t]*:?[ \t]*(?:up|down))|(?P<dbmate>migrate[ \t]*:[ \t]*(?:up|down)))"
    r"(?:[ \t]+(?:no)?transaction(?::[a-z]+)?)?[ \t]*$", re.MULTILINE | re.IGNORECASE)

# Liquibase (FormattedSqlChangeLogParser.supports): the first non-blank line matches `--liquibase formatted ...`;
# a master changelog is an XML or YAML file holding `databaseChangeLog`.
LIQUIBASE_HEADER = LazyPattern(r"\s*--\s*liquibase\s*formatted", re.IGNORECASE | re.ASCII)
LIQUIBASE_MASTER_SUFFIXES = (".xml", ".yaml", ".yml")
LIQUIBASE_MASTER_MARK = "databaseChangeLog"

# Liquibase's short database names (DatabaseList.definitionMatches): MariaDB is not `mysql` to Liquibase.
LIQUIBASE_DBMS_NAMES = {"postgresql": "postgresql", "mysql": "mysql", "sqlite": "sqlite"}


def liquibase_dbms_name(dialect: str | None, flavor: str | None) -> str | None:
    """Liquibase's short name: mariadb:// is `mariadb` (Liquibase tells MariaDB from MySQL), mysql:// `mysql`.
    Here, not in the Liquibase reader, so that every run can name its database without loading the parsers."""
    if dialect is None:
        return None
    return "mariadb" if dialect == "mysql" and flavor == "mariadb" else LIQUIBASE_DBMS_NAMES.get(dialect, dialect)

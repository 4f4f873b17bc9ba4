"""Drivers, one module per database, imported only when used (importing psycopg is a large part of a no-op run's
start-up: bench/bench.py measures it)."""

from __future__ import annotations

import importlib

from premigrate.drivers.base import Driver

_MODULES = {
    "postgresql": ("premigrate.drivers.postgres", "PostgresDriver"),
    "mysql": ("premigrate.drivers.mysql", "MySQLDriver"),
    "sqlite": ("premigrate.drivers.sqlite", "SQLiteDriver"),
}
# PyMySQL imports traceback at its top, and traceback brings linecache's tokenize and its own textwrap, read only
# while a traceback is formatted: stood in until then (premigrate/stand_ins.py). psycopg loads them through asyncio
# anyway; sqlite3 does not import traceback.
_STAND_INS = {"mysql": ("traceback", "tokenize", "textwrap")}


def driver_class(dialect: str) -> type[Driver]:
    module_name, class_name = _MODULES[dialect]
    if dialect in _STAND_INS:
        from premigrate.stand_ins import import_without

        import_without(*_STAND_INS[dialect])
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]

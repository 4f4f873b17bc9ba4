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


def driver_class(dialect: str) -> type[Driver]:
    module_name, class_name = _MODULES[dialect]
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]

"""${NAME} placeholders in migration SQL, replaced from PREMIGRATE_PLACEHOLDER_NAME.

Off unless --placeholders is given or the file carries `-- premigrate:placeholders`. The checksum is of the file
before substitution, so changing a value (another environment, a rotated password) is never drift.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from premigrate.errors import UsageError
from premigrate.model.migrations import Migration

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute(sql: str, values: Mapping[str, str], *, script: str, first_line: int = 1) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            line = first_line + sql.count("\n", 0, match.start())
            raise UsageError(
                f"{script}: line {line}: unknown placeholder ${{{name}}}; set PREMIGRATE_PLACEHOLDER_{name} "
                "(placeholders are on for this file)"
            )
        return values[name]

    return PLACEHOLDER.sub(replace, sql)


def resolve(migration: Migration, values: Mapping[str, str], *, everywhere: bool) -> Migration:
    """The migration with its placeholders replaced, when they are on for it; the checksum is left as it was."""
    if not (everywhere or migration.placeholders):
        return migration
    from dataclasses import replace

    up = substitute(migration.up_sql, values, script=migration.script, first_line=migration.up_first_line)
    down = migration.down_sql
    if down is not None:
        down = substitute(down, values, script=migration.down_script or migration.script,
                          first_line=migration.down_first_line)
    return replace(migration, up_sql=up, down_sql=down)

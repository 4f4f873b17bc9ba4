"""Which of a folder's versioned migrations comes first, and so which applied one is the newest: by version for every
format but diesel, whose versions are strings compared as text, and dbmate, whose file names are.

diesel-rs/diesel (commit 04cc1b0bc6578021db542464e6cd1a21e0d39235): diesel/src/migration/mod.rs `MigrationVersion<'a>
(Cow<'a, str>)` derives Ord; diesel_migrations/src/migration_harness.rs pending_migrations sorts what it runs by it,
and revert_last_migration reverts the first of applied_migrations (`ORDER BY version DESC` on the VARCHAR column:
for versions of digits, text order). So vaultwarden's `2024-03-13_170000_x` (version "20240313") runs after
`2024-03-06-170000_y` ("20240306170000") and before `2024-06-05-131359_z`, where the number 20240313 would come
first. A diesel migration carries that string (Migration.order); whatever orders, compares or cuts by version (the
folder's order, the planner's newest applied and --to, down, baseline's cuts, status, serve, repair's listing) asks
an Ordering of the folder, which compares those strings in a diesel folder and versions everywhere else.

amacneil/dbmate pkg/dbmate/db.go FindMigrations sorts a folder by file name (`sort.Slice(... FileName <
FileName)`); Migrate applies the pending ones in that order and Rollback reverts the last applied one in it. So
`10_create.sql` runs before `9_insert.sql`, and `10_a.sql` before `1_b.sql` ('0' sorts before '_'). A folder of dbmate
files (formats/dbmate.py order) carries each file's name as its order, compared here the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from premigrate.model.versions import Version, is_version, sort_key

if TYPE_CHECKING:
    from premigrate.drivers.base import HistoryRow
    from premigrate.model.migrations import Migration, MigrationSet

Key = tuple[Version, str]  # (version, "") by version; (Version(()), text) for diesel and dbmate: one kind per folder
_NONE = Version(())


def key_of(version: Version | None, order: str | None) -> Key:
    return (_NONE, order) if order is not None else (version or _NONE, "")


def key(migration: Migration) -> Key:
    return key_of(migration.version, migration.order)


class Ordering:
    """The order of one folder's migrations, applied to the versions and history rows compared with them."""

    __slots__ = ("_by_id", "_by_version", "_names", "text")

    def __init__(self, files: MigrationSet) -> None:
        self.text = any(m.order is not None for m in files.versioned)  # diesel or dbmate (readers never mix)
        self._names = self.text and files.versioned[0].format == "dbmate"  # ordered by file name, not version
        self._by_id = {m.id: key(m) for m in files.versioned} if self.text else {}
        self._by_version = {m.version: key(m) for m in files.versioned} if self.text else {}

    def of_version(self, version: Version) -> Key:
        """A version named by --to, baseline --version or another tool's history. In a diesel folder: its
        migration's key; one not in the folder compares as it was written (`down --to 0`: before every one)."""
        if not self.text:
            return version, ""
        found = self._by_version.get(version)
        if found is not None:
            return found
        return _NONE, (version.text or str(version)) if version.parts else ""

    def of_row(self, row: HistoryRow) -> Key:
        """A history row with a version (ValueError, as Version.parse, for one that is not a version). In a diesel
        folder: its migration's key, or for a row whose folder is gone, diesel's version of the folder its script
        names (migrations_internals version_from_string); in a dbmate folder, that row's file name."""
        if not self.text:
            return Version.parse(row.version or "0"), ""
        found = self._by_id.get(row.migration_id)
        return found if found is not None else (_NONE, self._gone(row.script))

    def listing(self, version: str | None, migration_id: str, script: str | None, name: str) -> tuple[int, Version,
                                                                                                     str]:
        """A line's place in a listing (status, serve, repair): versions first, in this order, then the rest by
        name (model/versions.sort_key)."""
        if not self.text or version is None or not is_version(version):
            return sort_key(version, name)
        found = self._by_id.get(migration_id)
        return 0, _NONE, found[1] if found is not None else self._gone(script)

    def _gone(self, script: str | None) -> str:
        """The text order of a row whose file is no longer in the folder."""
        return (script or "") if self._names else _diesel_version(script)


def _diesel_version(script: str | None) -> str:
    from premigrate.model.formats.diesel import folder_version

    return folder_version(script or "")

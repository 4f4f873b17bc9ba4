"""Flyway-named callback discovery (model/callbacks.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from premigrate.model.callbacks import EVENTS, discover, merge, parse_name


def _folder(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;\n")
    return tmp_path


class TestParseName:
    @pytest.mark.parametrize(("filename", "expected"), [
        pytest.param("beforeMigrate.sql", ("beforeMigrate", ""), id="plain"),
        pytest.param("afterMigrate__grants.sql", ("afterMigrate", "grants"), id="description"),
        pytest.param("afterMigrate__grant_read_only.sql", ("afterMigrate", "grant read only"), id="underscores"),
        pytest.param("afterMigrateError.sql", ("afterMigrateError", ""), id="longest-prefix"),
        pytest.param("afterEachMigrateError__x.sql", ("afterEachMigrateError", "x"), id="each-error"),
        pytest.param("beforeDown.SQL", ("beforeDown", ""), id="suffix-any-case"),
        pytest.param("afterDown__a__b.sql", ("afterDown", "a  b"), id="first-separator-only"),
    ])
    def test_callback_names(self, filename: str, expected: tuple[str, str]) -> None:
        """A Flyway callback name yields its event and description."""
        assert expected == parse_name(filename)

    @pytest.mark.parametrize("filename", [
        pytest.param("V1__init.sql", id="versioned"),
        pytest.param("BeforeMigrate.sql", id="event-case-matters"),
        pytest.param("beforeMigrate.txt", id="not-sql"),
        pytest.param(".beforeMigrate.sql", id="hidden"),
        pytest.param("001_beforeMigrate.sql", id="not-a-prefix"),
    ])
    def test_not_callbacks(self, filename: str) -> None:
        """Names that are not callback-shaped are left to the migration loader."""
        assert parse_name(filename) is None

    def test_event_then_garbage_is_refused(self) -> None:
        """`afterMigrateFoo.sql` starts like a callback but is none: a message, not silence."""
        result = parse_name("afterMigrateFoo.sql")
        assert isinstance(result, str) and "afterMigrate__<description>.sql" in result


class TestDiscover:
    def test_order_within_an_event(self, tmp_path: Path) -> None:
        """Without a description first, then by description, as Flyway's SqlScriptCallback.compareTo orders."""
        folder = _folder(tmp_path, "afterMigrate__b.sql", "afterMigrate.sql", "afterMigrate__a.sql",
                         "afterMigrate__B.sql", "V1__x.sql")
        names = [c.name for c in discover(folder).for_event("afterMigrate")]
        assert ["afterMigrate.sql", "afterMigrate__B.sql", "afterMigrate__a.sql", "afterMigrate__b.sql"] == names

    def test_utf16_order(self, tmp_path: Path) -> None:
        """Descriptions compare by UTF-16 code unit like Java: U+1F600 (surrogates D83D..) sorts before U+FF21."""
        folder = _folder(tmp_path, "afterMigrate__\uff21.sql", "afterMigrate__\U0001f600.sql")
        names = [c.description for c in discover(folder).for_event("afterMigrate")]
        assert ["\U0001f600", "\uff21"] == names

    def test_every_event(self, tmp_path: Path) -> None:
        """Each of premigrate's events is found under its own name."""
        folder = _folder(tmp_path, *(f"{e}.sql" for e in EVENTS))
        callbacks = discover(folder)
        assert {e: (f"{e}.sql",) for e in EVENTS} == {
            e: tuple(c.name for c in callbacks.for_event(e)) for e in EVENTS}
        assert bool(callbacks)

    def test_flyway_only_events_are_reported(self, tmp_path: Path) -> None:
        """beforeValidate.sql and beforeUndo.sql are recognised, not run, and reported for refusal."""
        folder = _folder(tmp_path, "beforeValidate.sql", "beforeUndo__x.sql", "afterMigrate.sql")
        callbacks = discover(folder)
        assert ["beforeUndo__x.sql", "beforeValidate.sql"] == sorted(p.name for p in callbacks.unsupported)
        assert {"beforeValidate.sql", "beforeUndo__x.sql", "afterMigrate.sql"} == callbacks.files

    def test_duplicates_are_invalid(self, tmp_path: Path) -> None:
        """Two scripts with one name (case of the suffix aside) are an error, as in Flyway."""
        folder = _folder(tmp_path, "afterMigrate.sql", "afterMigrate.SQL")
        callbacks = discover(folder)
        assert 1 == len(callbacks.invalid)
        assert "more than one callback script" in callbacks.invalid[0][1]

    def test_loader_skips(self, tmp_path: Path) -> None:
        """files lists exactly the callback names, so the migration loader can skip them and nothing else."""
        folder = _folder(tmp_path, "V1__a.sql", "beforeEachMigrate.sql", "afterMigrateX.sql", "001_b.sql")
        assert {"beforeEachMigrate.sql", "afterMigrateX.sql"} == discover(folder).files

    def test_missing_folder(self, tmp_path: Path) -> None:
        """A callbacks folder that does not exist holds no callbacks."""
        assert not discover(tmp_path / "nope")

    def test_unknown_event_query(self, tmp_path: Path) -> None:
        """Asking for an event premigrate does not fire is a programming error."""
        with pytest.raises(ValueError):
            discover(tmp_path).for_event("beforeValidate")


class TestCallbacksFolder:
    @pytest.mark.parametrize(("filename", "meant"), [
        pytest.param("AfterMigrate.sql", "afterMigrate.sql", id="case"),
        pytest.param("aftermigrate.sql", "afterMigrate.sql", id="lower"),
        pytest.param("after_migrate.sql", "afterMigrate.sql", id="snake"),
        pytest.param("after_migrate__grants.SQL", "afterMigrate__grants.sql", id="snake-description"),
        pytest.param("grants.sql", None, id="unrelated"),
    ])
    def test_other_sql_in_a_callbacks_folder_is_refused(self, tmp_path: Path, filename: str,
                                                        meant: str | None) -> None:
        """A --callbacks folder holds nothing but callbacks: a *.sql file there that is no callback name would run
        nowhere, so it is refused by name, with the expected spelling, never skipped in silence."""
        migrations, extra = tmp_path / "migrations", tmp_path / "callbacks"
        migrations.mkdir()
        extra.mkdir()
        _folder(migrations, "001_a.sql", "AfterMigrate.sql")  # the loader judges these, not the callbacks
        _folder(extra, filename, "afterMigrate__ok.sql", "README.md", ".hidden.sql")
        merged = merge(discover(migrations), discover(extra))
        assert [filename] == [path.name for path, _ in merged.invalid]
        why = merged.invalid[0][1]
        assert why.startswith(f"{filename} in the callbacks folder") and "case included" in why, why
        assert (f"did you mean {meant}?" in why) if meant else ("did you mean" not in why), why
        assert ["afterMigrate__ok.sql"] == [c.name for c in merged.for_event("afterMigrate")]

    def test_callbacks_folder_that_is_the_migrations_folder(self, tmp_path: Path) -> None:
        """--callbacks naming the migrations folder itself: each script once, and its migrations are not refused."""
        folder = _folder(tmp_path, "001_a.sql", "afterMigrate.sql")
        merged = merge(discover(folder), discover(folder))
        assert ([], ["afterMigrate.sql"]) == (list(merged.invalid), [c.name for c in merged.for_event("afterMigrate")])

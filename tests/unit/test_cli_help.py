"""A bare `premigrate`, each `COMMAND --help` (golden files), and that every flag a command's help lists is read by
that command. Regenerate the golden files with PREMIGRATE_UPDATE_GOLDEN=1 after a deliberate change."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from premigrate import cli, settings
from premigrate.cli import COMMANDS, build_parser, main
from premigrate.config import OPTIONS_BY_DEST, Config, options_for

GOLDEN = Path(__file__).parent / "golden" / "help"


def _format(command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]  # type: ignore[union-attr]
    return str(sub.format_help())


def listed_flags(text: str) -> set[str]:
    return {word.rstrip(",") for line in text.splitlines() if line.startswith("  --")
            for word in line.split()[:1]}


class TestBareCommand:
    def test_usage_and_exit_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A bare premigrate prints the commands on stderr (no log line) and exits 2."""
        code = main([], env={})
        err = capsys.readouterr().err
        assert (2, True) == (code, err.startswith("usage: premigrate COMMAND"))
        assert set(COMMANDS) <= {line.split()[0] for line in err.splitlines() if line.startswith("  ") and
                                 not line.startswith("   ")}
        assert '"event"' not in err and max(len(line) for line in err.splitlines()) <= 100

    def test_help_names_every_command_and_completion(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`premigrate --help` lists the commands and says how to get a shell completion script (a command that is
        not among argparse's subcommands, so its listing would miss it)."""
        assert 0 == main(["--help"], env={})
        out = capsys.readouterr().out
        assert set(COMMANDS) <= set(out.split())
        assert "premigrate completion bash|zsh|fish" in out


class TestRefusedCommandLine:
    @pytest.mark.parametrize(("argv", "named"), [
        (["up", "--bogus"], "up"),
        (["status", "--dir"], "status"),
        (["--dir", "up", "status", "--bogus"], "status"),  # "up" is the folder: argparse takes status
        (["upp", "--dir", "status"], "?"),  # a mistyped command, not status
        (["--bogus"], "?"),
    ])
    def test_the_summary_names_the_command_when_the_line_names_one(self, argv: list[str], named: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
        """A command line argparse refuses (exit 2) still says which command it was for, when that is certain."""
        assert 2 == main(argv, env={})
        summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert ("summary", named, 2) == (summary["event"], summary["command"], summary["exit_code"])


class TestCommandHelp:
    @pytest.mark.parametrize("command", sorted(COMMANDS))
    def test_golden(self, command: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """COMMAND --help matches its golden file (100 columns)."""
        monkeypatch.setenv("COLUMNS", "100")
        text = _format(command)
        path = GOLDEN / f"{command}.txt"
        if os.environ.get("PREMIGRATE_UPDATE_GOLDEN") == "1":
            path.write_text(text)
        assert path.read_text() == text

    @pytest.mark.parametrize("command", sorted(COMMANDS))
    def test_lists_exactly_the_options_it_reads(self, command: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """The flags in COMMAND --help are the command's options in the table, with examples."""
        monkeypatch.setenv("COLUMNS", "100")
        text = _format(command)
        assert {o.flag for o in options_for(command)} == listed_flags(text) - {"--help"}
        assert "examples:" in text and f"premigrate {command}" in text

    def test_wait_lists_no_lock_or_planning_flag(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """wait --help lists neither --lock-timeout, --strict nor --allow-out-of-order."""
        monkeypatch.setenv("COLUMNS", "100")
        assert set() == {"--lock-timeout", "--strict", "--allow-out-of-order"} & listed_flags(_format("wait"))

    def test_unlisted_shared_flags_are_still_accepted(self) -> None:
        """A script passing one set of shared flags to every command keeps working."""
        flags = vars(build_parser().parse_args(["wait", "--strict", "--lock-timeout", "5s"]))
        assert (True, "5s") == (flags["strict"], flags["lock_timeout"])


# Where each option lands in the typed configuration: (class, attribute) read at run time.
_READ_AS: dict[str, tuple[str, str]] = {
    "database_url": ("Config", "dsn"), "dir": ("Config", "migrations_dir"),
    "require_database": ("Config", "default_sqlite"), "json": ("Config", "json_output"),
    "ddl_lock_timeout": ("StatementSettings", "ddl_lock_timeout"),
    "statement_timeout": ("StatementSettings", "statement_timeout"),
    "lock_retries": ("StatementSettings", "lock_retries"), "placeholders": ("StatementSettings", "placeholders"),
    "to": ("ApplySettings", "to"), "dry_run": ("ApplySettings", "dry_run"),
    "single_transaction": ("ApplySettings", "single_transaction"),
    "baseline_on_empty_history": ("ApplySettings", "baseline_on_empty_history"), "lint": ("ApplySettings", "lint"),
    "no_verify": ("ApplySettings", "verify"),
    "check_wait": ("CheckSettings", "wait"), "check_timeout": ("CheckSettings", "timeout"),
    "contexts": ("FolderSettings", "contexts"), "labels": ("FolderSettings", "labels"),
    "liquibase_strict": ("FolderSettings", "liquibase_strict"),
    "baseline_version": ("BaselineSettings", "version"), "baseline_description": ("BaselineSettings", "description"),
    "baseline_from": ("BaselineSettings", "source"), "up_baseline_from": ("BaselineSettings", "source"),
    "baseline_from_table": ("BaselineSettings", "from_table"),
    "baseline_map": ("BaselineSettings", "map_file"), "steps": ("DownSettings", "steps"),
    "yes": ("DownSettings", "yes"), "format": ("NewSettings", "file_format"), "dialect": ("LintSettings", "dialect"),
    "repair_resume": ("RepairSettings", "resume"), "repair_retry_current": ("RepairSettings", "retry_current"),
    "repair_skip_current": ("RepairSettings", "skip_current"), "repair_version": ("RepairSettings", "version"),
    "repair_mark_applied": ("RepairSettings", "mark_applied"), "repair_forget": ("RepairSettings", "forget"),
    "repair_realign_checksums": ("RepairSettings", "realign_checksums"),
    "allow_empty": ("FolderSettings", "allow_empty"), "allow_empty_down": ("DownSettings", "allow_empty_down"),
    "targets": ("FleetSettings", "targets"), "targets_query": ("FleetSettings", "targets_query"),
    "concurrency": ("FleetSettings", "concurrency"), "shard": ("FleetSettings", "shard"),
    "fail_fast": ("FleetSettings", "fail_fast"), "callbacks": ("CallbackSettings", "dir"),
    "callbacks_always": ("CallbackSettings", "always"), "scratch_url": ("VerifySettings", "scratch"),
    "lock_mode": ("LockSettings", "mode"), "lock_lease": ("LockSettings", "lease"),
    "allow_galera_rsu": ("LockSettings", "allow_galera_rsu"),
    "password_command": ("ConnectionSettings", "password_command"),
}
# The table lock (a lease row) instead of the advisory lock: where --lock-lease is read.
_LEASE = ["--lock-mode", "table", "--lock-lease", "20s"]
# Read only where a Galera cluster answers (the refusal of RSU is tested in tests/topology against a real cluster);
# these runs are on SQLite.
_READ_ON_GALERA_ONLY = {"allow_galera_rsu"}
# A fleet run (a list of one SQLite target): where --concurrency, --shard and --fail-fast are read.
_FLEET = ["--targets", "TARGETS", "--concurrency", "1", "--fail-fast", "--shard", "0/1"]
# Runs that together take each command down the paths where its options are read, on a SQLite database (fresh,
# or after `up` of the first file) and a folder of two files, the third failing.
_FRESH: list[list[str]] = []
_EMPTY = [["(the empty database file)"]]  # baseline refuses a SQLite file that does not exist
_ONE = [["up", "--to", "1"]]
_BROKEN = [["up"]]  # 1 and 2 applied, the third file's failed statement recorded
_RUNS: dict[str, list[tuple[list[list[str]], list[str]]]] = {
    "up": [(_FRESH, ["up", "--to", "2"]), (_FRESH, ["up", "--callbacks-always", "--to", "1", *_LEASE]),
           (_FRESH, ["up", *_FLEET]), (_FRESH, ["up", "--baseline-from", "flyway", "--from-table", "fly"])],
    "status": [(_ONE, ["status"]), (_ONE, ["status", *_FLEET])],
    "check": [(_ONE, ["check"]), (_ONE, ["check", "--wait", "--timeout", "1s"]), (_ONE, ["check", *_FLEET])],
    "wait": [(_ONE, ["wait"])],
    "plan": [(_ONE, ["plan", "--to", "2"])],
    "baseline": [(_EMPTY, ["baseline", "--from", "flyway", "--from-table", "fly"]),
                 (_EMPTY, ["baseline", "--version", "1", "--description", "base", *_LEASE])],
    "down": [(_ONE, ["down", "--to", "0", "--yes"]), (_ONE, ["down", "--steps", "1", "--yes", *_LEASE])],
    "new": [(_FRESH, ["new", "add things"])],
    "lint": [(_FRESH, ["lint"])],
    "repair": [(_BROKEN, ["repair"]), (_BROKEN, ["repair", "--resume", "--skip-current", *_LEASE])],
}
# Read by the CLI itself from the flags (the summary files of `up`): checked by test_summary_file_written.
_READ_BY_CLI = {"summary_file", "termination_log"}


class Reads(set[tuple[str, str]]):
    """(class, attribute) pairs of the configuration read while `active`."""

    active = False


def _record_reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    reads = Reads()
    classes: list[type[Any]] = [Config] + [getattr(settings, n) for n in dir(settings) if n.endswith("Settings")]
    for cls in classes:
        def getter(self: object, name: str, _cls: type[Any] = cls) -> Any:
            if reads.active:
                reads.add((_cls.__name__, name))
            return object.__getattribute__(self, name)
        monkeypatch.setattr(cls, "__getattribute__", getter)
    return reads


class TestListedFlagsAreRead:
    @pytest.mark.parametrize("command", sorted(_RUNS))
    def test_every_listed_flag_is_read(self, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Running COMMAND reads every option its --help lists (serve, a server loop, is checked by its own tests)."""
        env = _setup(tmp_path)
        reads = _record_reads(monkeypatch)
        (tmp_path / "targets.txt").write_text(f"sqlite:///{tmp_path / 'fleet.sqlite'}\n")
        for setup, argv in _RUNS[command]:
            argv = [str(tmp_path / "targets.txt") if a == "TARGETS" else a for a in argv]
            _run_quietly(setup, argv, env, reads)
        read_as = dict(_READ_AS, to=("DownSettings", "to") if command == "down" else ("ApplySettings", "to"),
                       format=("NewSettings", "file_format") if command == "new" else ("FolderSettings", "file_format"))
        unread = {o.flag for o in options_for(command)
                  if o.dest not in _READ_BY_CLI | _READ_ON_GALERA_ONLY and read_as.get(o.dest, ("Config", o.dest)) not in reads}
        assert set() == unread, f"{command} lists options it never reads: {sorted(unread)}"

    def test_summary_file_written(self, tmp_path: Path) -> None:
        """up reads --summary-file and --termination-log: both files get the summary."""
        env = _setup(tmp_path)
        for name in ("summary", "termination"):
            (tmp_path / name).write_text("")
        _run_quietly([], ["up", "--summary-file", str(tmp_path / "summary"), "--termination-log",
                            str(tmp_path / "termination")], env, None)
        assert ["up", "up"] == [json.loads((tmp_path / n).read_text())["command"] for n in ("summary", "termination")]


def _setup(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for number, table in ((1, "a"), (2, "b")):
        (folder / f"00{number}_{table}.sql").write_text(
            f"-- migrate:up\nCREATE TABLE {table} (id INTEGER);\n-- migrate:down\nDROP TABLE {table};\n")
    (folder / "003_broken.sql").write_text("-- premigrate:no-transaction\nCREATE TABLE c (id INTEGER);\nNOT SQL;\n")
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "PREMIGRATE_DIR": str(folder),
            "PREMIGRATE_LOG_FORMAT": "json", "PREMIGRATE_TERMINATION_LOG": str(tmp_path / "absent" / "log")}


def _run_quietly(setup: list[list[str]], argv: list[str], env: dict[str, str], reads: Reads | None) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        database = Path(env["DATABASE_URL"][len("sqlite:///"):])
        database.unlink(missing_ok=True)
        for step in setup:
            if step == _EMPTY[0]:
                database.touch()
            else:
                main(step, env=env)
        if reads is not None:
            reads.active = True
        try:
            main(argv, env=env)
        finally:
            if reads is not None:
                reads.active = False
    if os.environ.get("PREMIGRATE_DEBUG_READS"):
        print(argv, err.getvalue()[-600:])


def test_cli_module_has_examples_for_every_command() -> None:
    """Every command has examples in its help."""
    assert set(COMMANDS) == set(cli.EXAMPLES)

from __future__ import annotations

import pytest

from premigrate.config import load_config
from premigrate.model.durations import parse_duration
from premigrate.errors import UsageError


def files(mapping: dict[str, str]):
    def read(path: str) -> str:
        if path not in mapping:
            raise FileNotFoundError(2, "No such file or directory")
        return mapping[path]
    return read


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("2", 2.0), ("1.5", 1.5), ("0", None),
         ("0s", None)],
    )
    def test_grammar(self, text: str, seconds: float | None) -> None:
        """Durations accept ms, s, m, h and bare seconds; 0 is no limit."""
        assert seconds == parse_duration(text)

    @pytest.mark.parametrize("text", ["", "abc", "5 minutes", "-1", "1d", "s"])
    def test_rejects(self, text: str) -> None:
        """Anything else is refused with a message showing the accepted forms."""
        with pytest.raises(ValueError, match="500ms"):
            parse_duration(text)

    @pytest.mark.parametrize("text", ["597h", "1000h", "2147484", "99999999999999999999"])
    def test_rejects_more_than_postgresql_takes(self, text: str) -> None:
        """A timeout PostgreSQL cannot hold (2147483647 ms) failed at the server after the run had begun, and a huge
        one overflowed a thread's wait (a traceback): refused with the limit."""
        with pytest.raises(ValueError, match="at most 596h"):
            parse_duration(text)
        assert 2147483.0 == parse_duration("2147483")


class TestDatabaseSelection:
    def test_default_is_sqlite(self) -> None:
        """Nothing configured falls back to ./premigrate.db and says so."""
        config = load_config("up", {}, {})
        assert ("sqlite", "premigrate.db", True) == (config.dsn.dialect, config.dsn.database, config.default_sqlite)

    def test_require_database_refuses_fallback(self) -> None:
        """PREMIGRATE_REQUIRE_DATABASE turns the fallback into a configuration error."""
        with pytest.raises(UsageError, match="no database configured"):
            load_config("up", {}, {"PREMIGRATE_REQUIRE_DATABASE": "1"})

    def test_flag_beats_environment(self) -> None:
        """--database-url wins over DATABASE_URL."""
        config = load_config("up", {"database_url": "mysql://u@flag/db"}, {"DATABASE_URL": "postgresql://u@env/db"})
        assert ("mysql", "flag") == (config.dsn.dialect, config.dsn.host)

    def test_url_file_loses_one_newline(self) -> None:
        """DATABASE_URL_FILE is read with one trailing newline dropped."""
        config = load_config("up", {}, {"DATABASE_URL_FILE": "/s"},
                             read_file=files({"/s": "postgresql://app:pw@db/app\n"}))
        assert ("db", "pw") == (config.dsn.host, config.dsn.password)

    def test_password_file_loses_exactly_one_newline(self) -> None:
        """A password that really ends in a newline keeps it when the file has two."""
        config = load_config("up", {}, {"DB_DIALECT": "postgres", "DB_HOST": "db", "DB_NAME": "app",
                                        "DB_PASSWORD_FILE": "/p"}, read_file=files({"/p": "se cret\n\n"}))
        assert "se cret\n" == config.dsn.password

    @pytest.mark.parametrize(("content", "password"), [
        ("se cret\r\n", "se cret"), ("se cret\r\n\r\n", "se cret\r\n"), ("se cret\r", "se cret\r")])
    def test_password_file_loses_one_windows_line_ending(self, content: str, password: str) -> None:
        """A file saved on Windows ends its line with \\r\\n: that is the one line ending dropped (a kept \\r made
        every login fail); a lone \\r is not a line ending and stays."""
        config = load_config("up", {}, {"DB_DIALECT": "postgres", "DB_HOST": "db", "DB_NAME": "app",
                                        "DB_PASSWORD_FILE": "/p"}, read_file=files({"/p": content}))
        assert password == config.dsn.password

    def test_url_and_url_file_conflict(self) -> None:
        """DATABASE_URL and DATABASE_URL_FILE together are refused, naming both."""
        with pytest.raises(UsageError, match="DATABASE_URL and DATABASE_URL_FILE"):
            load_config("up", {}, {"DATABASE_URL": "sqlite:///a.db", "DATABASE_URL_FILE": "/s"})

    def test_url_and_discrete_disagree(self) -> None:
        """A URL and a DB_* variable that disagree are refused, naming both."""
        with pytest.raises(UsageError, match="DATABASE_URL and DB_HOST disagree"):
            load_config("up", {}, {"DATABASE_URL": "postgresql://u@a/db", "DB_HOST": "b"})

    def test_url_and_discrete_agree(self) -> None:
        """Agreeing DB_* variables beside a URL are fine; DB_PASSWORD fills in the URL's missing password."""
        config = load_config("up", {}, {"DATABASE_URL": "postgresql://u@a/db", "DB_HOST": "a", "DB_PORT": "5432",
                                        "DB_DIALECT": "postgresql", "DB_PASSWORD": "pw"})
        assert "pw" == config.dsn.password

    def test_discrete_variables(self) -> None:
        """DB_* variables alone describe the database, with the dialect's default port."""
        config = load_config("up", {}, {"DB_DIALECT": "mariadb", "DB_HOST": "db", "DB_NAME": "app",
                                        "DB_USER": "app", "DB_PASSWORD": "pw"})
        assert ("mysql", "db", 3306, "app", "app", "pw") == (
            config.dsn.dialect, config.dsn.host, config.dsn.port, config.dsn.database, config.dsn.user,
            config.dsn.password)
        assert ("pw",) == config.secrets

    @pytest.mark.parametrize("password", ["P@ss#2024", "x@#y", "a/b?c:d"])
    def test_discrete_password_needs_no_encoding(self, password: str) -> None:
        """DB_PASSWORD is taken as it is: '#', '@', '/', '?' and ':' need no encoding there, and DB_HOST keeps its host;
        a PostgreSQL socket directory is a valid DB_HOST."""
        config = load_config("up", {}, {"DB_DIALECT": "postgresql", "DB_HOST": "db", "DB_NAME": "app",
                                        "DB_PASSWORD": password})
        assert (password, "db", "app") == (config.dsn.password, config.dsn.host, config.dsn.database)
        socket = load_config("up", {}, {"DB_DIALECT": "postgresql", "DB_HOST": "/run/postgresql", "DB_NAME": "app"})
        assert "/run/postgresql" == socket.dsn.host

    @pytest.mark.parametrize(
        ("env", "message"),
        [
            pytest.param({"DB_HOST": "db"}, "without DB_DIALECT", id="no-dialect"),
            pytest.param({"DB_DIALECT": "oracle", "DB_NAME": "x"},
                         "unknown database type 'oracle'; use postgresql, mysql, mariadb or sqlite", id="bad-dialect"),
            pytest.param({"DB_DIALECT": "pg", "DB_NAME": "x"}, "unknown database type", id="unknown-alias"),
            pytest.param({"DB_DIALECT": "mysql", "DB_NAME": "x", "DB_PORT": "99999"}, "DB_PORT", id="bad-port"),
            pytest.param({"DB_DIALECT": "mysql", "DB_HOST": "x"}, "needs DB_NAME", id="no-name"),
            pytest.param({"DB_PASSWORD": "a", "DB_PASSWORD_FILE": "/p", "DB_DIALECT": "mysql", "DB_NAME": "x"},
                         "both set", id="password-twice"),
            pytest.param({"DATABASE_URL_FILE": "/missing"}, "cannot read", id="missing-secret-file"),
            # A password alone: its database went missing; the SQLite fallback would migrate a throwaway file.
            pytest.param({"DB_PASSWORD": "s3cret"}, "DB_PASSWORD is set but no database is", id="password-alone"),
            pytest.param({"DB_DIALECT": "mysql", "DB_NAME": "x", "DB_PORT": "\u00b2"}, "DB_PORT",
                         id="superscript-port"),
            pytest.param({"DB_DIALECT": "postgresql", "DB_HOST": "app:P@db", "DB_NAME": "x"}, "DB_HOST must be",
                         id="db-host-with-userinfo"),
            pytest.param({"DB_DIALECT": "mysql", "DB_HOST": "db#2", "DB_NAME": "x"}, "DB_HOST must be",
                         id="db-host-with-hash"),
            pytest.param({"DB_DIALECT": "mysql", "DB_HOST": "db/app", "DB_NAME": "x"}, "DB_HOST must be",
                         id="db-host-with-path"),
            pytest.param({"DATABASE_URL": "postgresql://u:P@ss#2024@h/d"}, "'#'", id="url-hash"),
            pytest.param({"PREMIGRATE_DATABASE_URL": "mysql://u:a@b@h/d"}, "PREMIGRATE_DATABASE_URL: .*'@'",
                         id="premigrate-url-two-at"),
        ],
    )
    def test_refuses(self, env: dict[str, str], message: str) -> None:
        """Incomplete or contradictory settings are configuration errors."""
        with pytest.raises(UsageError, match=message):
            load_config("up", {}, env, read_file=files({}))

    def test_a_password_file_alone_is_refused(self) -> None:
        """DB_PASSWORD_FILE with no database to use it on is refused, not the SQLite fallback."""
        with pytest.raises(UsageError, match="DB_PASSWORD_FILE is set but no database is"):
            load_config("up", {}, {"DB_PASSWORD_FILE": "/p"}, read_file=files({"/p": "pw"}))

    @pytest.mark.parametrize("flag", ["lock_retries", "concurrency"])
    def test_digits_are_ascii_digits(self, flag: str) -> None:
        """'²' is a digit to str.isdigit() and not a number to int(): a usage error, not a traceback."""
        with pytest.raises(UsageError, match="is not a whole number"):
            load_config("up", {flag: "\u00b2", "targets": "t.txt"}, {})


class TestOptions:
    def test_defaults(self) -> None:
        """Defaults: ./migrations, premigrate_history, 60 s wait, 600 s lock, json logs off a terminal."""
        config = load_config("up", {}, {})
        assert ("migrations", "premigrate_history", 60.0, 600.0, "json") == (
            str(config.migrations_dir), config.table, config.wait_timeout, config.lock_timeout, config.log_format)

    def test_console_on_terminal(self) -> None:
        """Logs default to console format when stderr is a terminal."""
        assert "console" == load_config("up", {}, {}, stderr_is_tty=True).log_format

    def test_environment_variables(self) -> None:
        """Every option has a PREMIGRATE_* variable."""
        config = load_config("status", {}, {
            "PREMIGRATE_DIR": "db/m", "PREMIGRATE_TABLE": "hist", "PREMIGRATE_WAIT_TIMEOUT": "5s",
            "PREMIGRATE_LOCK_TIMEOUT": "0", "PREMIGRATE_LOG_FORMAT": "console", "PREMIGRATE_LOG_LEVEL": "debug",
            "PREMIGRATE_STRICT": "yes", "PREMIGRATE_ALLOW_OUT_OF_ORDER": "true", "PREMIGRATE_JSON": "1",
            "DATABASE_URL": "postgresql://u@h/d", "PREMIGRATE_SCHEMA": "app",
        })
        assert ("db/m", "hist", 5.0, None, "console", "debug", True, True, True, "app") == (
            str(config.migrations_dir), config.table, config.wait_timeout, config.lock_timeout, config.log_format,
            config.log_level, config.strict, config.allow_out_of_order, config.json_output, config.schema)

    def test_flags_beat_environment(self) -> None:
        """A flag overrides its environment variable."""
        config = load_config("up", {"table": "flag_t", "strict": True}, {"PREMIGRATE_TABLE": "env_t",
                                                                          "PREMIGRATE_STRICT": "0"})
        assert ("flag_t", True) == (config.table, config.strict)

    @pytest.mark.parametrize(
        ("flags", "env", "message"),
        [
            pytest.param({"table": "x; DROP TABLE y"}, {}, "not a valid", id="table-injection"),
            pytest.param({"table": "a" * 64}, {}, "63 bytes", id="table-too-long"),
            pytest.param({"table": "public.hist"}, {}, "PostgreSQL only", id="qualified-on-sqlite"),
            pytest.param({"schema": "app"}, {}, "PostgreSQL only", id="schema-on-sqlite"),
            pytest.param({"wait_timeout": "soon"}, {}, "--wait-timeout", id="bad-duration-flag"),
            pytest.param({}, {"PREMIGRATE_LOCK_TIMEOUT": "-5"}, "PREMIGRATE_LOCK_TIMEOUT", id="bad-duration-env"),
            pytest.param({}, {"PREMIGRATE_STRICT": "maybe"}, "not a boolean", id="bad-bool"),
            pytest.param({"log_format": "xml"}, {}, "json, console", id="bad-choice"),
            pytest.param({"dir": " "}, {}, "--dir is empty", id="empty-dir"),
        ],
    )
    def test_refuses(self, flags: dict[str, object], env: dict[str, str], message: str) -> None:
        """Bad option values are configuration errors naming the option."""
        with pytest.raises(UsageError, match=message):
            load_config("up", flags, env)

    def test_qualified_table_on_postgres(self) -> None:
        """schema.table is accepted on PostgreSQL and splits into schema and name."""
        config = load_config("up", {"table": "ops.hist"}, {"DATABASE_URL": "postgres://u@h/d"})
        assert ("ops", "hist") == (config.history_schema, config.history_table_name)


class TestTopologyOptions:
    def test_lock_options_default_to_auto_and_30_s(self) -> None:
        """Without flags: --lock-mode auto, a 30 s lease, RSU refused, no password command."""
        config = load_config("up", {}, {})
        assert ("auto", 30.0, False) == (config.locking.mode, config.locking.lease, config.locking.allow_galera_rsu)
        assert config.connection.password_command is None

    def test_environment_sets_them(self) -> None:
        """PREMIGRATE_LOCK_MODE, PREMIGRATE_LOCK_LEASE, PREMIGRATE_ALLOW_GALERA_RSU, PREMIGRATE_PASSWORD_COMMAND."""
        config = load_config("up", {}, {"PREMIGRATE_LOCK_MODE": "table", "PREMIGRATE_LOCK_LEASE": "3s",
                                        "PREMIGRATE_ALLOW_GALERA_RSU": "yes",
                                        "PREMIGRATE_PASSWORD_COMMAND": "aws rds generate-db-auth-token"})
        assert ("table", 3.0, True) == (config.locking.mode, config.locking.lease, config.locking.allow_galera_rsu)
        assert "aws rds generate-db-auth-token" == config.connection.password_command

    @pytest.mark.parametrize(("env", "message"), [
        ({"PREMIGRATE_LOCK_MODE": "session"}, "PREMIGRATE_LOCK_MODE"),
        ({"PREMIGRATE_LOCK_LEASE": "0"}, "PREMIGRATE_LOCK_LEASE must be at least 1s"),
        ({"PREMIGRATE_LOCK_LEASE": "1ms"}, "PREMIGRATE_LOCK_LEASE must be at least 1s"),
        ({"PREMIGRATE_LOCK_LEASE": "soon"}, "PREMIGRATE_LOCK_LEASE"),
    ])
    def test_bad_values_are_usage_errors(self, env: dict[str, str], message: str) -> None:
        """An unknown mode or a lease that is not a positive duration: exit 2, naming the option."""
        with pytest.raises(UsageError, match=message):
            load_config("up", {}, env)

    @pytest.mark.parametrize(("flags", "env", "named"), [
        pytest.param({"password_command": ""}, {}, "--password-command", id="flag-empty"),
        pytest.param({"password_command": "  "}, {}, "--password-command", id="flag-spaces"),
        pytest.param({}, {"PREMIGRATE_PASSWORD_COMMAND": ""}, "PREMIGRATE_PASSWORD_COMMAND", id="env-empty"),
        pytest.param({}, {"PREMIGRATE_PASSWORD_COMMAND": " \t"}, "PREMIGRATE_PASSWORD_COMMAND", id="env-spaces"),
    ])
    def test_an_empty_password_command_is_refused(self, flags: dict[str, str], env: dict[str, str],
                                                  named: str) -> None:
        """A password command given but empty is a configuration error naming where it was given, not no command."""
        with pytest.raises(UsageError, match=f"^{named} is empty; set it to the command that prints the password"):
            load_config("up", flags, {"DATABASE_URL": "postgresql://u@h/d", **env})


class TestCheckTimeout:
    @pytest.mark.parametrize(("flags", "env", "named"), [
        pytest.param({"check_timeout": "3s"}, {}, "--timeout", id="flag"),
        pytest.param({}, {"PREMIGRATE_CHECK_TIMEOUT": "3s"}, "PREMIGRATE_CHECK_TIMEOUT", id="env"),
    ])
    def test_needs_wait(self, flags: dict[str, str], env: dict[str, str], named: str) -> None:
        """check --timeout without --wait would be ignored: refused instead, naming where the timeout came from."""
        with pytest.raises(UsageError, match=f"^{named} needs --wait"):
            load_config("check", flags, env)

    @pytest.mark.parametrize(("flags", "env"), [
        pytest.param({"check_wait": True, "check_timeout": "3s"}, {}, id="flags"),
        pytest.param({}, {"PREMIGRATE_CHECK_WAIT": "1", "PREMIGRATE_CHECK_TIMEOUT": "3s"}, id="env"),
        pytest.param({"check_wait": True}, {"PREMIGRATE_CHECK_TIMEOUT": "3s"}, id="mixed"),
    ])
    def test_with_wait(self, flags: dict[str, object], env: dict[str, str]) -> None:
        """With --wait the timeout applies."""
        assert 3.0 == load_config("check", flags, env).check.timeout

    def test_plain_check(self) -> None:
        """A plain check, no timeout given: accepted (the default timeout is nobody's choice)."""
        assert not load_config("check", {}, {}).check.wait


class TestMessagesNameTheSource:
    """An error about a value set in the environment names the variable, not a flag nobody passed."""

    @pytest.mark.parametrize(("command", "env", "message"), [
        pytest.param("up", {"PREMIGRATE_DIR": " "}, "PREMIGRATE_DIR is empty", id="dir"),
        pytest.param("up", {"PREMIGRATE_SCHEMA": "app"}, "PREMIGRATE_SCHEMA applies to PostgreSQL only",
                     id="schema-on-sqlite"),
        pytest.param("up", {"DATABASE_URL": "postgresql://u@h/d", "PREMIGRATE_SCHEMA": "a-b"},
                     "PREMIGRATE_SCHEMA 'a-b' is not a valid", id="schema-name"),
        pytest.param("status", {"PREMIGRATE_TARGETS": "t.txt", "PREMIGRATE_TARGETS_QUERY": "SELECT 1"},
                     "PREMIGRATE_TARGETS and PREMIGRATE_TARGETS_QUERY are both set", id="targets"),
        pytest.param("verify", {"PREMIGRATE_SCRATCH_URL": "oracle://x"}, "PREMIGRATE_SCRATCH_URL: unknown",
                     id="scratch-url"),
    ])
    def test_environment(self, command: str, env: dict[str, str], message: str) -> None:
        with pytest.raises(UsageError, match=f"^{message}"):
            load_config(command, {}, env)

    @pytest.mark.parametrize(("command", "flags", "env", "message"), [
        pytest.param("up", {"dir": " "}, {"PREMIGRATE_DIR": "m"}, "--dir is empty", id="dir"),
        pytest.param("up", {"lock_lease": "0"}, {"PREMIGRATE_LOCK_LEASE": "5s"}, "--lock-lease must be at least 1s",
                     id="lease"),
        pytest.param("up", {"schema": "app"}, {"PREMIGRATE_SCHEMA": "x"}, "--schema applies to PostgreSQL only",
                     id="schema-on-sqlite"),
        pytest.param("status", {"targets": "t.txt", "targets_query": "SELECT 1"},
                     {"PREMIGRATE_TARGETS": "u.txt", "PREMIGRATE_TARGETS_QUERY": "SELECT 2"},
                     "--targets and --targets-query are both set", id="targets"),
        pytest.param("verify", {"scratch_url": "oracle://x"}, {"PREMIGRATE_SCRATCH_URL": "sqlite:///s.db"},
                     "--scratch-url: unknown", id="scratch-url"),
    ])
    def test_flag_wins_and_is_named(self, command: str, flags: dict[str, str], env: dict[str, str],
                                    message: str) -> None:
        """Given on the command line (the environment setting it too), the flag is named."""
        with pytest.raises(UsageError, match=f"^{message}"):
            load_config(command, flags, env)

    def test_option_text(self) -> None:
        """Messages built later (a command's own checks) spell the option as it was given."""
        from_flag = load_config("up", {"to": "7"}, {})
        from_env = load_config("up", {}, {"PREMIGRATE_TO": "7"})
        assert ("--to 7", "PREMIGRATE_TO=7") == (from_flag.option_text("to", 7), from_env.option_text("to", 7))


class TestBaselineChoice:
    """baseline's --version and --from exclude each other; PREMIGRATE_BASELINE_FROM is also `up --baseline-from`'s
    variable, so an init container's environment often carries it when someone runs `baseline --version` there."""

    def test_a_flag_beats_the_other_options_variable(self) -> None:
        by_version = load_config("baseline", {"baseline_version": "1"}, {"PREMIGRATE_BASELINE_FROM": "flyway"})
        by_tool = load_config("baseline", {"baseline_from": "flyway"}, {"PREMIGRATE_BASELINE_VERSION": "3"})
        assert ("1", None) == (str(by_version.baseline.version), by_version.baseline.source)
        assert (None, "flyway") == (by_tool.baseline.version, by_tool.baseline.source)

    @pytest.mark.parametrize(("flags", "env"), [
        ({}, {"PREMIGRATE_BASELINE_VERSION": "3", "PREMIGRATE_BASELINE_FROM": "flyway"}),
        ({"baseline_version": "3", "baseline_from": "flyway"}, {}),
    ])
    def test_both_given_alike_are_both_kept(self, flags: dict[str, str], env: dict[str, str]) -> None:
        """Both from the command line or both from the environment: nothing says which one is meant, and the
        command refuses the pair (tests/e2e/test_ops_commands.py)."""
        config = load_config("baseline", flags, env)
        assert ("3", "flyway") == (str(config.baseline.version), config.baseline.source)


class TestSecretFiles:
    @pytest.mark.parametrize(("error", "message"), [
        pytest.param(IsADirectoryError(21, "Is a directory"), "is a folder; name the file inside it", id="folder"),
        pytest.param(PermissionError(13, "Permission denied"), "cannot be read by this user", id="unreadable"),
    ])
    def test_the_advice_fits_the_mistake(self, error: OSError, message: str) -> None:
        """A Secret volume's mount path instead of its key's file, or a mode the user cannot read: each says its own
        fix, not 'mount the secret there'."""
        def read(path: str) -> str:
            raise error

        from premigrate.config import read_secret_file

        with pytest.raises(UsageError, match=message):
            read_secret_file("DATABASE_URL_FILE", "/run/secrets/db", read)


class TestMysqlWithoutDatabase:
    def test_refused_where_the_history_lives_there(self) -> None:
        with pytest.raises(UsageError, match="names no database"):
            load_config("status", {"database_url": "mysql://root@127.0.0.1"}, {})

    @pytest.mark.parametrize("command", ["wait", "verify", "lint", "new"])
    def test_accepted_where_none_is_needed(self, command: str) -> None:
        """wait needs none, verify works in a scratch database, lint and new never connect."""
        assert "mysql" == load_config(command, {"database_url": "mysql://root@127.0.0.1"}, {}).dsn.dialect

"""goose `-- +goose ENVSUB ON`: mfridman/interpolate's rules and goose's own envsub testdata."""

from __future__ import annotations

from pathlib import Path

import pytest

from premigrate.errors import MigrationFileError, UsageError
from premigrate.model.formats import envsub, goose
from premigrate.model.migrations import load_migrations
from premigrate.model.planner import Policy
from premigrate.model.sql import split_migration

# pressly/goose internal/sqlparser/parser_test.go TestEnvsub (commit 520411a16119bd3b332613d1ff8312c4cc249673).
GOOSE_ENV = {"GOOSE_ENV_REGION": "us_east_", "GOOSE_ENV_SET_BUT_EMPTY_VALUE": "", "GOOSE_ENV_NAME": "foo"}

# internal/sqlparser/testdata/envsub/test01, test02, test03: input.sql and its NN.up/down.golden.sql files.
TEST01 = ("-- +goose ENVSUB ON\n-- +goose Up\nCREATE TABLE ${GOOSE_ENV_REGION}post (\n\t\tid int NOT NULL,\n\t\ttitle "
          "text,\n\t\tbody text,\n\t\tPRIMARY KEY(id)\n);                  -- 1st stmt\n\n-- comment\nSELECT 2;        "
          "   -- 2nd stmt\nSELECT 3; SELECT 3; -- 3rd stmt\nSELECT 4;           -- 4th stmt\n\n-- +goose Down\n-- "
          "comment\nDROP TABLE ${GOOSE_ENV_REGION}post;    -- 1st stmt\n")
TEST01_UP = ["CREATE TABLE us_east_post (\n\t\tid int NOT NULL,\n\t\ttitle text,\n\t\tbody text,\n\t\tPRIMARY KEY(id)\n"
             ");                  -- 1st stmt", "SELECT 2;           -- 2nd stmt", "SELECT 3; SELECT 3; -- 3rd stmt",
             "SELECT 4;           -- 4th stmt"]
TEST01_DOWN = ["DROP TABLE us_east_post;    -- 1st stmt"]
TEST02 = ("-- +goose Up\n\n-- +goose ENVSUB ON\nCREATE TABLE post (\n\tid int NOT NULL,\n\ttitle text,\n\t"
          "$GOOSE_ENV_NAME text,\n\t${GOOSE_ENV_NAME}title3 text,\n\t${ANOTHER_VAR:-default}title4 text,\n\t"
          "${GOOSE_ENV_SET_BUT_EMPTY_VALUE-default}title5 text,\n);\n-- +goose ENVSUB OFF\n\nCREATE TABLE post (\n\tid "
          "int NOT NULL,\n\ttitle text,\n\t$GOOSE_ENV_NAME text,\n\t${GOOSE_ENV_NAME}title3 text,\n\t"
          "${ANOTHER_VAR:-default}title4 text,\n\t${GOOSE_ENV_SET_BUT_EMPTY_VALUE-default}title5 text,\n);\n\n-- "
          "+goose StatementBegin\nCREATE OR REPLACE FUNCTION test_func()\nRETURNS void AS $$\n-- +goose ENVSUB ON\n"
          "BEGIN\n\tRAISE NOTICE '${GOOSE_ENV_NAME} \\$GOOSE_ENV_NAME \\$GOOSE_ENV_NAME';\nEND;\n-- +goose ENVSUB "
          "OFF\n$$ LANGUAGE plpgsql;\n-- +goose StatementEnd\n")
TEST02_UP = ["CREATE TABLE post (\n\tid int NOT NULL,\n\ttitle text,\n\tfoo text,\n\tfootitle3 text,\n\tdefaulttitle4 "
             "text,\n\ttitle5 text,\n);",
             "CREATE TABLE post (\n\tid int NOT NULL,\n\ttitle text,\n\t$GOOSE_ENV_NAME text,\n\t${GOOSE_ENV_NAME}"
             "title3 text,\n\t${ANOTHER_VAR:-default}title4 text,\n\t${GOOSE_ENV_SET_BUT_EMPTY_VALUE-default}title5 "
             "text,\n);",
             "CREATE OR REPLACE FUNCTION test_func()\nRETURNS void AS $$\nBEGIN\n\tRAISE NOTICE 'foo $GOOSE_ENV_NAME "
             "$GOOSE_ENV_NAME';\nEND;\n$$ LANGUAGE plpgsql;"]
TEST03 = ("-- +goose Up\nCREATE TABLE post (\n\tid int NOT NULL,\n\ttitle text,\n\t$NAME text,\n\t${NAME}title3 text,"
          "\n\t${ANOTHER_VAR:-default}title4 text,\n\t${SET_BUT_EMPTY_VALUE-default}title5 text,\n);\n")
TEST03_UP = [TEST03.removeprefix("-- +goose Up\n").removesuffix("\n")]


def goose_statements(text: str, env: dict[str, str], direction: str) -> list[str]:
    """goose's statements of one direction, as its testValid compares them with the golden files."""
    parsed = goose.parse(text)
    section = parsed.up if direction == "up" else parsed.down
    if section is None:
        return []
    pieces = goose.split_marked(section.text, direction, first_line=section.first_line, envsub=section.envsub,
                                env=env)
    return [statement.text for statement, _ in pieces]


class TestGooseTestdata:
    @pytest.mark.parametrize(("text", "up", "down"), [
        pytest.param(TEST01, TEST01_UP, TEST01_DOWN, id="test01"),
        pytest.param(TEST02, TEST02_UP, [], id="test02"),
        pytest.param(TEST03, TEST03_UP, [], id="test03"),
    ])
    def test_golden_statements(self, text: str, up: list[str], down: list[str]) -> None:
        """Each direction's statements are goose's golden files for envsub/test01..03, byte for byte."""
        assert up == goose_statements(text, GOOSE_ENV, "up")
        assert down == goose_statements(text, GOOSE_ENV, "down")

    def test_required_variable_unset(self, tmp_path: Path) -> None:
        """goose's TestEnvsubError: `${VAR?message}` with VAR unset fails with interpolate's message (exit 2 here:
        the environment is wrong, not the file)."""
        (tmp_path / "1_post.sql").write_text(
            "\n-- +goose ENVSUB ON\n-- +goose Up\nCREATE TABLE post (\n\tid int NOT NULL,\n\ttitle text,\n\t"
            "${SOME_UNSET_VAR?required env var not set} text,\n\tPRIMARY KEY(id)\n);\n")
        migration = load_migrations(tmp_path, format="goose").versioned[0]
        with pytest.raises(UsageError, match="1_post.sql: line 7: variable substitution failed: "
                                             "\\$SOME_UNSET_VAR: required env var not set") as info:
            Policy("sqlite", environment={}).resolve(migration)
        assert 2 == info.value.exit_code


class TestInterpolate:
    """mfridman/interpolate interpolate_test.go (commit 07e63f695834fcdf9304738223eab4e2b584e9a9), transcribed."""

    BASIC = {"TEST1": "A test", "TEST2": "Another", "TEST3": "Llamas",
             "TEST4": "Only one level of $TEST3 interpolation"}
    COMMIT = {"BUILDKITE_COMMIT": "1adf998e39f647b4b25842f107c6ed9d30a3a7c7"}

    @pytest.mark.parametrize(("text", "expected"), [
        ("", ""), ("foo", "foo"), ("TEST1", "TEST1"), ("$TEST1", "A test"), ("${TEST1}", "A test"),
        ("$TEST1, $TEST2, $TEST3", "A test, Another, Llamas"), ("$Test1, $Test2, $TeST3", ", , "),
        ("${TEST1}, ${Test2}, ${tEST3}", "A test, , "), ("my$TEST1", "myA test"),
        ("$TEST4", "Only one level of $TEST3 interpolation"), ("${TEST4}", "Only one level of $TEST3 interpolation"),
        ("${TEST5:-${TEST6:-$TEST1}}", "A test"), ("${TEST5:-${TEST2:-$TEST1}}", "Another"),
        ("${TEST5:-Some text ${TEST2:-$TEST1} with $TEST3}", "Some text Another with Llamas"),
    ])
    def test_basic_and_nested(self, text: str, expected: str) -> None:
        """TestBasicInterpolation, TestNestedInterpolation: unset names are empty, case matters, one level only."""
        assert expected == envsub.interpolate(self.BASIC, text)

    @pytest.mark.parametrize("text", ["$(echo hello world)", "testing $(echo hello world)", "$("])
    def test_ignores_parentheses(self, text: str) -> None:
        """TestIgnoresParentheses: `$(` is left as it is."""
        assert text == envsub.interpolate({}, text)

    @pytest.mark.parametrize("text", ["$1 burgers", "$99bottles", "SELECT $1;", "${_X}"])
    def test_variables_must_start_with_letters(self, text: str) -> None:
        """TestVariablesMustStartWithLetters: `$` then a non-letter is an error, even with nothing set."""
        with pytest.raises(envsub.EnvsubError, match="Expected identifier to start with a letter"):
            envsub.interpolate({}, text)

    @pytest.mark.parametrize(("text", "expected"), [
        ("${BUILDKITE_COMMIT:0}", "1adf998e39f647b4b25842f107c6ed9d30a3a7c7"),
        ("${BUILDKITE_COMMIT:7}", "e39f647b4b25842f107c6ed9d30a3a7c7"), ("${BUILDKITE_COMMIT: -7}", "0a3a7c7"),
        ("${BUILDKITE_COMMIT: -128}", "1adf998e39f647b4b25842f107c6ed9d30a3a7c7"), ("${BUILDKITE_COMMIT:128}", ""),
        ("${BUILDKITE_COMMIT:0:7}", "1adf998"), ("${BUILDKITE_COMMIT:7:7}", "e39f647"),
        ("${BUILDKITE_COMMIT:7:-7}", "e39f647b4b25842f107c6ed9d3"), ("${BUILDKITE_COMMIT:0:0}", ""),
        ("${BUILDKITE_COMMIT:7:0}", ""), ("${BUILDKITE_COMMIT:0:128}", "1adf998e39f647b4b25842f107c6ed9d30a3a7c7"),
        ("${BUILDKITE_COMMIT:7:128}", "e39f647b4b25842f107c6ed9d30a3a7c7"), ("${BUILDKITE_COMMIT:0:-128}", ""),
        ("${BUILDKITE_COMMIT:7:-128}", ""),
    ])
    def test_substrings(self, text: str, expected: str) -> None:
        """TestSubstringsWithOffsets: offsets and lengths, negative from the end, clamped to the value."""
        assert expected == envsub.interpolate(self.COMMIT, text)
        assert "" == envsub.interpolate({}, text)  # TestMissingParameterValuesReturnEmptyStrings

    def test_not_greedy(self) -> None:
        """TestInterpolateIsntGreedy: `_` belongs to the name, `-` does not."""
        env = {"BUILDKITE_COMMIT": "cfee", "BUILDKITE_PARALLEL_JOB": "456"}
        assert 'echo "ENV_1=test_456"' == envsub.interpolate(env, 'echo "ENV_1=test_$BUILDKITE_COMMIT_'
                                                                   '$BUILDKITE_PARALLEL_JOB"')
        assert 'echo "ENV_1=test-cfee-456"' == envsub.interpolate(env, 'echo "ENV_1=test-$BUILDKITE_COMMIT-'
                                                                       '$BUILDKITE_PARALLEL_JOB"')

    @pytest.mark.parametrize(("text", "expected"), [
        ("Today is ${TODAY-Tuesday}", "Today is Tuesday"), ("Today is ${DAY-Wednesday}", "Today is Blarghday"),
        ("Today is ${EMPTY_DAY-Wednesday}", "Today is "), ("Today is ${EMPTY_DAY:-Wednesday}", "Today is Wednesday"),
        ("${EMPTY_DAY:--:{}}", "-:{}"), ("${EMPTY:-${LLAMAS-test}}", "test"), ("${EMPTY:-127}", "127"),
    ])
    def test_default_values(self, text: str, expected: str) -> None:
        """TestDefaultValues: `-` for unset only, `:-` for unset or empty."""
        assert expected == envsub.interpolate({"DAY": "Blarghday", "EMPTY_DAY": ""}, text)

    @pytest.mark.parametrize(("text", "message"), [
        ("Hello ${REQUIRED_VAR?}", "$REQUIRED_VAR: not set"),
        ("Hello ${REQUIRED_VAR?y u no set me? :-{}", "$REQUIRED_VAR: y u no set me? :-{"),
        ("Hello ${REQUIRED_VAR?{}}", "$REQUIRED_VAR: {"),
    ])
    def test_required(self, text: str, message: str) -> None:
        """TestRequiredVariables: the message, or "not set"; a set but empty value passes."""
        with pytest.raises(envsub.EnvsubUnset) as info:
            envsub.interpolate({}, text)
        assert message == str(info.value)
        assert "Hello " == envsub.interpolate({"REQUIRED_VAR": ""}, text.split("}")[0] + "}")

    @pytest.mark.parametrize(("text", "expected"), [
        ("Do this $$ESCAPE_PARTY", "Do this $ESCAPE_PARTY"), ("Do this \\$ESCAPE_PARTY", "Do this $ESCAPE_PARTY"),
        ("Do this $${SUCH_ESCAPE}", "Do this ${SUCH_ESCAPE}"), ("Do this \\${SUCH_ESCAPE}", "Do this ${SUCH_ESCAPE}"),
        ("a \\\\ b", "a \\\\ b"), ("cost $", "cost $"), ("AS $$ BEGIN", "AS $ BEGIN"),
    ])
    def test_escapes(self, text: str, expected: str) -> None:
        """TestEscapingVariables: `$$` and `\\$` are `$`; `\\\\` stays two backslashes; a final `$` stays."""
        assert expected == envsub.interpolate({"ESCAPE_PARTY": "x", "SUCH_ESCAPE": "y"}, text)

    def test_bad_operator(self) -> None:
        """An operator interpolate does not know is an error."""
        with pytest.raises(envsub.EnvsubError, match="Expected an operator, got \\+"):
            envsub.interpolate({}, "${A+b}")


class TestEnvsubInPremigrate:
    def test_checksum_is_of_the_file(self, tmp_path: Path) -> None:
        """The checksum is the file's text: another value in the environment is not drift; the statements change."""
        (tmp_path / "1_t.sql").write_text("-- +goose Up\n-- +goose ENVSUB ON\nCREATE TABLE ${T} (id int);\n")
        migration = load_migrations(tmp_path, format="goose").versioned[0]
        first = Policy("sqlite", environment={"T": "a"}).resolve(migration)
        second = Policy("sqlite", environment={"T": "b"}).resolve(migration)
        assert migration.checksum == first.checksum == second.checksum
        assert ["CREATE TABLE a (id int)"] == [s.text for s in split_migration(first, "sqlite")]
        assert ["CREATE TABLE b (id int)"] == [s.text for s in split_migration(second, "sqlite")]

    def test_switch_carries_into_down(self, tmp_path: Path) -> None:
        """ENVSUB ON is a state of the file: on in the Up section, it is still on in the Down section."""
        (tmp_path / "1_t.sql").write_text("-- +goose Up\n-- +goose ENVSUB ON\nCREATE TABLE $T (id int);\n"
                                          "-- +goose Down\nDROP TABLE $T;\n")
        migration = Policy("sqlite", environment={"T": "x"}).resolve(
            load_migrations(tmp_path, format="goose").versioned[0])
        assert ["DROP TABLE x"] == [s.text for s in split_migration(migration, "sqlite", down=True)]

    def test_substituted_line_decides_the_statement_end(self) -> None:
        """goose applies its `;` rule to the substituted line: a value ending in `;` ends the statement there."""
        pieces = goose.split_marked("SELECT ${END}\nSELECT 2;\n", "up", first_line=2, envsub=True, env={"END": "1;"})
        assert ["SELECT 1;", "SELECT 2;"] == [s.text for s, _ in pieces]

    def test_syntax_error_refused_when_loading(self, tmp_path: Path) -> None:
        """A `$1` under ENVSUB ON fails goose whatever the environment: exit 5 naming the line, before connecting."""
        (tmp_path / "1_f.sql").write_text("-- +goose Up\n-- +goose ENVSUB ON\nSELECT $1;\n")
        with pytest.raises(MigrationFileError, match="1_f.sql: line 3: variable substitution failed: Expected "
                                                     "identifier") as info:
            load_migrations(tmp_path, format="goose")
        assert 5 == info.value.exit_code

    def test_error_in_down_fails_up(self, tmp_path: Path) -> None:
        """goose interpolates both directions while parsing one: an unset required variable in Down fails `up`."""
        (tmp_path / "1_t.sql").write_text("-- +goose ENVSUB ON\n-- +goose Up\nSELECT 1;\n-- +goose Down\n"
                                          "DROP TABLE ${T?};\n")
        migration = load_migrations(tmp_path, format="goose").versioned[0]
        with pytest.raises(UsageError, match="line 5: variable substitution failed: \\$T: not set"):
            Policy("sqlite").resolve(migration)

    def test_comment_before_statement_not_substituted(self) -> None:
        """Comments goose drops before a statement are not interpolated (a `$1` there is no error)."""
        pieces = goose.split_marked("-- costs $1\nSELECT '$A';\n", "up", first_line=1, envsub=True, env={"A": "a"})
        assert ["SELECT 'a';"] == [s.text for s, _ in pieces]

    def test_off_by_default(self, tmp_path: Path) -> None:
        """Without ENVSUB ON nothing is substituted and the migration carries no environment."""
        (tmp_path / "1_t.sql").write_text("-- +goose Up\nSELECT '$A';\n")
        migration = load_migrations(tmp_path, format="goose").versioned[0]
        assert migration.envsub is None
        resolved = Policy("sqlite", environment={"A": "a"}).resolve(migration)
        assert ["SELECT '$A'"] == [s.text for s in split_migration(resolved, "sqlite")]


class TestEnvironmentInConfig:
    def test_environment_handed_over_and_secret_names_scrubbed(self) -> None:
        """Config carries the environment for ENVSUB; values of secret-looking names are secrets, others are not."""
        from premigrate.config import load_config

        config = load_config("up", {}, {"APP_TOKEN": "tok-123", "NOTE": "plain-value"})
        assert "plain-value" == config.environment["NOTE"]
        assert "tok-123" in config.secrets
        assert "plain-value" not in config.secrets

"""The cyclic collector is paused while the `premigrate` command starts, and only then (premigrate/collector.py)."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from premigrate import collector

# Stands in for the console script pip writes (it is named after the command), with two probes: the collector's state
# once the CLI is imported, and when the command's own code starts.
_SCRIPT = """\
import gc
import sys

from premigrate import cli, collector

print("imported", gc.isenabled(), collector.paused(), flush=True)
choose = cli._command_function


def probed(command_run):
    command = choose(command_run)

    def run():
        print("command", gc.isenabled(), gc.get_freeze_count() > 0, flush=True)
        return command()
    return run


cli._command_function = probed
sys.argv[1:] = ["lint", "--dir", sys.argv[1]]
cli.run()
"""


def _run_script(tmp_path: Path, name: str) -> list[str]:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_t.sql").write_text("CREATE TABLE t (id INT);\n")
    script = tmp_path / name
    script.write_text(_SCRIPT)
    result = subprocess.run([sys.executable, str(script), str(folder)], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert 0 == result.returncode, result.stderr
    return [line for line in result.stdout.splitlines() if line.startswith(("imported", "command"))]


class TestCommandStartUp:
    def test_paused_while_the_command_starts_resumed_and_frozen_before_it_runs(self, tmp_path: Path) -> None:
        assert ["imported False True", "command True True"] == _run_script(tmp_path, "premigrate")

    def test_a_program_of_another_name_keeps_its_collector(self, tmp_path: Path) -> None:
        assert ["imported True False", "command True False"] == _run_script(tmp_path, "deploy.py")

    def test_importing_the_package_leaves_the_collector_alone(self) -> None:
        code = "import gc, premigrate; from premigrate import collector; print(gc.isenabled(), collector.paused())"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert "True False" == result.stdout.strip(), result.stderr

    def test_entrypoint_says_it_is_the_command(self) -> None:
        """The image's entrypoint.py sets the marker before its first premigrate import."""
        source = (Path(__file__).parents[2] / "entrypoint.py").read_text()
        assert source.index("PREMIGRATE_COMMAND = True") < source.index("from premigrate")


class TestStartedAsCommand:
    @pytest.mark.parametrize(("main_file", "marker", "orig_argv", "expected"), [
        pytest.param("/venv/bin/premigrate", None, ["python", "/venv/bin/premigrate", "up"], True, id="console"),
        pytest.param("/app/entrypoint.py", True, ["python", "/app/entrypoint.py", "up"], True, id="entrypoint"),
        pytest.param(None, None, ["python", "-m", "premigrate", "up"], True, id="dash-m"),
        pytest.param(None, None, ["python", "-mpremigrate", "up"], True, id="dash-m-joined"),
        pytest.param(None, None, ["python", "-m", "pytest"], False, id="other-module"),
        pytest.param(None, None, ["python", "-Im", "premigrate"], True, id="isolated-dash-m"),
        pytest.param(None, None, ["python", "-X", "importtime", "-W", "ignore", "-m", "premigrate"], True,
                     id="options-with-values-first"),
        pytest.param(None, None, ["python", "-Xdev", "-m", "premigrate"], True, id="attached-option-value"),
        pytest.param(None, None, ["python", "-c", "import premigrate", "-m", "premigrate"], False,
                     id="dash-c-with-dash-m-as-its-argument"),
        pytest.param(None, None, ["python", "-X", "m", "-c", "x"], False, id="m-as-an-option-value"),
        pytest.param(None, None, ["python", "-c", "import premigrate"], False, id="dash-c"),
        pytest.param("/app/entrypoint.py", None, ["python", "/app/entrypoint.py"], False, id="unmarked-entrypoint"),
        pytest.param("/app/premigrate.py", None, ["python", "/app/premigrate.py"], False, id="other-script"),
    ])
    def test_cases(self, monkeypatch: pytest.MonkeyPatch, main_file: str | None, marker: bool | None,
                   orig_argv: list[str], expected: bool) -> None:
        main = types.ModuleType("__main__")
        if main_file is not None:
            main.__file__ = main_file
        if marker is not None:
            main.PREMIGRATE_COMMAND = marker  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "__main__", main)
        monkeypatch.setattr(sys, "orig_argv", orig_argv)
        assert expected is collector.started_as_command()

    def test_resume_without_a_pause_changes_nothing(self) -> None:
        frozen = __import__("gc").get_freeze_count()
        collector.resume()
        assert (True, frozen) == (__import__("gc").isenabled(), __import__("gc").get_freeze_count())

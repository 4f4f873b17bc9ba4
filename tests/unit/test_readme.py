"""README.md and docs/ are the user's manual: together they must name every flag, variable, exit code and log event
the code has, and every relative link in them must lead to a file and heading that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from premigrate.config import OPTIONS
from premigrate.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()
LOG_EVENTS = (ROOT / "docs" / "log-events.md").read_text()
# Every page of the manual: the README (the front door), the benchmark and everything under docs/.
PAGES = sorted([ROOT / "README.md", ROOT / "BENCHMARK.md", *(ROOT / "docs").rglob("*.md")])
SOURCE = "\n".join(p.read_text() for p in (ROOT / "src" / "premigrate").rglob("*.py"))
EVENTS = sorted(set(re.findall(r"\.(?:debug|info|warning|error)\(\s*\"([a-z_]+)\"", SOURCE))
                | set(re.findall(r"\.log\([^\"]*\"([a-z_]+)\"", SOURCE)))

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]+`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading anchors on its text
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors GitHub generates for a page's headings (a repeated heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    result = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        result.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return result


def relative_links(page: Path) -> list[str]:
    """Every link target in a page that is not a web address, outside code blocks and code spans."""
    text = INLINE_CODE.sub("code", FENCE.sub("", page.read_text()))
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


class TestReference:
    @pytest.mark.parametrize("option", OPTIONS, ids=lambda o: f"{o.dest}")
    def test_documents_every_option(self, option: object) -> None:
        """Each flag is listed in docs/configuration.md on one line with its environment variable."""
        flag, env = option.flag, option.env  # type: ignore[attr-defined]
        assert any(f"`{flag}" in line and f"`{env}`" in line for line in CONFIGURATION.splitlines()), (
            f"docs/configuration.md has no row naming both `{flag}` and `{env}`")

    @pytest.mark.parametrize("code", [c for c, _ in EXIT_CODES])
    def test_documents_every_exit_code(self, code: str) -> None:
        """Each exit code has a row in the README's table."""
        first = code.split("/")[0]
        assert re.search(rf"^\| {re.escape(first)}\b", README, re.MULTILINE)

    def test_found_events(self) -> None:
        """The event scan finds the events the run is built on (a guard against a broken regex)."""
        assert {"config_loaded", "migration_applied", "summary", "wait_retrying"} <= set(EVENTS)

    @pytest.mark.parametrize("event", [e for e in EVENTS if e != "migrations_loaded"])
    def test_documents_every_event(self, event: str) -> None:
        """Each log event the code emits at info level or above has a row in docs/log-events.md."""
        assert f"| `{event}` |" in LOG_EVENTS

    def test_documents_every_problem_kind(self) -> None:
        """validation_failed's `kind` list is every ProblemKind and every kind the planner writes as a literal (a
        draft's `unwritten`), no more."""
        from premigrate.model.planner import ProblemKind

        [row] = [line for line in LOG_EVENTS.splitlines() if line.startswith("| `validation_failed` |")]
        documented = set(re.findall(r"`([a-z_]+)`", row.split("`kind`", 1)[1].split("`migration_id`", 1)[0]))
        emitted = {k.value for k in ProblemKind} | set(re.findall(r'Problem\(\s*"([a-z_]+)"', SOURCE))
        assert {"unwritten", "drift"} <= emitted
        assert emitted == documented


class TestLinks:
    def test_pages_have_links(self) -> None:
        """The link scan finds the README's links into docs/ (a guard against a broken regex or a missing page)."""
        assert {"docs/configuration.md", "docs/recovery.md", "BENCHMARK.md"} <= set(relative_links(ROOT / "README.md"))
        assert len(PAGES) >= 10

    @pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
    def test_relative_links_resolve(self, page: Path) -> None:
        """Every relative link leads to an existing file inside the repository, and its #anchor to a heading there."""
        broken = []
        for target in relative_links(page):
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{target} (no such file)")
            elif anchor and (resolved.suffix != ".md" or anchor not in anchors(resolved)):
                broken.append(f"{target} (no such heading)")
        assert not broken, f"{page.relative_to(ROOT)}: " + ", ".join(broken)

    @pytest.mark.parametrize(("heading", "anchor"), [
        ("Checking all of this: `tests/containers/check.sh`", "checking-all-of-this-testscontainerschecksh"),
        ("Your migrations: baked into an image, or mounted", "your-migrations-baked-into-an-image-or-mounted"),
        ("`premigrate up`", "premigrate-up"),
        ("Linting during `up`", "linting-during-up"),
    ])
    def test_slug_follows_github(self, heading: str, anchor: str) -> None:
        """Headings with code, punctuation and colons anchor the way GitHub renders them."""
        assert slug(heading) == anchor


class TestFrontDoor:
    def test_readme_stays_short(self) -> None:
        """The README is the front door; the reference lives in docs/."""
        lines = README.count("\n")
        assert lines <= 300, f"README.md has {lines} lines: move reference material to docs/"

    def test_readme_links_every_reference_page(self) -> None:
        """Each page of docs/ is reachable from the README, directly or through docs/README.md."""
        reachable = {(ROOT / t.partition("#")[0]).resolve() for t in relative_links(ROOT / "README.md")}
        index = ROOT / "docs" / "README.md"
        reachable |= {(index.parent / t.partition("#")[0]).resolve() for t in relative_links(index)}
        commands = ROOT / "docs" / "commands" / "README.md"
        reachable |= {(commands.parent / t.partition("#")[0]).resolve() for t in relative_links(commands)}
        missing = [str(p.relative_to(ROOT)) for p in PAGES if p.resolve() not in reachable and p.name != "README.md"]
        assert not missing, f"not linked from README.md, docs/README.md or docs/commands/README.md: {missing}"

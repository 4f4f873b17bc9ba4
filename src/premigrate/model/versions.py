"""Migration versions: tuples of integers compared numerically, trailing zero parts ignored.

`2` < `10`, `1.9` < `1.10`, and `001`, `1`, `1.0` and Flyway's `V1__` are one and the same version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

_VERSION_TEXT = re.compile(r"\d+(?:[._]\d+)*\Z")


@dataclass(frozen=True, order=True)
class Version:
    """A migration version: numbers compared part by part, and how the file spelled it."""
    parts: tuple[int, ...]
    # How the file spelled it ("001", "2026_01_13_155307"); not part of identity or order.
    text: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse `1`, `001`, `1.10`, or Flyway's `1_1` (underscores separate parts as dots do)."""
        if not _VERSION_TEXT.match(text):
            raise ValueError(f"not a version: {text!r}")
        parts = [int(p) for p in text.replace("_", ".").split(".")]
        while parts and parts[-1] == 0:
            parts.pop()
        return cls(tuple(parts), text)

    def __str__(self) -> str:
        return self._dotted

    @cached_property
    def _dotted(self) -> str:
        # Computed once: a run formats each version many times (every log event and history row of its migration).
        return ".".join(str(p) for p in self.parts) if self.parts else "0"


def is_version(text: str) -> bool:
    return bool(_VERSION_TEXT.match(text))


def sort_key(version: str | None, name: str) -> tuple[int, Version, str]:
    """Versions in numeric order first, then everything else (repeatables) by name."""
    if version is not None and is_version(version):
        return (0, Version.parse(version), "")
    return (1, Version(()), name)

"""Regular expressions compiled on their first use instead of at import.

Start-up is what a no-op `up` costs (it runs on every pod start; bench/ measures it against the driver's own floor).
The modules it imports hold patterns it never uses (credentials in SQL, statement splitting, other tools' file
names, trace masking): compiled at import they cost it about 3 ms. `LazyPattern(...)` stands where
`re.compile(...)` stood and is compiled by the first call of any of its methods.

Patterns a no-op run uses anyway stay `re.compile`d at import: deferring them saves nothing.

On first use the object puts the compiled pattern's own bound methods in its instance dict, where they shadow the
class's methods: every later call is the compiled pattern's method, found one dict lookup further (some 15 ns a
call). A loop that calls one pattern per character or word binds the method to a local once (model/sql.py).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from typing import Any


class LazyPattern:
    """A `re.Pattern[str]` compiled on first use: the methods premigrate calls, with the same signatures."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self._flags = flags

    def compiled(self) -> re.Pattern[str]:
        """The compiled pattern; from now on every method is the compiled pattern's own."""
        compiled = re.compile(self.pattern, self._flags)
        vars(self).update(
            compiled=lambda: compiled, search=compiled.search, match=compiled.match, fullmatch=compiled.fullmatch,
            finditer=compiled.finditer, findall=compiled.findall, sub=compiled.sub, subn=compiled.subn,
            split=compiled.split,
        )
        return compiled

    @property
    def flags(self) -> int:
        return self.compiled().flags

    def search(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return self.compiled().search(string, pos, endpos)

    def match(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return self.compiled().match(string, pos, endpos)

    def fullmatch(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return self.compiled().fullmatch(string, pos, endpos)

    def finditer(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> Iterator[re.Match[str]]:
        return self.compiled().finditer(string, pos, endpos)

    def findall(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> list[Any]:
        return self.compiled().findall(string, pos, endpos)

    def sub(self, repl: str | Callable[[re.Match[str]], str], string: str, count: int = 0) -> str:
        return self.compiled().sub(repl, string, count)

    def subn(self, repl: str | Callable[[re.Match[str]], str], string: str, count: int = 0) -> tuple[str, int]:
        return self.compiled().subn(repl, string, count)

    def split(self, string: str, maxsplit: int = 0) -> list[str | Any]:
        return self.compiled().split(string, maxsplit)

    def __repr__(self) -> str:
        return f"LazyPattern({self.pattern!r}, {self._flags!r})"

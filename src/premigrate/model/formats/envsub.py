"""goose's `-- +goose ENVSUB ON` substitution: a port of the library goose calls, mfridman/interpolate v0.0.2
(parser.go, interpolate.go at commit 07e63f695834fcdf9304738223eab4e2b584e9a9), line by line as goose calls it
(pressly/goose internal/sqlparser/parser.go: `interpolate.Interpolate(&envWrapper{}, line)`, env = os.LookupEnv).

The grammar, exactly as the library reads it:
- `$NAME` and `${NAME}`: the variable's value; an unset variable is the empty string (no error).
  NAME starts with a letter (Unicode) and goes on with letters, digits (Unicode numbers) and `_`.
- `${NAME:-default}`: the default when NAME is unset or empty; `${NAME-default}`: only when it is unset.
  A default is itself an expression (`${A:-${B}}`).
- `${NAME?message}`: an error `$NAME: message` ("not set" when the message is empty) when NAME is unset.
- `${NAME:offset}`, `${NAME:offset:length}`: a slice of the value's bytes (negative counts from the end).
- `\\` stays `\\` (two backslashes); `\\$` and `$$` are one `$`; `$(` is kept as it is; a `$` that ends the line is
  kept. Any other `$` must start a name: `$1` or `$ ` is an error ("Expected identifier to start with a letter").
  So in an ENVSUB section PostgreSQL's `$$` quoting becomes `$`, as it does under goose.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping

_STOP_NONE = ""
_INT = re.compile(r"[+-]?[0-9]+\Z")
_REPLACEMENT = "\ufffd"  # Go's utf8.RuneError: scanUntil stops on it


class EnvsubError(ValueError):
    """What interpolate reports; goose wraps it as "variable substitution failed"."""


class EnvsubUnset(EnvsubError):
    """`${NAME?message}` with NAME unset."""


def _is_letter(c: str) -> bool:
    return unicodedata.category(c).startswith("L")


def _is_identifier_char(c: str) -> bool:
    category = unicodedata.category(c)
    return category.startswith(("L", "N")) or c == "_"


def _atoi(text: str, what: str) -> int:
    stripped = text.strip()
    if not _INT.match(stripped) or not -(2**63) <= int(stripped) < 2**63:
        raise EnvsubError(f"Unable to parse {what}: strconv.Atoi: parsing {stripped!r}: invalid syntax")
    return int(stripped)


# An expression is a list of items: a str (text) or a callable expanding against the environment.
Item = str | Callable[[Mapping[str, str]], str]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        c = self.peek()
        self.pos += 1 if c else 0
        return c

    def scan_until(self, stop: Callable[[str], bool]) -> str:
        start = self.pos
        while self.pos < len(self.text) and not (self.text[self.pos] == _REPLACEMENT or stop(self.text[self.pos])):
            self.pos += 1
        return self.text[start:self.pos]

    def expression(self, stop: str = _STOP_NONE) -> list[Item]:
        items: list[Item] = []
        while True:
            c = self.peek()
            if not c or c in stop:
                return items
            rest = self.text[self.pos:self.pos + 2]
            if rest == "\\\\":
                self.pos += 2
                items.append("\\\\")
            elif rest in ("\\$", "$$"):
                self.pos += 2
                items.append("$")
            elif rest == "$(":  # shell command substitution is left alone
                self.pos += 2
                items.append("$(")
            elif c == "$" and self.pos < len(self.text) - 1:
                items.append(self.expansion())
            else:
                first = self.next()
                items.append(first + self.scan_until(lambda r: r in "$\\" or r in stop))

    def identifier(self) -> str:
        c = self.peek()
        if not c or not _is_letter(c):
            raise EnvsubError(f"Expected identifier to start with a letter, got {c or '%!c(int32=-1)'}")
        return self.scan_until(lambda r: not _is_identifier_char(r))

    def expansion(self) -> Item:
        self.next()  # the "$"
        if self.peek() != "{":
            name = self.identifier()
            return lambda env: env.get(name, "")
        self.next()
        name = self.identifier()
        if self.peek() == "}":
            self.next()
            return lambda env: env.get(name, "")
        op = self.next()
        if op == ":" and self.peek() == "-":
            self.next()
            op = ":-"
        elif op not in (":", "?", "-"):
            raise EnvsubError(f"Expected an operator, got {op or '%!c(int32=-1)'}")
        found: Item
        if op == ":":
            found = self.substring(name)
        else:
            content = self.expression("}")
            found = _operation(op, name, content)
        close = self.next()
        if close != "}":
            raise EnvsubError(f"Expected brace expansion to end with }}, got {close or '%!c(int32=-1)'}")
        return found

    def substring(self, name: str) -> Item:
        offset = _atoi(self.scan_until(lambda r: r in ":}"), "offset")
        length: int | None = None
        if self.peek() != "}":
            self.next()
            length = _atoi(self.scan_until(lambda r: r == "}"), "length")
        return lambda env: _slice(env.get(name, ""), offset, length)


def _operation(op: str, name: str, content: list[Item]) -> Item:
    def expand(env: Mapping[str, str]) -> str:
        value = env.get(name)
        if op == ":-":
            return value if value else _expand(content, env)
        if op == "-":
            return value if value is not None else _expand(content, env)
        if value is None:  # "?": required
            raise EnvsubUnset(f"${name}: {_expand(content, env) or 'not set'}")
        return value

    return expand


def _slice(value: str, offset: int, length: int | None) -> str:
    """interpolate's SubstringExpansion, on the value's UTF-8 bytes as Go slices a string."""
    data = value.encode()
    start = min(max(offset + len(data) if offset < 0 else offset, 0), len(data))
    if length is None:
        end = len(data)
    else:
        end = length + start if length >= 0 else max(length + len(data), start)
        end = min(end, len(data))
    try:
        return data[start:end].decode()
    except UnicodeDecodeError:
        raise EnvsubError(f"${{...:{offset}}} cuts a character of the value in two (goose would send invalid "
                          "UTF-8)") from None


def _expand(items: list[Item], env: Mapping[str, str]) -> str:
    return "".join(item if isinstance(item, str) else item(env) for item in items)


def interpolate(env: Mapping[str, str], text: str) -> str:
    """`text` with its variables replaced from `env`, by mfridman/interpolate's rules; EnvsubError as it fails."""
    if "$" not in text:
        return text
    return _expand(_Parser(text).expression(), env)


def check(text: str) -> None:
    """EnvsubError when interpolate cannot parse `text` (whatever the environment holds)."""
    if "$" in text:
        _Parser(text).expression()

"""Liquibase's statement splitting (SimpleSqlGrammar.jj tokens, StringUtil.processMultiLineSQL)."""

from __future__ import annotations

import re



# -- tokens (SimpleSqlGrammar.jj) ---------------------------------------------------------------------------------

_WS = "[ \t\n\r\u0085\u00a0\u1680\u180e\u2000-\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff]+"
_IDENT = r"(?:[^\W\d]|[$@#])(?:\w|[$@#])*"
_QUOTED_IDENT = r'"[^\n\r"]+"|`[^\n\r`]+`|\[[^0-9\]][^\n\r\]]*\]'
_TOKENS: list[tuple[str, re.Pattern[str]]] = [
    ("ws", re.compile(_WS)),
    ("line_comment", re.compile(r"--[^\r\n]*")),
    ("comment", re.compile(r"/\*[^*]*\*+(?:[^*/][^*]*\*+)*/")),
    ("double", re.compile(r"\d*\.\d+(?:[eE][+-]?\d+)?|\d+\.(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+")),
    ("long", re.compile(r"\d+")),
    ("oracle_q", re.compile(r"N?Q'[^ \t\n\r]", re.IGNORECASE)),
    ("complex_ident", re.compile(rf"(?:{_IDENT}|{_QUOTED_IDENT})(?:[\r\n ]*\.[\r\n ]*(?:{_IDENT}|{_QUOTED_IDENT}))+")),
    ("ident", re.compile(_IDENT)),
    ("char_literal", re.compile(r"(?:RB|_utf8|[UENRB])?(?:'(?:''|\\[\s\S]|[^\\'])*(?:'|\\')"
                                r"|\"(?:\"\"|\\[\s\S]|[^\\\"])*(?:\"|\\\"))", re.IGNORECASE)),
    ("quoted_ident", re.compile(_QUOTED_IDENT)),
    ("symbol", re.compile(r"[!-/:-@\[-`{-~]")),
]
_ORACLE_CLOSE = {"[": "]", "{": "}", "(": ")", "<": ">"}


def tokenize(sql: str) -> list[tuple[str, str]]:
    """(kind, text) tokens, by JavaCC's rule: the longest match wins, ties go to the earlier declaration."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(sql)
    while i < n:
        best_kind, best_end = "", i
        for kind, pattern in _TOKENS:
            m = pattern.match(sql, i)
            if m and m.end() > best_end:
                best_kind, best_end = kind, m.end()
        if not best_kind:  # a character the grammar has no token for: kept as itself
            best_kind, best_end = "other", i + 1
        if best_kind == "oracle_q":
            close = _ORACLE_CLOSE.get(sql[best_end - 1], sql[best_end - 1])
            j, previous = best_end, ""
            while j < n:
                if previous == close and sql[j] == "'":
                    j += 1
                    break
                previous = sql[j]
                j += 1
            best_end = j
        tokens.append((best_kind, sql[i:best_end]))
        i = best_end
    return tokens


def _is_delimiter(piece: str, previous: str | None, end_delimiter: str | None) -> bool:
    if end_delimiter is None:
        return piece == ";" or (piece.lower() in ("go", "/") and
                                (previous is None or previous.endswith("\n")))
    if len(end_delimiter) == 1:
        if end_delimiter == "/" and previous is not None and not previous.endswith("\n"):
            return False  # a slash that is not at the start of a line is a division or a comment
        return piece.lower() == end_delimiter.lower()
    if piece.lower() == end_delimiter.lower():
        return True
    try:  # Liquibase matches (previous + piece) against "[\s\n\r]*" + endDelimiter as a regular expression
        return re.fullmatch(r"[\s\n\r]*" + end_delimiter.lower(), (str(previous) + piece).lower()) is not None
    except re.error:
        return False


def _merge_tokens(pieces: list[str], end_delimiter: str | None) -> list[str]:
    """Delimiters such as `//` span several tokens: join them back (StringUtil.mergeTokens)."""
    if end_delimiter is None:
        return pieces
    out: list[str] = []
    pending: list[str] = []
    for piece in pieces:
        if not pending:
            if end_delimiter.startswith(piece):
                pending.append(piece)
            else:
                out.append(piece)
            continue
        joined = "".join(pending) + piece
        if joined == end_delimiter:
            out.append(joined)
            pending = []
        elif end_delimiter.startswith(joined):
            pending.append(piece)
        else:
            out += pending + [piece]
            pending = []
    return out  # a dangling partial delimiter is dropped, as Liquibase drops it


_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")


def unclosed_dollar_quote(statement: str) -> bool:
    """True when a statement opens a PostgreSQL dollar quote it does not close (outside strings and comments)."""
    open_tag: str | None = None
    for kind, text in tokenize(statement):
        if kind in ("line_comment", "comment", "char_literal") and open_tag is None:
            continue
        for tag in _DOLLAR_TAG.findall(text) if kind in ("ident", "complex_ident", "other", "symbol") else []:
            if open_tag is None:
                open_tag = tag
            elif tag == open_tag:
                open_tag = None
    return open_tag is not None


def java_trim(text: str) -> str:
    # String.trim / StringUtils.trimToNull: strips characters <= U+0020
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def split_statements(sql: str, *, strip_comments: bool, split: bool, end_delimiter: str | None) -> list[str]:
    """StringUtil.processMultiLineSQL (non-strict mode, Liquibase's default)."""
    pieces = [text for kind, text in tokenize(sql.replace("\r", ""))
              if not (strip_comments and kind in ("line_comment", "comment"))]
    pieces = _merge_tokens(pieces, end_delimiter)
    statements: list[str] = []
    current: list[str] = []
    previous: str | None = None
    previous_delimiter = False
    in_clause = 0
    for i, piece in enumerate(pieces):
        following = next((p.strip() for p in pieces[i + 1:] if java_trim(p)), None)
        following = following.lower() if following else None
        lower = piece.lower()
        if lower == "begin" and following not in ("transaction", "trans", "tran", "dialog", "conversation",
                                                   "distributed"):
            in_clause += 1
        if lower == "end" and in_clause > 0 and following not in ("transaction", "trans", "tran"):
            in_clause -= 1
        if in_clause == 0 and split and _is_delimiter(piece, previous, end_delimiter):
            text = java_trim("".join(current))
            if text:
                statements.append(text)
            current = []
            previous_delimiter = True
        else:
            # no whitespace right after a delimiter, nor before a statement
            if (not previous_delimiter or java_trim(piece)) and (current or java_trim(piece)):
                current.append(piece)
            previous_delimiter = False
        previous = piece
    text = java_trim("".join(current))
    if text:
        statements.append(text)
    return statements

"""Context, label and dbms expressions, matched the way Liquibase matches them."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from premigrate.model.formats.liquibase.split import java_trim


# -- contexts, labels, dbms ---------------------------------------------------------------------------------------

_NESTED = re.compile(r"\([^()]+\)")


def expression_matches(expression: str, items: Collection[str]) -> bool:
    """util/ExpressionMatcher.matches: `a and b`, `a or b`, `a, b` (or), `!a` / `not a`, parentheses, `@required`."""
    expression = java_trim(expression)
    if expression == ":TRUE":
        return True
    if expression == ":FALSE":
        return False
    while "(" in expression:
        m = _NESTED.search(expression)
        if not m:
            raise ValueError(f"cannot parse expression {expression!r}")
        inner = expression_matches(expression[m.start() + 1:m.end() - 1], items)
        expression = f"{expression[:m.start()]} :{str(inner).upper()} {expression[m.end():]}"
    expression = re.sub(r"\s*,\s*", " or ", expression)
    ors = re.split(r"\s+or\s+", expression)
    if len(ors) > 1:
        return any(expression_matches(part, items) for part in ors)
    ands = re.split(r"\s+and\s+", expression)
    if len(ands) > 1:
        return all(expression_matches(part, items) for part in ands)
    negated = False
    if expression.startswith("!"):
        negated, expression = True, expression[1:].strip()
    elif expression.lower().startswith("not "):
        negated, expression = True, expression[4:].strip()
    elif re.match(r"^@\s*(!|not ).+", expression):
        negated, expression = True, re.sub(r"^@\s*(!|not )", "", expression, count=1).strip()
    required = False
    if expression.startswith("@"):
        required, expression = True, expression[1:].strip()
    if not required and expression.lower() == "nocontexts":
        return negated ^ (not items)
    if not required and not items:
        return True
    if expression.strip() == ":TRUE":
        return not negated
    if expression.strip() == ":FALSE":
        return negated
    for item in items:
        if item.startswith("@"):
            item = item[1:].strip()
        if item.lower() == expression.lower():
            return not negated
    return negated


def split_expressions(text: str | None) -> list[str]:
    """ContextExpression.splitAndTrimContextExpressions: commas outside parentheses separate alternatives."""
    text = java_trim(text or "")
    if not text:
        return []
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")" and depth > 0:
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    while parts and not parts[-1]:
        parts.pop()
    return [p.lower() for p in parts]


def context_matches(changeset_context: str | None, runtime_contexts: Collection[str]) -> bool:
    """ContextExpression.matches: the changeset's filter against the run's --contexts."""
    expressions = split_expressions(changeset_context)
    runtime = [c.lower() for c in runtime_contexts]
    if not expressions:
        return not any(re.search(r"nocontexts", c, re.IGNORECASE) for c in runtime)
    return any(expression_matches(e, runtime) for e in expressions)


def label_filter_matches(label_filter: str | None, changeset_labels: Collection[str]) -> bool:
    """LabelExpression.matches: the run's --labels expression against the changeset's labels. Unlike contexts,
    LabelExpression splits on every comma (StringUtil.splitAndTrim), parentheses or not."""
    expressions = [p.strip().lower() for p in (label_filter or "").split(",") if p.strip()]
    if not expressions:
        return True
    labels = [label.lower() for label in changeset_labels]
    return any(expression_matches(e, labels) for e in expressions)


def dbms_matches(definition: Iterable[str], dbms: str) -> bool:
    items = [d for d in definition if d]
    if not items:
        return True
    if "all" in items:
        return True
    if "none" in items:
        return False
    if f"!{dbms}" in items:
        return False
    supported = {d for d in items if not d.startswith("!")}
    return not supported or dbms in supported

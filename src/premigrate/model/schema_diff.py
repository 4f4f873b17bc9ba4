"""A database schema as comparable values, and the differences between two of them. Pure: no database.

engine/schema_snapshot.py reads the catalogs into a Schema: a sorted tuple of SchemaObjects, each a kind (table,
column, index, constraint, view, function, trigger, sequence, enum), a name unique within its kind, and string
attributes (type, default, nullability, definition, ...). Normalisation (ordering, generated names, whitespace)
happens while reading, so here equal schemas are simply equal values and a difference is found object by object,
attribute by attribute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

KINDS = ("table", "column", "index", "constraint", "view", "function", "trigger", "sequence", "enum")
ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"
_RENDER_LIMIT = 160


@dataclass(frozen=True, order=True)
class SchemaObject:
    """One object of a schema snapshot (table, column, index, ...) and its attributes."""
    kind: str
    name: str
    attributes: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def of(cls, kind: str, name: str, attributes: Mapping[str, object] | None = None) -> SchemaObject:
        if kind not in KINDS:
            raise ValueError(f"unknown schema object kind {kind!r}")
        items = tuple(sorted((k, None if v is None else str(v)) for k, v in (attributes or {}).items()))
        return cls(kind, name, items)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)

    def get(self, attribute: str) -> str | None:
        return dict(self.attributes).get(attribute)


@dataclass(frozen=True)
class Schema:
    """A schema snapshot: its objects, sorted."""
    objects: tuple[SchemaObject, ...] = ()

    @classmethod
    def build(cls, objects: Iterable[SchemaObject]) -> Schema:
        """Sorted, with a name made unique where two objects of one kind share it (two identical unnamed checks
        on one table are two objects, and stay two)."""
        seen: dict[tuple[str, str], int] = {}
        unique: list[SchemaObject] = []
        for obj in sorted(objects):
            count = seen.get(obj.key, 0) + 1
            seen[obj.key] = count
            unique.append(obj if count == 1 else SchemaObject(obj.kind, f"{obj.name} #{count}", obj.attributes))
        return cls(tuple(sorted(unique)))

    def by_key(self) -> dict[tuple[str, str], SchemaObject]:
        return {obj.key: obj for obj in self.objects}

    def names(self, kind: str) -> list[str]:
        return [obj.name for obj in self.objects if obj.kind == kind]

    def find(self, kind: str, name: str) -> SchemaObject | None:
        return self.by_key().get((kind, name))


def _short(value: str | None) -> str:
    if value is None:
        return "none"
    text = repr(value)
    return text if len(text) <= _RENDER_LIMIT else text[: _RENDER_LIMIT - 3] + "..."


@dataclass(frozen=True)
class Difference:
    """One difference between two schema snapshots."""
    kind: str
    name: str
    change: str  # added | removed | changed
    attribute: str | None = None  # for `changed`
    before: str | None = None
    after: str | None = None

    def render(self) -> str:
        """One line a person reads in a CI log."""
        if self.change == CHANGED:
            change = f"changed from {_short(self.before)} to {_short(self.after)}"
            return f"{self.kind} {self.name}: {self.attribute} {change}"
        detail = self.after if self.change == ADDED else self.before
        return f"{self.kind} {self.name} {self.change}" + (f" ({_short(detail)})" if detail else "")

    def as_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "name": self.name, "change": self.change, "attribute": self.attribute,
                "before": self.before, "after": self.after, "text": self.render()}

    def __str__(self) -> str:
        return self.render()


def _summary(obj: SchemaObject) -> str | None:
    attributes = dict(obj.attributes)
    if attributes.get("definition"):
        return attributes["definition"]
    if obj.kind == "column":
        return attributes.get("type")
    return None


def diff(before: Schema, after: Schema) -> list[Difference]:
    """What changed from `before` to `after`, object by object: removed, added, then attributes that differ. Kinds
    in KINDS order (a missing table before its columns), names sorted within a kind."""
    old, new = before.by_key(), after.by_key()
    order = {kind: i for i, kind in enumerate(KINDS)}
    differences: list[Difference] = []
    for key in sorted(old.keys() | new.keys(), key=lambda k: (order[k[0]], k[1])):
        kind, name = key
        if key not in new:
            differences.append(Difference(kind, name, REMOVED, before=_summary(old[key])))
        elif key not in old:
            differences.append(Difference(kind, name, ADDED, after=_summary(new[key])))
        elif old[key] != new[key]:
            a, b = dict(old[key].attributes), dict(new[key].attributes)
            for attribute in sorted(a.keys() | b.keys()):
                if a.get(attribute) != b.get(attribute):
                    differences.append(Difference(kind, name, CHANGED, attribute, a.get(attribute), b.get(attribute)))
    return differences

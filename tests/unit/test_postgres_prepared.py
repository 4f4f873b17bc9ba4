"""The pure parts of drivers/postgres_prepared.py: placeholders, text parameters, names, what may drop them."""

from __future__ import annotations

import pytest

from premigrate.drivers.postgres_prepared import Call, Parse, PreparedNames, drops_prepared, numbered


def test_placeholders_are_numbered_in_order() -> None:
    assert "INSERT INTO t (a, b, c) VALUES ($1, $2, now(), $3)" == numbered(
        "INSERT INTO t (a, b, c) VALUES (%s, %s, now(), %s)")
    assert "SELECT 1" == numbered("SELECT 1")


def test_values_go_as_text_and_null() -> None:
    call = PreparedNames().call("SELECT %s, %s, %s", ("é", 42, None), "utf-8")
    assert Call("SELECT $1, $2, $3", ("é".encode(), b"42", None)) == call


@pytest.mark.parametrize("value", [
    pytest.param("a\x00b", id="NUL, which a text parameter would cut short"),
    pytest.param(True, id="bool"),
    pytest.param(1.5, id="float"),
    pytest.param("ü", id="not in the session's encoding"),
])
def test_a_value_text_cannot_carry_as_the_literal_would_gives_no_call(value: object) -> None:
    assert PreparedNames().call("SELECT %s", (value,), "ascii") is None


def test_each_statement_is_prepared_once_and_again_under_a_new_name_after_forget() -> None:
    names = PreparedNames()
    a, b = Call("SELECT $1", (b"1",)), Call("SELECT 2", ())
    assert [Parse(b"premigrate_own_1", "SELECT $1"), Parse(b"premigrate_own_2", "SELECT 2")] == \
        names.parses(["BEGIN", a, b, Call("SELECT $1", (b"9",)), "COMMIT"])
    assert [] == names.parses([a, b])
    assert b"premigrate_own_2" == names.name(b)
    names.forget()
    assert [Parse(b"premigrate_own_3", "SELECT 2")] == names.parses([b])


@pytest.mark.parametrize(("text", "drops"), [
    ("DEALLOCATE ALL", True),
    ("deallocate prepare x", True),
    ("DISCARD ALL", True),
    ("CREATE TABLE t (id int)", False),
    ("SELECT 'deal' || 'locate all'", False),
])
def test_what_may_drop_prepared_statements(text: str, drops: bool) -> None:
    assert drops == drops_prepared(text)

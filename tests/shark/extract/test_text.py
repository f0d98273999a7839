"""The one text form of names and strings whose bytes are not UTF-8."""

from __future__ import annotations

import pytest

from decoder import Role
from decoder import messages as m
from shark.extract.record import MESSAGE, Record
from shark.extract.text import text_form
from shark.output.text import format_record

RAW = b"\xff\xfeAB".decode("utf-8", "surrogateescape")


@pytest.mark.parametrize(("text", "form"), [
    ("PV:ONE", "PV:ONE"),
    ("CAFÉ:T", "CAFÉ:T"),
    (RAW, "\\xff\\xfeAB"),
    ("É" + RAW, "É\\xff\\xfeAB"),
    ("\ud800x", "\\ud800x"),  # a surrogate no undecodable byte left
    ("", ""),
])
def test_text_form(text: str, form: str) -> None:
    assert text_form(text) == form
    text_form(text).encode("utf-8")  # always has a UTF-8 form


def test_text_line_shows_the_same_form() -> None:
    search = m.SearchRequest(cid=1, name=b"\xff\xfeAB")
    record = Record(MESSAGE, 1, 1.0, "10.0.0.1:40000", "10.0.0.2:5064", "udp", None,
                    Role.CLIENT, search)
    record.pv = search.name
    line = format_record(record)
    line.encode("utf-8")
    assert "\\xff\\xfeAB" in line

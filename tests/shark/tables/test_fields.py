"""The ``fields`` column says what :func:`decoder.describe.field_text` says, message by
message, however it is made (a form at a time, names by Arrow where they are plain)."""

from __future__ import annotations

import numpy as np

from decoder import Role
from decoder import messages as m
from decoder.describe import field_text
from shark.extract.record import Record, RecordKind
from shark.tables.chunk import Chunk, Vocabularies
from shark.tables.fields import fields_column
from shark.tables.messages import _OWN_COLUMNS

#: Names plain and not: quotes, a backslash, bytes that are not UTF-8, UTF-8 that is
#: not ASCII, control characters, none at all, one seen twice.
NAMES = [b"PLAIN:NAME", b"", b"it's", b'say "hi"', b"back\\slash", b"\xff\xfeX",
         "caf\u00e9".encode(), b"tab\there", b"\x7f", b"PLAIN:NAME", b"~ok[]{} -&(",
         b"both ' and \""]


def test_names_are_written_as_field_text_writes_them() -> None:
    messages: list[m.Message] = []
    for cid, name in enumerate(NAMES):
        messages.append(m.CreateChanRequest(cid=cid, payload=name + b"\0"))
        messages.append(m.SearchRequest(cid=cid, payload=name + b"\0\0\0"))
    messages.append(m.CreateChanRequest(cid=99, payload=b"NO:NUL:AT:ALL"))
    records = [Record(RecordKind.MESSAGE, frame, 1.0, "10.0.0.1:40000", "10.0.0.2:5064",
                      "tcp", 1, Role.CLIENT, message)
               for frame, message in enumerate(messages, 1)]
    size = len(records) + 2  # (and two rows that are not messages: null)
    rows = np.concatenate((np.arange(len(records)), [-1, -1]))
    column = fields_column(Chunk(records, Vocabularies()), rows, size, _OWN_COLUMNS)
    assert column.to_pylist() == [field_text(message, _OWN_COLUMNS)
                                  for message in messages] + [None, None]

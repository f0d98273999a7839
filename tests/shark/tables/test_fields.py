"""The ``fields`` column says what :func:`decoder.describe.field_text` says, message by
message, however it is made (a form at a time, names by Arrow where they are plain)."""

from __future__ import annotations

import numpy as np

from decoder import Role
from decoder import messages as m
from decoder.describe import STATUS_AMONG_FIELDS, field_text
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
    # (and two rows that are not messages: null)
    records += [Record(RecordKind.GAP, 90 + i, 1.0, "10.0.0.1:40000", "10.0.0.2:5064",
                       "tcp", 1, Role.CLIENT, None) for i in range(2)]
    message = np.arange(len(records)) < len(messages)
    column = fields_column(Chunk(records, Vocabularies()), None, message, _OWN_COLUMNS)
    assert column.to_pylist() == [field_text(message, _OWN_COLUMNS)
                                  for message in messages] + [None, None]
    # some rows of the chunk only, in their order
    keep = np.array([1, 2, 5, len(messages) - 1, len(messages)])
    column = fields_column(Chunk(records, Vocabularies()), keep, message[keep], _OWN_COLUMNS)
    assert column.to_pylist() == [field_text(messages[i], _OWN_COLUMNS)
                                  for i in keep[:-1].tolist()] + [None]


def test_forms_mixed_in_one_chunk_keep_their_words_in_row_order() -> None:
    """Forms of words at different positions (numbers, names of numbers, payloads)
    interleaved: each row's words are its own form's."""
    messages: list[m.Message] = [
        m.AccessRightsResponse(cid=7, access_rights=3),
        m.SearchRequest(cid=1, payload=b"A:B\0\0\0\0\0"),
        m.ErrorResponse(cid=5, status=48, payload=bytes(16)),
        m.ClearChannelRequest(sid=2, cid=3),
        m.EventAddRequest(sid=4, subscriptionid=9, payload=bytes(12) + b"\0\x05\0\0"),
        m.AccessRightsResponse(cid=8, access_rights=1),
        m.VersionRequest(priority=1, version=13, sequence_number=2),
        m.CreateChanRequest(cid=11, payload=b"A:B\0\0\0\0\0"),
        m.ClearChannelRequest(sid=6, cid=1),
    ]
    records = [Record(RecordKind.MESSAGE, frame, 1.0, "10.0.0.1:40000", "10.0.0.2:5064",
                      "tcp", 1, Role.CLIENT, message)
               for frame, message in enumerate(messages, 1)]
    column = fields_column(Chunk(records, Vocabularies()), None,
                           np.ones(len(records), dtype=bool), _OWN_COLUMNS)
    # (ERROR's status is not its first field: it stays among them)
    assert column.to_pylist() == [field_text(message, _OWN_COLUMNS - {"status"}
                                             if type(message) in STATUS_AMONG_FIELDS
                                             else _OWN_COLUMNS) for message in messages]


def test_a_few_rows_with_words_among_many_without() -> None:
    """Rows with words few among many without (monitor updates: an empty string
    each), first, inside and last: each keeps its own words."""
    def update(i: int) -> m.Message:
        return m.EventAddResponse(data_type=6, data_count=1, status=1, subscriptionid=i,
                                  payload=bytes(8))
    worded = {0: m.CreateChanRequest(cid=1, payload=b"A:B\0"),
              17: m.SearchRequest(cid=2, payload=b"C\0\0\0"),
              39: m.ClearChannelRequest(sid=3, cid=4)}
    messages = [worded.get(i) or update(i) for i in range(40)]
    records = [Record(RecordKind.MESSAGE, frame, 1.0, "10.0.0.1:40000", "10.0.0.2:5064",
                      "tcp", 1, Role.CLIENT, message)
               for frame, message in enumerate(messages, 1)]
    column = fields_column(Chunk(records, Vocabularies()), None,
                           np.ones(len(records), dtype=bool), _OWN_COLUMNS)
    assert column.to_pylist() == [field_text(worded[i], _OWN_COLUMNS) if i in worded else ""
                                  for i in range(40)]

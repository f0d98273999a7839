"""The ``fields`` column: each message's other fields as ``name=value`` words, made a
form (message class) at a time.

Most fields are header fields, a number each: a form's words for them are made from
the chunk's header columns, each distinct number written once
(:func:`decoder.describe.header_field_text`) and gathered by Arrow. Only payload fields
(names, EVENT_ADD's mask, an ERROR's original request) are written message by message
(:func:`decoder.describe.payload_text`). The words are those of
:func:`decoder.describe.field_text`, in the same order: a test holds the two to it.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from decoder import messages as m
from decoder.describe import (
    HIDDEN_FIELDS,
    NAMED_FIELDS,
    STATUS_AMONG_FIELDS,
    header_field_text,
    payload_text,
)
from decoder.text import text_form
from shark.tables.chunk import FORMS, Chunk
from shark.tables.grouping import group

__all__ = ["fields_column"]

#: The chunk column of each header slot.
_SLOT_COLUMN = {"parameter1": "parameter1", "parameter2": "parameter2",
                "data_type": "data_type_number", "data_count": "data_count"}


def fields_column(chunk: Chunk, rows: np.ndarray, size: int,
                  hidden: frozenset[str]) -> pa.Array:
    """A string array of ``size`` entries: at position i the fields of chunk row
    ``rows[i]`` but ``hidden``, where ``rows[i] >= 0``; null elsewhere. ``rows`` rows
    must be messages (not gaps, not circuit ends); only those of forms with payload
    fields must be records. A status that is not its message's first field stays
    among them (:data:`decoder.describe.STATUS_AMONG_FIELDS`).

    Most rows are of forms without words (monitor updates: an empty string each), so
    the column is made from its buffers: the words of the other rows, in row order,
    and the offsets of every row (an empty string costs an offset, not a copy)."""
    valid = rows >= 0
    forms = np.where(valid, chunk.form[np.where(valid, rows, 0)], len(FORMS))
    worded = _worded(hidden)[forms]
    positions = np.flatnonzero(worded)
    pieces: list[pa.Array] = []
    order: list[np.ndarray] = []
    if len(positions):
        mine = rows[positions]
        kinds = forms[positions]
        for form in np.flatnonzero(np.bincount(kinds)).tolist():
            which = np.flatnonzero(kinds == form)
            cls = FORMS[form]
            pieces.append(_form_fields(chunk, cls, mine[which], _hidden(cls, hidden)))
            order.append(positions[which])
    lengths = np.zeros(size + 1, dtype=np.int64)
    if not pieces:
        data = pa.py_buffer(b"")
    else:
        where = np.concatenate(order)
        by_row = np.argsort(where, kind="stable")
        texts = pa.concat_arrays(pieces).take(pa.array(by_row))  # (string: its 32-bit
        # offsets read as they are, not cast to 64 bits first, the bytes copied again)
        where = where[by_row]
        if texts.null_count:  # (none expected: kept as nulls all the same)
            valid[where[texts.is_null().to_numpy(zero_copy_only=False)]] = False
        bounds = np.frombuffer(texts.buffers()[1], np.int32)[texts.offset:][:len(texts) + 1]
        lengths[where + 1] = np.diff(bounds)
        data = texts.buffers()[2]
        data = (pa.py_buffer(b"") if data is None
                else data[int(bounds[0]):int(bounds[-1])])
    return pa.LargeStringArray.from_buffers(
        size, pa.py_buffer(np.cumsum(lengths)), data,
        pa.py_buffer(np.packbits(valid, bitorder="little")), int(size - valid.sum()))


@cache
def _worded(hidden: frozenset[str]) -> np.ndarray:
    """Per form (then one for no message: False), whether its messages have words
    with fields ``hidden`` left out."""
    return np.array([isinstance(cls, type) and issubclass(cls, m.Message) and any(
        name not in _hidden(cls, hidden) for name in (*cls.FIELDS, *cls.PAYLOAD_FIELDS))
        for cls in FORMS] + [False])


#: Where EVENT_ADD's mask is in its payload (after three float32 deadbands).
_MASK_AT = 12


def _masks(records: object, rows: np.ndarray, lead: str) -> pa.Array:
    """``mask=...`` of EVENT_ADD requests (subscriptions: many in a busy capture), each
    distinct mask named once; a payload too short for it as the decoder says. ``lead``
    goes before each word that is not empty."""
    payloads = [bytes(records[row].message.payload[_MASK_AT:_MASK_AT + 2])
                for row in rows.tolist()]
    whole = np.array([len(p) == 2 for p in payloads])
    masks = np.frombuffer(b"".join(p if len(p) == 2 else b"\0\0" for p in payloads), ">u2")
    inverse, distinct, _ = group(masks.astype(np.int64))
    named = pa.array([f"{lead}mask={header_field_text('mask', n)}" for n in distinct.tolist()],
                     pa.string()).take(pa.array(inverse))
    if whole.all():
        return named
    short = np.flatnonzero(~whole)
    texts = [payload_text(records[int(rows[i])].message, HIDDEN_FIELDS) for i in short.tolist()]
    return pc.replace_with_mask(named, pa.array(~whole), pa.array(
        [lead + text if text else text for text in texts], pa.string()))


def _payload_words(records: object, rows: np.ndarray, form: type[m.Message],
                   hidden: Collection[str], lead: str) -> pa.Array:
    """The payload words of chunk rows ``rows`` (messages of class ``form``), written
    once per distinct payload: they are made of the payload alone, and a busy capture
    repeats them (the same names searched and connected again and again, the same
    server version in every search reply). ``lead`` goes before each word that is not
    empty."""
    payloads = pa.array([bytes(records[row].message.payload) for row in rows.tolist()],
                        pa.binary()).dictionary_encode()
    if form.PAYLOAD_FIELDS == ("name",):  # (names: CREATE_CHAN, SEARCH ...)
        # straight from the payload: its text up to the NUL, as field_text writes it
        words = [f"name={text_form(name)!r}" for name in (
            payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            for payload in payloads.dictionary.to_pylist())]
    else:
        _, first = np.unique(payloads.indices.to_numpy(), return_index=True)
        words = [payload_text(records[row].message, hidden) for row in rows[first].tolist()]
    return pa.array([lead + word if word else word for word in words],
                    pa.string()).take(payloads.indices)


def _hidden(form: type[m.Message], hidden: frozenset[str]) -> frozenset[str]:
    """The fields of ``form`` left out: ``hidden``, but a status that is not the
    message's first field; and a monitor update's subscription id, which its own
    column tells (a line shows it after the status: ``status=... subscriptionid=N``)."""
    if form in STATUS_AMONG_FIELDS:
        return hidden - {"status"}
    if form is m.EventAddResponse:
        return hidden | {"subscriptionid"}
    return hidden


def _form_fields(chunk: Chunk, form: type[m.Message], rows: np.ndarray,
                 hidden: Collection[str]) -> pa.Array:
    """The fields text of chunk rows ``rows``, all messages of class ``form``: its
    words and the spaces between them joined in one go (a join per word, then of the
    words, then of the header and the payload, cost three times that)."""
    pieces: list[pa.Array | str] = []  # joined with nothing between them
    for name, slot in form.FIELDS.items():
        if name in hidden:
            continue
        lead = " " if pieces else ""
        numbers = getattr(chunk, _SLOT_COLUMN[slot])[rows]
        if name not in NAMED_FIELDS:  # a number as it is
            pieces += [f"{lead}{name}=", pa.array(numbers).cast(pa.string())]
            continue
        inverse, distinct, _ = group(numbers)
        texts = pa.array([f"{lead}{name}={header_field_text(name, n)}"
                          for n in distinct.tolist()], pa.string())
        pieces.append(texts.take(pa.array(inverse)))
    if any(name not in hidden for name in form.PAYLOAD_FIELDS):
        lead = " " if pieces else ""
        records = chunk.records
        if form is m.EventAddRequest and hidden.issuperset(("low", "high", "to")) \
                and "mask" not in hidden:
            pieces.append(_masks(records, rows, lead))
        else:
            pieces.append(_payload_words(records, rows, form, hidden, lead))
    if not pieces:
        return pa.array(np.full(len(rows), ""), pa.string())
    if len(pieces) == 1:
        return pieces[0]
    return pc.binary_join_element_wise(*pieces, "")

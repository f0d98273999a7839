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
    among them (:data:`decoder.describe.STATUS_AMONG_FIELDS`)."""
    positions = np.flatnonzero(rows >= 0)
    pieces: list[pa.Array] = []
    order: list[np.ndarray] = []
    empty: list[np.ndarray] = []
    if len(positions):
        mine = rows[positions]
        forms = chunk.form[mine]
        inverse, distinct, _ = group(forms)
        for index, form in enumerate(distinct.tolist()):
            which = np.flatnonzero(inverse == index) if len(distinct) > 1 else slice(None)
            cls = FORMS[form]
            own = _hidden(cls, hidden)
            if not any(name not in own for name in (*cls.FIELDS, *cls.PAYLOAD_FIELDS)):
                empty.append(positions[which])  # (monitor updates: most rows, no words)
                continue
            pieces.append(_form_fields(chunk, cls, mine[which], own))
            order.append(positions[which])
    # One gather: the pieces joined, then a null and an empty string, indexed by where
    # each position's is.
    words = sum(map(len, pieces))
    source = np.full(size, words, dtype=np.int64)
    for where in empty:
        source[where] = words + 1
    offset = 0
    for where, piece in zip(order, pieces, strict=True):
        source[where] = np.arange(offset, offset + len(piece))
        offset += len(piece)
    joined = pa.concat_arrays([*pieces, pa.array([None, ""], pa.string())])
    return joined.take(pa.array(source))


#: Where EVENT_ADD's mask is in its payload (after three float32 deadbands).
_MASK_AT = 12


def _masks(records: object, rows: np.ndarray) -> pa.Array:
    """``mask=...`` of EVENT_ADD requests (subscriptions: many in a busy capture), each
    distinct mask named once; a payload too short for it as the decoder says."""
    payloads = [bytes(records[row].message.payload[_MASK_AT:_MASK_AT + 2])
                for row in rows.tolist()]
    whole = np.array([len(p) == 2 for p in payloads])
    masks = np.frombuffer(b"".join(p if len(p) == 2 else b"\0\0" for p in payloads), ">u2")
    inverse, distinct, _ = group(masks.astype(np.int64))
    named = pa.array([f"mask={header_field_text('mask', n)}" for n in distinct.tolist()],
                     pa.string()).take(pa.array(inverse))
    if whole.all():
        return named
    short = np.flatnonzero(~whole)
    return pc.replace_with_mask(named, pa.array(~whole), pa.array(
        [payload_text(records[int(rows[i])].message, HIDDEN_FIELDS) for i in short.tolist()],
        pa.string()))


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
    """The fields text of chunk rows ``rows``, all messages of class ``form``."""
    words: list[pa.Array] = []
    for name, slot in form.FIELDS.items():
        if name in hidden:
            continue
        numbers = getattr(chunk, _SLOT_COLUMN[slot])[rows]
        if name not in NAMED_FIELDS:  # a number as it is
            words.append(pc.binary_join_element_wise(f"{name}=", pa.array(numbers).cast(
                pa.string()), ""))
            continue
        inverse, distinct, _ = group(numbers)
        texts = pa.array([f"{name}={header_field_text(name, n)}" for n in distinct.tolist()],
                         pa.string())
        words.append(texts.take(pa.array(inverse)))
    header = (None if not words else words[0] if len(words) == 1
              else pc.binary_join_element_wise(*words, " "))
    if not any(name not in hidden for name in form.PAYLOAD_FIELDS):
        return pa.array(np.full(len(rows), ""), pa.string()) if header is None else header
    records = chunk.records
    if form is m.EventAddRequest and hidden.issuperset(("low", "high", "to")) \
            and "mask" not in hidden:
        payload = _masks(records, rows)
    elif form.PAYLOAD_FIELDS == ("name",) and "name" not in hidden:
        # Names (CREATE_CHAN, SEARCH ...: many in a busy capture) straight from the
        # payload: its text up to the NUL, written as field_text writes it.
        payload = pa.array([f"name={text_form(name)!r}" for name in (
            bytes(records[row].message.payload).split(b"\0", 1)[0].decode(
                "utf-8", "surrogateescape") for row in rows.tolist())], pa.string())
    else:
        payload = pa.array([payload_text(records[row].message, hidden)
                            for row in rows.tolist()], pa.string())
    if header is None:
        return payload
    # (an empty payload word, as of payload fields all hidden, adds no space)
    return pc.if_else(pc.equal(payload, ""), header,
                      pc.binary_join_element_wise(header, payload, " "))

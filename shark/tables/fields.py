"""The ``fields`` column: each message's other fields as ``name=value`` words, made a
word position at a time over every form (message class) of a chunk.

Most fields are header fields, a number each: their words are made from the chunk's
header columns, cast to text by Arrow, names of numbers written once per distinct
number (:func:`decoder.describe.header_field_text`). Only payload fields (names,
EVENT_ADD's mask, an ERROR's original request) are read message by message, and
written once per distinct payload (:func:`decoder.describe.payload_text`). The words
are those of :func:`decoder.describe.field_text`, in the same order: a test holds the
two to it.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from operator import attrgetter
from typing import NamedTuple

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
from shark.tables.grouping import found_in, group, ranges

__all__ = ["fields_column"]

def fields_column(chunk: Chunk, keep: np.ndarray | None, message: np.ndarray,
                  hidden: frozenset[str]) -> pa.Array:
    """A string array of ``len(message)`` entries: at position i the fields of chunk
    row ``keep[i]`` (``keep`` sorted; None: row i) but ``hidden``, where ``message[i]``
    (that row is a message, not a gap or a circuit end); null elsewhere. Only rows of
    forms with payload fields must be records. A status that is not its message's
    first field stays among them (:data:`decoder.describe.STATUS_AMONG_FIELDS`).

    Most rows are of forms without words (monitor updates: an empty string each), so
    the column is made from its buffers: the words of the other rows, in row order,
    and the offsets of every row (an empty string costs an offset, not a copy). The
    rows with words are found among the records (:meth:`Chunk.rows`), not by a look
    at every row."""
    size = len(message)
    rows = chunk.rows(_worded(hidden))
    if keep is None:
        positions = rows
    else:
        positions, inside = found_in(keep, rows)
        rows, positions = rows[inside], positions[inside]
    valid = message
    if not len(rows):
        data = pa.py_buffer(b"")
        offsets = np.zeros(size + 1, dtype=np.int64)
    else:
        texts = _texts(chunk, rows, hidden)
        if texts.null_count:  # (none expected: kept as nulls all the same)
            valid = valid.copy()
            valid[positions[texts.is_null().to_numpy(zero_copy_only=False)]] = False
        bounds = np.frombuffer(texts.buffers()[1], np.int32)[texts.offset:][:len(texts) + 1]
        offsets = _offsets(bounds, positions, size)
        data = texts.buffers()[2]
        data = (pa.py_buffer(b"") if data is None
                else data[int(bounds[0]):int(bounds[-1])])
    return pa.LargeStringArray.from_buffers(
        size, pa.py_buffer(offsets), data,
        pa.py_buffer(np.packbits(valid, bitorder="little")), int(size - valid.sum()))


def _offsets(bounds: np.ndarray, positions: np.ndarray, size: int) -> np.ndarray:
    """The offsets of ``size`` strings, empty but at ``positions`` (sorted), whose
    bytes ``bounds`` cut (int64, from 0). Where those are few (most chunks: monitor
    updates, and a row or two with words), each offset repeated over the empty rows
    after it (a repeat costs per run of rows about what a sum costs per row); else
    the rows' lengths summed."""
    if len(positions) * 4 < size:
        runs = np.diff(np.concatenate(([0], positions + 1, [size + 1])))
        return np.repeat((bounds - bounds[0]).astype(np.int64), runs)
    lengths = np.zeros(size + 1, dtype=np.int64)
    lengths[positions + 1] = np.diff(bounds)
    return np.cumsum(lengths)


@cache
def _worded(hidden: frozenset[str]) -> np.ndarray:
    """Per form (then one for no message: False), whether its messages have words
    with fields ``hidden`` left out."""
    return np.array([isinstance(cls, type) and issubclass(cls, m.Message) and any(
        name not in _hidden(cls, hidden) for name in (*cls.FIELDS, *cls.PAYLOAD_FIELDS))
        for cls in FORMS] + [False])


_PAYLOAD = attrgetter("payload")

#: Where EVENT_ADD's mask is in its payload (after three float32 deadbands).
_MASK_AT = 12


def _masks(messages: list[m.Message], lead: str) -> tuple[pa.Array, np.ndarray]:
    """``mask=...`` of EVENT_ADD requests (subscriptions: many in a busy capture), each
    distinct mask named once; a payload too short for it as the decoder says. ``lead``
    goes before each word that is not empty. The words, and which of them each is."""
    payloads = [bytes(message.payload[_MASK_AT:_MASK_AT + 2]) for message in messages]
    whole = np.array([len(p) == 2 for p in payloads])
    masks = np.frombuffer(b"".join(p if len(p) == 2 else b"\0\0" for p in payloads), ">u2")
    inverse, distinct, _ = group(masks.astype(np.int64))
    words = [f"{lead}mask={header_field_text('mask', n)}" for n in distinct.tolist()]
    if not whole.all():
        short = np.flatnonzero(~whole)
        inverse[short] = np.arange(len(words), len(words) + len(short))
        texts = [payload_text(messages[i], HIDDEN_FIELDS) for i in short.tolist()]
        words += [lead + text if text else text for text in texts]
    return pa.array(words, pa.string()), inverse


def _payload_words(messages: list[m.Message], form: type[m.Message],
                   hidden: Collection[str], lead: str) -> tuple[pa.Array, np.ndarray]:
    """The payload words of ``messages`` (of class ``form``), written once per distinct
    payload: they are made of the payload alone, and a busy capture repeats them (the
    same names searched and connected again and again, the same server version in
    every search reply). ``lead`` goes before each word that is not empty. The words,
    and which of them each message's is."""
    # (bytes or memoryviews, as the framer left them: Arrow takes either)
    payloads = pa.array(list(map(_PAYLOAD, messages)), pa.binary()).dictionary_encode()
    which = payloads.indices.to_numpy()
    if form.PAYLOAD_FIELDS == ("name",):  # (names: CREATE_CHAN, SEARCH ...)
        return _name_words(payloads.dictionary, lead), which
    else:
        _, first = np.unique(which, return_index=True)
        words = [payload_text(messages[i], hidden) for i in first.tolist()]
    return pa.array([lead + word if word else word for word in words], pa.string()), which


#: Bytes a name may hold for ``repr`` to be it between single quotes: printable ASCII
#: but the quote and the backslash (which it escapes).
_PLAIN = np.zeros(256, dtype=bool)
_PLAIN[0x20:0x7F] = True
_PLAIN[[ord("'"), ord("\\")]] = False


def _name_words(payloads: pa.BinaryArray, lead: str) -> pa.Array:
    """``name='...'`` of each payload (distinct ones: of CREATE_CHAN, SEARCH ...), after
    ``lead``: its text up to the NUL, as :func:`decoder.describe.field_text` writes
    it. A busy capture searches and connects thousands of names a chunk, most of them
    plain (printable ASCII, no quote, no backslash: ``repr`` puts them between single
    quotes as they are): their words are copied together from the payloads' bytes with
    numpy; the others (rare) are written one at a time."""
    n = len(payloads)
    offsets = np.frombuffer(payloads.buffers()[1], np.int32)[payloads.offset:][: n + 1]
    data = payloads.buffers()[2]
    raw = np.zeros(0, np.uint8) if data is None else np.frombuffer(data, np.uint8)
    starts, ends = offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)
    # each name ends at its payload's first byte that is not plain: if a NUL (or the
    # payload's end), the name is plain
    others = np.flatnonzero(~_PLAIN[raw[offsets[0]:offsets[-1]]]) + int(offsets[0])
    at = np.searchsorted(others, starts)
    first = np.minimum(np.append(others, ends[-1] if n else 0)[at], ends)
    plain = first == ends
    plain[~plain] = raw[first[~plain]] == 0
    lengths = (first - starts) * plain
    prefix = np.frombuffer(f"{lead}name='".encode(), np.uint8)
    sizes = len(prefix) + lengths + 1
    bounds = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=bounds[1:])
    words = np.empty(int(bounds[-1]), dtype=np.uint8)
    for k, byte in enumerate(prefix.tolist()):
        words[bounds[:-1] + k] = byte
    words[bounds[1:] - 1] = ord("'")
    words[ranges(bounds[:-1] + len(prefix), lengths)] = raw[ranges(starts, lengths)]
    texts = pa.StringArray.from_buffers(n, pa.py_buffer(bounds.astype(np.int32)),
                                        pa.py_buffer(words))
    if plain.all():
        return texts
    rest = np.flatnonzero(~plain)
    named = [f"{lead}name={text_form(name)!r}" for name in (
        payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        for payload in payloads.take(pa.array(rest)).to_pylist())]
    return pc.replace_with_mask(texts, pa.array(~plain), pa.array(named, pa.string()))


def _hidden(form: type[m.Message], hidden: frozenset[str]) -> frozenset[str]:
    """The fields of ``form`` left out: ``hidden``, but a status that is not the
    message's first field; and a monitor update's subscription id, which its own
    column tells (a line shows it after the status: ``status=... subscriptionid=N``)."""
    if form in STATUS_AMONG_FIELDS:
        return hidden - {"status"}
    if form is m.EventAddResponse:
        return hidden | {"subscriptionid"}
    return hidden


#: The header fields of the slots, by the index :class:`_Word` gives them.
_COLUMNS = ("parameter1", "parameter2", "data_type", "data_count")
_SLOT_INDEX = {"parameter1": 0, "parameter2": 1, "data_type": 2, "data_count": 3}


class _Word(NamedTuple):
    """A header field's word in a form's fields: ``prefix`` (a space but before the
    first, the name, ``=``) then the field's number, or its name
    (:func:`decoder.describe.header_field_text`) if ``named``."""

    prefix: str
    name: str
    slot: int
    named: bool


@cache
def _layout(form: type[m.Message], hidden: frozenset[str]
            ) -> tuple[tuple[_Word, ...], str | None]:
    """The header words of ``form``'s messages with fields ``hidden`` left out, and
    what goes before their payload words (None: they have none)."""
    shown = _hidden(form, hidden)
    words: list[_Word] = []
    for name, slot in form.FIELDS.items():
        if name not in shown:
            words.append(_Word(f"{' ' if words else ''}{name}=", name, _SLOT_INDEX[slot],
                               name in NAMED_FIELDS))
    if not any(name not in shown for name in form.PAYLOAD_FIELDS):
        return tuple(words), None
    return tuple(words), " " if words else ""


def _texts(chunk: Chunk, rows: np.ndarray, hidden: frozenset[str]) -> pa.Array:
    """The fields text of chunk rows ``rows`` (of forms with words), in their order.

    Made a word position at a time over every form (the first word of each row, then
    the second ...): per position, the prefixes (``cid=``, `` sid=`` ...) gathered from
    a few strings, and the numbers of the rows cast to text at once, names (status,
    access rights ...) written once per distinct number; then one join of them all and
    of the payload words. Some ten Arrow calls a chunk, not as many per form: a chunk
    of a busy capture holds a dozen forms with words, each some hundred rows."""
    forms = chunk.form[rows]
    present = np.flatnonzero(np.bincount(forms))
    local = np.zeros(int(present[-1]) + 1, dtype=np.intp)
    local[present] = np.arange(len(present))
    which = local[forms]  # (each row's form among those present)
    layouts = [_layout(FORMS[form], hidden) for form in present.tolist()]
    taken = pa.array(which)
    n = len(rows)
    numbers_of: dict[int, np.ndarray] = {}  # the rows' numbers, by slot
    pieces: list[pa.Array] = []
    for position in range(max(len(words) for words, _ in layouts)):
        entries = [words[position] if position < len(words) else None
                   for words, _ in layouts]
        pieces.append(pa.array(["" if e is None else e.prefix for e in entries],
                               pa.string()).take(taken))
        slots = {e.slot for e in entries if e is not None}
        for slot in slots - numbers_of.keys():
            numbers_of[slot] = chunk.header_of(_COLUMNS[slot], rows)
        if len(slots) == 1:
            numbers = numbers_of[next(iter(slots))]
        else:
            slot_of = np.array([-1 if e is None else e.slot for e in entries])[which]
            numbers = np.zeros(n, dtype=np.int64)
            for slot in slots:
                np.copyto(numbers, numbers_of[slot], where=slot_of == slot)
        texts = pa.array(numbers).cast(pa.string())
        if all(e is not None and not e.named for e in entries):
            pieces.append(texts)
            continue
        # the rows of forms without this word: an empty string (after the numbers);
        # named fields: their names, after that
        index = np.arange(n)
        index[np.array([e is None for e in entries])[which]] = n
        named: list[str] = []
        for k, e in enumerate(entries):
            if e is None or not e.named:
                continue
            mine = np.flatnonzero(which == k)
            inverse, distinct, _ = group(numbers[mine])
            index[mine] = n + 1 + len(named) + inverse
            named += [header_field_text(e.name, number) for number in distinct.tolist()]
        pieces.append(pa.concat_arrays([texts, pa.array(["", *named], pa.string())])
                      .take(pa.array(index)))
    payload = [(k, lead) for k, (_, lead) in enumerate(layouts) if lead is not None]
    if payload:
        arrays = [pa.array([""], pa.string())]  # (the rows of forms without any)
        index = np.zeros(n, dtype=np.int64)
        start = 1
        for k, lead in payload:
            mine = np.flatnonzero(which == k)
            form = FORMS[int(present[k])]
            messages = chunk.messages_of(rows[mine])
            if form is m.EventAddRequest and hidden.issuperset(("low", "high", "to")) \
                    and "mask" not in hidden:
                words, inverse = _masks(messages, lead)
            else:
                words, inverse = _payload_words(messages, form, _hidden(form, hidden), lead)
            index[mine] = start + inverse
            start += len(words)
            arrays.append(words)
        pieces.append(pa.concat_arrays(arrays).take(pa.array(index)))
    if len(pieces) == 1:
        return pieces[0]
    return pc.binary_join_element_wise(*pieces, "")

"""A batch of attributed records seen as columns, for the tables to build from.

Building a table one record at a time costs a Python call per record and per column;
here each column of a batch is pulled out in one list comprehension over the records
(the cheapest loop Python has) and worked on with numpy from there, and only when a
table asks for it: a table that needs no values never decodes one. Strings (endpoints,
PV names, command names ...) become int32 codes of :class:`Vocabulary` objects shared by
every table of a builder, so that a code means the same string in every chunk.

A record's *form* is its message class, or GAP, UNDECODED, OPEN or CLOSE for the records
that carry no message; per-form facts (command name, which header field holds the
status, whether the payload is a DBR value) are numpy arrays indexed by form.

A chunk may also hold :class:`shark.extract.bulk.UpdateBatch` items, a row per update each:
their columns come from the arrays of their runs, without a Python object per row
(``records[row]`` still gives a record for any row, made when asked).
"""

from __future__ import annotations

import enum
import math
import operator
import weakref
from collections.abc import Callable, Iterable
from functools import cached_property, partial
from itertools import compress, repeat
from typing import Any

import numpy as np
import pyarrow as pa

from decoder import Command, Role, dbr
from decoder import messages as m
from decoder.circuit import learned
from decoder.dbr import LAYOUTS, DBRType, dbr_name
from decoder.display import ENUM_TYPES, MAX_PRECISION, shown_with
from decoder.protocol import HEADER_SIZE
from decoder.status import alarm_severity_name, alarm_status_name, eca_name
from decoder.text import shown_text
from shark.extract.bulk import UPDATES, UpdateBatch
from shark.extract.record import CLOSE, ERROR, GAP, OPEN, Record, RecordKind
from shark.tables.display import (
    NUMBERS_KEPT,
    Asked,
    Written,
    fixed_texts,
    integer_texts,
    shortest_texts,
)
from shark.tables.grouping import found_in, group, ranges
from shark.tables.schema import NO_TIME, TIME_RANGE, seconds_to_ns
from shark.tables.values import InBuffer, Values, extract_values

__all__ = ["FORMS", "NOT_MESSAGE", "Chunk", "Vocabularies", "Vocabulary", "form_mask"]

#: Pseudo forms of the records that carry no message, by record kind, with the
#: command names ``Record.command_name`` gives them.
_KINDS = {GAP: "GAP", ERROR: "UNDECODED", OPEN: "OPEN", CLOSE: "CLOSE"}
#: Every form: the message classes, UnknownCommand, then one per record kind above.
FORMS: tuple[Any, ...] = (*m.ALL_MESSAGE_CLASSES, m.UnknownCommand, *_KINDS)
_UPDATE_FORM = FORMS.index(m.EventAddResponse)


class _Blank:
    """Stands for the missing message of a GAP, UNDECODED, OPEN or CLOSE record, so that
    the columns of message fields need no test per record."""

    __slots__ = ()
    payload = b""
    extended = False
    data_type = data_count = parameter1 = parameter2 = 0


_BLANK = _Blank()
_NO_MESSAGE = len(FORMS)  # the form of _Blank until the record kind says which
_FORM = {form: index for index, form in enumerate(FORMS)}
_FORM[_Blank] = _NO_MESSAGE
_SENDER = {None: -1, **{role: role.value for role in Role}}
_KIND = operator.attrgetter("kind")
_RUN = operator.attrgetter("run")

#: Command names in form order (UnknownCommand's depends on the message).
_FORM_COMMAND = [
    _KINDS[f] if isinstance(f, RecordKind)
    else "" if f is m.UnknownCommand else Command(f.command).name
    for f in FORMS
]
_STATUS_SLOT = {"parameter1": 1, "parameter2": 2}


def form_mask(predicate: Callable[[Any], bool]) -> np.ndarray:
    """A bool array over forms: which message classes (or record kinds) qualify."""
    return np.array([predicate(f) for f in FORMS] + [False])


def _is_class(form: Any, *classes: type) -> bool:
    return isinstance(form, type) and issubclass(form, classes)


#: The form of messages of commands CA does not define.
_IS_UNKNOWN = form_mask(lambda f: f is m.UnknownCommand)
#: Forms whose message has data_type and data_count fields (as ``shark read`` shows them).
HAS_DATA_TYPE = form_mask(lambda f: _is_class(f, m.Message) and "data_type" in f.FIELDS
                          and not issubclass(f, m._Obsolete))
#: Which header field carries an ECA status: 0 none, 1 parameter1, 2 parameter2.
STATUS_SLOT = np.array([_STATUS_SLOT.get(getattr(f, "FIELDS", {}).get("status"), 0)
                        for f in FORMS] + [0], dtype=np.int8)
#: Forms whose payload is a DBR value.
HAS_DATA = form_mask(lambda f: _is_class(f, m._DataPayload))
#: Forms that are not messages (GAP, UNDECODED, OPEN, CLOSE).
NOT_MESSAGE = form_mask(lambda f: isinstance(f, RecordKind))
#: Forms whose header carries an ECA status.
_HAS_STATUS = STATUS_SLOT > 0
#: The header field of each :data:`STATUS_SLOT`.
_STATUS_FIELD = (None, "parameter1", "parameter2")
_COMMAND_ID = np.array([getattr(f, "command", -1) if f is not m.UnknownCommand else -1
                        for f in FORMS] + [-1], dtype=np.int32)


#: Each header field of a list of messages, read by a list comprehension (the
#: cheapest loop Python has: a little quicker than ``map`` with an ``attrgetter``).
_HEADER_READS: dict[str, Callable[[list[Any]], list[int]]] = {
    "data_type": lambda messages: [x.data_type for x in messages],
    "data_count": lambda messages: [x.data_count for x in messages],
    "parameter1": lambda messages: [x.parameter1 for x in messages],
    "parameter2": lambda messages: [x.parameter2 for x in messages],
}
#: The numpy type of each header field: its width on the wire (data_count: in the
#: extended header), as :class:`shark.extract.bulk.Run` keeps it.
_HEADER_TYPES = {"data_type": np.uint16, "data_count": np.uint32, "parameter1": np.uint32,
                 "parameter2": np.uint32}
#: The chunk column of each header field.
_HEADER_COLUMNS = {"data_type": "data_type_number", "data_count": "data_count",
                   "parameter1": "parameter1", "parameter2": "parameter2"}


#: Numbers below this are named through a lookup table (:meth:`Vocabulary.codes`).
_SMALL = 1 << 16


class Vocabulary:
    """Strings to int32 codes in order of first appearance; None is -1."""

    def __init__(self, initial: Iterable[str] = ()) -> None:
        #: Code by string.
        self.index: dict[str | None, int] = {None: -1}
        #: The strings, by code.
        self.values: list[str] = []
        for text in initial:
            self.code(text)
        #: The codes of small numbers by one naming function, -2 for those not named yet
        #: (:meth:`codes`), with the function.
        self._small: tuple[Callable[[int], str] | None, np.ndarray] = (
            None, np.empty(0, dtype=np.int32))

    def code(self, text: str | None) -> int:
        code = self.index.get(text)
        if code is None:
            code = self.index[text] = len(self.values)
            self.values.append(text)
        return code

    def encode(self, texts: list[str | None]) -> np.ndarray:
        """The codes of ``texts`` (int32): dict lookups by ``map``, a loop in C, straight
        into the array, once every string is in the vocabulary."""
        lookup = self.index.__getitem__
        try:
            return np.fromiter(map(lookup, texts), np.int32, len(texts))
        except KeyError:  # new strings: add them, then again
            for text in dict.fromkeys(texts):
                self.code(text)
            return np.fromiter(map(lookup, texts), np.int32, len(texts))

    def codes(self, numbers: np.ndarray, name: Callable[[int], str],
              where: np.ndarray | None = None) -> np.ndarray:
        """Codes for an array of numbers named by ``name`` (each distinct number is
        named once), -1 where ``where`` (None: everywhere) is False."""
        if len(numbers) and 0 <= numbers.min() and (top := int(numbers.max())) < _SMALL:
            # Small numbers (DBR types, statuses ...): a lookup table, no hashing, kept
            # from call to call (a number is named once, when first met). Looked up for
            # every row, those not ``where`` too (no gather of the others, no scatter
            # back): only those ``where`` are named.
            named, table = self._small
            if named is not name or len(table) <= top:
                grown = np.full(top + 1, -2, dtype=np.int32)
                if named is name:
                    grown[: len(table)] = table
                table = grown
                self._small = (name, table)
            codes = table.take(numbers)  # (not table[numbers]: three times as long
            # for int32 numbers, the values' alarms)
            new = codes == -2
            if where is not None:
                new &= where
            if new.any():
                fresh = np.flatnonzero(np.bincount(numbers[new]))
                table[fresh] = [self.code(name(n)) for n in fresh.tolist()]
                codes = table.take(numbers)
            if where is not None:  # -1 elsewhere: all bits set, by an OR with 0 or -1
                # (a select, or a masked write, costs ten times as much where the rows
                # left out are scattered)
                codes |= where.view(np.int8) - np.int8(1)
            return codes
        if where is not None:
            codes = np.full(len(numbers), -1, dtype=np.int32)
            codes[where] = self.codes(numbers[where], name)
            return codes
        inverse, distinct, _ = group(numbers)
        return np.array([self.code(name(n)) for n in distinct.tolist()],
                        dtype=np.int32)[inverse]


class Vocabularies:
    """The vocabularies of one builder's categorical columns (and what its chunks keep
    from one to the next: ``numbers_kept``, the texts of numbers the ``display`` column
    wrote, :class:`shark.tables.display.Written`)."""

    def __init__(self, numbers_kept: int = NUMBERS_KEPT) -> None:
        self.endpoints = Vocabulary()
        self.pvs = Vocabulary()
        self.commands = Vocabulary(dict.fromkeys(n for n in _FORM_COMMAND if n))
        self.senders = Vocabulary(role.name.lower() for role in Role)
        self.transports = Vocabulary(("tcp", "udp"))
        self.protocols = Vocabulary(("ca",))
        self.data_types = Vocabulary()
        self.statuses = Vocabulary()
        self.severities = Vocabulary()
        self.alarm_statuses = Vocabulary()
        #: Command name code by form.
        self.form_command = np.array(
            [self.commands.code(n) if n else -1 for n in _FORM_COMMAND] + [-1], dtype=np.int32)
        #: The texts of numbers the ``display`` column wrote (:attr:`Chunk.display`).
        self.written = Written(numbers_kept)
        #: PV codes of the subscriptions of runs still in use (:meth:`run_pvs`).
        self._run_pvs: weakref.WeakKeyDictionary[Any, np.ndarray] = weakref.WeakKeyDictionary()
        #: The same, by the list of subscriptions some run had (:attr:`alike_readings`).
        self._alike_pvs: dict[_Key, tuple[list[Any], np.ndarray]] = {}
        #: Per list of subscriptions some run had (:func:`_alike`), the latest: with the
        #: subscriptions (alive while kept, so that their ids name them), what
        #: :func:`_run_readings` worked out for it. A session's runs come and go, but
        #: those of one circuit meet the same subscriptions in the same order again and
        #: again. Kept by the builder's vocabularies, not the module: a capture's
        #: subscriptions (and the channels they hold) go with its tables.
        self.alike_readings: dict[_Key, tuple[list[Any], _RunReadings]] = {}

    def run_pvs(self, run: Any) -> np.ndarray:
        """The PV name code of each subscription of a :class:`shark.extract.bulk.Run` (by its
        channel), then -1 (for ``run.subscription``'s -1): worked out once per
        subscription the run met, as the session adds them; for a run met first, from
        those of the latest run with the same subscriptions."""
        codes = self._run_pvs.get(run)
        subscriptions = run.subscriptions
        if codes is None:  # a run met first: like one before it, maybe
            key, alike = _alike(self._alike_pvs, subscriptions)
            codes = np.full(1, -1, dtype=np.int32) if alike is None else alike[1]
        else:
            key = None
        if len(codes) <= len(subscriptions):
            names = _of_channels(subscriptions[len(codes) - 1:], "name", None)
            codes = np.concatenate((codes[:-1], self.pvs.encode(names), codes[-1:]))
        self._run_pvs[run] = codes
        if key is not None:
            _keep(self._alike_pvs, key, (list(subscriptions), codes))
        return codes


def _frames(run: Any) -> np.ndarray:
    return np.array(run.frames, dtype=np.int64)


def _times(run: Any) -> np.ndarray:
    return np.array(run.times, dtype=np.float64)


def _times_ns(run: Any) -> np.ndarray:
    return seconds_to_ns(_times(run))


def _wire_sizes(run: Any, span: slice) -> np.ndarray:
    """Bytes on the wire of a run's messages ``span``: header and payload (one pass
    where none has the extended header: every header is then as long)."""
    if not run.extended[span].any():
        return run.sizes[span] + HEADER_SIZE
    return run.bodies[span] - run.starts[span] + run.sizes[span]


#: Update rows a batch has on average, at least, for a column to be made of copies of
#: the batches (each costs a slice, a microsecond or so: a gather of a thousand rows).
_STRETCH_ROWS = 256

_NEVER = np.iinfo(np.int64).max
#: A list of subscriptions as a key (:func:`_subscriptions_key`).
_Key = tuple[int, int, int]
#: The readings of a subscription without a channel: none, ever.
_NO_READINGS: list[Any] = []


class _RunReadings:
    """What :func:`_run_readings` worked out for one run, and from what: the
    ``readings`` list of each subscription's channel (a list the channel only ever
    appends to), and how long each was."""

    __slots__ = ("clock", "lists", "lengths", "present", "began", "distinct")

    def __init__(self) -> None:
        self.clock = -1
        self.lists: list[list[Any]] = []
        self.lengths = np.zeros(0, dtype=np.int64)
        self.present = np.full(1, -1, dtype=np.int64)
        self.began = np.full(1, _NEVER, dtype=np.int64)
        self.distinct: dict[Any, int] = {}

    def copy(self, count: int) -> _RunReadings:
        """A copy for a run with the first ``count`` of these subscriptions (all of
        them, or fewer where this one's run met more since)."""
        twin = _RunReadings()
        twin.clock, twin.lists, twin.lengths = self.clock, self.lists[:count], self.lengths
        twin.present, twin.began, twin.distinct = self.present, self.began, dict(self.distinct)
        if len(self.lengths) > count:
            twin.lengths = self.lengths[:count]
            twin.present = np.append(self.present[:count], -1)
            twin.began = np.append(self.began[:count], _NEVER)
        return twin


#: Per run still in use.
_RUN_READINGS: weakref.WeakKeyDictionary[Any, _RunReadings] = weakref.WeakKeyDictionary()
#: Lists of subscriptions kept by :attr:`Vocabularies.alike_readings`, at most (the
#: oldest dropped first).
_ALIKE_KEPT = 64


def _run_readings(run: Any, alike_readings: dict[_Key, tuple[list[Any], _RunReadings]]
                  ) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """What the channels of a :class:`shark.extract.bulk.Run`'s subscriptions read now:
    per subscription (then one for ``run.subscription``'s -1), which of the distinct
    readings (the list; maybe some no channel reads now) its channel's present reading
    is (-1 for none), and the :func:`decoder.circuit.learned` count at which that began.

    Kept while no channel learns anything (the count stays) and the run meets no more
    subscriptions; else worked out again for the channels whose readings grew only,
    told by the lengths of their lists (found, and measured, by ``map``: a loop in C,
    over the thousands of subscriptions a run meets). A run met first starts from what
    the last run met with the same subscriptions has now (``alike_readings``:
    :attr:`Vocabularies.alike_readings`, which keeps that run's own, as it is brought
    up to date: a run of the same circuit, met a chunk before, most often, and what its
    channels learnt since then only is worked out again)."""
    clock, subscriptions = learned(), run.subscriptions
    count = len(subscriptions)
    known = _RUN_READINGS.get(run)
    if known is None:  # a run met first: like one before it, maybe
        key, alike = _alike(alike_readings, subscriptions)
        known = _RUN_READINGS[run] = _RunReadings() if alike is None else alike[1].copy(count)
        if known.clock != clock or len(known.lists) != count:
            _readings_now(known, clock, subscriptions)
        _keep(alike_readings, key, (list(subscriptions), known))
    elif known.clock != clock or len(known.lists) != count:
        _readings_now(known, clock, subscriptions)
    return known.present, known.began, list(known.distinct)


def _readings_now(known: _RunReadings, clock: int, subscriptions: list[Any]) -> None:
    """Bring ``known`` up to what the channels of ``subscriptions`` read now."""
    count = len(subscriptions)
    present, began = known.present, known.began
    if len(known.lists) < count:  # subscriptions met since: none read yet
        known.lists += _of_channels(subscriptions[len(known.lists):], "readings",
                                    _NO_READINGS)
        more = count - len(known.lengths)
        known.lengths = np.concatenate((known.lengths, np.zeros(more, dtype=np.int64)))
        present = np.concatenate((present[:-1], np.full(more + 1, -1, dtype=np.int64)))
        began = np.concatenate((began[:-1], np.full(more + 1, _NEVER, dtype=np.int64)))
    lengths = np.fromiter(map(len, known.lists), np.int64, count)
    grew = np.flatnonzero(lengths != known.lengths)
    if len(grew):  # (each channel's reading its own object: told apart by value)
        present, began = present.copy(), began.copy()  # (as given before: kept as they were)
        distinct, lists = known.distinct, known.lists
        for k in grew.tolist():
            began[k], reading = lists[k][-1]
            present[k] = distinct.setdefault(reading, len(distinct))
    known.clock, known.lengths, known.present, known.began = clock, lengths, present, began


def _subscriptions_key(subscriptions: list[Any]) -> _Key:
    """A list of subscriptions as a key, made without a look at each: its length and
    the ids of its ends (lists alike in those are told apart by :func:`_alike`)."""
    if not subscriptions:
        return (0, 0, 0)
    return (len(subscriptions), id(subscriptions[0]), id(subscriptions[-1]))


def _alike(cache: dict[_Key, tuple[list[Any], Any]], subscriptions: list[Any]
           ) -> tuple[_Key, tuple[list[Any], Any] | None]:
    """The key of a list of subscriptions, and what a cache of such lists keeps for
    the same subscriptions, in the same order (None if nothing): the list kept with it
    compared to them, by a loop in C (a subscription equals itself only: it has no
    ``__eq__``; the list kept holds them alive, so that no other object takes an id of
    a key)."""
    key = _subscriptions_key(subscriptions)
    kept = cache.get(key)
    if kept is not None and kept[0] != subscriptions:
        kept = None
    return key, kept


def _keep(cache: dict[_Key, Any], key: _Key, value: Any) -> None:
    """Keep ``value`` by ``key`` in a cache of lists of subscriptions, dropping the
    oldest past :data:`_ALIKE_KEPT`."""
    cache.pop(key, None)
    if len(cache) >= _ALIKE_KEPT:
        del cache[next(iter(cache))]
    cache[key] = value


def _of_channels(subscriptions: list[Any], attribute: str, none: Any) -> list[Any]:
    """An attribute of each subscription's channel (``none`` for a subscription, or a
    channel, that is None): by ``map``, a loop in C, over the thousands a run meets."""
    try:
        return list(map(operator.attrgetter(f"channel.{attribute}"), subscriptions))
    except AttributeError:  # (a subscription, or its channel, is None)
        return [none if s is None or s.channel is None else getattr(s.channel, attribute)
                for s in subscriptions]


class _Rows:
    """The record of each row of a chunk with update batches (made when asked)."""

    def __init__(self, items: list[Record | UpdateBatch], first_rows: np.ndarray,
                 records: list[Record], record_rows: np.ndarray) -> None:
        self.items = items
        self.first_rows = first_rows
        self._given = (records, record_rows)
        self._made: dict[int, list[Record]] = {}

    @cached_property
    def _records(self) -> dict[int, Record]:
        """The rows that are records (most of those asked for), by row: made when a
        row is first asked for (few chunks have any asked)."""
        records, record_rows = self._given
        return dict(zip(record_rows.tolist(), records, strict=True))

    def __getitem__(self, row: int) -> Record:
        record = self._records.get(row)
        if record is not None:
            return record
        index = int(np.searchsorted(self.first_rows, row, "right")) - 1
        item = self.items[index]
        made = self._made.get(index)
        if made is None:
            made = self._made[index] = item.records()
        return made[row - int(self.first_rows[index])]


class Chunk:
    """Records (and update batches) as columns. Every column is computed on first use,
    then kept.

    Arrays have one entry per row unless they say otherwise; ``rows`` arguments and
    results are index arrays into the chunk.
    """

    def __init__(self, items: list[Record | UpdateBatch], vocabularies: Vocabularies) -> None:
        self.vocabularies = vocabularies
        # (the batches found by loops in C: a chunk holds tens of thousands of records)
        batch_items = list(compress(range(len(items)), map(operator.is_, map(_KIND, items),
                                                            repeat(UPDATES))))
        #: The records (not the batches), and the rows they are.
        self._records: list[Record] = items
        self._batches: list[UpdateBatch] = []
        #: Per run: the rows of its messages here, and their indexes in the run.
        self._gathers: list[tuple[Any, np.ndarray, np.ndarray]] = []
        #: Per run: the messages of it that rows here are, from first to last.
        self._spans: list[tuple[Any, slice]] = []
        #: Per run: which of the batches are of it (indexes, or a slice).
        self._run_batches: list[np.ndarray | slice] = []
        #: Per batch: its first message in its run, and how many it has.
        self._batch_starts = self._batch_lengths = np.zeros(0, dtype=np.int64)
        #: The header fields of the records' messages read so far, by field.
        self._record_headers: dict[str, np.ndarray] = {}
        if not batch_items:
            self.records: Any = items
            self.size = len(items)
            self._record_rows: np.ndarray | None = None
            return
        self._batches = [items[i] for i in batch_items]
        # The records: the stretches between batches, a slice each.
        records: list[Record] = []
        previous = 0
        for i in batch_items:
            records += items[previous:i]
            previous = i + 1
        records += items[previous:]
        self._records = records
        self._batch_items = np.array(batch_items, dtype=np.intp)
        is_batch = np.zeros(len(items), dtype=bool)
        is_batch[self._batch_items] = True
        self._record_items = np.flatnonzero(~is_batch)
        #: Rows per item: 1 per record, a row per message of a batch.
        lengths = self._item_lengths = np.ones(len(items), dtype=np.int64)
        batch_lengths = self._batch_lengths = np.fromiter(
            [b.stop - b.start for b in self._batches], np.int64, len(self._batches))
        lengths[self._batch_items] = batch_lengths
        first_rows = np.cumsum(lengths) - lengths
        self.size = int(first_rows[-1] + lengths[-1])
        self._record_rows = first_rows[self._record_items]
        self.records = _Rows(items, first_rows, self._records, self._record_rows)
        batch_rows = first_rows[self._batch_items]
        # The batches by run (runs in order of first batch): a dict of a few runs.
        run_of: dict[int, int] = {}
        first_batches: list[int] = []
        for index, batch in enumerate(self._batches):
            if run_of.setdefault(id(batch.run), len(run_of)) == len(first_batches):
                first_batches.append(index)
        inverse = np.fromiter(map(run_of.__getitem__, map(id, map(_RUN, self._batches))),
                              np.intp, len(self._batches))
        first = np.array(first_batches, dtype=np.intp)
        starts = self._batch_starts = np.fromiter([b.start for b in self._batches], np.int64,
                                                  len(self._batches))
        for index, row in enumerate(first.tolist()):
            which = np.flatnonzero(inverse == index) if len(first) > 1 else slice(None)
            run = self._batches[row].run
            rows = ranges(batch_rows[which], batch_lengths[which])
            indexes = ranges(starts[which], batch_lengths[which])
            self._gathers.append((run, rows, indexes))
            self._run_batches.append(which)
            low = int(starts[which].min())
            high = int((starts[which] + batch_lengths[which]).max())
            self._spans.append((run, slice(low, high)))
        #: Where few batches hold the updates (long ones), each batch's rows and where
        #: they begin in its run's span: (run, first row, row past the last, start).
        self._stretches: list[tuple[int, int, int, int]] | None = None
        if len(self._batches) * _STRETCH_ROWS <= int(batch_lengths.sum()):
            lows = np.array([span.start for _, span in self._spans], dtype=np.int64)
            self._stretches = list(zip(inverse.tolist(), batch_rows.tolist(),
                                       (batch_rows + batch_lengths).tolist(),
                                       (starts - lows[inverse]).tolist(), strict=True))

    @cached_property
    def _source(self) -> np.ndarray:
        """Where each row's value is in the records' values followed by the runs'
        spans (:meth:`_column`, where the batches are many)."""
        source = np.empty(self.size, dtype=np.int64)
        source[self._record_rows] = np.arange(len(self._records))
        offset = len(self._records)
        for (_, rows, indexes), (_, span) in zip(self._gathers, self._spans, strict=True):
            source[rows] = indexes + (offset - span.start)
            offset += span.stop - span.start
        return source

    @property
    def runs(self) -> list[tuple[Any, np.ndarray, np.ndarray]]:
        """Per run of the update batches (:class:`shark.extract.bulk.Run`): the run, the
        rows here that are its messages, and their indexes in it."""
        return self._gathers

    @cached_property
    def is_record(self) -> np.ndarray:
        """Which rows are records (the others: monitor updates of a batch)."""
        if self._record_rows is None:
            return np.ones(self.size, dtype=bool)
        mine = np.zeros(self.size, dtype=bool)
        mine[self._record_rows] = True
        return mine

    def _column(self, records: np.ndarray, per_batch: list | np.ndarray | None = None,
                run_field: Callable[[Any, slice], np.ndarray] | None = None,
                fill: Any = None) -> np.ndarray:
        """A column from its values for the records, and for the update rows: a value
        per batch, ``run_field(run, span)`` (the values of a run's messages ``span``),
        or one value for all."""
        if self._record_rows is None:
            return records
        if per_batch is not None:  # a value per item, repeated over its rows
            per_item = np.empty(len(self._item_lengths), dtype=records.dtype)
            per_item[self._record_items] = records
            per_item[self._batch_items] = per_batch
            return per_item.repeat(self._item_lengths)
        if run_field is None:
            out = np.full(self.size, fill, dtype=records.dtype)
            out[self._record_rows] = records
            return out
        spans = [run_field(run, span) for run, span in self._spans]
        if self._stretches is not None:  # long batches: a copy of each
            out = np.empty(self.size, dtype=records.dtype)
            out[self._record_rows] = records
            for run, start, stop, first in self._stretches:
                out[start:stop] = spans[run][first : first + stop - start]
            return out
        # One gather from the values joined, not a gather and a scatter per run.
        return np.concatenate([records, *spans], dtype=records.dtype,
                              casting="same_kind")[self._source]

    def _record_index(self, rows: np.ndarray) -> list[int]:
        """Which of the records (``_records``) rows that are records are."""
        if self._record_rows is None:
            return rows.tolist()
        return np.searchsorted(self._record_rows, rows).tolist()

    @property
    def record_list(self) -> list[Record]:
        """Its records, without its batches of updates, in order."""
        return self._records

    def records_of(self, rows: np.ndarray) -> list[Record]:
        """The records of ``rows`` (those of update rows made): for a few rows, without
        the table of every record by row that ``records[row]`` makes first."""
        records = self._records
        if self._record_rows is None:
            return [records[i] for i in rows.tolist()]
        index, found = found_in(self._record_rows, rows)
        return [records[i] if ok else self.records[row] for i, ok, row in zip(
            index.tolist(), found.tolist(), rows.tolist(), strict=True)]

    def messages_of(self, rows: np.ndarray) -> list[m.Message | _Blank]:
        """The messages of ``rows`` (rows that are records)."""
        messages = self.messages
        return [messages[i] for i in self._record_index(rows)]

    @cached_property
    def messages(self) -> list[m.Message | _Blank]:
        """The records' messages, a blank with zero header fields and no payload for
        records that carry none (one per record, not per row)."""
        return [r.message or _BLANK for r in self._records]

    @cached_property
    def _record_forms(self) -> np.ndarray:
        """The records' forms (pointer-sized: per-form facts are looked up with them,
        and numpy indexes fastest with such an index)."""
        messages = self.messages  # (the lookups by map, a loop in C)
        forms = np.fromiter(map(_FORM.__getitem__, map(type, messages)), np.intp,
                            len(messages))
        form = _FORM
        for row in np.flatnonzero(forms == _NO_MESSAGE):
            forms[row] = form[self._records[row].kind]
        return forms

    @cached_property
    def form(self) -> np.ndarray:
        """Index into :data:`FORMS`."""
        return self._column(self._record_forms, fill=_UPDATE_FORM)

    def of_form(self, facts: np.ndarray) -> np.ndarray:
        """A per-form fact (an array indexed by form: :func:`form_mask` ...) for every
        row: looked up for the records only, the update rows' is one value."""
        return self._column(facts[self._record_forms], fill=facts[_UPDATE_FORM])

    def rows(self, mask: np.ndarray) -> np.ndarray:
        """Rows whose form is set in a :func:`form_mask`."""
        if self._record_rows is not None and not mask[_UPDATE_FORM]:
            return self._record_rows[mask[self._record_forms]]
        return np.flatnonzero(self.of_form(mask))

    @cached_property
    def frame(self) -> np.ndarray:
        records = self._records
        return self._column(np.fromiter([r.frame for r in records], np.int64, len(records)),
                            run_field=lambda run, span: run.per_message("frame", _frames)[span])

    @cached_property
    def time(self) -> np.ndarray:
        """Unix seconds (float64)."""
        records = self._records
        return self._column(np.fromiter([r.time for r in records], np.float64, len(records)),
                            run_field=lambda run, span: run.per_message("time", _times)[span])

    @cached_property
    def time_ns(self) -> np.ndarray:
        """Unix nanoseconds (int64), converted once per record and packet."""
        records = self._records
        return self._column(
            seconds_to_ns(np.fromiter([r.time for r in records], np.float64, len(records))),
            run_field=lambda run, span: run.per_message("time_ns", _times_ns)[span])

    @cached_property
    def times_outside(self) -> int:
        """Rows whose capture time a time column cannot hold (:data:`TIME_RANGE`),
        counted from whichever time column is made already."""
        if "time_ns" in self.__dict__:
            return int(np.count_nonzero(self.time_ns == NO_TIME))
        low, high = TIME_RANGE
        time = self.time
        return len(time) - int(np.count_nonzero((time >= low) & (time <= high)))

    def time_of(self, row: int) -> float:
        """The capture time of one row, without the whole column."""
        if self._record_rows is None:
            return self._records[row].time
        rows = self.records
        index = int(np.searchsorted(rows.first_rows, row, "right")) - 1
        item = rows.items[index]
        if item.kind is not UPDATES:
            return item.time
        run = item.run
        return run.times[int(run.packet()[item.start + row - int(rows.first_rows[index])])]

    def _endpoints(self, attribute: str) -> np.ndarray:
        endpoints = self.vocabularies.endpoints
        get = operator.attrgetter(attribute)
        return self._column(endpoints.encode(list(map(get, self._records))),
                            endpoints.encode(list(map(get, self._batches))))

    @cached_property
    def src(self) -> np.ndarray:
        """Source endpoint codes (``vocabularies.endpoints``)."""
        return self._endpoints("src")

    @cached_property
    def dst(self) -> np.ndarray:
        return self._endpoints("dst")

    @cached_property
    def pv(self) -> np.ndarray:
        """PV name codes (``vocabularies.pvs``), -1 where unknown."""
        return self._column(
            self.vocabularies.pvs.encode([r.pv for r in self._records]),
            # (a take: a third of the time of an index of int32 subscriptions)
            run_field=lambda run, span: self.vocabularies.run_pvs(run).take(
                run.subscription[span]))

    @cached_property
    def subscription_ids(self) -> np.ndarray:
        """id() of each row's subscription object (that of None where none)."""
        records = self._records
        return self._column(
            np.fromiter([id(r.subscription) for r in records], np.int64, len(records)),
            run_field=lambda run, span: np.fromiter(map(id, run.subscriptions), np.int64,
                                                    len(run.subscriptions))[run.subscription[span]])

    @cached_property
    def circuit(self) -> np.ndarray:
        """Circuit numbers, 0 for UDP (circuits are numbered from 1)."""
        records = self._records
        return self._column(
            np.fromiter([r.circuit or 0 for r in records], np.int64, len(records)),
            [b.circuit for b in self._batches])

    @cached_property
    def transport(self) -> np.ndarray:
        """Transport codes: UDP records are the ones without a circuit."""
        codes = self.vocabularies.transports.index
        return np.where(self.circuit == 0, np.int32(codes["udp"]), np.int32(codes["tcp"]))

    @cached_property
    def sender(self) -> np.ndarray:
        """Sender codes (``vocabularies.senders``, in :class:`decoder.Role` order), -1
        where unknown."""
        senders = _SENDER
        records = self._records
        return self._column(
            np.fromiter([senders[r.sender] for r in records], np.int32, len(records)),
            fill=Role.SERVER.value)

    @cached_property
    def command(self) -> np.ndarray:
        """Command name codes (``vocabularies.commands``)."""
        commands = self.of_form(self.vocabularies.form_command)
        rows = self.rows(_IS_UNKNOWN)
        for row, i in zip(rows.tolist(), self._record_index(rows), strict=True):
            commands[row] = self.vocabularies.commands.code(self.messages[i].command_name)
        return commands

    @cached_property
    def command_id(self) -> np.ndarray:
        """The CA command id, -1 for records that are not messages."""
        ids = self.of_form(_COMMAND_ID)
        rows = self.rows(_IS_UNKNOWN)
        for row, i in zip(rows.tolist(), self._record_index(rows), strict=True):
            ids[row] = self.messages[i].command
        return ids

    @cached_property
    def size_bytes(self) -> np.ndarray:
        """Bytes on the wire (messages), missing (GAP) or undecodable (UNDECODED)."""
        messages = self.messages
        sizes = self._column(
            np.fromiter([len(x.payload) + (24 if x.extended else 16) for x in messages],
                        np.int64, len(messages)),
            run_field=_wire_sizes)
        rows = self.rows(NOT_MESSAGE)
        for row, i in zip(rows.tolist(), self._record_index(rows), strict=True):
            sizes[row] = self._records[i].size
        return sizes

    @cached_property
    def latency(self) -> np.ndarray:
        """Seconds since the request a response answers; NaN where none."""
        nan = math.nan
        latencies = [r.latency for r in self._records]
        return self._column(np.fromiter([nan if v is None else v for v in latencies],
                                        np.float64, len(latencies)), fill=nan)

    @cached_property
    def request_frame(self) -> np.ndarray:
        """Frame of the request a response answers, 0 where none."""
        frames = [0 if r.request is None else r.request.frame for r in self._records]
        return self._column(np.fromiter(frames, np.int64, len(frames)), fill=0)

    @cached_property
    def anomalies(self) -> dict[int, str]:
        """``kind: detail`` of the protocol anomalies seen, by row."""
        anomalies = [r.anomaly for r in self._records]
        if anomalies.count(None) == len(anomalies):  # (as good as always: a loop in C)
            return {}
        rows = (range(self.size) if self._record_rows is None
                else self._record_rows.tolist())
        return {row: f"{r.anomaly.kind}: {r.anomaly.detail}"
                for row, r in zip(rows, self._records, strict=True) if r.anomaly is not None}

    @cached_property
    def data_count(self) -> np.ndarray:
        """The data_count header field (0 for records that are not messages)."""
        return self._header("data_count")

    @cached_property
    def data_type_number(self) -> np.ndarray:
        """The data_type header field (0 for records that are not messages)."""
        return self._header("data_type")

    @cached_property
    def parameter1(self) -> np.ndarray:
        """The parameter1 header field (0 for records that are not messages)."""
        return self._header("parameter1")

    @cached_property
    def parameter2(self) -> np.ndarray:
        """The parameter2 header field (0 for records that are not messages)."""
        return self._header("parameter2")

    def _header(self, field: str) -> np.ndarray:
        """A header field of every message (0 for records that are not messages), as
        narrow as the field is on the wire (as a run keeps it: its arrays are copied as
        they are, a quarter or half the bytes of int64)."""
        get = operator.attrgetter(field)
        return self._column(self._record_header(field),
                            run_field=lambda run, span: get(run)[span])

    def _record_header(self, field: str) -> np.ndarray:
        """A header field of the records' messages (0 for records that are not
        messages), by record: read once, for the column and for the rows asked for
        alone (:meth:`header_of`). As narrow as the field; int64 where some message
        holds a number no header could (one made by hand)."""
        known = self._record_headers.get(field)
        if known is None:
            numbers = _HEADER_READS[field](self.messages)
            try:
                known = np.fromiter(numbers, _HEADER_TYPES[field], len(numbers))
            except OverflowError:
                known = np.fromiter(numbers, np.int64, len(numbers))
            self._record_headers[field] = known
        return known

    def header_of(self, field: str, rows: np.ndarray) -> np.ndarray:
        """Header field ``field`` (data_type, data_count, parameter1 or parameter2) at
        ``rows``: where they are records (rows with fields text: those of the
        ``fields`` column), without the column of every row (a chunk of monitor updates
        has some 60 thousand rows, and a few thousand records)."""
        if self._record_rows is None:
            return self._record_header(field)[rows]
        index = self._record_of_row[rows]
        if len(index) and index.min() < 0:  # (update rows among them)
            return getattr(self, _HEADER_COLUMNS[field])[rows]
        return self._record_header(field)[index]

    @cached_property
    def _record_of_row(self) -> np.ndarray:
        """Which of the records each row is (-1 for the update rows): a gather finds
        those of many rows at once (a search, in the rows of every record, would cost
        some ten times as much)."""
        index = np.full(self.size, -1, dtype=np.intp)
        index[self._record_rows] = np.arange(len(self._records))
        return index

    @cached_property
    def data_type(self) -> np.ndarray:
        """DBR type name codes (``vocabularies.data_types``), -1 where the message has
        no data_type field."""
        return self._named(self.data_type_number, self.of_form(HAS_DATA_TYPE),
                           self.vocabularies.data_types, dbr_name)

    @cached_property
    def eca(self) -> np.ndarray:
        """The ECA status of the messages that carry one (0 elsewhere): worked out for
        the records, and taken from the header field that holds it for the updates in
        bulk (not from the column of that field: no column of every row's parameter1
        is made for it)."""
        slot = STATUS_SLOT[self._record_forms]
        status = np.where(slot == 1, self._record_header("parameter1"), 0)
        second = np.flatnonzero(slot == 2)  # ERROR only: rare, not worth a pass
        if len(second):
            status = status.astype(np.int64)  # (as its messages have it, of any sign)
            messages = self.messages
            status[second] = [messages[i].parameter2 for i in second.tolist()]
        field = _STATUS_FIELD[STATUS_SLOT[_UPDATE_FORM]]
        if field is None:
            return self._column(status, fill=0)
        get = operator.attrgetter(field)
        return self._column(status, run_field=lambda run, span: get(run)[span])

    @cached_property
    def status(self) -> np.ndarray:
        """ECA status name codes (``vocabularies.statuses``), -1 where none."""
        return self._named(self.eca, self.of_form(_HAS_STATUS), self.vocabularies.statuses,
                           eca_name)

    @staticmethod
    def _named(numbers: np.ndarray, where: np.ndarray, vocabulary: Vocabulary,
               name: Callable[[int], str]) -> np.ndarray:
        return vocabulary.codes(numbers, name, where)

    @cached_property
    def values(self) -> Values:
        """The DBR payloads (value, alarm, EPICS time) of the rows that carry one."""
        values = Values(self.size)
        types, counts = self.data_type_number, self.data_count
        messages = self.messages
        which = np.flatnonzero(HAS_DATA[self._record_forms])  # (of the records)
        mine = which if self._record_rows is None else self._record_rows[which]
        extract_values(values, mine, types[mine], counts[mine],
                       [messages[i].payload for i in which.tolist()])
        starts = self._batch_starts
        for (run, rows, indexes), (_, span), which in zip(
                self._gathers, self._spans, self._run_batches, strict=True):
            # A run's rows here most often are every message of its span, in order
            # (its batches' messages, in the order of the batches): its arrays
            # sliced, not gathered.
            firsts = starts[which]
            whole = (len(indexes) == span.stop - span.start
                     and bool((firsts[1:] > firsts[:-1]).all()))
            taken = span if whole else indexes
            extract_values(values, rows, run.data_type[taken], run.data_count[taken],
                           InBuffer(run.buffer, run.bodies[taken], run.sizes[taken]))
        return values

    def alarm(self) -> tuple[np.ndarray, np.ndarray]:
        """Alarm status and severity name codes of every row, -1 where its value carries
        no alarm (or it has no value): named once, for every table that asks."""
        return self._alarm

    @cached_property
    def _alarm(self) -> tuple[np.ndarray, np.ndarray]:
        vocabularies = self.vocabularies
        values = self.values
        has = values.has_alarm
        return (self._named(values.status, has, vocabularies.alarm_statuses,
                            alarm_status_name),
                self._named(values.severity, has, vocabularies.severities,
                            alarm_severity_name))

    @cached_property
    def _channel_keys(self) -> tuple[np.ndarray, list[Any]]:
        """Per row, which of the distinct readings of the rows (the list: each a
        :class:`decoder.display.Reading`) the row's value is read with: what its channel
        knew when the value came (a record's ``reading``; an update's in bulk, its
        batch's ``learned`` moment). -1 for none.

        One attribute read per record that carries a value (the others, most records:
        searches, channel creation, are shown without one, and keep -1), the readings
        told apart at once by their ids, then by their values (channels that read alike
        share one); per run, what its subscriptions' channels read now, worked out again
        only once one has learnt something (:func:`_run_readings`): no Python per update
        in bulk."""
        with_data = np.flatnonzero(HAS_DATA[self._record_forms])
        all_records = self._records
        records = [all_records[i].reading for i in with_data.tolist()]
        codes, _, first = group(np.fromiter(map(id, records), np.int64, len(records)))
        readings: list[Any] = []
        code: dict[Any, int] = {}

        def coded(reading: Any) -> int:
            if reading is None:
                return -1
            key = code.get(reading)
            if key is None:
                key = code[reading] = len(readings)
                readings.append(reading)
            return key

        record_keys = np.full(len(all_records), -1, dtype=np.int64)
        record_keys[with_data] = np.array([coded(records[i]) for i in first.tolist()],
                                          dtype=np.int64)[codes]
        if self._record_rows is None:
            return record_keys, readings
        # Updates in bulk: each reads with its channel's reading as of its batch
        # (``learned``): the channel's present one, unless it began after the batch
        # (rare: looked up in the channel's readings, row group by row group). Per run,
        # the key of each subscription, then of each row by its subscription; the rows
        # of a run some of whose batches are older than a present reading, one by one.
        learned_at = np.fromiter([b.learned for b in self._batches], np.int64,
                                 len(self._batches))
        by_subscription: dict[int, np.ndarray | int] = {}
        late: list[int] = []
        for index, ((run, _, _), batches) in enumerate(zip(self.runs, self._run_batches,
                                                           strict=True)):
            present, began, distinct = _run_readings(run, self.vocabularies.alike_readings)
            mine = np.array([coded(reading) for reading in distinct] + [-1], dtype=np.int64)
            keyed = mine[present]  # (-1 for a subscription's -1)
            # One key for every subscription (most runs: their channels read alike, or
            # none reads yet): that key for every row, without a look at each (a row
            # in bulk has a subscription: no -1).
            one = len(keyed) == 1 or bool((keyed[:-1] == keyed[0]).all())
            by_subscription[id(run)] = int(keyed[0]) if one else keyed
            reads = present >= 0
            if reads.any() and int(began[reads].max()) > int(learned_at[batches].min()):
                late.append(index)

        def run_keys(run: Any, span: slice) -> np.ndarray:
            keyed = by_subscription[id(run)]
            if isinstance(keyed, int):
                return np.broadcast_to(np.int64(keyed), (span.stop - span.start,))
            return keyed[run.subscription[span]]

        keys = self._column(record_keys, run_field=run_keys)
        if late:
            when = np.zeros(self.size, dtype=np.int64)
            lengths = self._batch_lengths
            when[ranges(self.records.first_rows[self._batch_items], lengths)] = np.repeat(
                learned_at, lengths)
        for index in late:
            run, rows, indexes = self.runs[index]
            present, began, _ = _run_readings(run, self.vocabularies.alike_readings)
            subscription = run.subscription[indexes]
            at = when[rows]
            since = began[subscription]
            which = present[subscription]
            keys[rows] = np.where(since <= at, keys[rows], -1)
            late_rows = np.flatnonzero((since > at) & (which >= 0))
            if len(late_rows):  # (what a channel read as before it learnt its present one)
                pairs, inverse = np.unique(
                    np.stack((subscription[late_rows], at[late_rows])), axis=1,
                    return_inverse=True)
                subscriptions = run.subscriptions
                found = np.array([coded(subscriptions[k].channel.reading_at(t))
                                  for k, t in pairs.T.tolist()], dtype=np.int64)
                keys[rows[late_rows]] = found[inverse.ravel()]
        return keys, readings

    @cached_property
    def display(self) -> pa.Array:
        """Each row's value as text output shows it (a ``large_string`` array, null
        where the row carries no value or one that cannot be decoded): with the
        precision and enum state strings of the row's channel, as
        :func:`decoder.display.shown_data` judges for one record at a time.

        What the channel knew when the value came is what counts (the record's or the
        batch's ``reading``), whatever it learnt later: a value is shown alike by every
        view, in batches of any size, and as one record at a time.

        Computed over whole columns (:mod:`shark.tables.display`): Python runs per
        distinct channel and precision, and per row only for strings, arrays and the
        rare values the vectorized formatting cannot be sure of."""
        return _gathered(self._display_gathering, None)

    def display_of(self, rows: np.ndarray | None) -> pa.Array:
        """:attr:`display` of rows ``rows`` (an index array; None: all), gathered from
        the strings at once (a table that leaves rows out takes no copy of them all)."""
        if rows is None or "display" in self.__dict__:
            return self.display if rows is None else self.display.take(rows)
        return _gathered(self._display_gathering, rows)

    @cached_property
    def _display_gathering(self) -> _Gathering:
        """How :attr:`display` is gathered, by :meth:`display_of` too."""
        n = self.size
        if not n:
            return _gathering(0, [])
        values = self.values
        keys, channels = self._channel_keys
        way = _WAY_OF[np.clip(self.data_type_number, -1, len(LAYOUTS))]
        # GR/CTRL_ENUM values carry their own strings: one at a time (below).
        number = values.has_value & (way != _Way.TEACHING)
        pieces: list[_Piece] = []
        named = self._enum_pieces(number & (way == _Way.ENUM), keys, channels, pieces)
        floating = number & (way == _Way.FLOATING)
        plain = number & ~floating & ~named
        numbers: list[np.ndarray] = []
        asked: list[Asked] = []
        if plain.any():
            numbers.append(np.flatnonzero(plain))
            asked.append((_INTEGERS, values.value[plain], integer_texts))
        if floating.any():
            for p, chosen in self._decimals(floating, keys, channels):
                numbers.append(chosen)
                asked.append((p, values.value[chosen],
                              shortest_texts if p < 0 else partial(fixed_texts, precision=p)))
        pieces += [(rows, *texts) for rows, texts in zip(
            numbers, self.vocabularies.written.texts(asked), strict=True)]
        if values.text:
            rows = np.fromiter(values.text, np.int64, len(values.text))
            pieces.append((rows, pa.array([shown_text(t) for t in values.text.values()],
                                          pa.large_string()), None))
        rest = self.of_form(HAS_DATA) & ~number
        rest[list(values.text)] = False
        rest[list(values.errors)] = False
        if rest.any():  # arrays (and empty ones): the record path's judge, row by row
            pieces.append(self._shown_each(np.flatnonzero(rest), keys, channels))
        return _gathering(n, pieces)

    def _decimals(self, floating: np.ndarray, keys: np.ndarray, channels: list[Any]
                  ) -> list[tuple[int, np.ndarray]]:
        """The ``floating`` rows (a mask) by the precision their values are shown with
        (-1: none, the shortest form): their channel's (``keys``:
        :attr:`_channel_keys`), or for a GR/CTRL value its own, which its channel learnt
        as it came; -1 where none (or none to use). Where one precision holds for all
        (one channel, or channels alike, and no value of its own: most chunks), the
        rows are not looked at one by one."""
        precision = np.array([-1 if c is None or c.precision is None else c.precision
                              for c in channels] + [-1], np.int64)
        precision[(precision < 0) | (precision > MAX_PRECISION)] = -1  # none to use
        values = self.values
        of_channels = precision[:-1]
        if not values.has_precision.any() and (
                (of_channels < 0).all() or ((of_channels == of_channels[0]).all()
                                            and (keys * floating).min() >= 0)):
            return [(int(precision[0]), np.flatnonzero(floating))]
        # Else over every row, in bytes (a precision is under 18), with masks as 0 or
        # 1 times (numpy's masked and selecting calls cost ten times as much): -2 for
        # rows not floating, then a pass per precision met: those of the channels,
        # and the own ones (each looked for, else counted).
        if len(channels) == 1:  # (most chunks: one reading, or none, per row)
            decimals = (keys >= 0).view(np.int8) * np.int8(precision[0] + 1) - np.int8(1)
        else:
            decimals = precision.astype(np.int8)[keys]  # (-1 of a key -1: the last)
        met: set[int] | None = set(precision.tolist())
        has = values.has_precision
        if has.any():
            own = values.precision * has  # (0 for rows of none)
            low, high = int(own.min()), int(own.max())
            if 0 <= low and high <= MAX_PRECISION:
                theirs = own.astype(np.int8)
                met.update(p for p in range(high + 1)
                           if p not in met and np.any((own == p) & has))
            else:  # (some none to use: -1)
                theirs = _OWN_DECIMALS[np.clip(own, -1, MAX_PRECISION + 1) + 1]
                met = None
            decimals += has.view(np.int8) * (theirs - decimals)
        decimals = (decimals + np.int8(2)) * floating.view(np.int8) - np.int8(2)
        if met is None:
            counts = np.bincount(decimals.view(np.uint8) + np.uint8(2), minlength=2)
            met = set((np.flatnonzero(counts) - 2).tolist())
        groups = [(p, np.flatnonzero(decimals == p)) for p in sorted(met) if p >= -1]
        return [(p, rows) for p, rows in groups if len(rows)]

    def _enum_pieces(self, enums: np.ndarray, keys: np.ndarray, channels: list[Any],
                     pieces: list[_Piece]) -> np.ndarray:
        """Add to ``pieces`` the state strings of the ENUM rows ``enums`` whose channel
        knows them and whose index names one; say which rows those are."""
        named = np.zeros(self.size, dtype=bool)
        if not enums.any():
            return named
        rows = np.flatnonzero(enums)
        codes, distinct, _ = group(keys[rows])
        order = np.argsort(codes, kind="stable")
        bounds = np.cumsum(np.bincount(codes, minlength=len(distinct)))[:-1]
        for key, chosen in zip(distinct.tolist(), np.split(rows[order], bounds), strict=True):
            channel = channels[key] if key >= 0 else None
            strings = None if channel is None else channel.enum_strings
            if not strings:
                continue
            index = self.values.value[chosen].astype(np.int64)
            inside = (index >= 0) & (index < len(strings))
            table = pa.array([shown_text(t) for t in strings], pa.large_string())
            pieces.append((chosen[inside], table, index[inside]))
            named[chosen[inside]] = True
        return named

    def _shown_each(self, rows: np.ndarray, keys: np.ndarray, channels: list[Any]
                    ) -> _Piece:
        """The values of ``rows`` decoded and judged one at a time (arrays)."""
        payloads: dict[int, tuple[int, Any]] = {}
        if self._record_rows is None:
            mine = rows
        else:
            mine = rows[np.isin(rows, self._record_rows)]
        messages = self.messages
        for row, i in zip(mine.tolist(), self._record_index(mine), strict=True):
            payloads[row] = (i, None)
        wanted = np.zeros(self.size, dtype=bool)
        wanted[rows] = True
        for run, run_rows, indexes in self._gathers:
            chosen = wanted[run_rows]
            for row, i in zip(run_rows[chosen].tolist(), indexes[chosen].tolist(), strict=True):
                payloads[row] = (i, run)
        out = []
        types, counts = self.data_type_number, self.data_count
        for row in rows.tolist():
            i, run = payloads[row]
            if run is None:
                data = messages[i].data
            else:
                body = int(run.bodies[i])
                data = dbr.decode(int(types[row]), int(counts[row]),
                                  run.buffer[body : body + int(run.sizes[i])])
            out.append(shown_with(data, channels[keys[row]] if keys[row] >= 0 else None))
        return rows, pa.array(out, pa.large_string()), None


class _Way(enum.IntEnum):
    """How the ``display`` column shows a value of one number, by its DBR type."""

    INTEGER = 0  #: as ``str(int(v))`` (integer types; and types unknown, which have none)
    FLOATING = 1  #: with its channel's precision, else as ``repr``
    ENUM = 2  #: as its channel's state string, where it knows one
    TEACHING = 3  #: GR/CTRL_ENUM: with the strings it carries, one at a time


def _way(data_type: int) -> _Way:
    if data_type in ENUM_TYPES:
        return _Way.TEACHING
    native = LAYOUTS[data_type].native_type
    if native in (DBRType.FLOAT, DBRType.DOUBLE):
        return _Way.FLOATING
    return _Way.ENUM if native == DBRType.ENUM else _Way.INTEGER


#: The precision a value's own is shown with, by its own clipped to -1 ... MAX + 1,
#: plus one: -1 (none to use) for those out of range.
_OWN_DECIMALS = np.array([-1, *range(MAX_PRECISION + 1), -1], dtype=np.int8)
#: How :class:`shark.tables.display.Written` knows integers apart from floating values
#: (whose precision says their way; -1: none, the shortest form).
_INTEGERS = -2
#: The way of each DBR type, then of the types unknown (looked up with types clipped
#: to -1 ... len(LAYOUTS)).
_WAY_OF = np.array([_way(t) for t in range(len(LAYOUTS))] + [_Way.INTEGER], dtype=np.int8)


#: Strings of some rows of a column: (rows, strings, which of them each row has: None
#: for the strings in row order).
_Piece = tuple[np.ndarray, pa.Array, "np.ndarray | None"]


#: How to gather a column's strings (:func:`_gathering`): the strings, where each row's
#: is among them, and which rows are null (None: none).
_Gathering = tuple[pa.Array, np.ndarray, "np.ndarray | None"]


def _gathering(n: int, pieces: list[_Piece]) -> _Gathering:
    """How to gather ``n`` strings from pieces, null elsewhere: from the pieces'
    strings, joined when they are not all one array (as the numbers'
    :attr:`shark.tables.display.Written.store` is). Rows of no piece take an empty
    string the strings begin with, marked null, or else a null joined to them."""
    pieces = [piece for piece in pieces if len(piece[0])]
    if not pieces:
        return pa.nulls(1, pa.large_string()), np.zeros(n, dtype=np.int64), None
    used: dict[int, int] = {}
    for rows, strings, _ in pieces:
        used[id(strings)] = used.get(id(strings), 0) + len(rows)
    if len(used) > 1:  # to be joined: gathered first where its rows use a few of many
        pieces = [(rows, strings.take(index), None)
                  if index is not None and len(strings) > 8 * used[id(strings)]
                  else (rows, strings, index) for rows, strings, index in pieces]
    arrays: list[pa.Array] = []
    start: dict[int, int] = {}
    for _, strings, _ in pieces:
        if id(strings) not in start:
            start[id(strings)] = sum(map(len, arrays))
            arrays.append(strings if strings.type == pa.large_string()
                          else strings.cast(pa.large_string()))
    position = np.full(n, -1, dtype=np.int64)
    for where, strings, index in pieces:
        offset = start[id(strings)]
        if index is None:
            position[where] = np.arange(offset, offset + len(where))
        else:
            position[where] = index + offset if offset else index
    missing = position < 0
    if not missing.any():
        return (arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)), position, None
    first = arrays[0]
    if len(arrays) > 1 or not len(first) or first[0].as_py() != "":
        position[missing] = sum(map(len, arrays))
        return pa.concat_arrays([*arrays, pa.nulls(1, pa.large_string())]), position, None
    position[missing] = 0
    return first, position, missing


def _gathered(gathering: _Gathering, rows: np.ndarray | None) -> pa.Array:
    """The strings of a :data:`_Gathering` of rows ``rows`` (None: all), in one take."""
    strings, position, missing = gathering
    if rows is not None:
        position = position[rows]
        missing = None if missing is None else missing[rows]
    taken = strings.take(position)
    if missing is None or not missing.any():
        return taken
    valid = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(pa.large_string(), len(position),
                                 [valid, *taken.buffers()[1:]],
                                 null_count=int(np.count_nonzero(missing)))

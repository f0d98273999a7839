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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

import numpy as np

from decoder import Command, Role
from decoder import messages as m
from decoder.dbr import dbr_name
from decoder.status import alarm_severity_name, alarm_status_name, eca_name

from ..record import CLOSE, ERROR, GAP, OPEN, Record
from .grouping import group
from .schema import seconds_to_ns
from .values import Values, extract_values

__all__ = ["FORMS", "NOT_MESSAGE", "Chunk", "Vocabularies", "Vocabulary", "form_mask"]

#: Pseudo forms of the records that carry no message, by record kind, with the
#: command names ``Record.command_name`` gives them.
_KINDS = {GAP: "GAP", ERROR: "UNDECODED", OPEN: "OPEN", CLOSE: "CLOSE"}
#: Every form: the message classes, UnknownCommand, then one per record kind above.
FORMS: tuple[Any, ...] = (*m.ALL_MESSAGE_CLASSES, m.UnknownCommand, *_KINDS)
_UNKNOWN = FORMS.index(m.UnknownCommand)


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

#: Command names in form order (UnknownCommand's depends on the message).
_FORM_COMMAND = [
    _KINDS[f] if isinstance(f, str) else "" if f is m.UnknownCommand else Command(f.command).name
    for f in FORMS
]
_STATUS_SLOT = {"parameter1": 1, "parameter2": 2}


def form_mask(predicate: Callable[[Any], bool]) -> np.ndarray:
    """A bool array over forms: which message classes (or record kinds) qualify."""
    return np.array([predicate(f) for f in FORMS] + [False])


def _is_class(form: Any, *classes: type) -> bool:
    return isinstance(form, type) and issubclass(form, classes)


#: Forms whose message has data_type and data_count fields (as ``shark read`` shows them).
HAS_DATA_TYPE = form_mask(lambda f: _is_class(f, m.Message) and "data_type" in f.FIELDS
                          and not issubclass(f, m._Obsolete))
#: Which header field carries an ECA status: 0 none, 1 parameter1, 2 parameter2.
STATUS_SLOT = np.array([_STATUS_SLOT.get(getattr(f, "FIELDS", {}).get("status"), 0)
                        for f in FORMS] + [0], dtype=np.int8)
#: Forms whose payload is a DBR value.
HAS_DATA = form_mask(lambda f: _is_class(f, m._DataPayload))
#: Forms that are not messages (GAP, UNDECODED, OPEN, CLOSE).
NOT_MESSAGE = form_mask(lambda f: isinstance(f, str))
_COMMAND_ID = np.array([getattr(f, "command", -1) if f is not m.UnknownCommand else -1
                        for f in FORMS] + [-1], dtype=np.int32)


class Vocabulary:
    """Strings to int32 codes in order of first appearance; None is -1."""

    def __init__(self, initial: Iterable[str] = ()) -> None:
        #: Code by string.
        self.index: dict[str | None, int] = {None: -1}
        #: The strings, by code.
        self.values: list[str] = []
        for text in initial:
            self.code(text)

    def code(self, text: str | None) -> int:
        code = self.index.get(text)
        if code is None:
            code = self.index[text] = len(self.values)
            self.values.append(text)
        return code

    def codes(self, numbers: np.ndarray, name: Callable[[int], str]) -> np.ndarray:
        """Codes for an array of numbers named by ``name`` (each distinct number is
        named once)."""
        inverse, distinct, _ = group(numbers)
        return np.array([self.code(name(n)) for n in distinct.tolist()],
                        dtype=np.int32)[inverse]


class Vocabularies:
    """The vocabularies of one builder's categorical columns."""

    def __init__(self) -> None:
        self.endpoints = Vocabulary()
        self.pvs = Vocabulary()
        self.commands = Vocabulary(dict.fromkeys(n for n in _FORM_COMMAND if n))
        self.senders = Vocabulary(role.name.lower() for role in Role)
        self.transports = Vocabulary(("tcp", "udp"))
        self.data_types = Vocabulary()
        self.statuses = Vocabulary()
        self.severities = Vocabulary()
        self.alarm_statuses = Vocabulary()
        #: Command name code by form.
        self.form_command = np.array(
            [self.commands.code(n) if n else -1 for n in _FORM_COMMAND] + [-1], dtype=np.int32)


class Chunk:
    """Records as columns. Every column is computed on first use, then kept.

    Arrays have one entry per record unless they say otherwise; ``rows`` arguments and
    results are index arrays into the chunk.
    """

    def __init__(self, records: list[Record], vocabularies: Vocabularies) -> None:
        self.records = records
        self.size = len(records)
        self.vocabularies = vocabularies

    @cached_property
    def messages(self) -> list[m.Message | _Blank]:
        """The messages, a blank with zero header fields and no payload for records
        that carry none."""
        return [r.message or _BLANK for r in self.records]

    @cached_property
    def form(self) -> np.ndarray:
        """Index into :data:`FORMS` (int16)."""
        form = _FORM
        forms = np.fromiter([form[type(x)] for x in self.messages], np.int16, self.size)
        for row in np.flatnonzero(forms == _NO_MESSAGE):
            forms[row] = form[self.records[row].kind]
        return forms

    def rows(self, mask: np.ndarray) -> np.ndarray:
        """Rows whose form is set in a :func:`form_mask`."""
        return np.flatnonzero(mask[self.form])

    @cached_property
    def frame(self) -> np.ndarray:
        return np.fromiter([r.frame for r in self.records], np.int64, self.size)

    @cached_property
    def time(self) -> np.ndarray:
        """Unix seconds (float64)."""
        return np.fromiter([r.time for r in self.records], np.float64, self.size)

    @cached_property
    def time_ns(self) -> np.ndarray:
        return seconds_to_ns(self.time)

    def _encode(self, vocabulary: Vocabulary, known: Callable[[dict], list[int]],
                attribute: str) -> np.ndarray:
        """The codes of a string attribute, ``known(vocabulary.index)``: one comprehension
        of dict lookups (the fastest loop there is), once every string is in the
        vocabulary."""
        try:
            codes = known(vocabulary.index)
        except KeyError:  # new strings: add them, then again
            for text in dict.fromkeys(getattr(r, attribute) for r in self.records):
                vocabulary.code(text)
            codes = known(vocabulary.index)
        return np.fromiter(codes, np.int32, len(codes))

    @cached_property
    def src(self) -> np.ndarray:
        """Source endpoint codes (``vocabularies.endpoints``)."""
        return self._encode(self.vocabularies.endpoints,
                            lambda index: [index[r.src] for r in self.records], "src")

    @cached_property
    def dst(self) -> np.ndarray:
        return self._encode(self.vocabularies.endpoints,
                            lambda index: [index[r.dst] for r in self.records], "dst")

    @cached_property
    def pv(self) -> np.ndarray:
        """PV name codes (``vocabularies.pvs``), -1 where unknown."""
        return self._encode(self.vocabularies.pvs,
                            lambda index: [index[r.pv] for r in self.records], "pv")

    @cached_property
    def circuit(self) -> np.ndarray:
        """Circuit numbers, 0 for UDP (circuits are numbered from 1)."""
        return np.fromiter([r.circuit or 0 for r in self.records], np.int64, self.size)

    @cached_property
    def transport(self) -> np.ndarray:
        """Transport codes: UDP records are the ones without a circuit."""
        codes = self.vocabularies.transports.index
        return np.where(self.circuit == 0, codes["udp"], codes["tcp"]).astype(np.int32)

    @cached_property
    def sender(self) -> np.ndarray:
        """Sender codes (``vocabularies.senders``, in :class:`decoder.Role` order), -1
        where unknown."""
        senders = _SENDER
        return np.fromiter([senders[r.sender] for r in self.records], np.int32, self.size)

    @cached_property
    def command(self) -> np.ndarray:
        """Command name codes (``vocabularies.commands``)."""
        commands = self.vocabularies.form_command[self.form]
        for row in np.flatnonzero(self.form == _UNKNOWN):
            commands[row] = self.vocabularies.commands.code(self.messages[row].command_name)
        return commands

    @cached_property
    def command_id(self) -> np.ndarray:
        """The CA command id, -1 for records that are not messages."""
        ids = _COMMAND_ID[self.form]
        for row in np.flatnonzero(self.form == _UNKNOWN):
            ids[row] = self.messages[row].command
        return ids

    @cached_property
    def size_bytes(self) -> np.ndarray:
        """Bytes on the wire (messages), missing (GAP) or undecodable (UNDECODED)."""
        sizes = np.fromiter([len(x.payload) + (24 if x.extended else 16)
                             for x in self.messages], np.int64, self.size)
        for row in np.flatnonzero(NOT_MESSAGE[self.form]):
            sizes[row] = self.records[row].size
        return sizes

    @cached_property
    def latency(self) -> np.ndarray:
        """Seconds since the request a response answers; NaN where none."""
        nan = math.nan
        latencies = [r.latency for r in self.records]
        return np.fromiter([nan if v is None else v for v in latencies], np.float64, self.size)

    @cached_property
    def anomalies(self) -> dict[int, str]:
        """``kind: detail`` of the protocol anomalies seen, by row."""
        return {i: f"{r.anomaly.kind}: {r.anomaly.detail}"
                for i, r in enumerate(self.records) if r.anomaly is not None}

    @cached_property
    def data_count(self) -> np.ndarray:
        """The data_count header field (0 for records that are not messages)."""
        return np.fromiter([x.data_count for x in self.messages], np.int64, self.size)

    @cached_property
    def data_type_number(self) -> np.ndarray:
        """The data_type header field (0 for records that are not messages)."""
        return np.fromiter([x.data_type for x in self.messages], np.int64, self.size)

    @cached_property
    def parameter1(self) -> np.ndarray:
        """The parameter1 header field (0 for records that are not messages)."""
        return np.fromiter([x.parameter1 for x in self.messages], np.int64, self.size)

    @cached_property
    def parameter2(self) -> np.ndarray:
        """The parameter2 header field (0 for records that are not messages)."""
        return np.fromiter([x.parameter2 for x in self.messages], np.int64, self.size)

    @cached_property
    def data_type(self) -> np.ndarray:
        """DBR type name codes (``vocabularies.data_types``), -1 where the message has
        no data_type field."""
        return self._named(self.data_type_number, HAS_DATA_TYPE[self.form],
                           self.vocabularies.data_types, dbr_name)

    @cached_property
    def eca(self) -> np.ndarray:
        """The ECA status of the messages that carry one (0 elsewhere)."""
        slot = STATUS_SLOT[self.form]
        status = np.where(slot == 1, self.parameter1, 0)
        second = np.flatnonzero(slot == 2)  # ERROR only: rare, not worth a pass
        messages = self.messages
        status[second] = [messages[i].parameter2 for i in second.tolist()]
        return status

    @cached_property
    def status(self) -> np.ndarray:
        """ECA status name codes (``vocabularies.statuses``), -1 where none."""
        return self._named(self.eca, STATUS_SLOT[self.form] > 0, self.vocabularies.statuses,
                           eca_name)

    @staticmethod
    def _named(numbers: np.ndarray, where: np.ndarray, vocabulary: Vocabulary,
               name: Callable[[int], str]) -> np.ndarray:
        codes = np.full(len(numbers), -1, dtype=np.int32)
        codes[where] = vocabulary.codes(numbers[where], name)
        return codes

    @cached_property
    def values(self) -> Values:
        """The DBR payloads (value, alarm, EPICS time) of the rows that carry one."""
        rows = self.rows(HAS_DATA)
        messages = self.messages
        values = extract_values(self.data_type_number[rows], self.data_count[rows],
                                [messages[i].payload for i in rows.tolist()])
        values.rows = rows
        return values

    def alarm(self, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Alarm status and severity name codes of ``values`` entries ``which``, -1
        where the value carries no alarm."""
        vocabularies = self.vocabularies
        values = self.values
        has = values.has_alarm[which]
        return (self._named(values.status[which], has, vocabularies.alarm_statuses,
                            alarm_status_name),
                self._named(values.severity[which], has, vocabularies.severities,
                            alarm_severity_name))

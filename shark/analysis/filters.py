"""Shark's filter language: which messages a person wants to see, compiled once and
evaluated over whole columns.

``shark read --filter``, ``shark live --filter`` and the TUI's ``/`` all take it. An
expression is compiled once (:func:`compile_filter`) into a :class:`Filter` whose
:meth:`Filter.mask` answers for a whole Arrow batch of the ``messages`` table (a bool
per row) with numpy and pyarrow, never Python code per message: a test on a
dictionary-encoded column (PV, command, status ...) runs once per distinct string and
is gathered by the indices. Those who hold records ask :meth:`Filter.select`, which puts
them into such a batch (:func:`shark.analysis.batch.records_batch`) first.

Grammar::

    expression := or-expr
    or-expr    := and-expr ("or" and-expr)*
    and-expr   := not-expr (["and"] not-expr)*        (a space is an "and")
    not-expr   := "not" not-expr | "(" or-expr ")" | term
    term       := KEY OP VALUE[,VALUE...] | KEYWORD | WORD

``not`` binds tighter than ``and``, ``and`` tighter than ``or``. Several expressions
(repeated ``--filter`` options) must all match; an empty one matches everything.

Operators: ``=`` and ``!=`` (``key=a,b``: any of the values; ``key!=a,b``: none of
them), ``<`` ``<=`` ``>`` ``>=`` on numbers and severities, ``~`` (contains, in any
case) and ``~/regex/`` (a regular expression search, in any case; ``(?-i:...)`` for
case) on strings. With ``=`` and ``!=`` a string value holding ``*``, ``?`` or ``[`` is
a shell pattern that must match the whole string, and a number may be a range ``a..b``
(both ends included). A comparison never matches a message without the field:
``pv!=X`` keeps the messages of other PVs, ``not pv=X`` those without a PV too.

==================  ===============================================================
``pv``              PV name, case-sensitive (``pv=SR:*:Current``, ``pv~current``)
``command``         command name, ``CA_PROTO_`` optional (``command=READ_NOTIFY``);
                    also ``GAP``, ``UNDECODED``, and ``OPEN``/``CLOSE`` in the TUI
``host``            source or destination address, or ``IP:PORT`` for one endpoint
``port``            source or destination port
``circuit``         TCP circuit number
``transport``       ``tcp`` or ``udp``
``sender``          ``client``, ``server`` or ``repeater``
``data_type``       DBR type, ``DBR_`` optional (``data_type=TIME_*``)
``count``           element count (``data_count``)
``status``          ECA status: a name, ``ECA_`` optional, a numeric code, or
                    ``failed``: any status that is not a success (libca's low bit)
``severity``        alarm severity, ordered NO_ALARM < MINOR < MAJOR < INVALID
``alarm``           alarm status (``alarm=HIHI,LOLO``; ``alarm_status``)
``latency``         seconds since the request, with a unit: s, ms, us (µs), ns
                    (``latency>10ms``); a bare number is seconds
``value``           the value when it is one number (``value>3.5``); against a word,
                    the value when it is one string (``value=OFF``, ``value~err``)
``frame``           capture frame (``frame>=100``, ``frame=100..200``)
``time``            seconds since the capture's first message, with a unit
                    (``time=1.5..3s``), or a date and time in ISO form
                    (``time>=2026-12-06T10:00:00``: UTC unless it gives an offset)
``error``           what :mod:`shark.analysis.problems` judges an error (the errors
                    table, the TUI's red lines): ERROR, CREATE_CH_FAIL, NOT_FOUND,
                    SERVER_DISCONN, failed replies, resets, gaps, undecodable bytes,
                    protocol anomalies
``anomaly``         the ``anomaly`` column is set (what the protocol does not allow,
                    or a value that could not be decoded)
``gap``             a hole in the decoded stream: bytes the capture lost (GAP) or that
                    could not be decoded (UNDECODED); ``command=GAP`` for lost bytes
==================  ===============================================================

Keys and names are case-insensitive, PV names and string values are not. A bare word
that is not a keyword is part of a PV name in any case (``temp`` finds ``SR:TEMP:1``),
or a PV pattern when it holds ``*``, ``?`` or ``[``. A value with spaces or parentheses
goes in quotes (``value="not ok"``). A value that can never match (an unknown command,
status, severity, unit, DBR type, a port beyond 65535) is an error that lists the
choices, not a filter that silently shows nothing.
"""

from __future__ import annotations

import datetime
import difflib
import fnmatch
import ipaddress
import operator
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from decoder import ECA, Command, Role
from decoder.dbr import DBRType
from decoder.status import AlarmSeverity, AlarmStatus
from shark.analysis.batch import records_batch
from shark.analysis.columns import numbers, string_codes
from shark.analysis.problems import PROBLEM_COLUMNS, problem_mask
from shark.errors import SharkError
from shark.extract.record import OPEN, Record

__all__ = ["Filter", "FilterError", "compile_filter", "parse_filter"]

Batch = pa.RecordBatch | pa.Table
#: What makes a value a shell pattern rather than a name.
_GLOB = re.compile(r"[*?\[]")


class FilterError(SharkError, ValueError):
    """A filter that cannot be understood; the message says why."""


# -- evaluation -------------------------------------------------------------------------


class _Columns:
    """The batch a filter runs over, with what its terms ask of it worked out once."""

    def __init__(self, batch: Batch, start: float | None,
                 midstream: Collection[int] | None) -> None:
        self.batch = batch
        self.n = batch.num_rows
        self.names = frozenset(batch.schema.names)
        self.start = start
        self.midstream = () if midstream is None else midstream
        self._codes: dict[str, tuple[list[str | None], np.ndarray]] = {}
        self._numbers: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def codes(self, name: str) -> tuple[list[str | None], np.ndarray]:
        found = self._codes.get(name)
        if found is None:
            if name in self.names:
                found = string_codes(self.batch.column(name))
            else:  # a column the batch lacks is null
                found = ([], np.full(self.n, -1, dtype=np.int64))
            self._codes[name] = found
        return found

    def strings(self, name: str, test: Callable[[str], bool]) -> np.ndarray:
        """Bool per row: the row's string passes ``test`` (once per distinct string)."""
        values, codes = self.codes(name)
        table = np.zeros(len(values) + 1, dtype=bool)
        for i, text in enumerate(values):
            table[i] = text is not None and bool(test(text))
        return table[codes]

    def lookup(self, name: str, convert: Callable[[str], float]) -> tuple[np.ndarray,
                                                                         np.ndarray]:
        """(number per row, valid) from a string column: ``convert`` once per string
        (NaN: no number)."""
        values, codes = self.codes(name)
        table = np.full(len(values) + 1, np.nan)
        for i, text in enumerate(values):
            if text is not None:
                table[i] = convert(text)
        out = table[codes]
        return out, ~np.isnan(out)

    def present(self, name: str) -> np.ndarray:
        return self.codes(name)[1] >= 0

    def numbers(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        found = self._numbers.get(name)
        if found is None:
            if name in self.names:
                found = numbers(self.batch.column(name))
            else:
                found = (np.zeros(self.n), np.zeros(self.n, dtype=bool))
            self._numbers[name] = found
        return found


class _Node:
    """A compiled part of an expression: the columns it reads, its mask."""

    columns: frozenset[str] = frozenset()

    def mask(self, cols: _Columns) -> np.ndarray:
        raise NotImplementedError


class _Term(_Node):
    def __init__(self, columns: Iterable[str], evaluate: Callable[[_Columns], np.ndarray]
                 ) -> None:
        self.columns = frozenset(columns)
        self.evaluate = evaluate

    def mask(self, cols: _Columns) -> np.ndarray:
        return self.evaluate(cols)


class _And(_Node):
    def __init__(self, left: _Node, right: _Node) -> None:
        self.left, self.right = left, right
        self.columns = left.columns | right.columns

    def mask(self, cols: _Columns) -> np.ndarray:
        out = self.left.mask(cols)
        return out & self.right.mask(cols) if out.any() else out


class _Or(_Node):
    def __init__(self, left: _Node, right: _Node) -> None:
        self.left, self.right = left, right
        self.columns = left.columns | right.columns

    def mask(self, cols: _Columns) -> np.ndarray:
        out = self.left.mask(cols)
        return out | self.right.mask(cols) if not out.all() else out


class _Not(_Node):
    def __init__(self, inner: _Node) -> None:
        self.inner = inner
        self.columns = inner.columns

    def mask(self, cols: _Columns) -> np.ndarray:
        return ~self.inner.mask(cols)


class Filter:
    """A compiled filter (:func:`compile_filter`): its source ``text``, the
    ``columns`` it reads, whether it ``matches_all``; :meth:`mask` over a batch,
    :meth:`select` over records."""

    def __init__(self, text: str, node: _Node | None) -> None:
        self.text = text
        self._node = node
        self.columns: frozenset[str] = frozenset() if node is None else node.columns
        self.matches_all = node is None

    def mask(self, batch: Batch, start: float | None = None,
             midstream: Collection[int] | None = None) -> np.ndarray:
        """Bool per row of ``batch`` (columns of the ``messages`` table: a record batch
        or a table): whether the row matches.

        ``start``: the capture's first time in Unix seconds, what relative ``time``
        terms count from (None: the batch's first row's). ``midstream``: the circuits
        the capture joined after they were set up, for ``error``
        (:func:`shark.analysis.problems.problem_mask`; a batch's OPEN rows add theirs)."""
        if self._node is None:
            return np.ones(batch.num_rows, dtype=bool)
        out = self._node.mask(_Columns(batch, start, midstream))
        return np.asarray(out, dtype=bool)

    def select(self, records: Sequence[Record], start: float | None = None,
               midstream: Collection[int] | None = None) -> list[bool]:
        """Whether each of ``records`` matches (:meth:`mask` over a batch of them)."""
        if self._node is None:
            return [True] * len(records)
        if not records:
            return []
        return self.mask(records_batch(records, self.columns), start, midstream).tolist()

    def selector(self, start: float | None = None) -> Selector:
        """What applies this filter to the batches of one capture, in order
        (:class:`Selector`)."""
        return Selector(self, start)

    def records(self, records: Iterable[Record], block: int = 4096) -> Iterator[Record]:
        """The records of ``records`` (one capture's, in order) that match, judged a
        block at a time (:meth:`select`), the capture's start and the circuits it
        joined mid-stream carried from block to block."""
        if self._node is None:
            yield from records
            return
        start: float | None = None
        midstream: set[int] = set()
        pending: list[Record] = []

        def judged() -> Iterator[Record]:
            matched = self.select(pending, start, midstream)
            yield from (r for r, keep in zip(pending, matched, strict=True) if keep)

        for record in records:
            if start is None:
                start = record.time
            if record.kind is OPEN and record.reason != "syn" and record.circuit is not None:
                midstream.add(record.circuit)
            pending.append(record)
            if len(pending) >= block:
                yield from judged()
                pending = []
        yield from judged()

    def predicate(self, start: float | None = None) -> Callable[[Record], bool]:
        """A test of one record at a time (:meth:`select` of a one-record list), for
        those that filter a stream of records: it takes the first record it is asked
        about as the capture's start unless ``start`` is given, and learns the circuits
        joined mid-stream from the OPEN records it sees."""
        return _RecordPredicate(self, start)

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"


class Selector:
    """A filter applied to the batches of one capture in order (``shark read``,
    ``shark live``): relative times count from the capture's first record (``start``,
    else the first batch's first row), and circuits the capture joined mid-stream,
    learnt from the OPEN rows of earlier batches, count for ``error`` in later ones."""

    def __init__(self, compiled: Filter, start: float | None = None) -> None:
        self.filter = compiled
        self.start = start
        self.midstream: set[int] = set()

    def __call__(self, batch: Batch, start: float | None = None) -> np.ndarray:
        """The mask of ``batch``; ``start`` the capture's first time, if not yet known."""
        if self.start is None:
            self.start = start
        if "reason" in batch.schema.names:
            self.midstream.update(_joined_midstream(batch))
        return self.filter.mask(batch, self.start, self.midstream)


def _joined_midstream(batch: Batch) -> list[int]:
    """The circuits whose OPEN rows in ``batch`` say the capture joined them after they
    were set up (any reason but ``syn``)."""
    command = batch.column("command")
    if isinstance(command, pa.ChunkedArray):
        command = command.combine_chunks()
    if not pa.types.is_dictionary(command.type) or "OPEN" not in command.dictionary.to_pylist():
        return []
    opens = pc.equal(command.cast(pa.string()), "OPEN")
    joined = pc.and_(opens, pc.not_equal(batch.column("reason"), "syn"))
    circuits = batch.column("circuit").filter(pc.fill_null(joined, False))
    return [c for c in circuits.to_pylist() if c is not None]


class _RecordPredicate:
    def __init__(self, compiled: Filter, start: float | None) -> None:
        self.filter = compiled
        self.start = start
        self.midstream: set[int] = set()

    def __call__(self, record: Record) -> bool:
        if self.start is None:
            self.start = record.time
        if record.kind is OPEN and record.reason != "syn" and record.circuit is not None:
            self.midstream.add(record.circuit)
        return self.filter.select([record], self.start, self.midstream)[0]


def compile_filter(expressions: Sequence[str]) -> Filter:
    """The :class:`Filter` of ``expressions``, all of which must match (repeated
    ``--filter`` options); none, or only blank ones, match everything. Raises
    :class:`FilterError` when one cannot be understood."""
    if isinstance(expressions, str):
        expressions = [expressions]
    node: _Node | None = None
    for text in expressions:
        part = _Parser(text).parse()
        if part is not None:
            node = part if node is None else _And(node, part)
    shown = [t.strip() for t in expressions if t.strip()]
    text = shown[0] if len(shown) == 1 else " ".join(f"({t})" for t in shown)
    return Filter(text, node)


def parse_filter(expression: str) -> Callable[[Record], bool]:
    """A per-record predicate for ``expression`` (:meth:`Filter.predicate`), for those
    that still filter one record at a time."""
    return compile_filter([expression]).predicate()


# -- the expression -----------------------------------------------------------------------


_OPERATORS = ("or", "and", "not")


class _Parser:
    """Recursive descent over the tokens of one expression (module docstring)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0

    def parse(self) -> _Node | None:
        if not self.tokens:
            return None
        node = self._or()
        if self.at < len(self.tokens):  # only a ')' stops the loops above early
            raise FilterError(f"unbalanced parentheses in {self.text!r}: ')' without '('")
        return node

    def _peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _keyword(self) -> str | None:
        token = self._peek()
        return token.lower() if token is not None and token.lower() in _OPERATORS else None

    def _operand_follows(self, operator: str) -> None:
        token = self._peek()
        if token is None or token == ")" or token.lower() in ("or", "and"):
            raise FilterError(f"{operator!r} needs a term after it in {self.text!r}")

    def _or(self) -> _Node:
        node = self._and()
        while self._keyword() == "or":
            self.at += 1
            self._operand_follows("or")
            node = _Or(node, self._and())
        return node

    def _and(self) -> _Node:
        node = self._not()
        while (token := self._peek()) is not None and token != ")" and self._keyword() != "or":
            if self._keyword() == "and":
                self.at += 1
                self._operand_follows("and")
            node = _And(node, self._not())
        return node

    def _not(self) -> _Node:
        if self._keyword() == "not":
            self.at += 1
            self._operand_follows("not")
            return _Not(self._not())
        return self._atom()

    def _atom(self) -> _Node:
        token = self.tokens[self.at]
        self.at += 1
        if token == "(":
            if self._peek() == ")":
                raise FilterError(f"empty parentheses in {self.text!r}")
            if self._peek() is None:
                raise FilterError(f"unbalanced parentheses in {self.text!r}: '(' is never "
                                  "closed")
            node = self._or()
            if self._peek() != ")":
                raise FilterError(f"unbalanced parentheses in {self.text!r}: '(' is never "
                                  "closed")
            self.at += 1
            return node
        if token == ")":
            raise FilterError(f"unbalanced parentheses in {self.text!r}: ')' without '('")
        if token.lower() in ("or", "and"):
            raise FilterError(f"{token.lower()!r} needs a term before it in {self.text!r}")
        return _term(token)


def _tokens(text: str) -> list[str]:
    """Words and parentheses; quotes keep spaces and parentheses in a word (and go), a
    ``~/regex/`` is one piece whatever it holds."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "()":
            out.append(c)
            i += 1
            continue
        word: list[str] = []
        while i < n and not text[i].isspace() and text[i] not in "()":
            c = text[i]
            if c in "\"'":
                end = text.find(c, i + 1)
                if end < 0:
                    raise FilterError(f"unclosed quote {c} in {text!r}")
                word.append(text[i + 1:end])
                i = end + 1
            elif c == "~" and text.startswith("/", i + 1):
                end = _regex_end(text, i + 2)
                word.append(text[i:end + 1])
                i = end + 1
            else:
                word.append(c)
                i += 1
        out.append("".join(word))
    return out


def _regex_end(text: str, i: int) -> int:
    """Where the ``/`` that closes a regex begun at ``i`` is (``\\/`` does not)."""
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "/":
            return i
        i += 1
    raise FilterError(f"a regex ~/.../ is not closed in {text!r}")


# -- terms ----------------------------------------------------------------------------------

_TERM = re.compile(r"([^=!<>~]*)(!=|<=|>=|=|<|>|~)(.*)", re.S)
_KEYWORDS = ("error", "anomaly", "gap")
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_EQUALITY = ("=", "!=")


def _term(token: str) -> _Node:
    found = _TERM.fullmatch(token)
    if found is None:  # a keyword, or a bare word: part of a PV name, or a pattern
        word = token.lower()
        if word in _KEYWORDS:
            return _KEYWORD_TERMS[word]()
        words = [v for v in token.split(",") if v]
        if not words:
            raise FilterError(f"no value in {token!r}")
        if any(_GLOB.search(v) for v in words):
            return _strings_term(["pv"], "=", _names_test(words, case=True))
        lowered = [w.lower() for w in words]
        return _Term(["pv"], lambda cols: cols.strings(
            "pv", lambda pv: any(w in pv.lower() for w in lowered)))
    key, op, value = found.groups()
    regex = op == "~" and len(value) > 1 and value.startswith("/") and value.endswith("/")
    values = [value] if regex else [v for v in value.split(",") if v]
    if not values:
        raise FilterError(f"no value in {token!r}")
    key = key.lower()
    make = _KEYS.get(_ALIASES.get(key, key))
    if make is None:
        near = difflib.get_close_matches(key, _KEYS, n=2, cutoff=0.6)
        raise FilterError(f"unknown filter key {key!r} in {token!r}; "
                          + (f"did you mean {', '.join(near)}? " if near else "")
                          + f"known: {', '.join(_KEYS)}")
    if op == "~":
        return _contains(_ALIASES.get(key, key), token, value)
    if op not in _EQUALITY and len(values) > 1:
        raise FilterError(f"{token}: a list of values takes = or != only")
    return make(_Spec(token, key, op, values))


class _Spec:
    """One ``key OP values`` term, as written."""

    def __init__(self, token: str, key: str, op: str, values: list[str]) -> None:
        self.token, self.key, self.op, self.values = token, key, op, values

    def fail(self, why: str) -> FilterError:
        return FilterError(f"{self.token}: {why}")

    def equality_only(self) -> None:
        if self.op not in _EQUALITY:
            raise self.fail(f"{self.key} takes =, != or ~, not {self.op}")


# -- strings

#: The column(s) each string key reads (``~`` runs over them).
_STRING_COLUMNS = {
    "pv": ("pv",), "command": ("command",), "host": ("src", "dst"),
    "transport": ("transport",), "sender": ("sender",), "data_type": ("data_type",),
    "status": ("status",), "severity": ("severity",), "alarm": ("alarm_status",),
    "value": ("value_text",),
}


def _contains(key: str, token: str, value: str) -> _Node:
    """``key~text`` (contains, in any case) or ``key~/regex/`` (a search, in any case)."""
    columns = _STRING_COLUMNS.get(key)
    if columns is None:
        raise FilterError(f"{token}: ~ is for text; {key} takes =, !=, <, <=, >, >=")
    if len(value) > 1 and value.startswith("/") and value.endswith("/"):
        try:
            pattern = re.compile(value[1:-1], re.IGNORECASE)
        except re.error as exc:
            raise FilterError(f"{token}: not a regular expression: {exc}") from None
        test: Callable[[str], bool] = lambda s: pattern.search(s) is not None  # noqa: E731
    else:
        words = [v.lower() for v in value.split(",") if v]
        test = lambda s: any(w in s.lower() for w in words)  # noqa: E731
    return _strings_term(columns, "=", test)


def _strings_term(columns: Sequence[str], op: str, test: Callable[[str], bool]) -> _Node:
    """Rows whose string in any of ``columns`` passes ``test`` (``=``), or that have
    strings there and none passes (``!=``)."""
    def evaluate(cols: _Columns) -> np.ndarray:
        hit = cols.strings(columns[0], test)
        for name in columns[1:]:
            hit |= cols.strings(name, test)
        if op == "=":
            return hit
        present = cols.present(columns[0])
        for name in columns[1:]:
            present &= cols.present(name)
        return present & ~hit

    return _Term(columns, evaluate)


def _names_test(values: Sequence[str], case: bool) -> Callable[[str], bool]:
    """A test of a string against names and shell patterns (the whole string)."""
    if not case:
        values = [v.upper() for v in values]
    exact = {v for v in values if not _GLOB.search(v)}
    globs = [v for v in values if _GLOB.search(v)]
    pattern = re.compile("|".join(fnmatch.translate(g) for g in globs)) if globs else None
    if case:
        return lambda s: s in exact or (pattern is not None and pattern.match(s) is not None)
    return lambda s: (s.upper() in exact
                      or (pattern is not None and pattern.match(s.upper()) is not None))


def _closest(name: str, known: Iterable[str]) -> list[str]:
    return difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)


def _checked(spec: _Spec, names: list[str], known: Sequence[str], what: str,
             listed: bool = True) -> None:
    """Each of ``names`` (upper case, patterns too) is, or matches, one of ``known``: a
    value that can never match is a mistake to report, not a filter that shows nothing.
    """
    for name in names:
        if _GLOB.search(name):
            if not any(fnmatch.fnmatchcase(k, name) for k in known):
                raise spec.fail(f"no {what} matches {name!r}; {what}s are "
                                f"{', '.join(known)}")
        elif name not in known:
            near = _closest(name, known)
            hint = f"did you mean {', '.join(near)}?" if near else ""
            if listed or not near:
                hint = (hint + " " if hint else "") + f"{what} is one of {', '.join(known)}"
            raise spec.fail(f"no {what} is called {name!r}; {hint}")


def _pv(spec: _Spec) -> _Node:
    spec.equality_only()
    return _strings_term(["pv"], spec.op, _names_test(spec.values, case=True))


#: What ``command=`` can name: the CA commands, and the records that are not messages
#: as :attr:`shark.extract.record.Record.command_name` names them.
_COMMANDS = (*(c.name for c in Command), "GAP", "UNDECODED", "OPEN", "CLOSE")


def _command(spec: _Spec) -> _Node:
    spec.equality_only()
    names = [v.upper().removeprefix("CA_PROTO_") for v in spec.values]
    for name in names:  # (the message the command line has given since the start)
        if not _GLOB.search(name) and name not in _COMMANDS:
            near = _closest(name, _COMMANDS)
            raise spec.fail(f"no command is called {name!r}; "
                            + (f"did you mean {', '.join(near)}?" if near
                               else f"commands are {', '.join(_COMMANDS)}"))
    _checked(spec, names, _COMMANDS, "command")
    return _strings_term(["command"], spec.op, _names_test(names, case=False))


def _host(spec: _Spec) -> _Node:
    spec.equality_only()
    globs = [v for v in spec.values if _GLOB.search(v.strip("[]")) and "[" not in v[:1]]
    plain = [v for v in spec.values if v not in globs]
    exact = {_endpoint(v) for v in plain if _has_port(v)}
    hosts = {_address(v.strip("[]")) for v in plain if not _has_port(v)}
    pattern = re.compile("|".join(fnmatch.translate(g.lower()) for g in globs)) if globs else None

    def test(endpoint: str) -> bool:
        if endpoint in exact:
            return True
        address = endpoint.rpartition(":")[0].strip("[]")
        if address in hosts:
            return True
        return pattern is not None and (pattern.match(endpoint.lower()) is not None
                                        or pattern.match(address.lower()) is not None)

    return _strings_term(["src", "dst"], spec.op, test)


def _address(text: str) -> str:
    """An IP address as records spell it (``inet_ntop``'s form: IPv6 compressed, in
    lower case), so that any spelling of the same address matches; other text as given."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _endpoint(text: str) -> str:
    """``ip:port`` or ``[ip]:port`` as records spell it."""
    host, _, port = text.rpartition(":")
    address = _address(host.strip("[]"))
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _has_port(value: str) -> bool:
    """``1.2.3.4:5064`` and ``[::1]:5064`` carry a port; ``::1`` and ``1.2.3.4`` do not."""
    if value.startswith("["):
        return "]:" in value
    return value.count(":") == 1


def _one_of(spec: _Spec, wanted: list[str], known: Sequence[str]) -> list[str]:
    """``wanted`` (lower case), each one of ``known`` or a pattern matching one."""
    for value in wanted:
        if not (value in known or _GLOB.search(value)
                and any(fnmatch.fnmatchcase(k, value) for k in known)):
            raise FilterError(f"{spec.key}={value}: {spec.key} is one of "
                              f"{', '.join(sorted(known))}")
    return wanted


def _transport(spec: _Spec) -> _Node:
    spec.equality_only()
    wanted = _one_of(spec, [v.lower() for v in spec.values], ("tcp", "udp"))
    return _strings_term(["transport"], spec.op, _names_test(wanted, case=False))


def _sender(spec: _Spec) -> _Node:
    spec.equality_only()
    wanted = _one_of(spec, [v.lower() for v in spec.values],
                     [r.name.lower() for r in Role])
    return _strings_term(["sender"], spec.op, _names_test(wanted, case=False))


_DATA_TYPES = tuple(t.dbr_name for t in DBRType)


def _data_type(spec: _Spec) -> _Node:
    spec.equality_only()
    names = []
    for value in spec.values:
        if value.isdigit():
            value = DBRType(int(value)).dbr_name if int(value) in DBRType._value2member_map_ \
                else f"DBR_UNKNOWN_{int(value)}"
            names.append(value)
            continue
        value = value.upper()
        names.append(value if value.startswith(("DBR_", "*", "?", "[")) else "DBR_" + value)
    _checked(spec, [n for n in names if not n.startswith("DBR_UNKNOWN_")], _DATA_TYPES,
             "data type", listed=False)
    return _strings_term(["data_type"], spec.op, _names_test(names, case=False))


# -- enumerations: status, severity, alarm

class _Enum:
    """Names with codes, as a column spells them: ``names`` by code, ``prefix`` that may
    be left out, ``unknown``: how a code without a name is spelt (``..._{code}``)."""

    def __init__(self, what: str, column: str, names: dict[str, int], prefix: str,
                 unknown: str, ordered: bool) -> None:
        self.what, self.column, self.names, self.prefix = what, column, names, prefix
        self.unknown, self.ordered = unknown, ordered

    def code_of(self, text: str) -> float:
        """The code a column's string stands for (NaN if none)."""
        code = self.names.get(text)
        if code is not None:
            return code
        if text.startswith(self.unknown):
            try:
                return int(text[len(self.unknown):])
            except ValueError:
                pass
        return np.nan

    def value(self, spec: _Spec, text: str) -> int | str:
        """A code, or a pattern (upper case, prefixed) for a value as written."""
        try:
            return int(text)
        except ValueError:
            pass
        name = text.upper()
        if self.prefix and not name.startswith((self.prefix, "*", "?", "[")):
            name = self.prefix + name
        _checked(spec, [name], list(self.names), self.what, listed=len(self.names) <= 25)
        return self.names[name] if name in self.names else name


_STATUS = _Enum("status", "status", {e.name: int(e) for e in ECA}, "ECA_",
                "ECA_UNKNOWN_", ordered=False)
_SEVERITY = _Enum("severity", "severity", {s.name: int(s) for s in AlarmSeverity}, "",
                  "UNKNOWN_SEVERITY_", ordered=True)
_ALARM = _Enum("alarm status", "alarm_status", {s.name: int(s) for s in AlarmStatus}, "",
               "UNKNOWN_STATUS_", ordered=False)


def _enum_term(spec: _Spec, enum: _Enum) -> _Node:
    column = enum.column
    if spec.op not in _EQUALITY and not enum.ordered:
        raise spec.fail(f"{spec.key} takes =, != or ~, not {spec.op}")
    if spec.key == "status" and any(v.lower() == "failed" for v in spec.values):
        if len(spec.values) > 1:
            raise spec.fail("failed stands alone")
        def failed(text: str) -> bool:
            code = enum.code_of(text)
            return not np.isnan(code) and int(code) & 1 == 0

        return _strings_term([column], spec.op, failed)
    wanted = [enum.value(spec, v) for v in spec.values]
    if spec.op in _COMPARE:
        (bound,) = wanted
        if isinstance(bound, str):
            raise spec.fail(f"{spec.key}{spec.op} takes a name, not a pattern")
        compare = _COMPARE[spec.op]

        def ordered(cols: _Columns) -> np.ndarray:
            codes, valid = cols.lookup(column, enum.code_of)
            return valid & compare(np.nan_to_num(codes), bound)

        return _Term([column], ordered)
    codes = {w for w in wanted if isinstance(w, int)}
    patterns = _names_test([w for w in wanted if isinstance(w, str)] or ["\0"], case=False)
    return _strings_term([column], spec.op,
                         lambda s: enum.code_of(s) in codes or patterns(s))


# -- numbers

_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_INTEGER = re.compile(r"[-+]?\d+")
#: Units of durations, in seconds.
_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9}
_UNIT_NAMES = "s, ms, us (µs), ns"


def _quantity(spec: _Spec, text: str, units: bool) -> tuple[float, str]:
    """(number, unit as written) of ``text``; with ``units``, in seconds."""
    found = _NUMBER.match(text)
    if found is None:
        raise spec.fail(f"{text!r} is not a number")
    number, unit = float(found.group()), text[found.end():]
    if not unit:
        return number, ""
    if not units:
        raise spec.fail(f"{text!r} is not a number")
    scale = _UNITS.get(unit)
    if scale is None:
        raise spec.fail(f"unknown unit {unit!r}; units are {_UNIT_NAMES}")
    return number * scale, unit


#: One alternative of a numeric term: (low, high) both included; equal for a number.
Interval = tuple[Any, Any]


def _intervals(spec: _Spec, parse: Callable[[str, str], Any]) -> list[Interval]:
    """The values of ``spec`` as intervals; ``parse(text, unit of the range's end)``."""
    out = []
    for value in spec.values:
        low, dots, high = value.partition("..")
        if dots:
            if not low or not high:
                raise spec.fail(f"a range is low..high, not {value!r}")
            if spec.op not in _EQUALITY:
                raise spec.fail(f"a range takes = or !=, not {spec.op}")
            end = parse(high, "")
            out.append((parse(low, _unit_of(high)), end))
        else:
            one = parse(value, "")
            out.append((one, one))
    return out


def _unit_of(text: str) -> str:
    found = _NUMBER.match(text)
    return text[found.end():] if found else ""


def _numeric_mask(values: np.ndarray, valid: np.ndarray, op: str,
                  intervals: list[Interval]) -> np.ndarray:
    """The rows whose number passes ``op`` against ``intervals`` (module docstring)."""
    if op in _COMPARE:
        return valid & _COMPARE[op](values, intervals[0][0])
    hit = np.zeros(len(values), dtype=bool)
    for low, high in intervals:
        hit |= (values == low) if low == high else (values >= low) & (values <= high)
    return valid & (hit if op == "=" else ~hit)


def _number_term(column: str, integer: bool, units: bool = False
                 ) -> Callable[[_Spec], _Node]:
    def make(spec: _Spec) -> _Node:
        def parse(text: str, unit: str) -> float:
            if integer:
                if _INTEGER.fullmatch(text) is None:
                    raise spec.fail(f"{text!r} is not a whole number")
                return int(text)
            return _quantity(spec, text + ("" if _unit_of(text) else unit), units)[0]

        intervals = _intervals(spec, parse)

        def evaluate(cols: _Columns) -> np.ndarray:
            values, valid = cols.numbers(column)
            return _numeric_mask(values, valid, spec.op, intervals)

        return _Term([column], evaluate)

    return make


def _old_style(what: str) -> Callable[[_Spec], _Node]:
    """Port and circuit: whole numbers, refused with the message they always had."""
    def make(spec: _Spec) -> _Node:
        for value in spec.values:
            for end in value.split("..", 1):
                try:
                    number = int(end)
                except ValueError:
                    raise FilterError(f"not a {what} number in {spec.values}") from None
                if what == "port" and not 0 <= number < 65536:
                    raise FilterError(f"not a {what} number in {spec.values}")
        if what == "circuit":
            return _number_term("circuit", integer=True)(spec)
        return _port(spec)

    return make


def _port(spec: _Spec) -> _Node:
    intervals = _intervals(spec, lambda text, _unit: int(text))

    def port_of(endpoint: str) -> float:
        try:
            return int(endpoint.rpartition(":")[2])
        except ValueError:
            return np.nan

    def evaluate(cols: _Columns) -> np.ndarray:
        src, src_valid = cols.lookup("src", port_of)
        dst, dst_valid = cols.lookup("dst", port_of)
        if spec.op == "!=":  # neither end's port
            equal = "="
            hit = (_numeric_mask(src, src_valid, equal, intervals)
                   | _numeric_mask(dst, dst_valid, equal, intervals))
            return src_valid & dst_valid & ~hit
        return (_numeric_mask(src, src_valid, spec.op, intervals)
                | _numeric_mask(dst, dst_valid, spec.op, intervals))

    return _Term(["src", "dst"], evaluate)


def _value(spec: _Spec) -> _Node:
    numeric = [v for v in spec.values if _NUMBER.fullmatch(v.partition("..")[0])
               and (not v.partition("..")[2] or _NUMBER.fullmatch(v.partition("..")[2]))]
    texts = [v for v in spec.values if v not in numeric]
    if texts and spec.op in _COMPARE:
        raise spec.fail(f"{spec.key}{spec.op} takes a number, not {texts[0]!r}")
    intervals = _intervals(_Spec(spec.token, spec.key, spec.op, numeric),
                           lambda text, _unit: float(text)) if numeric else []
    test = _names_test(texts, case=True) if texts else None

    def evaluate(cols: _Columns) -> np.ndarray:
        hit = np.zeros(cols.n, dtype=bool)
        present = np.zeros(cols.n, dtype=bool)
        if intervals:
            values, valid = cols.numbers("value")
            op = "=" if spec.op == "!=" else spec.op
            hit |= _numeric_mask(values, valid, op, intervals)
            present |= valid
        if test is not None:
            hit |= cols.strings("value_text", test)
            present |= cols.present("value_text")
        return present & ~hit if spec.op == "!=" else hit

    return _Term(["value"] * bool(numeric) + ["value_text"] * bool(texts), evaluate)


# -- time

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


def _time(spec: _Spec) -> _Node:
    def parse(text: str, unit: str) -> tuple[str, float | int]:
        if _ISO.match(text):
            try:
                when = datetime.datetime.fromisoformat(text)
            except ValueError:
                raise spec.fail(f"{text!r} is not a date and time "
                                "(YYYY-MM-DDTHH:MM:SS[.ffffff][+HH:MM])") from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=datetime.timezone.utc)
            delta = when - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
            ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 \
                + delta.microseconds * 1000
            return ("absolute", ns)
        seconds, _ = _quantity(spec, text + ("" if _unit_of(text) else unit), True)
        return ("relative", seconds)

    intervals = _intervals(spec, parse)

    def evaluate(cols: _Columns) -> np.ndarray:
        values, valid = cols.numbers("time")
        in_ns = "time" in cols.names and pa.types.is_timestamp(
            cols.batch.schema.field("time").type)
        if not in_ns:
            values = values.astype(np.float64)
        start = _start(cols, values, valid, in_ns)
        bounds = [(_bound(low, start, in_ns), _bound(high, start, in_ns))
                  for low, high in intervals]
        return _numeric_mask(values, valid, spec.op, bounds)

    return _Term(["time"], evaluate)


def _start(cols: _Columns, values: np.ndarray, valid: np.ndarray, in_ns: bool) -> float | int:
    """What relative times count from, in the column's unit."""
    if cols.start is not None:
        if not in_ns:
            return cols.start
        whole = np.floor(cols.start)  # as shark.tables.schema.seconds_to_ns does
        return int(whole) * 1_000_000_000 + int(np.rint((cols.start - whole) * 1e9))
    first = np.flatnonzero(valid[:1] if valid[:1].all() else valid)
    return values[first[0]] if len(first) else 0


def _bound(value: tuple[str, float | int], start: float | int, in_ns: bool) -> float | int:
    kind, number = value
    if kind == "absolute":
        return number if in_ns else number / 1e9
    if in_ns:
        return start + int(round(number * 1e9))
    return start + number


# -- keywords

def _error() -> _Node:
    def evaluate(cols: _Columns) -> np.ndarray:
        return problem_mask(cols.batch, cols.midstream)

    return _Term(PROBLEM_COLUMNS, evaluate)


def _anomaly() -> _Node:
    return _Term(["anomaly"], lambda cols: cols.present("anomaly"))


def _gap() -> _Node:
    return _strings_term(["command"], "=", lambda c: c in ("GAP", "UNDECODED"))


_KEYWORD_TERMS: dict[str, Callable[[], _Node]] = {
    "error": _error, "anomaly": _anomaly, "gap": _gap,
}


_KEYS: dict[str, Callable[[_Spec], _Node]] = {
    "pv": _pv,
    "command": _command,
    "host": _host,
    "port": _old_style("port"),
    "circuit": _old_style("circuit"),
    "transport": _transport,
    "sender": _sender,
    "data_type": _data_type,
    "count": _number_term("data_count", integer=True),
    "status": lambda spec: _enum_term(spec, _STATUS),
    "severity": lambda spec: _enum_term(spec, _SEVERITY),
    "alarm": lambda spec: _enum_term(spec, _ALARM),
    "latency": _number_term("latency", integer=False, units=True),
    "value": _value,
    "frame": _number_term("frame", integer=True),
    "time": _time,
}
#: Other names of keys: the columns' own.
_ALIASES = {"data_count": "count", "alarm_status": "alarm", "type": "data_type"}

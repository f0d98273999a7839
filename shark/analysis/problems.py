"""What counts as an error, decided once: the problems a record shows.

Every view of errors asks this module: the ``errors`` table and so ``shark stats``, the
TUI's Errors pane, the red lines of its log, its ``e``/``E`` keys and its details pane.
A record shows a problem (:class:`ProblemKind`) when it is

- the server's ERROR message, a refused channel (CREATE_CH_FAIL), a name the server
  said it does not have (NOT_FOUND: sent only when the search asked for a reply), a
  channel the server disconnected (SERVER_DISCONN);
- a reply whose ECA status is not ECA_NORMAL (READ_NOTIFY, WRITE_NOTIFY, EVENT_ADD);
- a TCP reset (a CLOSE record with reason ``rst``; a reset closes both directions of
  its circuit, and :class:`ProblemJudge` counts it once);
- bytes missing from the capture (GAP) or that could not be decoded (UNDECODED);
- something the circuit state found odd (``record.anomaly``: ANOMALY). A record can
  show this and one of the above at once: then it shows two problems.

**Circuits joined mid-stream.** When the capture began after a circuit was set up (its
OPEN record says ``mid-stream``, not ``syn``), what was set up before is unknown: the
anomalies that follow from that alone (:data:`MIDSTREAM_ANOMALIES`: an unknown SID,
CID or subscription, a response without its request) and the bytes skipped to find the
first message boundary are *not* problems there. They say when the capture started,
not that anything went wrong, and counting them would make every capture of a running
system look broken and bury the real errors under them. The same anomalies on a
circuit whose start was captured are problems. (The records themselves are still
listed: the log and the ``messages`` table show them.)

Beacon anomalies (a restarted server, lost beacons) are judged apart, by libca's rules
(:mod:`decoder.beacons`), and listed in their own views, not as errors.

**Two forms of one judge.** :func:`problems` judges a :class:`Record`; :func:`problem_mask`
judges whole columns of the ``messages`` table (or of a batch made from records, with its
OPEN and CLOSE rows), the same rules spelt over the command, status, anomaly, reason and
circuit columns, without Python code per row: what ``shark read --filter error`` uses.
The tests hold the two to the same answer on every capture.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Container
from enum import Enum
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from decoder import ECA, Command, DecodeError
from decoder import messages as m
from decoder.status import eca_name
from shark.analysis.columns import numbers, passing, string_codes
from shark.extract.record import CLOSE, ERROR, GAP, OPEN, Record

__all__ = [
    "ALWAYS", "MIDSTREAM_ANOMALIES", "NOT_MESSAGES", "PROBLEM_COLUMNS", "STATUS_REPLIES",
    "Problem", "ProblemJudge", "ProblemKind", "is_problem", "problem_mask", "problems",
]


class ProblemKind(Enum):
    """What is wrong. The values are what the ``errors`` table's ``kind`` column says,
    but for FAILED_STATUS, which it names by the reply's command."""

    ERROR = "ERROR"
    CREATE_CH_FAIL = "CREATE_CH_FAIL"
    NOT_FOUND = "NOT_FOUND"
    SERVER_DISCONN = "SERVER_DISCONN"
    FAILED_STATUS = "FAILED_STATUS"
    RESET = "RST"
    GAP = "GAP"
    UNDECODED = "UNDECODED"
    ANOMALY = "ANOMALY"


class Problem(NamedTuple):
    """One problem a record shows."""

    kind: ProblemKind
    #: The ``errors`` table's kind: the message's command name, else the kind's value.
    label: str
    #: The ``errors`` table's detail: the server's message, or what happened.
    detail: str | None
    #: One line for people (the TUI's Errors pane and details).
    text: str


#: Messages that are problems whatever they carry, and what they mean.
ALWAYS: dict[type, ProblemKind] = {
    m.ErrorResponse: ProblemKind.ERROR,
    m.CreateChFailResponse: ProblemKind.CREATE_CH_FAIL,
    m.NotFoundResponse: ProblemKind.NOT_FOUND,
    m.ServerDisconnResponse: ProblemKind.SERVER_DISCONN,
}
_MEANING = {
    m.CreateChFailResponse: "the server refused to create the channel",
    m.NotFoundResponse: "the server does not have the name",
    m.ServerDisconnResponse: "the server disconnected the channel",
}
#: Replies that are problems when their ECA status (``parameter1``) is not ECA_NORMAL.
STATUS_REPLIES = frozenset({m.ReadNotifyResponse, m.WriteNotifyResponse, m.EventAddResponse})
#: Records without a message that can be problems (CLOSE only when a reset).
NOT_MESSAGES = frozenset({GAP, ERROR, CLOSE})
#: Anomalies that only mean the capture began after the circuit did.
MIDSTREAM_ANOMALIES = frozenset({
    "unknown SID", "unknown CID", "unknown subscription", "response without request",
})
#: How :mod:`shark.extract.reader` names the bytes skipped at the start of a joined
#: connection.
_JOINED = "capture starts inside the connection"
_NORMAL = int(ECA.ECA_NORMAL)
_NONE: tuple[Problem, ...] = ()


def problems(record: Record, midstream: Container[int] = ()) -> tuple[Problem, ...]:
    """The problems ``record`` shows (usually none); ``midstream``: the circuits the
    capture joined after they were set up (module docstring)."""
    message = record.message
    if message is None:
        kind = record.kind
        if kind is GAP:
            return (Problem(ProblemKind.GAP, "GAP", record.reason, record.reason),)
        if kind is ERROR:
            if record.circuit in midstream and record.reason.startswith(_JOINED):
                return _NONE
            return (Problem(ProblemKind.UNDECODED, "UNDECODED", record.reason, record.reason),)
        if kind is CLOSE and record.reason == "rst":
            return (Problem(ProblemKind.RESET, "RST", "TCP reset", "TCP reset"),)
        return _NONE
    found: tuple[Problem, ...] = _NONE
    cls = type(message)
    kind = ALWAYS.get(cls)
    if kind is ProblemKind.ERROR:
        found = (_error(message),)
    elif kind is not None:
        found = (Problem(kind, message.command_name, None, _MEANING[cls]),)
    elif cls in STATUS_REPLIES and message.parameter1 != _NORMAL:
        found = (Problem(ProblemKind.FAILED_STATUS, message.command_name, None,
                         eca_name(message.parameter1)),)
    anomaly = record.anomaly
    if anomaly is not None and not (
            anomaly.kind in MIDSTREAM_ANOMALIES and record.circuit in midstream):
        text = f"{anomaly.kind}: {anomaly.detail}"
        found += (Problem(ProblemKind.ANOMALY, "ANOMALY", text, text),)
    return found


def is_problem(record: Record, midstream: Container[int] = ()) -> bool:
    """Whether ``record`` shows a problem: :func:`problems`, quicker for the common
    record that shows none (the TUI asks for every line it draws)."""
    message = record.message
    if message is not None:
        cls = type(message)
        if record.anomaly is None and cls not in ALWAYS and not (
                cls in STATUS_REPLIES and message.parameter1 != _NORMAL):
            return False
    elif record.kind not in NOT_MESSAGES:
        return False
    return bool(problems(record, midstream))


def _error(message: m.ErrorResponse) -> Problem:
    """An ERROR message: its text, or why that could not be read (it is still an error)."""
    try:
        detail = message.error_message
    except DecodeError as exc:
        detail = str(exc)
        return Problem(ProblemKind.ERROR, "ERROR", detail, message.status_name)
    return Problem(ProblemKind.ERROR, "ERROR", detail, f"{message.status_name}: {detail}")


class ProblemJudge:
    """:func:`problems` for records in capture order: it learns which circuits were
    joined mid-stream from their OPEN records, and counts a reset once, not once per
    direction it closes.

    ``max_circuits`` bounds memory: beyond it, the mid-stream circuits are forgotten
    (their later anomalies then count as problems).
    """

    def __init__(self, max_circuits: int = 100_000) -> None:
        #: Circuits the capture joined after they were set up.
        self.midstream: set[int] = set()
        self.max_circuits = max_circuits
        #: (circuit, frame) of the last reset.
        self._reset: tuple[int | None, int] | None = None

    def see(self, record: Record) -> tuple[Problem, ...]:
        """The problems ``record`` shows, having learnt what it tells of its circuit."""
        kind = record.kind
        if kind is OPEN:
            if record.reason != "syn":
                self.midstream.add(record.circuit)
                if len(self.midstream) > self.max_circuits:
                    self.midstream.clear()
            return _NONE
        found = problems(record, self.midstream)
        if kind is CLOSE and found:
            reset = (record.circuit, record.frame)
            if reset == self._reset:
                return _NONE
            self._reset = reset
        return found


# -- the column form -------------------------------------------------------------------

#: The columns :func:`problem_mask` reads.
PROBLEM_COLUMNS = frozenset({"command", "status", "anomaly", "reason", "circuit"})
#: Command names of the messages that are problems whatever they carry (no other
#: message class shares their commands), and of the replies judged by their status.
_ALWAYS_COMMANDS = frozenset(Command(cls.command).name for cls in ALWAYS)
_STATUS_COMMANDS = frozenset(Command(cls.command).name for cls in STATUS_REPLIES)
#: What the ``anomaly`` column says of a value that could not be decoded: not an
#: anomaly of the circuit (``record.anomaly``), so not a problem.
_UNDECODABLE_VALUE = "undecodable value: "
_NORMAL_NAME = ECA.ECA_NORMAL.name


def problem_mask(batch: pa.RecordBatch | pa.Table,
                 midstream: Collection[int] = ()) -> np.ndarray:
    """Bool per row of ``batch`` (columns of the ``messages`` table): whether the row
    shows a problem, exactly as :func:`problems` judges the record it was made from.

    ``midstream``: the circuits the capture joined after they were set up; the batch's
    own OPEN rows (a batch made from records has them) add theirs. A column the batch
    lacks counts as null."""
    n = batch.num_rows
    names = set(batch.schema.names)

    def strings(name: str, test: Callable[[str], bool]) -> np.ndarray:
        return passing(batch.column(name), test) if name in names else np.zeros(n, bool)

    command = batch.column("command") if "command" in names else None
    if command is None:
        return np.zeros(n, dtype=bool)
    commands, codes = string_codes(command)
    kinds = np.array([_command_kind(c) for c in commands] + [0], dtype=np.int8)[codes]
    found = kinds == 1  # ALWAYS, and GAP
    replies = kinds == 2
    if replies.any():
        found |= replies & strings("status", lambda s: s != _NORMAL_NAME)
    if "circuit" in names:
        circuit, has_circuit = numbers(batch.column("circuit"))
    else:
        circuit, has_circuit = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    opens = kinds == 4
    joined = set(midstream)
    if opens.any():
        fresh = opens & has_circuit & ~strings("reason", lambda r: r == "syn")
        joined.update(circuit[fresh].tolist())
    on_joined = has_circuit & np.isin(circuit, np.fromiter(joined, np.int64, len(joined)))
    undecoded = kinds == 3
    if undecoded.any():
        skipped = strings("reason", lambda r: r.startswith(_JOINED))
        found |= undecoded & ~(on_joined & skipped)
    closes = kinds == 5
    if closes.any():
        found |= closes & strings("reason", lambda r: r == "rst")
    anomaly = strings("anomaly", lambda a: not a.startswith(_UNDECODABLE_VALUE))
    if anomaly.any():
        setup = strings("anomaly", lambda a: a.partition(": ")[0] in MIDSTREAM_ANOMALIES)
        found |= anomaly & ~(setup & on_joined)
    return found


def _command_kind(name: str | None) -> int:
    """What a command name says of a row: 1 a problem whatever it holds, 2 a reply
    judged by its status, 3 UNDECODED, 4 OPEN, 5 CLOSE, 0 none of these."""
    if name in _ALWAYS_COMMANDS or name == "GAP":
        return 1
    return (2 if name in _STATUS_COMMANDS else 3 if name == "UNDECODED"
            else 4 if name == "OPEN" else 5 if name == "CLOSE" else 0)

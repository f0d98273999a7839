"""The ``errors`` table: everything that went wrong, one row each, with the PV and the
request it answers. What went wrong is :mod:`shark.analysis.problems`' to say."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from decoder import ECA, DecodeError
from decoder import messages as m
from decoder.status import eca_name
from shark.analysis.problems import (
    ALWAYS,
    NOT_MESSAGES,
    STATUS_REPLIES,
    Problem,
    ProblemJudge,
)
from shark.extract.record import OPEN, Record
from shark.tables.aggregate import Aggregate, Finished
from shark.tables.chunk import Chunk, Vocabularies, form_mask
from shark.tables.schema import (
    CATEGORY,
    FLOAT,
    INT64,
    NINT64,
    NUINT32,
    TEXT,
    TIME,
    Column,
    TableSchema,
)

__all__ = ["ERRORS", "Errors"]

ERRORS = TableSchema("errors", "one row per error: ERROR, CREATE_CH_FAIL, NOT_FOUND, "
                               "replies with a failure status, SERVER_DISCONN, TCP resets, "
                               "gaps, undecodable bytes and protocol anomalies (see "
                               "shark.analysis.problems)", [
    Column("frame", INT64, "capture frame"),
    Column("time", TIME, "capture time"),
    Column("kind", CATEGORY, "ERROR, CREATE_CH_FAIL, NOT_FOUND, READ_NOTIFY, WRITE_NOTIFY, "
                             "EVENT_ADD (failure status), SERVER_DISCONN, RST, GAP, "
                             "UNDECODED, ANOMALY"),
    Column("circuit", NUINT32, "TCP circuit, null for UDP"),
    Column("src", CATEGORY, "who sent it (for RST, one end: which end reset is not known)"),
    Column("dst", CATEGORY, "to whom (for RST, the other end)"),
    Column("pv", CATEGORY, "PV concerned, where known"),
    Column("status", CATEGORY, "ECA status"),
    Column("request", CATEGORY, "command of the request it answers"),
    Column("request_frame", NINT64, "frame of that request, when captured"),
    Column("latency", FLOAT, "seconds since that request"),
    Column("detail", TEXT, "the server's message, or what happened"),
])

#: Records that may show a problem whatever their status (and OPEN, which tells the judge
#: of circuits joined mid-stream): the candidates, before the judge has its say.
_CANDIDATES = form_mask(lambda f: f in ALWAYS or f in NOT_MESSAGES or f is OPEN)
#: Replies that show a problem when their status is not ECA_NORMAL.
_REPLIES = form_mask(lambda f: f in STATUS_REPLIES)


class Errors(Aggregate):
    """The newest ``max_rows`` errors: the problems :class:`ProblemJudge` finds."""

    schemas = (ERRORS,)

    def __init__(self, vocabularies: Vocabularies, max_rows: int) -> None:
        super().__init__(vocabularies, max_rows)
        self._errors = Finished(max_rows)
        self._judge = ProblemJudge()
        #: The circuits the capture joined after they were set up (the judge's).
        self.midstream = self._judge.midstream

    def update(self, chunk: Chunk) -> None:
        failed = chunk.of_form(_REPLIES) & (chunk.eca != ECA.ECA_NORMAL)
        rows = set(np.flatnonzero(chunk.of_form(_CANDIDATES) | failed).tolist())
        rows.update(chunk.anomalies)
        records = chunk.records
        see = self._judge.see
        for row in sorted(rows):
            record = records[row]
            for problem in see(record):
                self._add(record, problem)

    def _add(self, record: Record, problem: Problem) -> None:
        message = record.message
        status = eca_name(message.status) if hasattr(type(message), "status_name") else None
        request = record.request
        if request is not None:
            command, frame = request.command_name, request.frame
        else:
            command, frame = _quoted(message), None
        self._errors.add((record.frame, record.time, problem.label, record.circuit, record.src,
                          record.dst, record.pv, status, command, frame, record.latency,
                          problem.detail))

    def rows(self, name: str) -> Iterable[tuple]:
        return self._errors.rows


def _quoted(message: m.Message | None) -> str | None:
    """The command an ERROR quotes the header of, when its request was not captured."""
    if type(message) is not m.ErrorResponse:
        return None
    try:
        return message.original_request.command_name
    except DecodeError:
        return None

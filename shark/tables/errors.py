"""The ``errors`` table: everything that went wrong, one row each, with the PV and the
request it answers."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from decoder import ECA, DecodeError
from decoder import messages as m
from decoder.status import eca_name
from shark.extract.record import CLOSE, ERROR, GAP, Record
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
                               "gaps, undecodable bytes and protocol anomalies", [
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

#: Forms that are errors whatever they carry.
_ALWAYS = form_mask(lambda f: f in (m.ErrorResponse, m.CreateChFailResponse,
                                    m.NotFoundResponse, m.ServerDisconnResponse, GAP, ERROR))
#: Replies that are errors when their status is not ECA_NORMAL.
_REPLIES = form_mask(lambda f: f in (m.ReadNotifyResponse, m.WriteNotifyResponse,
                                     m.EventAddResponse))
_RESETS = form_mask(lambda f: f is CLOSE)
_KIND = {GAP: "GAP", ERROR: "UNDECODED", CLOSE: "RST"}


class Errors(Aggregate):
    """The newest ``max_rows`` errors."""

    schemas = (ERRORS,)

    def __init__(self, vocabularies: Vocabularies, max_rows: int) -> None:
        super().__init__(vocabularies, max_rows)
        self._errors = Finished(max_rows)
        #: (circuit, frame) of the last reset: it closes both directions, one row says so.
        self._reset: tuple[int, int] | None = None

    def update(self, chunk: Chunk) -> None:
        failed = chunk.of_form(_REPLIES) & (chunk.eca != ECA.ECA_NORMAL)
        rows = np.flatnonzero(chunk.of_form(_ALWAYS) | failed | chunk.of_form(_RESETS))
        found = [(row, False) for row in rows.tolist()]
        found += [(row, True) for row in chunk.anomalies]
        records = chunk.records
        for row, anomaly in sorted(found):
            record = records[row]
            if anomaly:
                self._add(record, "ANOMALY",
                          f"{record.anomaly.kind}: {record.anomaly.detail}")
            elif record.kind is CLOSE:
                if record.reason == "rst" and self._reset != (record.circuit, record.frame):
                    self._reset = (record.circuit, record.frame)
                    self._add(record, "RST", "TCP reset")
            elif record.message is None:
                self._add(record, _KIND[record.kind], record.reason)
            else:
                self._add(record, record.message.command_name, _detail(record.message))

    def _add(self, record: Record, kind: str, detail: str | None) -> None:
        message = record.message
        status = eca_name(message.status) if hasattr(type(message), "status_name") else None
        request = record.request
        if request is not None:
            command, frame = request.command_name, request.frame
        else:
            command, frame = _quoted(message), None
        self._errors.add((record.frame, record.time, kind, record.circuit, record.src,
                          record.dst, record.pv, status, command, frame, record.latency,
                          detail))

    def rows(self, name: str) -> Iterable[tuple]:
        return self._errors.rows


def _detail(message: m.Message) -> str | None:
    if type(message) is m.ErrorResponse:
        try:
            return message.error_message
        except DecodeError as exc:
            return str(exc)
    return None


def _quoted(message: m.Message | None) -> str | None:
    """The command an ERROR quotes the header of, when its request was not captured."""
    if type(message) is not m.ErrorResponse:
        return None
    try:
        return message.original_request.command_name
    except DecodeError:
        return None

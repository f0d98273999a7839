"""The ``circuits`` table: one row per TCP circuit."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from decoder import Role
from decoder import messages as m
from shark.extract.record import CLOSE, OPEN, Record
from shark.tables.aggregate import Aggregate, Finished, client_server
from shark.tables.chunk import NOT_MESSAGE, Chunk, Vocabularies, form_mask
from shark.tables.grouping import group
from shark.tables.schema import (
    CATEGORY,
    INT64,
    NUINT16,
    NUINT32,
    TIME,
    UINT32,
    Column,
    TableSchema,
)

__all__ = ["CIRCUITS", "Circuits"]

CIRCUITS = TableSchema("circuits", "one row per TCP circuit", [
    Column("circuit", UINT32, "circuit number (from 1, in order of first appearance)"),
    Column("client", CATEGORY, "client's ip:port"),
    Column("server", CATEGORY, "server's ip:port"),
    Column("start", TIME, "SYN, or first record of a circuit joined mid-stream"),
    Column("end", TIME, "when both directions had ended, or the reset; null if open"),
    Column("ended", CATEGORY, "how the first direction ended: FIN, RST, capture end "
                              "(still open when the capture stopped), reused"),
    Column("closed_by", CATEGORY, "client or server: who ended first (null for a reset: "
                                  "which end sent it is not known)"),
    Column("client_version", NUINT32, "CA minor version of the client (VERSION; 32 bits, as "
                                      "an extended header can carry)"),
    Column("server_version", NUINT32, "CA minor version of the server"),
    Column("priority", NUINT16, "circuit priority the client asked for"),
    Column("user", CATEGORY, "client's user name (CLIENT_NAME)"),
    Column("host", CATEGORY, "client's host name (HOST_NAME)"),
    Column("messages_to_server", INT64, "messages client to server"),
    Column("bytes_to_server", INT64, "bytes of those messages"),
    Column("messages_to_client", INT64, "messages server to client"),
    Column("bytes_to_client", INT64, "bytes of those messages"),
    Column("channels", INT64, "CREATE_CHAN requests"),
    Column("server_disconns", INT64, "channels the server dropped (SERVER_DISCONN)"),
])

_ENDED = {"fin": "FIN", "rst": "RST", "end of capture": "capture end", "reused": "reused"}
_EVENTS = form_mask(lambda f: f in (m.VersionRequest, m.VersionResponse, m.ClientNameRequest,
                                    m.HostNameRequest, m.CreateChanRequest,
                                    m.ServerDisconnResponse, CLOSE))


class _Circuit:
    __slots__ = (
        "number", "client", "server", "start", "end", "ended", "closed_by", "client_version",
        "server_version", "priority", "user", "host", "traffic", "channels",
        "server_disconns", "closes", "sure",
    )

    def __init__(self, number: int, record: Record) -> None:
        self.number = number
        #: Whether client and server are known (the handshake or a message's sender said).
        self.sure = record.kind is OPEN and record.reason == "syn" or record.sender is not None
        if record.kind is OPEN:
            self.client, self.server = record.src, record.dst
        else:
            self.client, self.server = client_server(record)
        self.start = record.time
        self.end = self.ended = self.closed_by = None
        self.client_version = self.server_version = self.priority = None
        self.user = self.host = None
        #: messages and bytes to the server, then to the client.
        self.traffic = [0, 0, 0, 0]
        self.channels = self.server_disconns = self.closes = 0

    def row(self) -> tuple:
        return (self.number, self.client, self.server, self.start, self.end, self.ended,
                self.closed_by, self.client_version, self.server_version, self.priority,
                self.user, self.host, *self.traffic, self.channels, self.server_disconns)


class Circuits(Aggregate):
    schemas = (CIRCUITS,)

    def __init__(self, vocabularies: Vocabularies, max_rows: int) -> None:
        super().__init__(vocabularies, max_rows)
        self._live: dict[int, _Circuit] = {}
        self._finished = Finished(max_rows)

    def update(self, chunk: Chunk) -> None:
        tcp = np.flatnonzero(chunk.circuit)
        if not len(tcp):
            return
        records = chunk.records
        _, numbers, first = group(chunk.circuit[tcp])
        for number, row in zip(numbers.tolist(), tcp[first].tolist(), strict=True):
            if number not in self._live:
                self._live[number] = _Circuit(number, records[row])
        self._count_traffic(chunk, tcp)
        for row in tcp[_EVENTS[chunk.form[tcp]]]:
            self._event(records[row])

    def _count_traffic(self, chunk: Chunk, tcp: np.ndarray) -> None:
        sender = chunk.sender[tcp]
        rows = tcp[~NOT_MESSAGE[chunk.form[tcp]] & (sender >= 0) & (sender <= Role.SERVER)]
        key = chunk.circuit[rows] * 2 + chunk.sender[rows]
        inverse, keys, _ = group(key)
        counts = np.bincount(inverse, minlength=len(keys))
        sizes = np.bincount(inverse, weights=chunk.size_bytes[rows], minlength=len(keys))
        for key, count, size in zip(keys.tolist(), counts.tolist(), sizes.tolist(),
                                    strict=True):
            circuit = self._live.get(key // 2)
            if circuit is not None:
                traffic = circuit.traffic
                traffic[key % 2 * 2] += count
                traffic[key % 2 * 2 + 1] += int(size)

    def _event(self, record: Record) -> None:
        circuit = self._live.get(record.circuit)
        if circuit is None:
            return
        message = record.message
        kind = type(message)
        if not circuit.sure and record.sender is not None:
            circuit.client, circuit.server = client_server(record)
            circuit.sure = True
        if kind is m.VersionRequest:
            circuit.client_version, circuit.priority = message.version, message.priority
        elif kind is m.VersionResponse:
            circuit.server_version = message.version
        elif kind is m.ClientNameRequest:
            circuit.user = message.name
        elif kind is m.HostNameRequest:
            circuit.host = message.name
        elif kind is m.CreateChanRequest:
            circuit.channels += 1
        elif kind is m.ServerDisconnResponse:
            circuit.server_disconns += 1
        elif record.kind is CLOSE:
            self._close(circuit, record)

    def _close(self, circuit: _Circuit, record: Record) -> None:
        """Like the session: a circuit ends when both directions have, or at a reset."""
        circuit.closes += 1
        if circuit.ended is None:
            circuit.ended = _ENDED.get(record.reason, record.reason)
            if record.reason != "rst":
                circuit.closed_by = "client" if record.src == circuit.client else "server"
        if record.reason == "rst" or circuit.closes == 2:
            circuit.end = record.time
            self._finished.add(circuit.row())
            del self._live[circuit.number]

    def rows(self, name: str) -> Iterable[tuple]:
        yield from self._finished.rows
        for circuit in self._live.values():
            yield circuit.row()

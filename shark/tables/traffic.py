"""Totals over all messages: ``commands`` (per command and direction), ``talkers`` (per
endpoint) and ``latency`` (response times per server, PV and command).

All three are sums the chunk's columns give with a few numpy calls; their size is the
number of distinct keys, not of messages. Latency percentiles come from a histogram of
20 bins per decade (from 1 us to 10 000 s), so they are within 6 % of the exact ones;
the mean, minimum and maximum are exact.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from shark.extract.record import CLOSE, OPEN
from shark.tables.aggregate import Aggregate
from shark.tables.chunk import NOT_MESSAGE, Chunk, Vocabularies, form_mask
from shark.tables.grouping import group
from shark.tables.schema import CATEGORY, FLOAT, INT64, Column, TableSchema

__all__ = ["COMMANDS", "LATENCY", "TALKERS", "Commands", "Latency", "Talkers"]

COMMANDS = TableSchema("commands", "messages and bytes per command, transport and sender", [
    Column("command", CATEGORY, "command name (GAP and UNDECODED count what is missing "
                                "or undecodable)"),
    Column("transport", CATEGORY, "tcp or udp"),
    Column("sender", CATEGORY, "client, server or repeater; null if unknown"),
    Column("messages", INT64, "messages"),
    Column("bytes", INT64, "bytes on the wire"),
])

TALKERS = TableSchema("talkers", "messages and bytes per endpoint, both ways", [
    Column("endpoint", CATEGORY, "ip:port"),
    Column("host", CATEGORY, "its ip"),
    Column("messages_sent", INT64, "messages it sent"),
    Column("bytes_sent", INT64, "bytes it sent"),
    Column("messages_received", INT64, "messages sent to it"),
    Column("bytes_received", INT64, "bytes sent to it"),
])

_LATENCY_KEYS = (
    Column("server", CATEGORY, "who answered (ip:port)"),
    Column("pv", CATEGORY, "PV the request concerned, where known"),
    Column("command", CATEGORY, "the command of the response"),
)
_LATENCY_STATISTICS = (
    Column("responses", INT64, "responses paired with their request"),
    Column("mean", FLOAT, "mean latency, seconds"),
    Column("min", FLOAT, "shortest"),
    Column("p50", FLOAT, "median (histogram estimate, within 6 %)"),
    Column("p90", FLOAT, "90th percentile (estimate)"),
    Column("p99", FLOAT, "99th percentile (estimate)"),
    Column("max", FLOAT, "longest"),
    Column("negative", INT64, "responses timestamped before their request (as captures on "
                              "several interfaces give): kept in the counts, the mean and "
                              "the minimum, and below 1 us in the percentiles"),
)
LATENCY = TableSchema("latency", "response times per server, PV and command",
                      [*_LATENCY_KEYS, *_LATENCY_STATISTICS])

_LIFECYCLE = form_mask(lambda f: f is OPEN or f is CLOSE)
_PER_DECADE = 20
_LOWEST = -6  # 1 us
_BINS = _PER_DECADE * 10 + 2  # 1 us .. 10 000 s, and one bin below and one above
_PERCENTILES = (50, 90, 99)


def _sums(keys: np.ndarray, sizes: np.ndarray) -> Iterable[tuple[int, int, int]]:
    """(key, count, total size) per distinct key."""
    inverse, distinct, _ = group(keys)
    counts = np.bincount(inverse, minlength=len(distinct))
    totals = np.bincount(inverse, weights=sizes, minlength=len(distinct))
    return zip(distinct.tolist(), counts.tolist(), totals.astype(np.int64).tolist(),
               strict=True)


class Commands(Aggregate):
    schemas = (COMMANDS,)

    def __init__(self, vocabularies: Vocabularies, max_rows: int) -> None:
        super().__init__(vocabularies, max_rows)
        #: [messages, bytes] by (command code, transport code, sender code).
        self._totals: dict[tuple[int, int, int], list[int]] = {}

    def update(self, chunk: Chunk) -> None:
        rows = np.flatnonzero(~chunk.of_form(_LIFECYCLE))
        keys = (chunk.command[rows].astype(np.int64) * 8 + chunk.transport[rows] * 4
                + chunk.sender[rows] + 1)
        for key, count, size in _sums(keys, chunk.size_bytes[rows]):
            total = self._totals.setdefault((key // 8, key % 8 // 4, key % 4 - 1), [0, 0])
            total[0] += count
            total[1] += size

    def rows(self, name: str) -> Iterable[tuple]:
        v = self.vocabularies
        for (command, transport, sender), (count, size) in sorted(self._totals.items()):
            yield (v.commands.values[command], v.transports.values[transport],
                   v.senders.values[sender] if sender >= 0 else None, count, size)


class Talkers(Aggregate):
    schemas = (TALKERS,)

    def __init__(self, vocabularies: Vocabularies, max_rows: int) -> None:
        super().__init__(vocabularies, max_rows)
        #: [messages sent, bytes sent, messages received, bytes received] by endpoint code.
        self._totals: dict[int, list[int]] = {}

    def update(self, chunk: Chunk) -> None:
        rows = np.flatnonzero(~chunk.of_form(NOT_MESSAGE))
        sizes = chunk.size_bytes[rows]
        for column, first in ((chunk.src, 0), (chunk.dst, 2)):
            for code, count, size in _sums(column[rows], sizes):
                total = self._totals.setdefault(code, [0, 0, 0, 0])
                total[first] += count
                total[first + 1] += size

    def rows(self, name: str) -> Iterable[tuple]:
        endpoints = self.vocabularies.endpoints.values
        for endpoint, total in sorted((endpoints[code], total)
                                      for code, total in self._totals.items()):
            yield (endpoint, endpoint.rpartition(":")[0], *total)


class Latency(Aggregate):
    schemas = (LATENCY,)

    def __init__(self, vocabularies: Vocabularies, max_rows: int) -> None:
        super().__init__(vocabularies, max_rows)
        self._index: dict[tuple[int, int, int], int] = {}
        self._count = np.zeros(0, dtype=np.int64)
        self._sum = np.zeros(0)
        self._min = np.zeros(0)
        self._max = np.zeros(0)
        self._negative = np.zeros(0, dtype=np.int64)
        self._histogram = np.zeros((0, _BINS), dtype=np.int64)

    def update(self, chunk: Chunk) -> None:
        rows = np.flatnonzero(~np.isnan(chunk.latency))
        if not len(rows):
            return
        latency = chunk.latency[rows]
        server, pv, command = chunk.src[rows], chunk.pv[rows], chunk.command[rows]
        # One int64 per (server, pv, command): their codes in mixed radix.
        pvs = len(self.vocabularies.pvs.values) + 1
        commands = len(self.vocabularies.commands.values)
        keys = (server.astype(np.int64) * pvs + pv + 1) * commands + command
        inverse, distinct, _ = group(keys)
        slots = np.array([self._slot((key // commands // pvs, key // commands % pvs - 1,
                                      key % commands)) for key in distinct.tolist()],
                         dtype=np.int64)[inverse]
        np.add.at(self._count, slots, 1)
        np.add.at(self._sum, slots, latency)
        np.minimum.at(self._min, slots, latency)
        np.maximum.at(self._max, slots, latency)
        negative = latency < 0
        if negative.any():
            np.add.at(self._negative, slots[negative], 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            bins = np.floor((np.log10(latency) - _LOWEST) * _PER_DECADE) + 1
        bins[negative] = 0  # (log10 gave NaN) below the lowest bin, as zero is
        np.add.at(self._histogram, (slots, np.clip(bins, 0, _BINS - 1).astype(np.int64)), 1)

    def _slot(self, key: tuple[int, int, int]) -> int:
        slot = self._index.get(key)
        if slot is None:
            slot = self._index[key] = len(self._index)
            if slot == len(self._count):
                self._grow(max(16, 2 * slot))
        return slot

    def _grow(self, size: int) -> None:
        extra = size - len(self._count)
        self._count = np.concatenate([self._count, np.zeros(extra, dtype=np.int64)])
        self._sum = np.concatenate([self._sum, np.zeros(extra)])
        self._min = np.concatenate([self._min, np.full(extra, np.inf)])
        self._max = np.concatenate([self._max, np.full(extra, -np.inf)])
        self._negative = np.concatenate([self._negative, np.zeros(extra, dtype=np.int64)])
        # (np.zeros: pages of zeros are handed out when first written, not now)
        histogram = np.zeros((size, _BINS), dtype=np.int64)
        histogram[: len(self._histogram)] = self._histogram
        self._histogram = histogram

    def summary(self, by: tuple[str, ...]) -> pa.Table:
        """Latency statistics per distinct value of the key columns ``by`` (some of
        server, pv, command), their histograms merged."""
        keys = [c for c in _LATENCY_KEYS if c.name in by]
        positions = [i for i, c in enumerate(_LATENCY_KEYS) if c.name in by]
        slots = len(self._index)
        groups: dict[tuple[int, ...], int] = {}
        group = np.array([groups.setdefault(tuple(key[i] for i in positions), len(groups))
                          for key in self._index], dtype=np.int64)  # per slot, in slot order
        count = np.bincount(group, self._count[:slots], len(groups))
        total = np.bincount(group, self._sum[:slots], len(groups))
        low = np.full(len(groups), np.inf)
        np.minimum.at(low, group, self._min[:slots])
        high = np.full(len(groups), -np.inf)
        np.maximum.at(high, group, self._max[:slots])
        negative = np.bincount(group, self._negative[:slots], len(groups)).astype(np.int64)
        histogram = np.zeros((len(groups), _BINS), dtype=np.int64)
        np.add.at(histogram, group, self._histogram[:slots])
        cumulative = np.cumsum(histogram, axis=1)
        percentiles = []
        for percent in _PERCENTILES:  # the geometric centre of the bin, within the extremes
            where = (cumulative >= percent / 100 * cumulative[:, -1:]).argmax(axis=1)
            percentiles.append(np.clip(10 ** (_LOWEST + (where - 0.5) / _PER_DECADE), low,
                                       high).tolist())
        words = [self._words(c.name) for c in keys]
        rows = [(*(w[code] if code >= 0 else None for w, code in zip(words, key, strict=True)),
                 int(n), float(t) / n, float(a), *(p[g] for p in percentiles), float(b),
                 int(below))
                for g, (key, n, t, a, b, below) in enumerate(zip(groups, count, total, low,
                                                                 high, negative.tolist(),
                                                                 strict=True))]
        schema = LATENCY if len(keys) == len(_LATENCY_KEYS) else TableSchema(
            "latency", f"response times per {', '.join(by)}", [*keys, *_LATENCY_STATISTICS])
        return schema.from_rows(sorted(rows, key=lambda row: tuple(
            "" if word is None else word for word in row[:len(keys)])))

    def _words(self, column: str) -> list[str]:
        v = self.vocabularies
        return {"server": v.endpoints, "pv": v.pvs, "command": v.commands}[column].values

    def table(self, name: str) -> pa.Table:
        return self.summary(tuple(c.name for c in _LATENCY_KEYS))

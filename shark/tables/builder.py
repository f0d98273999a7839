"""The table builder: attributed records in, any table out, at any time.

:class:`TableBuilder` is an incremental aggregator. ``add(record)`` appends the record
to a chunk and nothing more; when the chunk is full (or a table is asked for) every
table takes what it needs from the chunk's columns (:mod:`shark.tables.chunk`) in a few
numpy operations, and some Python for the rarer records that change state (a channel
created, a search, a beacon). The per-message tables grow in row groups that can go to
a sink as they fill (:mod:`shark.tables.rowgroups`); the others hold a row per thing
(circuit, channel, subscription, searched name, server ...) and are bounded
(:mod:`shark.tables.aggregate`).

Feed it the records of :func:`shark.read` with ``lifecycle=True`` (OPEN and CLOSE mark
where circuits start and end), in capture order; :func:`shark.analysis.attribution.read` with
``bulk=True`` gives them with monitor updates in batches (:mod:`shark.extract.bulk`), which it
takes as columns.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import pyarrow as pa

from shark.analysis.attribution import read
from shark.extract.bulk import UPDATES, UpdateBatch
from shark.extract.record import Record
from shark.tables.aggregate import MAX_ROWS, Aggregate
from shark.tables.chunk import Chunk, Vocabularies
from shark.tables.circuits import Circuits
from shark.tables.discovery import Beacons, Searches
from shark.tables.display import NUMBERS_KEPT
from shark.tables.errors import Errors
from shark.tables.lifetimes import Lifetimes
from shark.tables.messages import MessagesTable, UpdatesTable
from shark.tables.names import PER_MESSAGE, TABLES
from shark.tables.rowgroups import ChunkedTable, Sink
from shark.tables.schema import TableSchema
from shark.tables.traffic import Commands, Latency, Talkers

if TYPE_CHECKING:  # (pandas loads with the first DataFrame asked for: see ``table``)
    import pandas as pd

__all__ = ["SCHEMAS", "TableBuilder"]

_CHUNKED: tuple[type[ChunkedTable], ...] = (MessagesTable, UpdatesTable)
_AGGREGATES: tuple[type[Aggregate], ...] = (
    Circuits, Lifetimes, Searches, Beacons, Errors, Commands, Talkers, Latency,
)
#: Every table's schema, by name, in the order of :data:`TABLES`.
SCHEMAS: dict[str, TableSchema] = {
    schema.name: schema
    for producer in (*_CHUNKED, *_AGGREGATES)
    for schema in ((producer.schema,) if producer in _CHUNKED else producer.schemas)
}
if tuple(SCHEMAS) != TABLES or PER_MESSAGE != tuple(c.schema.name for c in _CHUNKED):
    raise ImportError("shark.tables.names is out of step with the tables built here")

#: Records gathered before the tables take them: enough that per-chunk costs vanish...
CHUNK_ROWS = 65536
#: ... unless their payloads hold this many bytes (large arrays; an update batch counts
#: its packets' bytes).
CHUNK_BYTES = 32 << 20
#: Rows of a row group of the per-message tables.
ROW_GROUP_ROWS = 1 << 18


class TableBuilder:
    """Builds the named tables (all of :data:`TABLES` by default) from records.

    ``sink``, when given, receives each finished row group of the per-message tables
    (``sink(name, batch)``) instead of the builder keeping it; ``keep_rows`` bounds the
    rows those tables keep otherwise (the newest are kept). ``max_rows`` bounds the
    rows of finished things the other tables keep (the newest are kept). With
    ``lifecycle`` the ``messages`` table has rows for circuit ends too (OPEN, CLOSE), as
    ``shark read`` shows them. ``numbers_kept`` bounds the texts of numbers the
    ``display`` column keeps from chunk to chunk, to write each once
    (:class:`shark.tables.display.Written`: some megabytes for a capture of many
    distinct values; 0 keeps none, where memory counts more than time).
    ``owns_records``: the records given are the builder's alone, as those it reads
    itself (:meth:`read`) are: see :func:`_let_go`.
    """

    def __init__(self, tables: Iterable[str] | None = None, *, sink: Sink | None = None,
                 keep_rows: int | None = None, max_rows: int = MAX_ROWS,
                 row_group_rows: int = ROW_GROUP_ROWS, chunk_rows: int = CHUNK_ROWS,
                 lifecycle: bool = False, numbers_kept: int = NUMBERS_KEPT,
                 owns_records: bool = False) -> None:
        names = TABLES if tables is None else tuple(dict.fromkeys(tables))
        unknown = [name for name in names if name not in SCHEMAS]
        if unknown:
            raise ValueError(f"no such table: {', '.join(unknown)} (tables: "
                             f"{', '.join(TABLES)})")
        self.names = names
        self.owns_records = owns_records
        self.chunk_rows = min(chunk_rows, row_group_rows)  # a chunk fits in a row group
        self.vocabularies = Vocabularies(numbers_kept)
        self._producers: dict[str, ChunkedTable | Aggregate] = {}
        for cls in _CHUNKED:
            if cls.schema.name in names:
                self._producers[cls.schema.name] = cls(self.vocabularies, row_group_rows,
                                                       sink, keep_rows)
        if lifecycle and "messages" in self._producers:
            self._producers["messages"].lifecycle = True
        for cls in _AGGREGATES:
            if any(schema.name in names for schema in cls.schemas):
                aggregate = cls(self.vocabularies, max_rows)
                self._producers.update({s.name: aggregate for s in cls.schemas})
        #: Each producer once (one may make two tables).
        self._updaters = list({id(p): p for p in self._producers.values()}.values())
        self._records: list[Record | UpdateBatch] = []
        self._rows = 0  # rows of those records
        self._bytes = 0  # payload bytes of those records
        #: Records the tables have taken (pending ones count once flushed), and the
        #: capture times of the first and the last.
        self.records = 0
        self.first_time: float | None = None
        self.last_time: float | None = None
        #: Records whose capture time is outside what a time column holds (null there,
        #: kept in seconds in ``raw_time``: :data:`shark.tables.schema.TIME_RANGE`).
        self.times_outside = 0

    def read(self, source: str | Path | BinaryIO, ports: Iterable[int] = ()) -> None:
        """Take every record of a capture (a path, ``"-"`` for stdin, or a stream), as
        :func:`shark.analysis.attribution.read` gives them in bulk. Should reading fail
        (:class:`shark.capture.files.CaptureError`, ``OSError``), those before are kept."""
        owns, self.owns_records = self.owns_records, True
        try:
            with _fewer_full_collections(owned=True):
                # Blocks bounded by their frames only, not by their bytes as a stream's
                # are: the table holds every row anyway, and fewer, longer runs of
                # updates cost less Python per run (some 5 % of the build on a storm of
                # monitors).
                self.extend(read(source, ports, lifecycle=True, bulk=True,
                                 block_bytes=None))
                self.flush()
        finally:
            self.owns_records = owns

    def add(self, record: Record | UpdateBatch) -> None:
        """Take one record (or batch of updates)."""
        self.extend((record,))

    def extend(self, records: Iterable[Record | UpdateBatch]) -> None:
        """Take every record of ``records`` (should they raise, those before are kept);
        :class:`shark.extract.bulk.UpdateBatch` items too (``shark.read(..., bulk=True)``), cut
        where a chunk ends."""
        chunk_rows = self.chunk_rows
        for item in records:
            if item.kind is UPDATES:
                while self._rows + len(item) > chunk_rows:
                    cut = item.start + chunk_rows - self._rows
                    self._records.append(item.part(item.start, cut))
                    self._bytes += self._records[-1].size
                    self._rows = chunk_rows
                    self.flush()
                    item = item.part(cut, item.stop)
                self._records.append(item)
                self._rows += len(item)
                self._bytes += item.size
            else:
                self._records.append(item)
                self._rows += 1
                if item.message is not None:
                    self._bytes += len(item.message.payload)
            if self._rows >= chunk_rows or self._bytes >= CHUNK_BYTES:
                self.flush()

    def flush(self) -> None:
        """Hand the records gathered so far to the tables."""
        if not self._records:
            return
        chunk = Chunk(self._records, self.vocabularies)
        self._records = []
        self._rows = self._bytes = 0
        self.records += chunk.size
        if self.first_time is None:
            self.first_time = chunk.time_of(0)
        self.last_time = chunk.time_of(chunk.size - 1)
        for producer in self._updaters:
            producer.update(chunk)
        self.times_outside += chunk.times_outside
        if self.owns_records:
            _let_go(chunk)

    def finish(self) -> None:
        """The records ended: flush, and send the last row groups to the sink."""
        self.flush()
        for producer in self._updaters:
            producer.finish()

    def _producer(self, name: str) -> ChunkedTable | Aggregate:
        """The producer of table ``name``, with every record taken handed over."""
        if name not in self._producers:
            raise KeyError(f"table {name!r} is not built here (tables: "
                           f"{', '.join(self.names)})")
        self.flush()
        return self._producers[name]

    def arrow(self, name: str) -> pa.Table:
        """Table ``name`` as an Arrow table, as of the records taken so far."""
        return self._producer(name).table(name)

    def table(self, name: str) -> pd.DataFrame:
        """Table ``name`` as a pandas DataFrame, as of the records taken so far."""
        producer = self._producer(name)
        if isinstance(producer, ChunkedTable):
            return producer.frame()
        return producer.table(name).to_pandas()

    @property
    def midstream(self) -> frozenset[int]:
        """The circuits the capture joined after they were set up, as far as the
        ``errors`` table saw (empty without it)."""
        errors = self._producers.get("errors")
        return frozenset(getattr(errors, "midstream", ()))

    def latency(self, by: Iterable[str]) -> pd.DataFrame:
        """Response time statistics per distinct value of the columns ``by`` (some of
        server, pv, command): the ``latency`` table, regrouped."""
        return self._producer("latency").summary(tuple(by)).to_pandas()


def _let_go(chunk: Chunk) -> None:
    """The records of a chunk the tables took, which no one else has, let go of their
    channels, subscriptions and anomalies (their ``pv`` stays).

    The session's circuits keep some records: as the context of a request (its
    response's latency), of a channel's creation and end, and of an anomaly, which a
    record of the channel (of the anomaly) refers back to. Such a cycle would outlive
    its channel until Python's collector found it, and the collector looks at
    long-lived objects seldom: a capture that creates and clears channels for hours
    would pile them up (with :func:`decoder.circuit.Circuit._forget_channel`, which
    breaks the circuit's own cycles, a channel goes when its circuit and the chunks
    that use it are done)."""
    for record in chunk.record_list:
        record.channel = record.subscription = record.anomaly = None


#: While a capture is read, Python's garbage collector looks at the younger objects only
#: once this many more of them have been made than freed (700, by default)...
_YOUNG_COLLECTION_AFTER = 100_000
#: ... or this many, where the records are the reader's own (no garbage in cycles)...
_OWN_YOUNG_COLLECTION_AFTER = 1_000_000
#: ... and at every object only once this many collections of the younger ones have
#: gone by (ten, by default).
_FULL_COLLECTION_EVERY = 100


@contextmanager
def _fewer_full_collections(owned: bool = False) -> Iterator[None]:
    """Collections far apart while a capture is read. Reading keeps some hundred
    thousand objects alive (channels, subscriptions, the requests they answer), made as
    the capture goes, and the records of a chunk (and their messages) live until the
    chunk is taken: a collection of the younger objects every 700 of them looked at
    each of those, and again when they were collected as older ones (some 0.1 s of a
    capture of two million messages, half that now), and full collections went through all
    of them again and again, up to a tenth of the time of the whole. Garbage that is
    not in cycles goes at once as ever; cycles are still found, later (peak memory
    measured the same).

    ``owned``: the records are the reader's alone, and neither they nor the session
    leave garbage in cycles (:func:`_let_go`): the younger objects are looked at
    more seldom still, and those made during the read and still alive at its end are
    moved to the oldest generation without a look (a look at them all when the
    thresholds come back cost some 60 ms on the storm capture, for nothing to
    collect). Not when someone has frozen objects already (``gc.freeze``): the move
    would unfreeze theirs."""
    thresholds = gc.get_threshold()
    young = _OWN_YOUNG_COLLECTION_AFTER if owned else _YOUNG_COLLECTION_AFTER
    gc.set_threshold(max(thresholds[0], young), thresholds[1],
                     max(thresholds[2], _FULL_COLLECTION_EVERY))
    try:
        yield
    finally:
        if owned and not gc.get_freeze_count():
            gc.freeze()  # (every object to the permanent generation, in one move...
            gc.unfreeze()  # ... and back, to the oldest)
        gc.set_threshold(*thresholds)

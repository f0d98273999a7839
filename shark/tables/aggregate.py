"""What the tables with a row per *thing* (circuit, channel, searched name ...) share.

Such a table keeps a live state per thing still going, and a row per finished one. Live
things are as many as the network holds at once; finished ones pile up over a long
capture, so at most ``max_rows`` are kept (the oldest go first) and ``dropped`` counts
those forgotten.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import pyarrow as pa

from decoder import Role
from shark.extract.record import Record
from shark.tables.chunk import Chunk, Vocabularies
from shark.tables.schema import TableSchema

__all__ = ["MAX_ROWS", "Aggregate", "Finished", "client_server"]

#: Finished rows kept per table by default.
MAX_ROWS = 1_000_000


class Finished:
    """Rows of finished things, the newest ``max_rows`` of them."""

    def __init__(self, max_rows: int) -> None:
        self.rows: deque[tuple] = deque(maxlen=max_rows)
        self.dropped = 0

    def add(self, row: tuple) -> None:
        if len(self.rows) == self.rows.maxlen:
            self.dropped += 1
        self.rows.append(row)


class Aggregate:
    """A producer of tables with a row per thing; ``schemas`` are the tables it makes.

    ``max_rows`` bounds the rows of finished things it keeps; the vocabularies are the
    builder's, for the columns it sums by code.
    """

    schemas: tuple[TableSchema, ...]

    def __init__(self, vocabularies: Vocabularies, max_rows: int) -> None:
        self.vocabularies = vocabularies
        self.max_rows = max_rows

    def update(self, chunk: Chunk) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """The records ended (nothing to do: the rows are made when asked for)."""

    def rows(self, name: str) -> Iterable[tuple]:
        """The rows of table ``name``: finished things, then live ones."""
        raise NotImplementedError

    def table(self, name: str) -> pa.Table:
        schema = next(s for s in self.schemas if s.name == name)
        return schema.from_rows(list(self.rows(name)))


def client_server(record: Record) -> tuple[str, str]:
    """The (client, server) endpoints of a TCP record, by who sent it."""
    if record.sender is Role.SERVER:
        return record.dst, record.src
    return record.src, record.dst

"""The panes below the log: their tables, their rows in the order shown, their titles.

Rows are rebuilt from the model when a pane is shown (twice a second at most); sorting
thousands of channels each time would be wasted, so the sorted list is kept until
channels come or go (or, sorted by a figure that changes, such as the rate, until the
model changes).

Each pane can be sorted by any of its columns (``s`` picks the next column, ``S``
reverses, or a click on the column's title): numbers as numbers, blanks last, and the
title of the sorted column carries an arrow. Figures that mean nothing are blank: the
rate of a channel that has had fewer than two values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from textual import events
from textual.message import Message

from decoder import Search
from shark.analysis.series import sparkline
from shark.extract.record import Record

from . import rows as r
from .latency import ChannelLatencies
from .log import LogRow
from .model import ChannelRow, ErrorRow, Model
from .plots import spark_text
from .table import Cell, Column, VirtualTable

__all__ = ["PANES", "PaneTable", "Panes", "pv_of", "record_of"]

#: The panes: (id, title), in the order of their keys 1 to 5.
PANES = [("channels", "Channels"), ("circuits", "Circuits"), ("searches", "Searches"),
         ("servers", "Servers"), ("errors", "Errors")]


class PaneTable(VirtualTable):
    """A pane's table: a click on a column's title asks to sort by it."""

    class HeaderClicked(Message):
        """The title of column ``column`` was clicked."""

        def __init__(self, table: PaneTable, column: int) -> None:
            super().__init__()
            self.table = table
            self.column = column

    def _on_click(self, event: events.Click) -> None:
        if event.y != 0:
            return  # (rows: the table's own)
        width = self.scrollable_content_region.width or self.size.width
        left = 0
        for index, cells in self.layout(width):
            if left <= event.x < left + cells + 1:
                self.post_message(self.HeaderClicked(self, index))
                return
            left += cells + 1


#: Sorting by these columns of these panes follows figures that change as traffic
#: comes: the order is worked out again whenever the model changes.
#: (Not the last value: sorting by it formats every channel's value, once when asked.)
_LIVE = {"channels": {"Rate/s", "Updates", "Last update", "p50 ms", "p99 ms"}}

#: The channels' columns: the rows' own, with the percentiles of their reply latencies
#: before the last value.
LATENCY_COLUMNS = [Column("p50 ms", 8, right=True, priority=40),
                   Column("p99 ms", 8, right=True, priority=40)]
#: The update-rate sparkline: values per second over the time its latest values span.
TREND = Column("Trend", TREND_WIDTH := 8, priority=38)
CHANNEL_COLUMNS = [*r.CHANNEL_COLUMNS[:-1], *LATENCY_COLUMNS, TREND, r.CHANNEL_COLUMNS[-1]]


#: The channels' reply latencies are read from the store only while the decoder is not
#: busy (a file loading at full speed is): reading them costs the screen's thread a
#: group-by of every batch, and their memory comes on top of the decoder's at the
#: load's peak (on the 2 M-message storm capture, read every 5 s, it made the peak
#: 297-319 MB, read once the load ends 300-301 MB). The percentile columns fill in
#: then; live, as soon as the decoder keeps up.


class Panes:
    """Builds the tables and their rows for ``model``; ``clock`` formats times and
    ``now`` gives the capture time the channels' update rates are measured at;
    ``busy`` says whether the decoder is busy (the latencies are then not read)."""

    def __init__(self, model: Model, clock: r.Clock, now: Callable[[], float | None],
                 busy: Callable[[], bool] = lambda: False) -> None:
        self.model = model
        self.clock = clock
        self.now = now
        self.busy = busy
        self._latency_reads = 0
        #: Whether the channels pane was drawn without the latest latencies (to be
        #: drawn again, even if the model did not change).
        self.stale = False
        self._sorted: tuple[Any, list[ChannelRow]] | None = None
        #: Per pane: the column sorted by and whether in reverse (none: its own order).
        self.sorting: dict[str, tuple[int, bool]] = {}
        self._tables: dict[str, VirtualTable] = {}
        self._columns: dict[str, list[Column]] = {}
        #: Each channel's reply latencies, read from the store as it fills.
        self.latencies = ChannelLatencies(model.store)

    def tables(self) -> dict[str, VirtualTable]:
        """One table per pane, by pane id (their widget ids: ``<pane>-table``)."""
        clock, now, latencies = self.clock, self.now, self.latencies
        self._columns = {
            "channels": CHANNEL_COLUMNS, "circuits": r.CIRCUIT_COLUMNS,
            "searches": r.SEARCH_COLUMNS, "servers": r.SERVER_COLUMNS,
            "errors": r.ERROR_COLUMNS,
        }
        self._tables = {
            "channels": PaneTable(CHANNEL_COLUMNS,
                                  lambda row: channel_cells(row, clock, now(), latencies),
                                  r.channel_style, id="channels-table"),
            "circuits": PaneTable(r.CIRCUIT_COLUMNS, lambda row: r.circuit_cells(row, clock),
                                  r.circuit_style, id="circuits-table"),
            "searches": PaneTable(r.SEARCH_COLUMNS, lambda row: r.search_cells(row, clock),
                                  id="searches-table"),
            "servers": PaneTable(r.SERVER_COLUMNS, lambda row: r.server_cells(row, clock),
                                 id="servers-table"),
            "errors": PaneTable(r.ERROR_COLUMNS, lambda row: r.error_cells(row, clock),
                                lambda _row: "red", id="errors-table"),
        }
        return dict(self._tables)

    def sort(self, pane: str, column: int | None = None, step: int = 0,
             reverse: bool = False) -> str:
        """Sort ``pane`` by ``column``, or by the ``step``-th next column (after the last,
        its own order again), or (``reverse``) the other way; says how, in words."""
        columns = self._columns.get(pane)
        if not columns:
            return ""
        current = self.sorting.get(pane)
        if reverse:
            at, backwards = current if current is not None else (0, False)
            self.sorting[pane] = (at, not backwards)
        elif column is not None:
            backwards = current is not None and current[0] == column and not current[1]
            self.sorting[pane] = (column, backwards)
        else:
            at = (current[0] if current is not None else -1) + step
            if 0 <= at < len(columns):
                self.sorting[pane] = (at, False)
            else:
                self.sorting.pop(pane, None)
        self._sorted = None
        table = self._tables.get(pane)
        sorting = self.sorting.get(pane)
        if table is not None:
            table.header_titles = {} if sorting is None else {
                sorting[0]: f"{columns[sorting[0]].title}{'▼' if sorting[1] else '▲'}"}
            table.refresh()
        if sorting is None:
            return "in its own order"
        title = columns[sorting[0]].title
        return f"by {title}, {'descending' if sorting[1] else 'ascending'}"

    def _ordered(self, pane: str, rows: list[Any]) -> list[Any]:
        """``rows`` in the order picked for ``pane`` (as they are if none)."""
        sorting = self.sorting.get(pane)
        table = self._tables.get(pane)
        if sorting is None or table is None:
            return rows
        column, backwards = sorting
        title = self._columns[pane][column].title
        if pane == "channels" and title in _CHANNEL_KEYS:
            now = self.now()
            key = _CHANNEL_KEYS[title]
            keyed = [(key(row, now), row) for row in rows]
        elif pane == "channels" and title in _PERCENTILES:
            q, latencies = _PERCENTILES[title], self.latencies
            keyed = [(latencies.percentile(row.circuit, row.name, q), row) for row in rows]
        else:
            render = table.render_row
            keyed = [(_natural(_cell(render(row), column)), row) for row in rows]
        present = [item for item in keyed if item[0] is not None]
        blank = [row for value, row in keyed if value is None]
        present.sort(key=lambda item: item[0], reverse=backwards)
        return [row for _value, row in present] + blank

    def rows(self, pane: str, follow: str | None) -> Sequence[Any]:
        """The rows of ``pane`` in the order shown; ``follow``: only that PV's (channels,
        searches)."""
        model = self.model
        self.stale = False
        if pane == "channels":
            self.stale = self.busy()
            if not self.stale:
                self.latencies.update()
                self._latency_reads += 1
            key: tuple[Any, ...] = (model.rows_version, follow, len(model.channels))
            sorting = self.sorting.get(pane)
            if sorting is not None and (self._columns[pane][sorting[0]].title
                                        in _LIVE["channels"]):
                key = (*key, model.version, self._latency_reads)
            if self._sorted is not None and self._sorted[0] == key:
                return self._sorted[1]
            channels = list(model.channels.values())
            if follow is not None:
                channels = [c for c in channels if c.name == follow]
            channels.sort(key=lambda c: (c.pv, c.circuit or 0))
            channels = self._ordered(pane, channels)
            self._sorted = (key, channels)
            return channels
        return self._ordered(pane, self._rows(pane, follow))

    def _rows(self, pane: str, follow: str | None) -> list[Any]:
        model = self.model
        if pane == "circuits":
            return sorted(model.circuits.values(), key=lambda c: c.number)
        if pane == "searches":
            searches = model.searches()
            if follow is not None:
                searches = [s for s in searches if s.name == follow]
            return searches
        if pane == "servers":
            return sorted(model.servers.values(), key=lambda s: s.address)
        return list(model.errors)

    def titles(self) -> dict[str, str]:
        """Each pane's tab title, with its count."""
        model = self.model
        searches = model.session.discovery.searches if model.session is not None else {}
        titles = {
            "channels": f"Channels ({len(model.channels)})",
            "circuits": f"Circuits ({len(model.circuits)})",
            "searches": f"Searches ({len(searches)})",
            "servers": f"Servers ({len(model.servers)})",
            "errors": f"Errors ({model.error_count})",
        }
        # Unanswered searches are the pane's news: counted whichever pane is shown.
        # (a list first: the decoding thread adds searches meanwhile)
        unanswered = sum(1 for search in list(searches.values()) if not search.replies)
        if unanswered:
            titles["searches"] = f"Searches ({len(searches)}, {unanswered} unanswered)"
        return titles


def channel_cells(row: ChannelRow, clock: r.Clock, now: float | None,
                  latencies: ChannelLatencies | None = None) -> list[Cell]:
    """A channel's cells, its rate blank until it has had two values (one value has no
    rate: its figure would be noise), with the percentiles of its reply latencies (in
    milliseconds; blank without replies) when ``latencies`` are given."""
    cells = r.channel_cells(row, clock, now)
    if row.updates < 2:
        cells[_RATE] = ""
    if latencies is not None:
        figures = []
        for q in _PERCENTILES.values():
            value = latencies.percentile(row.circuit, row.name, q)
            figures.append("" if value is None else f"{value * 1e3:.3f}")
        cells[-1:-1] = [*figures, trend(row, now)]
    return cells


def trend(row: ChannelRow, now: float | None) -> str:
    """The channel's update rate as a sparkline, over the time its latest values span
    (blank with fewer than two: one value has no rate)."""
    times = row.recent()
    if len(times) < 2:
        return ""
    end = max(times[-1], now if now is not None else times[-1])
    span = end - times[0]
    if span <= 0:
        return ""
    return spark_text(sparkline(np.asarray(times), end, TREND_WIDTH, span))


#: The latency columns' percentiles.
_PERCENTILES = {"p50 ms": 50.0, "p99 ms": 99.0}


_RATE = [c.title for c in r.CHANNEL_COLUMNS].index("Rate/s")


def _rate(row: ChannelRow, now: float | None) -> float | None:
    if row.updates < 2:
        return None
    return row.rate(now if now is not None else row.last_time)


#: Exact keys for the channels' figures (their cells are rounded).
_CHANNEL_KEYS: dict[str, Callable[[ChannelRow, float | None], Any]] = {
    "PV": lambda row, _now: row.pv,
    "Server": lambda row, _now: row.server,
    "Via": lambda row, _now: row.circuit,
    "Count": lambda row, _now: (row.channel.native_count if row.channel is not None
                                else None),
    "Rate/s": _rate,
    "Updates": lambda row, _now: row.updates,
    "Last update": lambda row, _now: row.last_time if row.updates or row.writes else None,
}


def _cell(cells: Sequence[Cell], column: int) -> str:
    cell = cells[column] if column < len(cells) else ""
    return cell if isinstance(cell, str) else cell.plain


def _natural(text: str) -> tuple[int, float, str] | None:
    """A cell's sort key: numbers (``12``, ``1.5 s``) as numbers, before words; None
    for a blank cell (sorted last either way)."""
    text = text.strip()
    if not text:
        return None
    head = text.split()[0].lstrip("#")
    try:
        return (0, float(head), text)
    except ValueError:
        return (1, 0.0, text)


def record_of(row: Any) -> Record | LogRow | None:
    """The record (or row of the log) a pane row points at, for the details pane."""
    if isinstance(row, ErrorRow):
        return row.record
    if isinstance(row, ChannelRow):
        return row.last
    if isinstance(row, Search):
        return row.last if isinstance(row.last, Record) else None
    return None


def pv_of(row: Any) -> str | None:
    """The PV a row of the log or of a pane names, if any."""
    if isinstance(row, (Record, LogRow)):
        return row.pv
    if isinstance(row, ChannelRow):
        return row.name
    if isinstance(row, Search):
        return row.name
    if isinstance(row, ErrorRow):
        return row.record.pv
    return None

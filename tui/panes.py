"""The panes below the log: their tables, their rows in the order shown, their titles.

Rows are rebuilt from the model when a pane is shown (twice a second at most); sorting
thousands of channels each time would be wasted, so the sorted list is kept until
channels come or go.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from decoder import Search
from shark.extract.record import Record

from . import rows as r
from .log import LogRow
from .model import ChannelRow, ErrorRow, Model
from .table import VirtualTable

__all__ = ["PANES", "Panes", "pv_of", "record_of"]

#: The panes: (id, title), in the order of their keys 1 to 5.
PANES = [("channels", "Channels"), ("circuits", "Circuits"), ("searches", "Searches"),
         ("servers", "Servers"), ("errors", "Errors")]


class Panes:
    """Builds the tables and their rows for ``model``; ``clock`` formats times and
    ``now`` gives the capture time the channels' update rates are measured at."""

    def __init__(self, model: Model, clock: r.Clock, now: Callable[[], float | None]) -> None:
        self.model = model
        self.clock = clock
        self.now = now
        self._sorted: tuple[Any, list[ChannelRow]] | None = None

    def tables(self) -> dict[str, VirtualTable]:
        """One table per pane, by pane id (their widget ids: ``<pane>-table``)."""
        clock, now = self.clock, self.now
        return {
            "channels": VirtualTable(r.CHANNEL_COLUMNS,
                                     lambda row: r.channel_cells(row, clock, now()),
                                     r.channel_style, id="channels-table"),
            "circuits": VirtualTable(r.CIRCUIT_COLUMNS, lambda row: r.circuit_cells(row, clock),
                                     r.circuit_style, id="circuits-table"),
            "searches": VirtualTable(r.SEARCH_COLUMNS, lambda row: r.search_cells(row, clock),
                                     id="searches-table"),
            "servers": VirtualTable(r.SERVER_COLUMNS, lambda row: r.server_cells(row, clock),
                                    id="servers-table"),
            "errors": VirtualTable(r.ERROR_COLUMNS, lambda row: r.error_cells(row, clock),
                                   lambda _row: "red", id="errors-table"),
        }

    def rows(self, pane: str, follow: str | None) -> Sequence[Any]:
        """The rows of ``pane`` in the order shown; ``follow``: only that PV's (channels,
        searches)."""
        model = self.model
        if pane == "channels":
            key = (model.rows_version, follow, len(model.channels))
            if self._sorted is not None and self._sorted[0] == key:
                return self._sorted[1]
            channels = list(model.channels.values())
            if follow is not None:
                channels = [c for c in channels if c.name == follow]
            channels.sort(key=lambda c: (c.pv, c.circuit or 0))
            self._sorted = (key, channels)
            return channels
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

    def titles(self, active: str, rows: Sequence[Any]) -> dict[str, str]:
        """Each pane's tab title, with its count (``rows``: those of the pane shown)."""
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
        unanswered = sum(1 for search in searches.values() if not search.replies)
        if unanswered:
            titles["searches"] = f"Searches ({len(searches)}, {unanswered} unanswered)"
        return titles


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

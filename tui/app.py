"""The shark TUI: Channel Access as it happens, keyboard first.

Layout: the message log (top left) with the details of the selected message beside
it; below, the panes (channels, circuits, searches, servers and beacons, errors);
at the bottom the status bar and the keys.

How it keeps up: a :class:`~tui.source.Source` thread decodes and fills the
:class:`~tui.model.Model`; a timer redraws ten times a second from whatever the model
holds (the log is a :class:`~tui.table.VirtualTable` over the model's ring, so a
redraw formats only the rows on screen, and the pane below is rebuilt twice a second
and only when something changed). Nothing the screen does waits for the decoder.

The log follows the newest message until the user moves in it (or presses space):
it then freezes a copy of what it showed (references, not copies of records), so the
rows stay put while the ring moves on; End or space returns to the tail.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import Footer, Input, TabbedContent, TabPane

from decoder import Search
from shark.analysis.filters import Filter, FilterError, compile_filter
from shark.extract.record import Record

from . import rows as r
from .details import details
from .help import HelpScreen
from .model import ChannelRow, CircuitRow, ErrorRow, Model, ServerRow
from .panes import PANES, Panes, pv_of, record_of
from .ring import Window
from .source import Source
from .status import RateMeter, StatusBar, human
from .table import VirtualTable
from .textview import TextView

__all__ = ["FilterInput", "MessageLog", "SharkApp"]

#: Seconds between redraws of the log and status bar, and of the pane shown below.
REFRESH = 0.1
PANE_REFRESH = 0.5
#: Seconds between two updates of the details pane while it follows the newest message.
DETAILS_REFRESH = 0.5
#: When the decoder is busier than this (the fraction of time it did not wait for
#: packets), the screen is redrawn only every BUSY_DIVIDER-th tick.
BUSY = 0.9
BUSY_DIVIDER = 3

#: Which of some records the log shows, one bool each.
Selector = Callable[[Sequence[Record]], Sequence[bool]]
W = TypeVar("W", bound=Widget)


class FilterInput(Input):
    """The ``/`` filter line; Escape gives up."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def action_cancel(self) -> None:
        self.app.call_later(self.app.action_close_filter)  # type: ignore[attr-defined]


class MessageLog(VirtualTable):
    """The log: moving in it freezes it (see the module docstring); End follows the tail
    again."""

    def action_last(self) -> None:
        self.app.resume()  # type: ignore[attr-defined]


class SharkApp(App[None]):
    """Shows what ``source`` decodes into ``model``."""

    TITLE = "shark"
    CSS = """
    #top { height: 3fr; }
    #log { width: 1fr; border: round $primary 50%; border-title-align: left; }
    #log:focus-within { border: round $primary; }
    #details { width: 30%; min-width: 44; max-width: 72; border: round $secondary 50%;
               padding: 0 1; }
    #details:focus { border: round $secondary; }
    #details.hidden { display: none; }
    #tabs { height: 2fr; }
    #tabs VirtualTable { height: 1fr; }
    TabPane { padding: 0; }
    #filter { dock: bottom; display: none; }
    #filter.shown { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("slash", "open_filter", "Filter", key_display="/"),
        Binding("space", "pause", "Pause"),
        Binding("f", "follow", "Follow PV"),
        Binding("e", "error(1)", "Next error"),
        Binding("E", "error(-1)", "Prev error", show=False),
        Binding("x", "export", "Export"),
        Binding("escape", "clear", "Clear", show=False),
        Binding("d", "toggle_details", "Details", show=False),
        Binding("l", "focus_log", "Log", show=False),
        *(Binding(str(n), f"pane('{pane}')", title, show=False)
          for n, (pane, title) in enumerate(PANES, 1)),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, model: Model, source: Source | None, filter_text: str = "",
                 export_dir: str | Path = ".") -> None:
        super().__init__()
        self.model = model
        self.source = source
        self.export_dir = Path(export_dir)
        self.clock = r.Clock()
        self.filter_text = ""
        self.follow_pv: str | None = None
        #: While paused: every record held when the log froze, and those shown.
        self.frozen: list[Record] | None = None
        self.paused = False
        self._frozen_end: int | None = None
        self._filter: Filter | None = None
        self._initial_filter = filter_text
        self._shown: Record | None = None
        self._pane_version = -1
        self._pane_due = 0.0
        self._details_due = 0.0
        self._ticks = 0
        self._meter = RateMeter()
        self._widgets: dict[str, Widget] = {}
        self.panes = Panes(model, self.clock, self._now)
        #: The Parquet file of the last export.
        self.last_export: Path | None = None
        self._rates = (0.0, 0.0)

    # -- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        clock = self.clock
        with Horizontal(id="top"):
            midstream = self.model.midstream
            log = MessageLog(r.LOG_COLUMNS, lambda rec: r.log_cells(rec, clock),
                             lambda rec: r.log_style(rec, midstream), id="log")
            log.border_title = "Messages"
            log.before_move = self._browse
            yield log
            view = TextView(details(None, clock), id="details")
            view.border_title = "Details"
            yield view
        with TabbedContent(id="tabs"):
            tables = self.panes.tables()
            for name, title in PANES:
                with TabPane(title, id=name):
                    yield tables[name]
        yield FilterInput(placeholder="filter: pv=GLOB command=NAME host=IP[:PORT] "
                                      "latency>10ms status=failed error, or/not/(...) "
                                      "(Enter applies, Esc cancels)", id="filter")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        if self._initial_filter:
            self._apply_filter(self._initial_filter)
        self.log_table.focus()
        if self.source is not None and not self.source.is_alive() and not self.source.finished:
            self.source.start()
        self.set_interval(REFRESH, self._tick)
        self.refresh_view()

    def on_unmount(self) -> None:
        if self.source is not None:
            self.source.stop()

    @property
    def log_table(self) -> VirtualTable:
        return self._main("#log", VirtualTable)

    def _main(self, selector: str, kind: type[W]) -> W:
        """A widget of the main screen (cached), whatever screen is on top (help)."""
        widget = self._widgets.get(selector)
        if widget is None:
            widget = self._widgets[selector] = self.screen_stack[0].query_one(selector, kind)
        return widget  # type: ignore[return-value]

    def _now(self) -> float | None:
        return self.model.last_time

    # -- the periodic redraw -------------------------------------------------------------

    def _tick(self) -> None:
        self._ticks += 1
        source = self.source
        if self._ticks % BUSY_DIVIDER and source is not None and source.load() > BUSY:
            return  # the decoder needs the CPU: draw a third as often
        self.refresh_view()

    def refresh_view(self) -> None:
        """Redraw the log, details, status bar, and (less often) the pane shown."""
        try:
            log = self.log_table
        except NoMatches:  # not composed yet, or being torn down
            return
        if not log.is_attached:
            return
        model = self.model
        if self.clock.zero is None:
            self.clock.zero = model.first_time
        if not self.paused:
            window = model.view.window()
            log.set_rows(window, keep_cursor=False)
            log.cursor = len(window) - 1
            log.scroll_to_end()
            if (self.focused is log or self._shown is None) and time.monotonic() >= (
                    self._details_due):
                # the newest message, at a pace a person can read (and the screen afford)
                self._details_due = time.monotonic() + DETAILS_REFRESH
                self._show(log.cursor_row)
        self._status()
        now = time.monotonic()
        if now >= self._pane_due and model.version != self._pane_version:
            self._pane_due = now + PANE_REFRESH
            self._pane_version = model.version
            self.refresh_panes()

    def refresh_panes(self) -> None:
        """Rebuild the rows of the pane shown (the others wait until shown)."""
        tabs = self._main("#tabs", TabbedContent)
        active = tabs.active or PANES[0][0]
        rows = self.panes.rows(active, self.follow_pv)
        self._main(f"#{active}-table", VirtualTable).set_rows(rows)
        for pane, title in self.panes.titles(active, rows).items():
            tab = tabs.get_tab(pane)
            if tab.label_text != title:
                tab.label = title

    def _status(self) -> None:
        model, source = self.model, self.source
        stats = source.stats() if source is not None else None
        frames_bytes = stats.bytes if stats is not None else 0
        self._rates = self._meter.rates(model.messages, frames_bytes)
        parts: list[tuple[str, str]] = []
        if source is not None:
            if source.error:
                parts.append((f"✖ {source.description}: {source.error}", "bold red"))
            elif source.finished:
                parts.append((f"■ {source.description}: end", "bold"))
            else:
                parts.append((f"▶ {source.description}", "bold green"))
        if self.paused:
            newer = model.view.end - (self._frozen_end or 0)
            parts.append((f"PAUSED (+{human(newer)} newer)", "bold yellow"))
        else:
            parts.append(("following", "green"))
        parts.append((f"{human(self._rates[0])} msg/s  {human(self._rates[1], 'B')}/s", ""))
        parts.append((f"{model.messages:,} messages", ""))
        dropped = stats.dropped if stats is not None else 0
        parts.append((f"drops {dropped:,}", "bold red" if dropped else ""))
        parts.append((f"gaps {model.gaps:,}", "bold red" if model.gaps else ""))
        parts.append((f"errors {model.error_count:,}", "red" if model.error_count else ""))
        if self.filter_text:
            parts.append((f"filter: {self.filter_text}", "bold cyan"))
        if self.follow_pv is not None:
            parts.append((f"PV: {self.follow_pv}", "bold magenta"))
        self._main("#status", StatusBar).show(parts)

    # -- details ---------------------------------------------------------------------------

    def _show(self, record: Record | None) -> None:
        if record is self._shown and record is not None:
            return
        self._shown = record
        self._main("#details", TextView).show(details(record, self.clock,
                                                      self.model.midstream))

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        table = event.table
        self._show(table.cursor_row if table.id == "log" else record_of(event.row))

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        row = event.row
        if isinstance(row, ChannelRow):
            if row.name is not None:
                self.follow(row.name)
        elif isinstance(row, Search):
            self.follow(row.name)
        elif isinstance(row, CircuitRow):
            self._apply_filter(f"circuit={row.number}")
        elif isinstance(row, ServerRow):
            self._apply_filter(f"host={row.address}")
        elif isinstance(row, ErrorRow):
            self.reveal(row.record)
        elif isinstance(row, Record):
            self._show(row)

    # -- pause -----------------------------------------------------------------------------

    def action_pause(self) -> None:
        if self.paused:
            self.resume()
        else:
            self._pause()

    def _browse(self) -> None:
        """The user moves in the log: freeze it first."""
        if not self.paused:
            self._pause()

    def _pause(self) -> None:
        """Freeze the log on what it shows, the cursor on the same row."""
        log = self.log_table
        rows = log.rows
        record = log.cursor_row
        with self.model.lock:
            _first, everything = self.model.ring.snapshot()
            view = self.model.view
            shown = everything if view is self.model.ring else view.snapshot()[1]
            self._frozen_end = view.end
        if isinstance(rows, Window) and view is rows.ring:
            # keep the rows where they are: the window may have started before the ring
            view_first = view.end - len(shown)
            missing = max(0, view_first - rows.start)
            shown = [None] * missing + shown[max(0, rows.start - view_first):]
        self.frozen = everything
        self.paused = True
        self._set_log_rows(shown, record)

    def resume(self) -> None:
        """Back to the newest message, following the tail."""
        self.paused = False
        self.frozen = None
        self._frozen_end = None
        self.refresh_view()

    def _set_log_rows(self, rows: Sequence[Record | None], record: Record | None) -> None:
        """Show ``rows`` in the paused log with the cursor on ``record`` if it is there."""
        log = self.log_table
        log.set_rows(rows, keep_cursor=False)
        index = _find(rows, record) if record is not None else None
        log.move_cursor(len(rows) - 1 if index is None else index, notify=False)
        self._show(log.cursor_row)

    # -- filter and follow ----------------------------------------------------------------

    def action_open_filter(self) -> None:
        field = self._main("#filter", FilterInput)
        field.value = self.filter_text
        field.add_class("shown")
        field.focus()

    def action_close_filter(self) -> None:
        field = self._main("#filter", FilterInput)
        field.remove_class("shown")
        self.log_table.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "filter":
            return
        if self._apply_filter(event.value.strip()):
            self.action_close_filter()

    def _apply_filter(self, text: str) -> bool:
        """Use the filter ``text`` ('' for none); False (and a message) if it is wrong."""
        try:
            compiled = compile_filter([text]) if text else None
        except FilterError as exc:
            self.notify(str(exc), title="Filter", severity="error")
            return False
        self.filter_text = text
        self._filter = None if compiled is None or compiled.matches_all else compiled
        self._update_view()
        return True

    def follow(self, pv: str | None) -> None:
        """Show only ``pv``'s messages (on every circuit) and channels; None: stop."""
        self.follow_pv = pv
        self._update_view()
        self._pane_version = -1
        self.refresh_panes()
        if pv is not None:
            self.notify(f"following {pv}", timeout=2)

    def action_follow(self) -> None:
        if self.follow_pv is not None:
            self.follow(None)
            return
        pv = pv_of(self._focused_row())
        if pv is None:
            self.notify("the selected row names no PV", severity="warning", timeout=3)
            return
        self.follow(pv)

    def action_clear(self) -> None:
        if self.follow_pv is not None:
            self.follow(None)
        elif self.filter_text:
            self._apply_filter("")

    def _selector(self) -> Selector | None:
        """What the log shows: the filter's choice (over a batch of records, times
        counted from the capture's first, errors judged knowing the circuits joined
        mid-stream), of the followed PV's records."""
        wanted, pv, model = self._filter, self.follow_pv, self.model
        if wanted is None and pv is None:
            return None

        def select(records: Sequence[Record]) -> Sequence[bool]:
            keep = ([True] * len(records) if wanted is None
                    else wanted.select(records, model.first_time, model.midstream))
            if pv is None:
                return keep
            return [k and r.pv == pv for k, r in zip(keep, records, strict=True)]

        return select

    def _update_view(self) -> None:
        """The filter or the followed PV changed: filter the log again."""
        select = self._selector()
        self.model.set_filter(select)
        if self.paused and self.frozen is not None:
            record = self.log_table.cursor_row
            rows = self.frozen if select is None else [
                x for x, keep in zip(self.frozen, select(self.frozen), strict=True) if keep]
            self._frozen_end = self.model.view.end
            self._set_log_rows(rows, record)
        else:
            self.refresh_view()

    def _focused_row(self) -> Any:
        focused = self.focused
        if isinstance(focused, VirtualTable):
            return focused.cursor_row
        return self.log_table.cursor_row

    # -- errors ---------------------------------------------------------------------------

    def action_error(self, direction: int) -> None:
        """Move the log's cursor to the next (1) or previous (-1) problem; from the tail,
        to the latest one."""
        log = self.log_table
        start = 1
        if not self.paused:
            self._pause()
            direction, start = -1, 0
        rows = log.rows
        index = log.cursor + direction * start
        while 0 <= index < len(rows):
            record = rows[index]
            if record is not None and self.model.is_problem(record):
                log.move_cursor(index, notify=False, center=True)
                self._show(record)
                log.focus()
                return
            index += direction
        self.notify(f"no {'later' if direction > 0 else 'earlier'} error in the log",
                    timeout=2)

    def reveal(self, record: Record) -> None:
        """Show ``record`` in the log (paused there) and in the details."""
        if not self.paused:
            self._pause()
        rows = self.log_table.rows
        index = _find(rows, record)
        if index is None:
            self._show(record)
            self.notify("that message is no longer in the log (or the filter hides it); "
                        "its details are shown", timeout=4)
            return
        self.log_table.move_cursor(index, notify=False, center=True)
        self.log_table.focus()
        self._show(record)

    # -- panes, help, export --------------------------------------------------------------

    def action_pane(self, pane: str) -> None:
        self._main("#tabs", TabbedContent).active = pane
        self._pane_version = -1
        self.refresh_panes()
        self._main(f"#{pane}-table", VirtualTable).focus()

    def on_tabbed_content_tab_activated(self, _event: TabbedContent.TabActivated) -> None:
        self._pane_version = -1
        self.refresh_panes()

    def action_toggle_details(self) -> None:
        self._main("#details", TextView).toggle_class("hidden")

    def action_focus_log(self) -> None:
        self.log_table.focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_export(self) -> None:
        """Write the log as shown (filter applied) to a Parquet file, off the UI thread."""
        if self.paused:
            records = [x for x in self.log_table.rows if x is not None]
        else:
            records = self.model.snapshot()[1]
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.export_dir / f"shark-{stamp}.parquet"
        self.notify(f"exporting {len(records):,} messages to {path} ...", timeout=2)
        self.run_worker(lambda: self._export(records, path), thread=True, group="export")

    def _export(self, records: list[Record], path: Path) -> None:
        from .export import export_parquet

        try:
            count = export_parquet(records, path)
        except Exception as exc:  # reported, not raised: the capture goes on
            self.call_from_thread(self.notify, f"export failed: {exc}", severity="error")
            return
        self.last_export = path
        self.call_from_thread(self.notify, f"{count:,} messages written to {path}",
                              title="Export")


def _find(rows: Sequence[Any], record: Any) -> int | None:
    """The index of ``record`` in ``rows`` (by identity), searching from the end."""
    for index in range(len(rows) - 1, -1, -1):
        if rows[index] is record:
            return index
    return None

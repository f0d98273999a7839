"""The shark TUI: Channel Access as it happens, keyboard first.

Layout: the message log (top left) with the details of the selected message beside
it; below, the panes (channels, circuits, searches, servers and beacons, errors);
at the bottom the status bar and the keys. Narrower than :data:`WIDE` columns the
details are shown over the whole screen on ``d`` or Enter instead, and the log's
columns give way by importance (:mod:`tui.table`); shorter than :data:`TALL` lines
the log gets more of the height.

How it keeps up: a :class:`~tui.source.Source` thread decodes and fills the
:class:`~tui.model.Model`; a timer redraws ten times a second from whatever the model
holds (the log is a :class:`~tui.table.VirtualTable` over the rows of the model's store
of message batches, every message of a file, so a redraw reads and formats only the
rows on screen, and the pane below is rebuilt twice a second and only when something
changed). Nothing the screen does waits for the decoder.

The log follows the newest message until the user moves in it (or presses space):
it then freezes on the rows it showed (positions in the store, which never change),
so the rows stay put while more arrive; End or space returns to the tail. Home goes
to the capture's first message, the filter and ``f`` (follow a PV) apply to every row
held, and the errors ``e`` jumps to are those of every row held.

What restricts the log (the filter, the PV followed, the circuit or server picked in a
pane) is said in the status bar and under the log, each with the key that clears it
(:mod:`tui.filterbar`). Rows can be marked (:mod:`tui.marks`), times counted from one
(Ctrl-T), the panes sorted by any column (:mod:`tui.panes`), and the marked or shown
rows exported as Parquet and as a pcapng slice of the capture (:mod:`tui.export`).
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
from rich.text import Text
from textual.actions import SkipAction
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import Footer, Input, TabbedContent, TabPane

from decoder import Search
from shark.analysis.filters import Filter, FilterError, compile_filter
from shark.capture.files import CaptureError
from shark.extract.record import Record

from . import rows as r
from .columns import ColumnChooser
from .details import details, row_details
from .filterbar import FilterInput, LineInput, count_matches, restrictions, row_filter
from .graphs import Graphs
from .help import HelpScreen
from .log import LogRow, LogRows
from .marks import Marks
from .model import ChannelRow, CircuitRow, ErrorRow, Model, RowFilter, ServerRow
from .overlay import DetailsScreen
from .panes import PANES, Panes, PaneTable, pv_of, record_of
from .source import Source
from .status import RateMeter, StatusBar, human
from .table import VirtualTable
from .textview import TextView

__all__ = ["FilterInput", "MessageLog", "SharkApp"]

#: Seconds between redraws of the log and status bar, and of the pane shown below.
REFRESH = 0.1
PANE_REFRESH = 0.5
#: Columns from which the details pane is shown beside the log (narrower: over the
#: whole screen, on ``d`` or Enter), and lines from which the panes below get their
#: share (fewer: the log gets more).
WIDE = 120
TALL = 32
#: Seconds between two updates of the details pane while it follows the newest message.
DETAILS_REFRESH = 0.5
#: When the decoder is busier than this (the fraction of time it did not wait for
#: packets), the screen is redrawn only every BUSY_DIVIDER-th tick.
BUSY = 0.9
BUSY_DIVIDER = 3
#: Rows beyond which the log is filtered again on a thread, the screen going on.
BACKGROUND_ROWS = 500_000

W = TypeVar("W", bound=Widget)


#: The id of the pane of pictures (after the panes of tables).
GRAPHS = "graphs"


class JumpInput(LineInput):
    """The ``:`` line: a frame number, or a time (``12.5s``) to jump to; Escape gives up."""

    def action_cancel(self) -> None:
        self.app.action_close_jump()  # type: ignore[attr-defined]

    async def action_submit(self) -> None:
        self.app.submit_jump(self.value.strip())  # type: ignore[attr-defined]


class MessageLog(VirtualTable):
    """The log: moving in it freezes it (see the module docstring); End follows the tail
    again."""

    def action_last(self) -> None:
        self.app.resume()  # type: ignore[attr-defined]


class SharkApp(App[None]):
    """Shows what ``source`` decodes into ``model``."""

    TITLE = "shark"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (WIDE, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (TALL, "-tall")]
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
    #filter, #jump { dock: bottom; display: none; }
    #filter.shown, #jump.shown { display: block; }
    Screen.-narrow #details { display: none; }
    Screen.-short #tabs { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", key_display="?"),
        # (with priority: the bar takes focus before the next key is handled)
        Binding("slash", "open_filter", "Filter", key_display="/", priority=True),
        Binding("colon", "open_jump", "Jump", key_display=":", priority=True),
        Binding("space", "pause", "Pause"),
        Binding("f", "follow", "Follow PV"),
        Binding("e", "error(1)", "Next error"),
        Binding("E", "error(-1)", "Prev error", show=False),
        Binding("x", "export", "Export"),
        Binding("escape", "clear", "Clear", show=False),
        Binding("backspace", "clear_filter", "Clear filter", show=False),
        Binding("c", "clear_scope", "Clear circuit", show=False),
        Binding("m", "mark", "Mark"),
        Binding("n", "next_mark(1)", "Next mark", show=False),
        Binding("N", "next_mark(-1)", "Prev mark", show=False),
        Binding("ctrl+t", "time_reference", "Time ref", show=False),
        Binding("s", "sort(1)", "Sort", show=False),
        Binding("S", "sort(-1)", "Reverse sort", show=False),
        Binding("d", "toggle_details", "Details", show=False),
        Binding("v", "columns", "Columns", show=False),
        Binding("l", "focus_log", "Log", show=False),
        *(Binding(str(n), f"pane('{pane}')", title, show=False)
          for n, (pane, title) in enumerate(PANES, 1)),
        Binding(str(len(PANES) + 1), f"pane('{GRAPHS}')", "Graphs"),
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
        #: The circuit or server picked in a pane (``circuit=3``, ``host=IP:PORT``).
        self.scope: str | None = None
        self._scope: Filter | None = None
        self.marks = Marks()
        #: The store position of the row whose time the log's times count from (None:
        #: the capture's first message).
        self.time_reference: int | None = None
        self._reference_frame = 0
        self.paused = False
        self._filter: Filter | None = None
        self._counting = 0
        self._restricted = ""
        #: Filters asked for, and applied (the log is filtered again on a thread when it
        #: holds many rows): the latest asked for wins.
        self._filtering = 0
        self._filtered = 0
        self._initial_filter = filter_text
        self._shown: LogRow | Record | None = None
        self._pane_version = -1
        self._pane_due = 0.0
        self._details_due = 0.0
        self._ticks = 0
        self._meter = RateMeter()
        self._widgets: dict[str, Widget] = {}
        #: Whether the decoder was busier than BUSY at the last look.
        self._busy = False
        self.panes = Panes(model, self.clock, self._now, lambda: self._busy)
        #: The Parquet file of the last export, and its pcapng slice.
        self.last_export: Path | None = None
        self.last_slice: Path | None = None
        self._rates = (0.0, 0.0)

    # -- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        clock = self.clock
        with Horizontal(id="top"):
            log = MessageLog(r.LOG_COLUMNS, lambda row: r.log_cells(row, clock),
                             r.log_style, id="log")
            log.border_title = "Messages"
            log.before_move = self._browse
            yield log
            view = TextView(details(None, clock), id="details")
            view.border_title = "Details"
            view.on_width = self._details_resized
            yield view
        with TabbedContent(id="tabs"):
            tables = self.panes.tables()
            for name, title in PANES:
                with TabPane(title, id=name):
                    yield tables[name]
            with TabPane("Graphs", id=GRAPHS):
                yield Graphs()
        yield FilterInput(placeholder="filter: pv=GLOB command=NAME host=IP[:PORT] "
                                      "latency>10ms status=failed error, or/not/(...) "
                                      "(Enter applies, Esc cancels)", id="filter")
        yield JumpInput(placeholder="jump to: a frame number (1234), or a time since the "
                                    "capture's first message (12.5s) (Enter jumps, Esc "
                                    "cancels)", id="jump")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        log = self.log_table
        log.row_style = self.marks.style(log.row_style)
        number = next((c.width for c in log.columns if c.title == "No."), 0)
        log.render_row = self.marks.cells(log.render_row, number)
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
        if self._ticks % BUSY_DIVIDER and source is not None:
            self._busy = source.load() > BUSY
            if self._busy:
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
            rows = model.log_rows()
            log.set_rows(rows, keep_cursor=False)
            log.cursor = len(rows) - 1
            log.scroll_to_end()
            if (self.focused is log or self._shown is None) and time.monotonic() >= (
                    self._details_due):
                # the newest message, at a pace a person can read (and the screen afford)
                self._details_due = time.monotonic() + DETAILS_REFRESH
                self._show(log.cursor_row)
        self._status()
        now = time.monotonic()
        if now >= self._pane_due and (model.version != self._pane_version
                                      or self.panes.stale):
            self._pane_due = now + PANE_REFRESH
            self._pane_version = model.version
            self.refresh_panes()

    def refresh_panes(self) -> None:
        """Rebuild the rows of the pane shown (the others wait until shown)."""
        tabs = self._main("#tabs", TabbedContent)
        active = tabs.active or PANES[0][0]
        if active == GRAPHS:
            self._main("Graphs", Graphs).show(self.model, self._selection(),
                                               self._selected_server())
        else:
            rows = self.panes.rows(active, self.follow_pv)
            self._main(f"#{active}-table", VirtualTable).set_rows(rows)
        for pane, title in self.panes.titles().items():
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
            rows = self.log_table.rows
            newer = model.log_rows().last - rows.last if isinstance(rows, LogRows) else 0
            parts.append((f"PAUSED (+{human(newer)} newer)", "bold yellow"))
        else:
            parts.append(("following", "green"))
        # what the log is restricted to (and why it may be empty) before the counters:
        # a narrow screen cuts the line at its end
        found = restrictions(self.filter_text, self.follow_pv, self.scope)
        text = ""
        if found:
            text = "  ".join(str(r) for r in found)
            text = f"{text}  ({model.shown_rows():,} of {len(model.store):,} rows)"
            parts.append((text, "bold cyan"))
        if text != self._restricted:  # (and under the log, whatever the screen's width)
            self._restricted = text
            self.log_table.border_subtitle = Content(text)
        if self.filtering:
            parts.append((f"filtering {len(model.store):,} rows ...", "bold cyan"))
        if self.marks:
            parts.append((f"{len(self.marks)} marked", "bold blue"))
        if self.time_reference is not None:
            parts.append((f"times from frame {self._reference_frame}", "bold yellow"))
        parts.append((f"{human(self._rates[0])} msg/s  {human(self._rates[1], 'B')}/s", ""))
        store = model.store
        if model.bounded and store.start:
            parts.append((f"showing the last {len(store):,} of {store.end:,} rows", "yellow"))
        parts.append((f"{model.messages:,} messages", ""))
        dropped = stats.dropped if stats is not None else 0
        parts.append((f"drops {dropped:,}", "bold red" if dropped else ""))
        parts.append((f"gaps {model.gaps:,}", "bold red" if model.gaps else ""))
        parts.append((f"errors {model.error_count:,}", "red" if model.error_count else ""))
        self._main("#status", StatusBar).show(parts)

    # -- details ---------------------------------------------------------------------------

    def _show(self, row: LogRow | Record | None, again: bool = False) -> None:
        """Show ``row``'s details (in the pane, and over the screen when open there),
        the hex dump fitted to their width; ``again``: even if it is shown (resized)."""
        if row is self._shown and row is not None and not again:
            return
        self._shown = row
        model = self.model
        overlay = self.screen if isinstance(self.screen, DetailsScreen) else None
        pane = self._main("#details", TextView)
        width = (overlay.text_width if overlay is not None
                 else pane.scrollable_content_region.width)
        if isinstance(row, LogRow):
            text = row_details(row, model.raw(row.position), self.clock, model.midstream,
                               width, model=model)
        else:
            text = details(row, self.clock, model.midstream, width)
        pane.show(text)
        if overlay is not None:
            overlay.show(text)

    @property
    def narrow(self) -> bool:
        """Whether the screen is too narrow for the details beside the log."""
        return self.size.width < WIDE

    def open_details(self) -> None:
        """The details over the whole screen (a narrow one)."""
        if isinstance(self.screen, DetailsScreen):
            return
        if self._shown is None:
            self._shown = self.log_table.cursor_row
        # (the details are made again once the overlay is laid out, for its width)
        self.push_screen(DetailsScreen(Text(""), self._move_beneath, self._details_resized),
                         callback=lambda _: self._show(self._shown, again=True))

    def _move_beneath(self, delta: int) -> None:
        """↑ ↓ over the details: move in the table they came from (the log, or the pane
        focused when they were opened)."""
        focused = self.screen_stack[0].focused
        table = focused if isinstance(focused, VirtualTable) else self.log_table
        table.action_cursor(delta)

    def _details_resized(self, _width: int) -> None:
        """The details' width changed (resized, shown, hidden): made again for it."""
        self._show(self._shown, again=True)

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        table = event.table
        self._show(table.cursor_row if table.id == "log" else record_of(event.row))

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        if self._main("#filter", FilterInput).open:
            return  # (an Enter meant for the filter bar)
        row = event.row
        if isinstance(row, ChannelRow):
            if row.name is not None:
                self.follow(row.name)
        elif isinstance(row, Search):
            self.follow(row.name)
        elif isinstance(row, CircuitRow):
            self.restrict(f"circuit={row.number}")
        elif isinstance(row, ServerRow):
            self.restrict(f"host={row.address}")
        elif isinstance(row, ErrorRow):
            self.reveal(row.record)
        elif isinstance(row, (LogRow, Record)):
            self._show(row)
            if self.narrow:
                self.open_details()

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
        """Freeze the log on what it shows (its rows keep their length), the cursor on
        the same row."""
        self.paused = True

    def resume(self) -> None:
        """Back to the newest message, following the tail."""
        self.paused = False
        self.refresh_view()

    def _set_log_rows(self, rows: LogRows, position: int | None) -> None:
        """Show ``rows`` in the paused log with the cursor on the row at store
        ``position`` if it is there, else on the last."""
        log = self.log_table
        log.set_rows(rows, keep_cursor=False)
        index = rows.number_at(position) if position is not None else None
        log.move_cursor(len(rows) - 1 if index is None else index, notify=False, center=True)
        self._show(log.cursor_row)

    # -- filter and follow ----------------------------------------------------------------

    def action_open_filter(self) -> None:
        """Open the bar and focus it now, before the next key is handled (a key typed
        right after ``/`` while a capture loads must reach it)."""
        if self.screen is not self.screen_stack[0]:
            raise SkipAction()  # (the help is on top)
        field = self._main("#filter", FilterInput)
        field.open = True
        field.value = self.filter_text
        field.add_class("shown")
        self.screen.set_focus(field)
        self._check_filter(field)  # (the PV or circuit may have changed since)

    def action_close_filter(self) -> None:
        self._close_bar(self._main("#filter", FilterInput))

    def submit_filter(self, text: str) -> None:
        """Enter in the bar: apply ``text`` and close the bar, or say why it is wrong."""
        if self._apply_filter(text):
            self.action_close_filter()

    def on_input_changed(self, event: Input.Changed) -> None:
        """Say as it is typed whether the filter is understood (why not, if not), and
        how many rows it keeps (counted on a thread)."""
        if isinstance(event.input, FilterInput):
            self._check_filter(event.input)

    def _check_filter(self, field: FilterInput) -> None:
        self._counting += 1
        result = field.validate(field.value)
        if result is not None and not result.is_valid:
            field.border_title = Content(result.failure_descriptions[0])  # (not markup)
            return
        text = field.value.strip()
        field.border_title = f"{'filter ok' if text else 'no filter: every row'}: counting ..."
        wanted = compile_filter([text]) if text else None
        keep = row_filter(self.model, None if wanted is None or wanted.matches_all else wanted,
                          self.follow_pv, self._scope)
        generation = self._counting

        def work() -> None:
            time.sleep(0.2)  # (typing goes on: count what the typing stops at)
            if generation != self._counting:
                return
            try:
                counted = count_matches(self.model, keep,
                                        lambda: generation == self._counting)
            except Exception:  # (a count is a hint: never worth the app; Enter will say)
                return
            if counted is not None:
                self.call_from_thread(self._show_count, generation, *counted)

        self.run_worker(work, thread=True, group="count", exit_on_error=False)

    def _show_count(self, generation: int, kept: int, total: int) -> None:
        if generation == self._counting:
            field = self._main("#filter", FilterInput)
            others = restrictions("", self.follow_pv, self.scope)  # (counted with them)
            also = f" (with {', '.join(str(r) for r in others)})" if others else ""
            verdict = "filter ok" if field.value.strip() else "no filter"
            # (the top border: the bottom one is under the status bar)
            field.border_title = Content(f"{verdict}: {kept:,} of {total:,} match{also}")

    # -- jump to a frame or a time ----------------------------------------------------------

    def action_open_jump(self) -> None:
        if self.screen is not self.screen_stack[0]:
            raise SkipAction()
        field = self._main("#jump", JumpInput)
        field.open = True
        field.value = ""
        field.add_class("shown")
        self.screen.set_focus(field)

    def action_close_jump(self) -> None:
        self._close_bar(self._main("#jump", JumpInput))

    def _close_bar(self, field: FilterInput | JumpInput) -> None:
        """Hide the filter bar or the ``:`` line, the log's keys again."""
        field.open = False
        field.remove_class("shown")
        self.screen_stack[0].set_focus(self.log_table)

    def submit_jump(self, text: str) -> None:
        """Enter in the ``:`` line: jump, and close the line unless ``text`` is wrong."""
        if self.jump(text):
            self.action_close_jump()

    def jump(self, text: str) -> bool:
        """Put the log's cursor (paused) on the first row shown of frame ``text`` or
        later, or at time ``text`` (``12.5s``, ``12.5``: seconds since the capture's
        first message) or later; False (and a message) if ``text`` is neither."""
        model = self.model
        try:
            if text.endswith("s") or "." in text:
                seconds = float(text.removesuffix("s"))
                position = model.seek("time", seconds)
            else:
                position = model.seek("frame", int(text))
        except ValueError:
            self.notify(f"jump: {text!r} is neither a frame number nor a time (12.5s)",
                        severity="error")
            return False
        if not self.paused:
            self._pause()
        log = self.log_table
        rows = log.rows
        number = rows.number_at(position) if isinstance(rows, LogRows) and (
            position is not None) else None
        if number is None:
            self.notify(f"no message at {text} or later in the log", timeout=3)
            return True
        log.move_cursor(number, notify=False, center=True)
        self._show(log.cursor_row)
        return True

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
        """Escape: stop following the PV, else drop the circuit, else the filter."""
        if self.follow_pv is not None:
            self.follow(None)
        elif self.scope is not None:
            self.restrict(None)
        elif self.filter_text:
            self._apply_filter("")

    def action_clear_filter(self) -> None:
        if self.filter_text:
            self._apply_filter("")

    def action_clear_scope(self) -> None:
        if self.scope is not None:
            self.restrict(None)

    def restrict(self, scope: str | None) -> None:
        """Show only the rows of a circuit (``circuit=3``) or server (``host=IP:PORT``),
        with the filter and the PV followed; None: of every one."""
        self.scope = scope
        self._scope = compile_filter([scope]) if scope is not None else None
        self._update_view()

    def _row_filter(self) -> RowFilter | None:
        """What the log shows: the rows every restriction keeps."""
        return row_filter(self.model, self._filter, self.follow_pv, self._scope)

    def _update_view(self) -> None:
        """The filter or the followed PV changed: filter the log again, on a thread
        when there are many rows (the screen goes on meanwhile, saying so)."""
        row = self.log_table.cursor_row
        position = row.position if isinstance(row, LogRow) else None
        row_filter = self._row_filter()
        self._filtering += 1
        generation = self._filtering
        if row_filter is None or len(self.model.store) < BACKGROUND_ROWS:
            self.model.set_filter(row_filter)
            self._view_changed(generation, position)
            return

        def work() -> None:
            if self.model.set_filter(row_filter, lambda: generation == self._filtering):
                self.call_from_thread(self._view_changed, generation, position)

        self.run_worker(work, thread=True, group="filter")
        self._status()

    @property
    def filtering(self) -> bool:
        """Whether the log is being filtered again (on a thread)."""
        return self._filtered != self._filtering

    def _view_changed(self, generation: int, position: int | None) -> None:
        """The log's rows were filtered again: show them (the cursor, paused, on the
        row at store ``position`` or the next shown)."""
        if generation != self._filtering:
            return
        self._filtered = generation
        if self.paused:
            self._set_log_rows(self.model.log_rows(), position)
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
        rows = log.rows
        at: int | None = None
        if not self.paused or not isinstance(rows, LogRows):
            self._pause()
            rows = log.rows
            direction = -1
        elif 0 <= log.cursor < len(rows):
            at = rows.position(log.cursor)
        found = None
        if isinstance(rows, LogRows) and len(rows):
            found = _next_problem(self.model, rows, at, direction)
        if found is None:
            self.notify(f"no {'later' if direction > 0 else 'earlier'} error in the log",
                        timeout=2)
            return
        log.move_cursor(found, notify=False, center=True)
        self._show(log.cursor_row)
        log.focus()

    def reveal(self, record: Record) -> None:
        """Show ``record`` in the log (paused there) and in the details."""
        if not self.paused:
            self._pause()
        log = self.log_table
        rows = log.rows
        position = self.model.find(record)
        number = (rows.number_of(position) if isinstance(rows, LogRows)
                  and position is not None else None)
        if number is None:
            self._show(record)
            self.notify("that message is no longer in the log (or the filter hides it); "
                        "its details are shown", timeout=4)
            return
        log.move_cursor(number, notify=False, center=True)
        log.focus()
        self._show(log.cursor_row)

    # -- marks and the time reference ------------------------------------------------------

    def action_mark(self) -> None:
        """Mark the log's cursor row, or unmark it."""
        row = self.log_table.cursor_row
        if not isinstance(row, LogRow):
            self.notify("no message under the cursor to mark", timeout=2)
            return
        marked = self.marks.toggle(row.position)
        self.log_table.refresh()
        self.notify(f"frame {row.frame} {'marked' if marked else 'unmarked'} "
                    f"({len(self.marks)} marked; n / N go to them, x exports them)",
                    timeout=2)

    def action_next_mark(self, direction: int) -> None:
        """Move the log's cursor (paused) to the next (1) or previous (-1) mark shown."""
        if not self.marks:
            self.notify("no marks: m marks the row under the cursor", timeout=2)
            return
        log = self.log_table
        if not self.paused:
            self._pause()
        rows = log.rows
        if not isinstance(rows, LogRows):
            return
        row = log.cursor_row
        at = row.position if isinstance(row, LogRow) else None
        found = self.marks.step(rows, at, direction)
        if found is None:  # past the last (first): round to the first (last)
            found = self.marks.step(rows, None, direction)
        if found is None:
            self.notify("no mark among the rows shown", timeout=2)
            return
        log.move_cursor(found, notify=False, center=True)
        self._show(log.cursor_row)
        self.screen_stack[0].set_focus(log)

    def action_time_reference(self) -> None:
        """Count the times shown from the log's cursor row (as Wireshark's Ctrl-T); on
        that row again, from the capture's first message again."""
        row = self.log_table.cursor_row
        log = self.log_table
        if not isinstance(row, LogRow) or row.position == self.time_reference:
            self.time_reference = None
            self.clock.zero = self.model.first_time
            log.header_titles = {}
            self.notify("times count from the capture's first message", timeout=2)
        else:
            self.time_reference = row.position
            self._reference_frame = row.frame
            self.clock.zero = row.time / 1e9
            at = [c.title for c in log.columns].index("Time")
            log.header_titles = {at: "ΔTime"}
            self.notify(f"times count from frame {row.frame} (Ctrl-T there again: from "
                        "the first message)", timeout=3)
        self._shown = None
        self._show(row)
        log.refresh()
        self._pane_version = -1

    # -- sorting the panes -------------------------------------------------------------------

    def action_sort(self, direction: int) -> None:
        """``s``: sort the pane shown by its next column; ``S``: the other way."""
        tabs = self._main("#tabs", TabbedContent)
        pane = tabs.active or PANES[0][0]
        if pane == GRAPHS:
            return
        how = self.panes.sort(pane, step=1) if direction > 0 else self.panes.sort(
            pane, reverse=True)
        self._pane_version = -1
        self.refresh_panes()
        self.notify(f"{dict(PANES)[pane]} sorted {how}", timeout=2)

    def on_pane_table_header_clicked(self, event: PaneTable.HeaderClicked) -> None:
        pane = (event.table.id or "").removesuffix("-table")
        how = self.panes.sort(pane, column=event.column)
        self._pane_version = -1
        self.refresh_panes()
        self.notify(f"{dict(PANES).get(pane, pane)} sorted {how}", timeout=2)

    # -- panes, help, export --------------------------------------------------------------

    def action_pane(self, pane: str) -> None:
        self._main("#tabs", TabbedContent).active = pane
        self._pane_version = -1
        self.refresh_panes()
        if pane != GRAPHS:
            self._main(f"#{pane}-table", VirtualTable).focus()

    def _what(self) -> str:
        """What is shown, for titles: "live", or the capture file's name."""
        path = getattr(self.source, "path", None)
        return "live" if path is None else Path(str(path)).name

    def _selection(self) -> str | None:
        """What the log is restricted to, in words (None: nothing)."""
        parts = [self.filter_text] if self.filter_text else []
        if self.follow_pv is not None:
            parts.append(f"PV {self.follow_pv}")
        return " and ".join(parts) or None

    def _selected_server(self) -> str | None:
        """The server under the Servers pane's cursor, if any."""
        row = self._main("#servers-table", VirtualTable).cursor_row
        return getattr(row, "address", None)

    def on_tabbed_content_tab_activated(self, _event: TabbedContent.TabActivated) -> None:
        self._pane_version = -1
        self.refresh_panes()

    def action_toggle_details(self) -> None:
        if self.narrow:
            self.open_details()
        else:
            self._main("#details", TextView).toggle_class("hidden")

    def action_columns(self) -> None:
        """Choose the columns of the focused table (the log's if none is)."""
        focused = self.focused
        table = focused if isinstance(focused, VirtualTable) else self.log_table
        title = "Log columns" if table is self.log_table else "Columns"
        self.push_screen(ColumnChooser(table, title))

    def deliver_screenshot(self, filename: str | None = None, path: str | None = None,
                           time_format: str | None = None) -> str | None:
        """Save the screen as SVG (the command palette's Screenshot) where exports go,
        and say where; Textual's own delivery writes to a Downloads folder, which a
        server or a container seldom has, and then fails."""
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = Path(path) if path is not None else self.export_dir
        try:
            saved = self.save_screenshot(filename or f"shark-{stamp}.svg", str(folder))
        except OSError as exc:
            self.notify(f"screenshot failed: {exc}", title="Screenshot", severity="error")
            return None
        self.notify(f"saved to {saved}", title="Screenshot")
        return saved

    def action_focus_log(self) -> None:
        self.log_table.focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self._what()))

    def action_export(self) -> None:
        """Write the marked rows (if any), else the log as shown (restrictions applied),
        to a Parquet file and, from a capture file, their frames to a pcapng slice; off
        the UI thread."""
        if self.marks:
            rows, what = self.marks.rows(self.model.rows), "marked"
        else:
            rows = self.log_table.rows if self.paused else self.model.log_rows()
            if not isinstance(rows, LogRows):
                rows = self.model.log_rows()
            what = "shown"
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.export_dir / f"shark-{stamp}.parquet"
        # (a live capture's slice comes from the file it is saved to, if it is)
        capture = getattr(self.source, "path", None) or getattr(self.source, "written", None)
        self.notify(f"exporting {len(rows):,} {what} messages to {path} ...", timeout=2)
        self.run_worker(lambda: self._export(rows, path, capture), thread=True,
                        group="export")

    def _export(self, rows: LogRows, path: Path, capture: Path | None) -> None:
        from .export import export_rows, export_slice

        unsaved = ""
        try:
            count = export_rows(rows, path)
            frames = None
            if capture is not None:
                try:
                    frames, wanted = export_slice(rows, capture, path.with_suffix(".pcapng"))
                    if frames < wanted:  # (a live capture's file: the newest not saved yet)
                        unsaved = f" on disk so far ({frames:,} of {wanted:,})"
                except CaptureError:  # (a live capture's file, its last block being written)
                    frames, unsaved = 0, " on disk so far"
        except Exception as exc:  # reported, not raised: the capture goes on
            self.call_from_thread(self.notify, f"export failed: {exc}", severity="error")
            return
        self.last_export = path
        if frames is None:
            sliced = "no pcapng slice: a live capture saved to no file (--write) has none"
        else:
            self.last_slice = path.with_suffix(".pcapng")
            which = f"their frames{unsaved}" if unsaved else f"their {frames:,} frames"
            sliced = f"{which} (with their channels' set-ups) to {self.last_slice}"
        self.call_from_thread(self.notify, f"{count:,} messages written to {path}; "
                              f"{sliced}", title="Export")


def _next_problem(model: Model, rows: LogRows, at: int | None, direction: int
                  ) -> int | None:
    """Which of ``rows`` is the first problem after (1) or before (-1) store position
    ``at`` (None: from the end), among those ``rows`` shows."""
    chunks = [c for c in model.problem_rows.all() if len(c)]
    if not chunks:
        return None
    problems = np.concatenate(chunks)
    if rows.index is not None:  # (those the filter keeps)
        kept = [c for c in rows.index.all() if len(c)]
        problems = problems[np.isin(problems, np.concatenate(kept))] if kept else problems[:0]
    first, last = rows.position(0), rows.position(len(rows) - 1)
    if first is None or last is None:
        return None
    problems = problems[(problems >= first) & (problems <= last)]
    if at is not None:
        problems = problems[problems > at] if direction > 0 else problems[problems < at]
    if not len(problems):
        return None
    return rows.number_of(int(problems[0] if direction > 0 else problems[-1]))


"""A table that renders only the rows on screen: the widget behind every pane.

Textual's DataTable copies each row into itself and lays it out when added; at 100k
messages a second that alone would use the CPU the decoder needs. This table, built
on Textual's Line API (as toolong's log view is), holds a *reference* to a sequence
of row objects and a function turning one row object into cells: replacing the rows
costs nothing, and each screen refresh formats the 20-50 rows in view and no others.

The header stays on the first line; a cursor row can be moved with the keyboard or
the mouse, and is reported with :class:`VirtualTable.Highlighted` (moved) and
:class:`VirtualTable.Selected` (Enter or a click on the cursor row).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

__all__ = ["Column", "VirtualTable", "clean", "fit"]

Cell = str | Text


@dataclass(frozen=True)
class Column:
    """A column: its title, its width in cells (0: what the others leave), alignment."""

    title: str
    width: int = 0
    right: bool = False


class VirtualTable(ScrollView, can_focus=True):
    """Rows of ``rows`` (any sequence; None items render blank) through ``render_row``."""

    DEFAULT_CSS = """
    VirtualTable {
        background: $surface;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
        &:focus { background-tint: $foreground 4%; }
        & > .virtual-table--header { text-style: bold; background: $panel; }
        & > .virtual-table--cursor { background: $block-cursor-blurred-background; }
        &:focus > .virtual-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: bold;
        }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "virtual-table--header", "virtual-table--cursor",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
        Binding("enter", "select", "Select", show=False),
    ]

    class Highlighted(Message):
        """The cursor moved to ``index`` (``row`` is its row object)."""

        def __init__(self, table: VirtualTable, index: int, row: Any) -> None:
            super().__init__()
            self.table = table
            self.index = index
            self.row = row

        @property
        def control(self) -> VirtualTable:
            return self.table

    class Selected(Highlighted):
        """Enter was pressed (or the cursor row clicked) on ``row``."""

    def __init__(self, columns: Sequence[Column], render_row: Callable[[Any], Sequence[Cell]],
                 row_style: Callable[[Any], str | None] | None = None, *,
                 name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = list(columns)
        self.render_row = render_row
        self.row_style = row_style
        self.rows: Sequence[Any] = ()
        #: Index of the cursor row, -1 when there are no rows.
        self.cursor = -1
        #: Called before the user moves the cursor (keys, clicks, wheel): the message
        #: log freezes its rows there, so that they hold still under the cursor.
        self.before_move: Callable[[], None] | None = None
        self._styles: dict[str, Style] = {}
        self._base = Style()
        self._width = 0

    # -- data -----------------------------------------------------------------------------

    def set_rows(self, rows: Sequence[Any], keep_cursor: bool = True) -> None:
        """Show ``rows``. With ``keep_cursor`` the cursor stays on the same row object if
        it is still there (tables re-sorted at each refresh), else on the same index."""
        previous = self.cursor_row if keep_cursor else None
        self.rows = rows
        count = len(rows)
        cursor = self.cursor
        if previous is not None and (cursor >= count or rows[cursor] is not previous):
            try:
                cursor = _index_of(rows, previous)
            except ValueError:
                pass
        self.cursor = min(max(cursor, 0), count - 1)
        self.virtual_size = Size(self.size.width, count + 1)
        self.refresh()

    @property
    def cursor_row(self) -> Any:
        """The row object under the cursor, or None."""
        if 0 <= self.cursor < len(self.rows):
            return self.rows[self.cursor]
        return None

    @property
    def page_rows(self) -> int:
        """Rows that fit on screen under the header."""
        return max(1, self.scrollable_content_region.height - 1)

    def move_cursor(self, index: int, notify: bool = True, center: bool = False) -> None:
        """Put the cursor on row ``index`` (clamped) and scroll it into view."""
        count = len(self.rows)
        if not count:
            return
        index = min(max(index, 0), count - 1)
        changed = index != self.cursor
        self.cursor = index
        self.scroll_to_cursor(center)
        self.refresh()
        if changed and notify:
            self.post_message(self.Highlighted(self, index, self.rows[index]))

    def scroll_to_cursor(self, center: bool = False) -> None:
        """Bring the cursor row on screen (``center``: in the middle, for a jump)."""
        page = self.page_rows
        top = int(self.scroll_y)
        if center and not top <= self.cursor < top + page:
            self.scroll_y = max(0, self.cursor - page // 2)
        elif self.cursor < top:
            self.scroll_y = self.cursor
        elif self.cursor >= top + page:
            self.scroll_y = self.cursor - page + 1

    def scroll_to_end(self) -> None:
        self.scroll_y = max(0, len(self.rows) - self.page_rows)

    # -- actions --------------------------------------------------------------------------

    def _browse(self) -> None:
        if self.before_move is not None:
            self.before_move()

    def action_cursor(self, delta: int) -> None:
        self._browse()
        self.move_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._browse()
        self.move_cursor(self.cursor + direction * self.page_rows)

    def action_first(self) -> None:
        self._browse()
        self.move_cursor(0)

    def action_last(self) -> None:
        self._browse()
        self.move_cursor(len(self.rows) - 1)

    def action_select(self) -> None:
        row = self.cursor_row
        if row is not None:
            self.post_message(self.Selected(self, self.cursor, row))

    def _on_click(self, event: events.Click) -> None:
        index = int(self.scroll_y) + event.y - 1
        if event.y < 1 or not 0 <= index < len(self.rows):
            return
        self._browse()
        index = int(self.scroll_y) + event.y - 1
        if index == self.cursor:
            self.action_select()
        else:
            self.move_cursor(index)

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._browse()

    # -- rendering ------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            if name.startswith("virtual-table--"):
                style = self.get_component_rich_style(name)
            else:
                style = Style.parse(name)
            self._styles[name] = style
        return style

    def _widths(self, width: int) -> list[int]:
        fixed = sum(c.width for c in self.columns) + len(self.columns) - 1
        return [c.width or max(1, width - fixed) for c in self.columns]

    def render_lines(self, crop: Region) -> list[Strip]:
        # what every line needs, worked out once per redraw rather than once per line
        self._base = self.rich_style
        self._width = self.scrollable_content_region.width or self.size.width
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width, base = self._width, self._base
        if y == 0:
            cells: Sequence[Cell] = [c.title for c in self.columns]
            return self._strip(cells, width, base + self._style("virtual-table--header"))
        index = int(self.scroll_y) + y - 1
        rows = self.rows
        if index >= len(rows):
            return Strip.blank(width, base)
        try:
            row = rows[index]
        except IndexError:
            row = None
        if row is None:
            return Strip.blank(width, base)
        style = base
        if self.row_style is not None:
            extra = self.row_style(row)
            if extra:
                style = style + self._style(extra)
        if index == self.cursor:
            style = style + self._style("virtual-table--cursor")
        try:
            cells = self.render_row(row)
        except Exception as exc:  # one odd row must not take the screen down
            cells = [f"<{type(exc).__name__}: {exc}>"]
        return self._strip(cells, width, style)

    def _strip(self, cells: Sequence[Cell], width: int, style: Style) -> Strip:
        """One line: plain strings are fitted by hand (the common case, and ten times
        cheaper than laying out Rich text); Text cells keep their own styles."""
        segments: list[Segment] = []
        append = segments.append
        for number, (column, cell_width, cell) in enumerate(
                zip(self.columns, self._widths(width), cells, strict=False)):
            if number:
                append(Segment(" ", style))
            if isinstance(cell, Text):
                text = cell.copy()
                text.plain = clean(text.plain)
                text.truncate(cell_width, overflow="ellipsis", pad=True)
                if column.right:
                    text.rstrip()
                    text.pad_left(cell_width - text.cell_len)
                for piece in text.render(self.app.console):
                    if piece.text != "\n":
                        append(Segment(piece.text, style + piece.style if piece.style
                                       else style))
            else:
                append(Segment(fit(str(cell), cell_width, column.right), style))
        return Strip(segments).adjust_cell_length(width, style)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` with control characters replaced: names and strings come from the
    network, and an escape sequence in a PV name must not reach the terminal."""
    return text if text.isprintable() else _CONTROL.sub("\ufffd", text)


def fit(text: str, width: int, right: bool = False) -> str:
    """``text`` cut (with an ellipsis) or padded to exactly ``width`` cells."""
    if not (text.isascii() and text.isprintable()):
        text = clean(text)
        if cell_len(text) > width:
            return set_cell_size(text, width - 1) + "…" if width > 0 else ""
        return set_cell_size(text, width) if not right else (
            " " * (width - cell_len(text)) + text)
    length = len(text)
    if length > width:
        return text[: width - 1] + "…" if width > 0 else ""
    return text.rjust(width) if right else text.ljust(width)


def _index_of(rows: Sequence[Any], row: Any) -> int:
    """The index of the object ``row`` (identity, not equality)."""
    for index, candidate in enumerate(rows):
        if candidate is row:
            return index
    raise ValueError("not in rows")

"""A table that renders only the rows on screen: the widget behind every pane.

Textual's DataTable copies each row into itself and lays it out when added; at 100k
messages a second that alone would use the CPU the decoder needs. This table, built
on Textual's Line API (as toolong's log view is), holds a *reference* to a sequence
of row objects and a function turning one row object into cells: replacing the rows
costs nothing, and each screen refresh formats the 20-50 rows in view and no others.

The header stays on the first line; a cursor row can be moved with the keyboard or
the mouse, and is reported with :class:`VirtualTable.Highlighted` (moved) and
:class:`VirtualTable.Selected` (Enter or a click on the cursor row).

Any width: each column says how much it matters (``priority``) and how narrow it may
be squeezed (``min_width``). When the columns do not fit, the squeezable ones give way
first, then the least important are left out (the rightmost of equals first), so a
narrow terminal shows the few that matter rather than the first few cut. A column can
also be hidden by choice (:attr:`VirtualTable.hidden`, the column chooser).
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


#: The narrowest a column of no fixed width (the one that takes what is left) may be.
FLEX_MIN = 16


@dataclass(frozen=True)
class Column:
    """A column: its title, its width in cells (0: what the others leave), alignment;
    how much it matters when the screen is narrow (the lowest ``priority`` is left out
    first), the narrowest it may be squeezed to (``min_width``, 0: not squeezed), and
    whether it starts hidden (shown only when chosen)."""

    title: str
    width: int = 0
    right: bool = False
    priority: int = 50
    min_width: int = 0
    hidden: bool = False

    @property
    def least(self) -> int:
        """The narrowest this column is drawn."""
        return self.min_width or self.width or FLEX_MIN


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
        #: Titles of the columns hidden by choice (the chooser); kept for the session.
        self.hidden: set[str] = {c.title for c in self.columns if c.hidden}
        #: Titles shown in the header instead of the columns' own, by column index
        #: (a sort's arrow, the time reference): the columns keep their names.
        self.header_titles: dict[int, str] = {}
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
        self._layout: tuple[tuple[int, frozenset[str]], list[tuple[int, int]]] | None = None

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

    def move_cursor(self, index: int, notify: bool = True, center: bool = False,
                    always: bool = False) -> None:
        """Put the cursor on row ``index`` (clamped) and scroll it into view; say so
        (:class:`Highlighted`) if it moved, or ``always`` (a key the user pressed: what
        shows the row, the details, may show another table's since)."""
        count = len(self.rows)
        if not count:
            return
        index = min(max(index, 0), count - 1)
        changed = index != self.cursor
        self.cursor = index
        self.scroll_to_cursor(center)
        self.refresh()
        if (changed or always) and notify:
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
        self.move_cursor(self.cursor + delta, always=True)

    def action_page(self, direction: int) -> None:
        self._browse()
        self.move_cursor(self.cursor + direction * self.page_rows, always=True)

    def action_first(self) -> None:
        self._browse()
        self.move_cursor(0, always=True)

    def action_last(self) -> None:
        self._browse()
        self.move_cursor(len(self.rows) - 1, always=True)

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

    def set_hidden(self, titles: set[str]) -> None:
        """Hide the columns titled ``titles`` (and show the others)."""
        self.hidden = set(titles)
        self._layout = None
        self.refresh()

    def shown_columns(self, width: int | None = None) -> list[Column]:
        """The columns drawn at ``width`` cells (the table's own width if None)."""
        if width is None:
            width = self.scrollable_content_region.width or self.size.width
        return [self.columns[index] for index, _ in self.layout(width)]

    def layout(self, width: int) -> list[tuple[int, int]]:
        """(index, width) of each column drawn in ``width`` cells, left to right:
        those not hidden, less the least important while even squeezed they do not
        fit; squeezed columns get their room back first, then the flexible column
        takes what is left."""
        key = (width, frozenset(self.hidden))
        if self._layout is not None and self._layout[0] == key:
            return self._layout[1]
        columns = self.columns
        kept = [i for i, c in enumerate(columns) if c.title not in self.hidden]
        drop = sorted(kept, key=lambda i: (columns[i].priority, -i))
        while len(kept) > 1 and sum(columns[i].least for i in kept) + len(kept) - 1 > width:
            kept.remove(drop.pop(0))
        widths = {i: columns[i].least for i in kept}
        spare = width - sum(widths.values()) - (len(kept) - 1)
        for i in sorted(kept, key=lambda i: -columns[i].priority):
            grow = min(max(spare, 0), columns[i].width - widths[i])
            if grow > 0:
                widths[i] += grow
                spare -= grow
        flexible = [i for i in kept if not columns[i].width]
        if flexible and spare > 0:
            widths[flexible[0]] += spare
        elif spare < 0:  # (one column left, and even it is too wide: cut it)
            widths[kept[-1]] = max(1, widths[kept[-1]] + spare)
        result = [(i, widths[i]) for i in kept]
        self._layout = (key, result)
        return result

    def render_lines(self, crop: Region) -> list[Strip]:
        # what every line needs, worked out once per redraw rather than once per line
        self._base = self.rich_style
        self._width = self.scrollable_content_region.width or self.size.width
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width, base = self._width, self._base
        if y == 0:
            titles = self.header_titles
            cells: Sequence[Cell] = [titles.get(i, c.title) for i, c in enumerate(self.columns)]
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
        columns = self.columns
        if len(cells) == 1 < len(columns):  # (a row that could not be made: say why)
            return Strip([Segment(fit(str(cells[0]), width), style)])
        for number, (index, cell_width) in enumerate(self.layout(width)):
            column = columns[index]
            cell = cells[index] if index < len(cells) else ""
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

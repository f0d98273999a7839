"""The column chooser: which of a table's columns are shown (``v``).

A small window over the screen listing the focused table's columns, each with a
check box; a change applies at once, and the table keeps the choice for the session.
A column chosen may still be left out when the screen is too narrow for it (see
:meth:`tui.table.VirtualTable.layout`); the window says which.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import SelectionList, Static

from .table import VirtualTable

__all__ = ["ColumnChooser"]


class ColumnChooser(ModalScreen[None]):
    """Check boxes for ``table``'s columns (space or a click toggles; Esc closes)."""

    DEFAULT_CSS = """
    ColumnChooser { align: center middle; }
    ColumnChooser > Vertical { width: 44; height: auto; max-height: 90%;
                               border: round $primary; background: $surface; }
    ColumnChooser SelectionList { height: auto; max-height: 20; border: none; }
    ColumnChooser Static { color: $text-muted; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,v,q,enter", "dismiss", "Close"),
    ]

    def __init__(self, table: VirtualTable, title: str = "Columns") -> None:
        super().__init__()
        self.table = table
        self.title_text = title

    def compose(self) -> ComposeResult:
        table = self.table
        with Vertical() as box:
            box.border_title = self.title_text
            yield SelectionList[str](*((c.title, c.title, c.title not in table.hidden)
                                       for c in table.columns if c.title))
            yield Static(self._note(), id="columns-note")

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def _note(self) -> str:
        table = self.table
        shown = {c.title for c in table.shown_columns()}
        left_out = [c.title for c in table.columns
                    if c.title not in table.hidden and c.title not in shown]
        note = "space toggles, Esc closes"
        if left_out:
            note += f"; too narrow for: {', '.join(left_out)}"
        return note

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged
                                           ) -> None:
        chosen = set(event.selection_list.selected)
        self.table.set_hidden({c.title for c in self.table.columns if c.title not in chosen})
        self.query_one("#columns-note", Static).update(self._note())

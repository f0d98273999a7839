"""The details of a message over the whole screen, for terminals too narrow to show
them beside the log (below :data:`tui.app.WIDE` columns).

Enter or ``d`` in the log opens it (``d`` in a pane too); ↑ and ↓ move the cursor of
the table beneath (the details follow), PgUp, PgDn and the mouse wheel scroll them,
Esc, ``d`` or Enter close.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen

from .textview import TextView

__all__ = ["DetailsScreen"]


class DetailsScreen(ModalScreen[None]):
    """Shows ``text``; ``move(delta)`` moves the log's cursor (the app then calls
    :meth:`show` with the new row's details)."""

    DEFAULT_CSS = """
    DetailsScreen { align: center middle; }
    DetailsScreen > TextView { width: 100%; height: 100%; padding: 0 1;
                               border: round $secondary; border-title-align: left; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,d,enter,q", "dismiss", "Close"),
        # (with priority: the view's own up and down would scroll it)
        Binding("up,k", "move(-1)", "Previous message", priority=True),
        Binding("down,j", "move(1)", "Next message", priority=True),
        Binding("pageup", "scroll(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll(1)", "Scroll down", show=False),
    ]

    def __init__(self, text: Text, move: Callable[[int], None],
                 resized: Callable[[int], None] | None = None) -> None:
        super().__init__()
        self._text = text
        self._move = move
        self._resized = resized

    def compose(self) -> ComposeResult:
        view = TextView(self._text, id="overlay-details")
        view.on_width = self._resized
        view.border_title = "Details  (↑ ↓ messages, PgUp PgDn scroll, Esc closes)"
        yield view

    @property
    def view(self) -> TextView:
        return self.query_one("#overlay-details", TextView)

    @property
    def text_width(self) -> int:
        """The cells a line of the details has."""
        return self.view.scrollable_content_region.width or max(0, self.size.width - 4)

    def show(self, text: Text) -> None:
        self._text = text
        if self.is_mounted:
            self.view.show(text)

    def action_move(self, delta: int) -> None:
        self._move(delta)

    def action_scroll(self, direction: int) -> None:
        view = self.view
        view.scroll_to(y=view.scroll_y + direction * max(1, view.size.height - 2),
                       animate=False)

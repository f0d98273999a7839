"""A scrollable block of text that can change ten times a second without a layout pass.

Textual lays the whole screen out again when a widget's content may change size (a
``Static`` whose text changes); under heavy traffic that costs more than drawing. This
view (Line API, like :mod:`tui.table`) keeps its box and only tells Textual its virtual
size, which stays the same while one kind of message follows another.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

__all__ = ["TextView"]


class TextView(ScrollView, can_focus=True):
    """Shows a Rich :class:`~rich.text.Text`, one line per line, cropped (scroll sideways
    for more)."""

    DEFAULT_CSS = """
    TextView { background: $surface; overflow-x: auto; overflow-y: auto; }
    """

    def __init__(self, text: Text | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.text = Text()
        self._lines: list[Text] = []
        self._strips: dict[int, Strip] = {}
        #: Told the width of a line when it changes (the details' hex dump is made for it).
        self.on_width: Callable[[int], None] | None = None
        self._known_width = -1
        if text is not None:
            self.show(text)

    def on_resize(self, _event: events.Resize) -> None:
        width = self.scrollable_content_region.width
        if width != self._known_width:
            self._known_width = width
            if self.on_width is not None:
                self.on_width(width)

    def show(self, text: Text) -> None:
        """Replace the text (scrolled back to its top)."""
        self.text = text
        self._lines = text.split("\n", allow_blank=True)
        self._strips.clear()
        width = max((line.cell_len for line in self._lines), default=0)
        self.scroll_to(0, 0, animate=False)
        self.virtual_size = Size(width, len(self._lines))
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width or self.size.width
        style = self.rich_style
        if index >= len(self._lines):
            return Strip.blank(width, style)
        strip = self._strips.get(index)
        if strip is None:
            line = self._lines[index]
            strip = Strip(line.render(self.app.console), line.cell_len)
            self._strips[index] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, style).apply_style(style)

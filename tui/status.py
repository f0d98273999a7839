"""The status bar: how much traffic, how fast, what was lost, and what is shown.

Rates are measured over the last second of wall-clock time from the model's and the
source's counters, so they say what the tool is processing now (for a file played
at full speed, how fast it decodes).
"""

from __future__ import annotations

import time
from collections import deque

from rich.text import Text
from textual.widgets import Static

__all__ = ["RateMeter", "StatusBar", "human"]


def human(number: float, unit: str = "") -> str:
    """``12.3k``, ``4.5M``: short enough for a status bar."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= scale:
            return f"{number / scale:.1f}{suffix}{unit}"
    return f"{number:.0f}{unit}"


class RateMeter:
    """Per-second rates of growing counters, over a sliding window of wall-clock time."""

    def __init__(self, window: float = 1.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, tuple[int, ...]]] = deque()

    def rates(self, *counters: int) -> tuple[float, ...]:
        now = time.monotonic()
        samples = self._samples
        samples.append((now, counters))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        then, old = samples[0]
        elapsed = now - then
        if elapsed <= 0:
            return tuple(0.0 for _ in counters)
        return tuple((new - before) / elapsed for new, before in zip(counters, old, strict=True))


class StatusBar(Static):
    """One line at the bottom of the screen."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def show(self, parts: list[tuple[str, str]]) -> None:
        """``parts``: (text, style) pairs, separated by a dim bar."""
        line = Text(no_wrap=True, overflow="ellipsis")
        for index, (text, style) in enumerate(parts):
            if index:
                line.append(" │ ", style="dim")
            line.append(text, style=style)
        self.update(line, layout=False)  # one line, whatever it says: no layout pass

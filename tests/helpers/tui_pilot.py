"""Driving the TUI headless on a capture, for the tests of tui/: the app decodes the
whole file at full speed, redraws, and then a script presses keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tui.app import FilterInput, SharkApp
from tui.model import Model
from tui.source import FileSource

Script = Callable[[SharkApp, Any], Awaitable[None]]


def drive(path: Path, script: Script, ring_size: int = 100_000, model: Model | None = None,
          size: tuple[int, int] = (200, 50), **options: Any) -> SharkApp:
    """Run the app on ``path`` in a terminal of ``size`` (columns, lines) until the file
    is decoded and shown, then ``script``."""

    async def main() -> SharkApp:
        nonlocal model
        model = Model(ring_size) if model is None else model
        app = SharkApp(model, FileSource(model, path), **options)
        async with app.run_test(size=size) as pilot:
            deadline = time.monotonic() + 20
            while not app.source.finished and time.monotonic() < deadline:
                await pilot.pause(0.05)
            assert app.source.finished and app.source.error is None
            app.refresh_view()  # a redraw after the last batch, and of the pane shown
            app.refresh_panes()
            await pilot.pause()
            await script(app, pilot)
        return app

    return asyncio.run(main())


async def type_filter(app: SharkApp, pilot: Any, text: str) -> None:
    """``/``, the filter, Enter (the text is set at once: typing long filters key by key
    would only make the tests slow; test_filter_with_slash types one)."""
    await pilot.press("slash")
    field = app.focused
    assert isinstance(field, FilterInput)
    field.value = text
    await pilot.press("enter")
    await pilot.pause()

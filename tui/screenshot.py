"""Save an SVG screenshot of the TUI on a capture (how ``docs/tui.svg`` is made).

``python -m tui.screenshot CAPTURE OUT.svg [--frame N] [--size 200x50]``: plays the
capture at full speed in a headless app, selects the server's message of frame ``N``
(if given; the log is then paused there, its details shown), and lets Textual save
the screen as SVG.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from .app import SharkApp
from .model import Model
from .source import FileSource


async def screenshot(capture: Path, out: Path, frame: int | None, size: tuple[int, int]
                     ) -> None:
    model = Model()
    app = SharkApp(model, FileSource(model, capture))
    async with app.run_test(size=size) as pilot:
        deadline = time.monotonic() + 60
        while not app.source.finished and time.monotonic() < deadline:
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        if frame is not None:
            log = app.log_table
            chosen = [n for n, row in enumerate(log.rows) if row is not None
                      and row.frame == frame]
            if chosen:
                app.action_pause()
                log.move_cursor(chosen[-1], notify=False, center=True)
                app._show(log.cursor_row)
                await pilot.pause(0.3)
        app.save_screenshot(out.name, str(out.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("capture", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--frame", type=int, help="select the (last) message of this frame")
    parser.add_argument("--size", default="200x50", help="columns x lines (default 200x50)")
    args = parser.parse_args()
    columns, lines = (int(n) for n in args.size.split("x"))
    asyncio.run(screenshot(args.capture, args.out.resolve(), args.frame, (columns, lines)))


if __name__ == "__main__":
    main()

"""The TUI at any size: what a person sees at 80x24 and at 200x50 (the columns that
matter, latency a column of its own, the details beside the log or over it), the
column chooser, a hex dump that is never cut, the details after Home, and the command
palette's Screenshot."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from builders import ROOT
from tui_pilot import drive, type_filter

pytest.importorskip("textual")

from textual.widgets import SelectionList  # noqa: E402

from tui.app import SharkApp  # noqa: E402
from tui.columns import ColumnChooser  # noqa: E402
from tui.details import dump_width  # noqa: E402
from tui.overlay import DetailsScreen  # noqa: E402
from tui.rows import latency_text, log_info, via  # noqa: E402
from tui.table import Column, VirtualTable  # noqa: E402
from tui.textview import TextView  # noqa: E402

BASIC = ROOT / "captures" / "softioc_pyepics_basic.pcap"
SMALL, LARGE = (80, 24), (200, 50)


def header(table: VirtualTable) -> str:
    """The table's header line as drawn."""
    return table.render_line(0).text


def lines(table: VirtualTable) -> list[str]:
    return [table.render_line(y).text for y in range(1, table.page_rows + 1)]


def dump_lines(text: str) -> list[str]:
    """The hex dump's lines of a details text."""
    return text.split("\nBytes\n", 1)[1].splitlines()


async def settle(pilot: Any) -> None:
    await pilot.pause()
    await pilot.pause(0.05)


def test_80x24_shows_time_command_pv_latency_and_info() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        log = app.log_table
        titles = [c.title for c in log.shown_columns()]
        assert titles == ["No.", "Time", "Command", "PV", "Latency", "Info"]
        top = header(log)
        for title in titles:
            assert title in top
        assert "Source" not in top and "Destination" not in top
        # a response with a latency: every chosen cell is on the line, none cut to nothing
        await type_filter(app, pilot, "command=READ_NOTIFY")
        await pilot.press("end")
        await settle(pilot)
        row = log.cursor_row
        assert row.latency is not None
        shown = lines(log)
        line = next(text for text in shown if f"{row.time}" and latency_text(row.latency)
                    in text)
        assert "READ_NOTIFY" in line and "DEMO:BASIC:" in line
        # the details are not beside the log: too narrow
        assert not app._main("#details", TextView).display

    drive(BASIC, script, size=SMALL)


def test_80x24_details_open_over_the_screen() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        log = app.log_table
        await type_filter(app, pilot, "pv=DEMO:BASIC:WAVE command=READ_NOTIFY")
        await pilot.press("home", "down")  # the reply (an array: a long message)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DetailsScreen)
        text = screen.view.text.plain
        row = log.cursor_row
        assert f"frame               {row.frame}" in text and "latency" in text
        width = screen.text_width
        dump = dump_lines(text)
        assert dump and all(len(line) <= width for line in dump)
        raw = app.model.raw(row.position)
        assert len(dump) == -(-len(raw) // 16) and dump[-1].startswith(
            f"{(len(dump) - 1) * 16:04x}")  # 16 a line fits 80 columns: every byte there
        # up moves the log beneath, the details follow; Esc closes
        await pilot.press("up")
        await settle(pilot)
        assert log.cursor_row is not row
        assert f"frame               {log.cursor_row.frame}" in screen.view.text.plain
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, DetailsScreen)
        await pilot.press("d")  # d opens them too
        await settle(pilot)
        assert isinstance(app.screen, DetailsScreen)
        await pilot.press("d")
        await settle(pilot)
        assert not isinstance(app.screen, DetailsScreen)
        # from the channels pane: up and down move in that pane, not in the log
        await type_filter(app, pilot, "")
        await pilot.press("1", "home", "d")
        await settle(pilot)
        channels = app._main("#channels-table", VirtualTable)
        at = log.cursor
        await pilot.press("down")
        await settle(pilot)
        assert isinstance(app.screen, DetailsScreen)
        assert channels.cursor == 1 and log.cursor == at
        await pilot.press("escape")

    drive(BASIC, script, size=SMALL)


def test_200x50_shows_latency_and_the_circuit_not_two_addresses() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        log = app.log_table
        titles = [c.title for c in log.shown_columns()]
        assert titles == ["No.", "Time", "Via", "Command", "PV", "Latency", "Info"]
        await type_filter(app, pilot, "command=WRITE_NOTIFY")
        await pilot.press("end")
        await settle(pilot)
        row = log.cursor_row
        assert row.sender == "server" and row.latency is not None
        line = lines(log)[log.cursor - int(log.scroll_y)]
        assert f"#{row.circuit} ← {row.src}" in line
        assert latency_text(row.latency) in line
        assert "ms]" not in log_info(row)  # latency is no longer at the end of Info
        # the details beside the log, the hex dump laid out for the pane: nothing cut
        pane = app._main("#details", TextView)
        assert pane.display
        for _ in range(40):  # (the details follow the cursor at a reading pace)
            if "\nBytes\n" in pane.text.plain:
                break
            await pilot.pause(0.05)
        dump = dump_lines(pane.text.plain)
        width = pane.scrollable_content_region.width
        assert dump and all(len(line) <= width for line in dump)
        raw = app.model.raw(row.position)
        per_line = 16 if dump_width(16) <= width else 8
        assert len(dump) == -(-len(raw) // per_line)
        last = raw[(len(dump) - 1) * per_line:]
        assert dump[-1].rstrip().endswith(
            "".join(chr(b) if 32 <= b < 127 else "." for b in last).rstrip())

    drive(BASIC, script, size=LARGE)


def test_the_column_chooser_is_kept_for_the_session() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        log = app.log_table
        await pilot.press("v")
        await settle(pilot)
        assert isinstance(app.screen, ColumnChooser)
        choices = app.screen.query_one(SelectionList)
        assert "Source" not in choices.selected and "Latency" in choices.selected
        choices.deselect("Latency")
        choices.select("Source")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        top = header(log)
        assert "Latency" not in top and "Source" in top
        await pilot.press("v")  # the choice is remembered
        await settle(pilot)
        choices = app.screen.query_one(SelectionList)
        assert "Latency" not in choices.selected and "Source" in choices.selected
        await pilot.press("escape")

    drive(BASIC, script, size=LARGE)


def test_columns_give_way_by_priority() -> None:
    table = VirtualTable([Column("a", 5, priority=10), Column("b", 10, min_width=4),
                          Column("c", priority=90)], lambda row: row)
    assert table.layout(80) == [(0, 5), (1, 10), (2, 63)]
    # b squeezed first, c (no width of its own) at its least, 16
    assert table.layout(30) == [(0, 5), (1, 7), (2, 16)]
    assert table.layout(24) == [(1, 7), (2, 16)]  # then a, the least important, left out
    assert table.layout(10) == [(2, 10)]  # the last left is never left out
    table.set_hidden({"b"})
    assert table.layout(80) == [(0, 5), (2, 74)]


def test_via_and_latency_text() -> None:
    class Row:
        def __init__(self, **fields: Any) -> None:
            self.__dict__.update(fields)

    def row(**fields: Any) -> Any:
        return Row(**{"circuit": None, "transport": "udp", "sender": None} | fields)

    assert via(row(src="10.0.0.1:52133", dst="10.0.0.1:5064")) == "udp 10.0.0.1:52133→:5064"
    assert via(row(src="10.0.0.1:52133", dst="10.0.0.255:5064")) == (
        "udp 10.0.0.1:52133→10.0.0.255:5064")
    assert via(row(circuit=3, transport="tcp", sender="client", src="a:1", dst="b:5064")) == (
        "#3 → b:5064")
    assert via(row(circuit=3, transport="tcp", sender="server", src="b:5064", dst="a:1")) == (
        "#3 ← b:5064")
    assert [latency_text(s) for s in (None, 0.000136, 0.01235, 0.1234, 1.25, 12.5)] == [
        "", "0.136 ms", "12.35 ms", "123.4 ms", "1250 ms", "12.5 s"]


def test_home_shows_the_first_row_details() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        log = app.log_table
        pane = app._main("#details", TextView)
        await pilot.press("2")  # a pane has the focus: the details show its rows
        await settle(pilot)
        await pilot.press("l", "home")
        await settle(pilot)
        first = log.rows[0]
        assert log.cursor == 0 and app.paused
        assert f"frame               {first.frame}\n" in pane.text.plain
        await pilot.press("down", "home")
        await settle(pilot)
        assert f"frame               {first.frame}\n" in pane.text.plain
        # a pane's row shown in the details, then Home in the log, already on its first
        await pilot.press("1", "down", "up")
        await settle(pilot)
        assert f"frame               {first.frame}\n" not in pane.text.plain
        await pilot.press("l", "home")
        await settle(pilot)
        assert log.cursor == 0
        assert f"frame               {first.frame}\n" in pane.text.plain

    drive(BASIC, script, size=LARGE)


def test_the_palette_screenshot_is_saved(tmp_path: Path) -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*"screenshot")
        await pilot.pause(0.3)
        await pilot.press("enter")
        deadline = time.monotonic() + 5
        while not list(tmp_path.glob("*.svg")) and time.monotonic() < deadline:
            await pilot.pause(0.1)
        [saved] = tmp_path.glob("*.svg")
        assert "<svg" in saved.read_text()[:500]

    drive(BASIC, script, size=SMALL, export_dir=tmp_path)


def test_resizing_adapts_the_layout_and_the_panes() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        log, pane = app.log_table, app._main("#details", TextView)
        assert pane.display and "Via" in header(log)
        await pilot.press("up")  # a message (the last row is the circuit's end)
        await settle(pilot)
        await pilot.resize_terminal(*SMALL)
        await settle(pilot)
        assert not pane.display and "Via" not in header(log) and "Latency" in header(log)
        channels = app._main("#channels-table", VirtualTable)
        titles = [c.title for c in channels.shown_columns()]
        assert titles[0] == "PV" and "Last value" in titles and "Rate/s" in titles
        await pilot.resize_terminal(*LARGE)
        await settle(pilot)
        assert pane.display and "Via" in header(log)
        dump = dump_lines(pane.text.plain)  # made again for the pane's width
        assert all(len(line) <= pane.scrollable_content_region.width for line in dump)

    drive(BASIC, script, size=LARGE)

"""The filter bar: checked as typed, counted, every restriction shown with its key, and
no key typed after ``/`` lost or sent elsewhere while a capture loads."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from builders import ROOT, capture
from tui_pilot import drive, type_filter

pytest.importorskip("textual")

from textual import events  # noqa: E402
from textual.app import _character_to_key  # noqa: E402
from textual.content import Content  # noqa: E402

from tui.app import FilterInput, SharkApp  # noqa: E402
from tui.model import Model  # noqa: E402
from tui.source import FileSource  # noqa: E402
from tui.status import StatusBar  # noqa: E402
from tui.table import VirtualTable  # noqa: E402
from tui.textview import TextView  # noqa: E402

BASIC = ROOT / "captures" / "softioc_pyepics_basic.pcap"


def burst(app: SharkApp, keys: list[str]) -> None:
    """Keys as a terminal delivers what was typed while the app was busy: all queued
    at once, none handled before the next arrives."""
    for key in keys:
        char = key if len(key) == 1 else None
        if len(key) == 1 and not key.isalnum():
            key = _character_to_key(key)
        event = events.Key(key, char)
        event.set_sender(app)
        app._driver.send_message(event)


def status(app: SharkApp) -> str:
    return str(app._main("#status", StatusBar).render())


async def until(pilot: Any, done: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        await pilot.pause(0.05)
    assert done()


def test_the_bar_checks_and_counts_as_typed() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        total = len(app.model.store)
        await pilot.press("slash", *"comand=VERSION")
        field = app.focused
        assert isinstance(field, FilterInput)
        assert field.has_class("-invalid")
        assert "comand" in str(field.border_title)  # the reason, in the bar
        await pilot.press("ctrl+u", *"pv=DEMO:BASIC:WAVE")
        assert not field.has_class("-invalid")
        wave = sum(1 for row in app.log_table.rows if row.pv == "DEMO:BASIC:WAVE")
        await until(pilot, lambda: str(field.border_title) == (
            f"filter ok: {wave:,} of {total:,} match"))
        await pilot.press("enter")
        await pilot.pause()
        assert app.filter_text == "pv=DEMO:BASIC:WAVE" and app.focused is app.log_table
        assert f"filter pv=DEMO:BASIC:WAVE [⌫]  ({wave:,} of {total:,} rows)" in status(app)
        await pilot.press("slash", "ctrl+u", *"frame>", "enter")  # wrong: the bar stays
        await pilot.pause()
        assert app.focused is field and app.filter_text == "pv=DEMO:BASIC:WAVE"

    drive(BASIC, script)


def test_every_restriction_shown_and_cleared_by_its_key() -> None:
    path = capture("ca_two_clients_two_iocs.pcapng")
    pv = "DEMO:IOCA:COUNTER"

    async def script(app: SharkApp, pilot: Any) -> None:
        everything = len(app.model.store)
        await type_filter(app, pilot, f"pv={pv}")
        await pilot.press("up", "f")  # follow the PV under the cursor
        await pilot.press("2")  # circuits: Enter on #2 keeps its rows
        await pilot.pause()
        circuits = app._main("#circuits-table", VirtualTable)
        number = [c.number for c in circuits.rows].index(2)
        await pilot.press(*["down"] * number, "enter")
        await pilot.pause()
        circuit = circuits.cursor_row.number
        line = status(app)
        for part in (f"filter pv={pv} [⌫]", f"PV {pv} [f]", f"circuit {circuit} [c]"):
            assert part in line, (part, line)
        assert line.index("[c]") < line.index("msg/s")  # before the counters: a narrow
        # screen cuts the line at its end; and under the log, whatever the width
        under = Content.from_markup(app.log_table.border_subtitle).plain
        assert under.startswith(f"filter pv={pv} [⌫]  PV {pv} [f]  circuit {circuit} [c]")
        rows = [row for row in app.log_table.rows if row is not None]
        assert rows and {(row.pv, row.circuit) for row in rows} == {(pv, circuit)}
        await pilot.press("slash")  # the bar counts with the PV and the circuit
        field = app._main("#filter", FilterInput)
        await until(pilot, lambda: "match" in str(field.border_title))
        assert Content.from_markup(field.border_title).plain.endswith(
            f"match (with PV {pv} [f], circuit {circuit} [c])")
        await pilot.press("escape")
        await pilot.press("l", "backspace")  # the filter goes, the PV and circuit stay
        await pilot.pause()
        assert app.filter_text == "" and app.follow_pv == pv and app.scope is not None
        assert "filter " not in status(app) and f"PV {pv} [f]" in status(app)
        await pilot.press("c")
        await pilot.pause()
        assert app.scope is None and "circuit" not in status(app)
        await pilot.press("f")
        await pilot.pause()
        assert app.follow_pv is None and "[f]" not in status(app)
        assert not app.log_table.border_subtitle
        assert len([r for r in app.log_table.rows if r is not None]) == everything

    drive(path, script)


def test_keys_typed_right_after_slash_while_loading_reach_the_bar() -> None:
    """Issue 16.4: ``/``, text, Enter typed while the capture loads: the text reaches
    the bar (not the pane focused before), Enter applies it, and the key typed next
    acts on the log, not in the bar."""
    path = capture("ca_monitors_100hz.pcap")  # 5.7 s at its own pace: still loading

    async def main() -> SharkApp:
        model = Model()
        app = SharkApp(model, FileSource(model, path, speed=1))
        async with app.run_test(size=(200, 50)) as pilot:
            await pilot.pause(0.5)
            await pilot.press("3")  # the searches pane has the focus: Enter there follows
            await pilot.pause(0.3)
            assert not app.source.finished
            burst(app, ["/", *"pv=DEMO:MON:SLOW", "enter", "d"])
            details = app._main("#details", TextView)
            await until(pilot, lambda: details.has_class("hidden"))  # d: the app's key
            assert not app.source.finished  # all of it while loading
            assert app.filter_text == "pv=DEMO:MON:SLOW" and app.follow_pv is None
            assert app.focused is app.log_table
            field = app._main("#filter", FilterInput)
            assert not field.open and field.value == "pv=DEMO:MON:SLOW"
            app.source.stop()
        return app

    asyncio.run(main())


def test_the_enter_of_the_bar_never_selects_in_a_pane() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        await pilot.press("3")  # searches
        await pilot.pause()
        burst(app, ["/", "enter"])  # an empty filter: nothing to follow either
        await pilot.pause(0.3)
        assert app.follow_pv is None and app.filter_text == ""

    drive(BASIC, script)


def test_keys_typed_after_colon_reach_the_line_and_then_the_log() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        rows = [row for row in app.log_table.rows if row is not None]
        target = rows[len(rows) // 2]
        burst(app, [":", *str(target.frame), "enter", "m"])  # jump there, mark it
        await until(pilot, lambda: len(app.marks) == 1)
        assert app.log_table.cursor_row.frame == target.frame
        assert app.focused is app.log_table
        assert app.marks.positions().tolist() == [app.log_table.cursor_row.position]

    drive(BASIC, script)


def test_the_help_explains_the_new_keys_and_colours() -> None:
    from tui.help import KEYS

    keys = " ".join(key for key, _ in KEYS)
    for key in ("/", ":", "m", "n / N", "Ctrl-T", "s / S", "c", "backspace", "x", "Esc"):
        assert key in keys, key
    meanings = " ".join(meaning for _, meaning in KEYS)
    for words in ("how many rows match", "pcapng slice", "ΔTime", "round the end"):
        assert words in meanings, words

"""Sorting the panes, marks, the time reference, and the export of the marked or shown
rows as Parquet and as a pcapng slice any tool reads."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import dpkt
import numpy as np
import pytest
from builders import ROOT, capture
from tui_pilot import drive, type_filter

import shark
from shark.cli import main as shark_main

pytest.importorskip("textual")

from tui.app import SharkApp  # noqa: E402
from tui.marks import MARKER  # noqa: E402
from tui.panes import channel_cells  # noqa: E402
from tui.rows import Clock  # noqa: E402
from tui.table import VirtualTable  # noqa: E402

BASIC = ROOT / "captures" / "softioc_pyepics_basic.pcap"


def table(app: SharkApp, pane: str) -> VirtualTable:
    return app._main(f"#{pane}-table", VirtualTable)


def rate(app: SharkApp, row: Any) -> float | None:
    return None if row.updates < 2 else row.rate(app.model.last_time)


async def exported(app: SharkApp, pilot: Any) -> None:
    app.last_export = app.last_slice = None
    await pilot.press("x")
    deadline = time.monotonic() + 15
    while app.last_slice is None and time.monotonic() < deadline:
        await pilot.pause(0.1)
    assert app.last_export is not None and app.last_slice is not None


def read_back(path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """``shark read`` of a file, as JSON lines."""
    capsys.readouterr()
    assert shark_main(["read", "--format", "jsonl", str(path)]) in (0, None)
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def dpkt_frames(path: Path) -> list[bytes]:
    with open(path, "rb") as stream:
        return [bytes(data) for _, data in dpkt.pcapng.Reader(stream)]


# -- sorting --------------------------------------------------------------------------------


def test_channels_sorted_by_rate_and_by_a_click_on_a_title() -> None:
    path = capture("ca_monitors_100hz.pcap")

    async def script(app: SharkApp, pilot: Any) -> None:
        await pilot.press("1")
        channels = table(app, "channels")
        titles = [c.title for c in channels.columns]
        for _ in range(titles.index("Rate/s") + 1):  # s: the next column each time
            await pilot.press("s")
        await pilot.pause()
        assert channels.header_titles == {titles.index("Rate/s"): "Rate/s▲"}
        rates = [rate(app, row) for row in channels.rows]
        known = [r for r in rates if r is not None]
        assert known == sorted(known) and len(known) >= 2
        assert rates[: len(known)] == known  # blanks (one value or none) last
        await pilot.press("S")  # the other way: the fastest first
        await pilot.pause()
        assert channels.header_titles == {titles.index("Rate/s"): "Rate/s▼"}
        first = channels.rows[0]
        assert first.pv == "DEMO:MON:FAST" and rate(app, first) == max(known)
        # a click on the Updates title sorts by it
        layout = channels.layout(channels.scrollable_content_region.width)
        x = sum(width + 1 for index, width in layout if index < titles.index("Updates")) + 1
        await pilot.click("#channels-table", offset=(x, 0))
        await pilot.pause()
        updates = [row.updates for row in channels.rows]
        assert updates == sorted(updates)
        assert channels.header_titles == {titles.index("Updates"): "Updates▲"}

    drive(path, script)


def test_a_channel_read_once_has_no_rate() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        rows = table(app, "channels").rows
        once = [row for row in rows if row.updates < 2]
        assert once
        titles = [c.title for c in table(app, "channels").columns]
        for row in once:
            assert channel_cells(row, Clock(), app.model.last_time)[
                titles.index("Rate/s")] == ""

    drive(BASIC, script)


def test_circuits_sorted_by_messages() -> None:
    path = capture("ca_two_clients_two_iocs.pcapng")

    async def script(app: SharkApp, pilot: Any) -> None:
        await pilot.press("2")
        circuits = table(app, "circuits")
        titles = [c.title for c in circuits.columns]
        await pilot.press(*["s"] * (titles.index("Messages") + 1), "S")
        await pilot.pause()
        messages = [row.messages for row in circuits.rows]
        assert len(messages) > 1 and messages == sorted(messages, reverse=True)

    drive(path, script)


# -- marks and the time reference -----------------------------------------------------------


def test_marks_and_jumping_between_them() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        log = app.log_table
        await pilot.press("home", "down", "down", "m")
        first = log.cursor_row
        await pilot.press(*["down"] * 10, "m")
        second = log.cursor_row
        assert set(app.marks.positions().tolist()) == {first.position, second.position}
        assert str(log.render_row(second)[0]).startswith(MARKER)
        assert "on" in (log.row_style(second) or "")
        await pilot.press("end", "n")  # past the last mark: round to the first
        await pilot.pause()
        assert app.paused and log.cursor_row.position == first.position
        await pilot.press("n")
        assert log.cursor_row.position == second.position
        await pilot.press("N")
        assert log.cursor_row.position == first.position
        await pilot.press("m")  # unmark
        assert app.marks.positions().tolist() == [second.position]
        await type_filter(app, pilot, "command=VERSION")  # marks hidden by the filter
        await pilot.press("n")
        assert log.cursor_row.command != second.command or (
            log.cursor_row.position != second.position)

    drive(BASIC, script)


def test_the_time_reference() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        log = app.log_table
        column = [c.title for c in log.columns].index("Time")
        rows = list(log.rows)
        at = next(i for i in range(20, len(rows) - 1) if rows[i - 1].time < rows[i].time)
        await pilot.press("home", *["down"] * at, "ctrl+t")
        await pilot.pause()
        here = log.cursor_row
        assert log.render_row(here)[column] == "0.000000"
        assert log.header_titles == {column: "ΔTime"}
        earlier, later = rows[at - 1], rows[at + 1]
        assert log.render_row(earlier)[column].startswith("-")
        delta = (later.time - here.time) / 1e9
        assert abs(float(log.render_row(later)[column]) - delta) < 2e-6
        await pilot.press("ctrl+t")  # on the same row: from the first message again
        await pilot.pause()
        assert log.header_titles == {}
        assert log.render_row(rows[0])[column] == "0.000000"

    drive(BASIC, script)


# -- export ---------------------------------------------------------------------------------


def test_marked_rows_exported_as_parquet_and_a_pcapng_slice(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pandas = pytest.importorskip("pandas")

    async def script(app: SharkApp, pilot: Any) -> None:
        await type_filter(app, pilot, "pv=DEMO:BASIC:WAVE command=READ_NOTIFY")
        await pilot.press("home", "m", "down", "m")  # the request and its reply
        await type_filter(app, pilot, "")
        await exported(app, pilot)

    app = drive(BASIC, script, export_dir=tmp_path)
    frame = pandas.read_parquet(app.last_export)
    assert list(frame["command"]) == ["READ_NOTIFY", "READ_NOTIFY"]
    assert list(frame["sender"]) == ["client", "server"]
    assert set(frame["pv"]) == {"DEMO:BASIC:WAVE"}
    back = read_back(app.last_slice, capsys)
    reads = [r for r in back if r.get("command") == "READ_NOTIFY"]
    assert [r.get("pv") for r in reads] == ["DEMO:BASIC:WAVE"] * 2  # named: set-ups kept
    assert any(r.get("command") == "CREATE_CHAN" for r in back)
    frames = dpkt_frames(app.last_slice)
    originals = {bytes(f.data) for f in shark.capture.files.read_frames(BASIC)}
    assert 2 <= len(frames) < len(originals) and set(frames) <= originals


def test_shown_rows_exported_as_a_slice(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    wave = [(r.command_name, r.sender.name.lower()) for r in shark.read(BASIC)
            if r.pv == "DEMO:BASIC:WAVE"]

    async def script(app: SharkApp, pilot: Any) -> None:
        await type_filter(app, pilot, "pv=DEMO:BASIC:WAVE")
        await exported(app, pilot)

    app = drive(BASIC, script, export_dir=tmp_path)
    back = read_back(app.last_slice, capsys)
    assert [(r["command"], r["sender"]) for r in back
            if r.get("pv") == "DEMO:BASIC:WAVE"] == wave
    assert len(dpkt_frames(app.last_slice)) == len(
        list(shark.capture.files.read_frames(app.last_slice)))


def test_channels_sorted_by_a_latency_percentile() -> None:
    path = capture("ca_two_clients_two_iocs.pcapng")
    replies: dict[tuple[int, str], list[float]] = {}
    for record in shark.read(path):
        if record.latency is not None and record.pv is not None:
            replies.setdefault((record.circuit, record.pv), []).append(record.latency)

    async def script(app: SharkApp, pilot: Any) -> None:
        await pilot.press("1")
        channels = table(app, "channels")
        titles = [c.title for c in channels.columns]
        await pilot.press(*["s"] * (titles.index("p99 ms") + 1), "S")
        await pilot.pause()
        assert channels.header_titles == {titles.index("p99 ms"): "p99 ms▼"}
        latencies = app.panes.latencies
        shown = [latencies.percentile(row.circuit, row.name, 99) for row in channels.rows]
        known = [value for value in shown if value is not None]
        assert known and known == sorted(known, reverse=True)
        assert shown[: len(known)] == known  # channels without replies last
        for row in channels.rows:
            values = replies.get((row.circuit, row.name))
            for q in (50, 99):
                expected = (None if not values else
                            float(np.percentile(values, q, method="inverted_cdf")))
                got = latencies.percentile(row.circuit, row.name, q)
                assert got == pytest.approx(expected, abs=1e-6) if expected is not None \
                    else got is None, (row.pv, q)
            cells = channels.render_row(row)
            p50 = cells[titles.index("p50 ms")]
            assert (p50 == "") == (not values)

    drive(path, script)


def test_a_slice_from_a_file_that_ends_early_says_so(tmp_path: Path) -> None:
    """A live capture's file lags behind what is shown: the frames it does not hold yet
    are counted, not silently left out."""
    from shark.capture.slice import write_slice
    from tui.export import export_slice

    early = tmp_path / "early.pcapng"  # the first half of the capture, as saved so far
    count = len(list(shark.capture.files.read_frames(BASIC)))
    write_slice(BASIC, range(1, count // 2 + 1), early)

    async def script(app: SharkApp, pilot: Any) -> None:
        rows = app.model.log_rows()
        whole, wanted = export_slice(rows, BASIC, tmp_path / "whole.pcapng")
        assert whole == wanted  # every frame that holds a row
        written, wanted = export_slice(rows, early, tmp_path / "slice.pcapng")
        assert 0 < written < wanted == whole

    drive(BASIC, script)


def test_the_marker_never_cuts_a_frame_number() -> None:
    from tui.log import LogRow
    from tui.marks import Marks

    marks = Marks()
    short, long = LogRow(1, False), LogRow(2, False)
    short.frame, long.frame = 12, 1234567
    marks.toggle(1)
    marks.toggle(2)
    cells = marks.cells(lambda row: [str(row.frame), "x"], 7)
    assert cells(short) == [f"{MARKER}    12", "x"]  # 7 cells in all
    assert cells(long) == ["1234567", "x"]  # no room: the style alone marks it
    assert marks.style(lambda _row: "red")(long) == "red on #3a3a7a"

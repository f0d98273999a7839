"""The TUI, driven through Textual's pilot on real captures, as a person would: filter,
select, read the details, follow a PV, jump to errors, export.

Each test runs the app headless on a capture played at full speed, waits for the end of
the file and for a redraw, then presses keys. What the screen shows is checked against
``shark.read`` of the same capture and against the capture's manifest (what the client
really did), not against the TUI's own model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import ROOT, capture, corpus_params, pcap_bytes
from tui_pilot import drive, type_filter

import shark
from shark.analysis.filters import compile_filter
from shark.capture.files import read_frames
from shark.cli import main as shark_main
from shark.output.text import Clock as TextClock

pytest.importorskip("textual")

from textual.widgets import Input  # noqa: E402

from tui.app import FilterInput, SharkApp  # noqa: E402
from tui.details import hexdump  # noqa: E402
from tui.help import HelpScreen  # noqa: E402
from tui.log import Positions  # noqa: E402
from tui.model import Model, problem  # noqa: E402
from tui.rows import Clock, channel_cells, search_cells  # noqa: E402
from tui.source import FileSource  # noqa: E402
from tui.status import StatusBar  # noqa: E402
from tui.table import VirtualTable, fit  # noqa: E402
from tui.textview import TextView  # noqa: E402

BASIC = ROOT / "captures" / "softioc_pyepics_basic.pcap"


def records(path: Path) -> list[shark.Record]:
    return list(shark.read(path, lifecycle=True))


def key(record: shark.Record) -> tuple[Any, ...]:
    """What tells two reads' records apart."""
    return record.frame, record.command_name, record.pv, record.src

def shown(app: SharkApp) -> list[shark.Record]:
    return [row for row in app.log_table.rows if row is not None]


def table(app: SharkApp, pane: str) -> VirtualTable:
    return app._main(f"#{pane}-table", VirtualTable)


def manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.with_suffix(".json").read_text())


# -- the log, the panes ---------------------------------------------------------------------


def test_log_and_panes_show_the_capture() -> None:
    expected = records(BASIC)
    truth = manifest(BASIC)

    async def script(app: SharkApp, pilot: Any) -> None:
        log = app.log_table
        assert [(r.frame, r.command_name, r.pv) for r in shown(app)] == [
            (r.frame, r.command_name, r.pv) for r in expected]
        assert log.cursor == len(expected) - 1 and not app.paused  # following the tail
        channels = table(app, "channels").rows
        assert sorted(c.pv for c in channels) == sorted(p["pv"] for p in truth["pvs"])
        cells = {c.pv: channel_cells(c, Clock(), None) for c in channels}
        for pv in truth["pvs"]:
            name, server, via, native, count, access = cells[pv["pv"]][:6]
            assert (server, via) == ("127.0.0.1:5064", "#1")
            assert f"DBR_{native}" == pv["native_dbr"] and count == str(pv["element_count"])
            assert access == "read/write"
        assert cells["DEMO:BASIC:LABEL"][-1] == "hello shark"
        assert cells["DEMO:BASIC:WAVE"][-1].startswith("[0.0, 0.5, 1.0, 1.5, ...] (10)")
        await pilot.press("3")  # searches: the unanswered one first
        await pilot.pause()
        searches = table(app, "searches").rows
        missing = truth["nonexistent_pvs_searched"][0]
        assert searches[0].name == missing["pv"] and not searches[0].replies
        assert search_cells(searches[0], Clock())[3].plain == "UNANSWERED"
        assert all(s.replies for s in searches[1:])
        await pilot.press("4")
        await pilot.pause()
        [server] = table(app, "servers").rows
        beacons = truth["message_counts_by_command"]["udp"]["13"]
        assert (server.address, server.beacons, server.circuits) == ("127.0.0.1:5064", beacons, 1)
        await pilot.press("2")
        await pilot.pause()
        [circuit] = table(app, "circuits").rows
        assert circuit.closed == "fin" and circuit.messages == sum(
            1 for r in expected if r.circuit == 1 and r.message is not None)

    drive(BASIC, script)


def test_filter_with_slash_and_export_the_view(tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")
    expected = records(BASIC)
    wave = [key(r) for r in expected if r.pv == "DEMO:BASIC:WAVE"]

    async def script(app: SharkApp, pilot: Any) -> None:
        await pilot.press("slash")
        await pilot.press(*"*:WAVE", "enter")  # a bare word: a PV pattern
        await pilot.pause()
        assert [key(r) for r in shown(app)] == wave
        assert app.filter_text == "*:WAVE"
        await pilot.press("x")  # export what is shown
        deadline = time.monotonic() + 15
        while app.last_export is None and time.monotonic() < deadline:
            await pilot.pause(0.1)
        await pilot.press("slash", "ctrl+u", *"x=1", "enter")  # not a filter key
        await pilot.pause()
        assert app.filter_text == "*:WAVE"  # unchanged, the line stays open
        assert isinstance(app.focused, FilterInput)
        await pilot.press("escape")  # closes the line
        await pilot.press("escape")  # clears the filter
        await pilot.pause()
        assert app.filter_text == "" and len(shown(app)) == len(expected)

    app = drive(BASIC, script, export_dir=tmp_path)
    assert app.last_export is not None and app.last_export.parent == tmp_path
    frame = pandas.read_parquet(app.last_export)
    assert list(zip(frame["frame"], frame["command"], frame["pv"], strict=True)) == [
        k[:3] for k in wave]
    replies = frame[(frame["command"] == "READ_NOTIFY") & (frame["sender"] == "server")]
    assert len(replies) == 1 and replies["data_count"].iloc[0] == 10


def test_select_a_message_read_its_details_and_the_help() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        await type_filter(app, pilot, "pv=DEMO:BASIC:WAVE command=READ_NOTIFY")
        await pilot.press("home", "down")  # moving pauses the log; the reply is second
        assert app.paused
        row = app.log_table.cursor_row
        assert row.command_name == "READ_NOTIFY" and row.sender == "server"
        [reply] = [r for r in records(BASIC) if (r.frame, r.command_name) == (
            row.frame, "READ_NOTIFY")]
        view = app._main("#details", TextView)
        text = view.text.plain
        dump = hexdump(reply.message.to_bytes(), width=view.scrollable_content_region.width)
        for part in ("PV                  DEMO:BASIC:WAVE", "answers", "Value  DBR_",
                     "[9]", "4.5", "Bytes", dump):
            assert part in text, part
        await pilot.press("end")  # back to the tail
        await pilot.pause()
        assert not app.paused
        await pilot.press("question_mark")
        await pilot.pause(0.3)  # the redraw timer keeps running under the help screen
        assert isinstance(app.screen, HelpScreen)
        assert app.screen.what == BASIC.name  # a file's help is titled with the file
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)

    drive(BASIC, script)


# -- following a PV -------------------------------------------------------------------------


def test_follow_a_pv_from_the_channels_pane() -> None:
    path = capture("ca_monitors_100hz.pcap")
    expected = [r for r in records(path) if r.pv == "DEMO:MON:FAST"]
    updates = manifest(path)["monitor_updates_received"]["per_client"]["client1"]

    async def script(app: SharkApp, pilot: Any) -> None:
        await pilot.press("1")  # channels, sorted by PV: FAST first
        await pilot.pause()
        assert table(app, "channels").cursor_row.pv == "DEMO:MON:FAST"
        await pilot.press("f")
        await pilot.pause()
        assert app.follow_pv == "DEMO:MON:FAST"
        rows = shown(app)
        assert [r.frame for r in rows] == [r.frame for r in expected]
        assert {r.transport for r in rows} == {"udp", "tcp"}  # its searches too
        [channel] = table(app, "channels").rows
        subscribed = sum(u["updates_received"] for u in updates.values()
                         if u["pv"] == "DEMO:MON:FAST")
        reads = sum(1 for r in expected if r.command_name == "READ_NOTIFY"
                    and r.sender.name == "SERVER")
        assert channel.updates == subscribed + reads
        await pilot.press("f")  # again: stop following
        await pilot.pause()
        assert app.follow_pv is None and len(shown(app)) > len(expected)

    drive(path, script)


def test_follow_a_pv_across_circuits() -> None:
    path = capture("ca_two_clients_two_iocs.pcapng")
    pv = "DEMO:IOCA:COUNTER"  # read by both clients

    async def script(app: SharkApp, pilot: Any) -> None:
        await type_filter(app, pilot, f"pv={pv}")
        await pilot.press("up", "f")  # a message of that PV under the cursor: follow it
        await type_filter(app, pilot, "")  # and drop the filter
        await pilot.pause()
        rows = shown(app)
        assert {r.pv for r in rows} == {pv}
        assert {r.circuit for r in rows if r.circuit is not None} == {2, 3}
        channels = table(app, "channels").rows
        assert sorted(c.circuit for c in channels) == [2, 3]

    drive(path, script)


# -- errors, export, help -----------------------------------------------------------------


def test_jump_to_errors() -> None:
    path = capture("ca_put_callback_and_errors.pcapng")
    expected = [key(r) for r in records(path) if problem(r) is not None]
    assert expected

    async def script(app: SharkApp, pilot: Any) -> None:
        await pilot.press("e")  # from the tail: the latest error
        assert app.paused and key(app.log_table.cursor_row) == expected[-1]
        await pilot.press("E")
        assert key(app.log_table.cursor_row) == expected[-2]
        await pilot.press("5")
        await pilot.pause()
        errors = table(app, "errors").rows
        assert [key(e.record) for e in errors] == expected
        assert "ECA_PUTFAIL" in errors[0].text
        await pilot.press("home", "enter")  # show the first error in the log
        await pilot.pause()
        assert key(app.log_table.cursor_row) == expected[0]
        assert app.focused is app.log_table
        command = expected[0][1]  # errors among the rows a filter keeps
        await type_filter(app, pilot, f"command={command}")
        await pilot.press("end", "e")
        assert key(app.log_table.cursor_row) == [k for k in expected if k[1] == command][-1]

    drive(path, script)


def status_text(app: SharkApp) -> str:
    return str(app._main("#status", StatusBar).render())


def test_a_file_is_reachable_whole_beyond_the_live_window() -> None:
    """A capture file shows every message, however small the live window (issue 16):
    Home reaches frame 1's first message, a filter finds one from the start."""
    expected = records(BASIC)

    async def script(app: SharkApp, pilot: Any) -> None:
        assert [key(r) for r in shown(app)] == [key(r) for r in expected]
        await pilot.press("home")
        assert app.paused and app.log_table.cursor == 0
        assert key(app.log_table.cursor_row) == key(expected[0])
        assert app.log_table.cursor_row.frame == 1
        first = next(r for r in expected if r.pv is not None)
        await type_filter(app, pilot, f"pv={first.pv}")
        assert key(shown(app)[0]) == key(first)
        assert f"{app.model.messages:,} messages" in status_text(app)
        assert "showing the last" not in status_text(app)

    drive(BASIC, script, ring_size=40)


def test_the_live_window_bounds_the_log_not_the_panes() -> None:
    """Live, the log keeps its last rows (the model's window), and says so."""
    expected = records(BASIC)
    model = Model(40)
    model.live()

    async def script(app: SharkApp, pilot: Any) -> None:
        rows = shown(app)
        assert [key(r) for r in rows] == [key(r) for r in expected[-40:]]
        assert len(table(app, "channels").rows) == 7  # aggregates of everything
        assert app.model.messages == sum(1 for r in expected if r.message is not None)
        assert f"showing the last 40 of {len(expected):,} rows" in status_text(app)
        await pilot.press("home")
        assert key(app.log_table.cursor_row) == key(expected[-40])
        early = {r.command_name for r in expected[:-40]} - {
            r.command_name for r in expected[-40:]}
        await type_filter(app, pilot, f"command={sorted(early)[0]}")  # before the window
        assert shown(app) == []

    drive(BASIC, script, model=model)


def test_spilled_rows_read_back_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a small memory budget the rows go to a temporary file and every one reads
    back as it was."""
    monkeypatch.setattr("tui.source.BATCH", 200)  # many batches, the oldest to disk
    path = capture("ca_monitors_100hz.pcap")
    expected = records(path)
    model = Model(budget=20_000)

    async def script(app: SharkApp, pilot: Any) -> None:
        assert app.model.store.spilled
        assert [key(r) for r in shown(app)] == [key(r) for r in expected]
        await pilot.press("home")
        assert key(app.log_table.cursor_row) == key(expected[0])
        await pilot.press("down")
        text = app._main("#details", TextView).text.plain
        assert "Bytes" in text and f"frame               {expected[1].frame}" in text

    drive(path, script, model=model)


# -- pieces ---------------------------------------------------------------------------------


def test_file_pace() -> None:
    path = capture("ca_monitors_100hz.pcap")
    model = Model()
    source = FileSource(model, path, speed=20.0)  # a 5.7 s capture in about 0.3 s
    started = time.monotonic()
    source.start()
    time.sleep(0.1)
    early = model.messages
    source.join(10)
    elapsed = time.monotonic() - started
    total = sum(1 for r in records(path) if r.message is not None)
    assert early < total and model.messages == total
    assert elapsed >= 5.7 / 20 * 0.9


def test_fit_keeps_escape_sequences_off_the_terminal() -> None:
    assert fit("PV:\x1b[31mRED", 12) == "PV:\ufffd[31mRED "
    assert fit("DEMO:BASIC:COUNTER", 10) == "DEMO:BASI…"
    assert fit("42", 5, right=True) == "   42"


def test_command_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        shark_main(["tui", "--help"])
    assert "--pace" in capsys.readouterr().out
    assert shark_main(["tui", str(BASIC), "-i", "lo"]) == 2
    assert shark_main(["tui", str(BASIC), "-w", str(tmp_path / "x.pcapng")]) == 2
    assert shark_main(["tui", "-i", "lo", "--pace"]) == 2
    assert shark_main(["tui", str(BASIC), "--filter", "colour=blue"]) == 2
    assert "unknown filter key" in capsys.readouterr().err
    assert shark_main(["tui", str(tmp_path / "nothing.pcap")]) == 1


def test_a_circuit_joined_mid_stream(tmp_path: Path) -> None:
    """What a live session started on a running system sees: the circuit's server is
    known by the first message, and what the missed setup implies is not an error."""
    frames = [(f.time_ns, bytes(f.data)) for f in read_frames(BASIC)]
    linktype = next(iter(read_frames(BASIC))).linktype
    cut = tmp_path / "joined.pcap"
    cut.write_bytes(pcap_bytes(frames[30:], linktype))  # after every CREATE_CHAN
    model = Model()
    source = FileSource(model, cut)
    source.run()
    [circuit] = model.circuits.values()
    assert (circuit.server, model.midstream) == ("127.0.0.1:5064", {circuit.number})
    full = records(BASIC)
    anomalies = [r for r in records(cut) if r.anomaly is not None]
    assert anomalies  # the decoder saw replies to requests it never saw...
    assert not [e.text for e in model.errors if "without request" in e.text]  # ...no error
    assert model.messages < sum(1 for r in full if r.message is not None)
    cut.write_bytes(pcap_bytes(frames[56:], linktype))  # after the EVENT_ADD request
    model = Model()
    FileSource(model, cut).run()
    [row] = [row for row in model.channels.values() if row.channel is None]
    counter = [r for r in full if r.pv == "DEMO:BASIC:COUNTER" and r.frame > 56
               and r.command_name == "EVENT_ADD" and r.message.payload]
    assert (row.pv, row.updates) == (f"<subscription {row.subscription.subscriptionid}>",
                                     len(counter))


def test_values_kept_beyond_the_ring_do_not_keep_capture_blocks() -> None:
    """A live capture's payloads are views of whole ring blocks: the model copies those
    it keeps (a channel's last value, errors)."""
    kept = records(BASIC)
    block, offset = bytearray(1 << 20), 0
    for record in kept:
        if record.message is not None:
            payload = bytes(record.message.payload)
            block[offset : offset + len(payload)] = payload
            record.message.payload = memoryview(block)[offset : offset + len(payload)]
            offset += len(payload)
    model = Model(ring_size=10)
    model.add_batch(kept)
    lasts = {row.pv: row.last.message for row in model.channels.values()}
    assert all(type(message.payload) is bytes for message in lasts.values())
    assert lasts["DEMO:BASIC:LABEL"].data.value == "hello shark"


def test_the_whole_filter_language_in_the_log() -> None:
    """The log's filter is shark read's: or, not, comparisons with units, keywords, time
    counted from the capture's first message; the same rows as the compiled filter."""
    expression = "(command=READ_NOTIFY latency>100us or severity>=MINOR) not time<1s"
    everything = records(BASIC)
    keep = compile_filter([expression]).select(everything, start=everything[0].time)
    expected = [r for r, k in zip(everything, keep, strict=True) if k]
    assert 0 < len(expected) < len(everything)

    async def script(app: SharkApp, pilot: Any) -> None:
        await type_filter(app, pilot, expression)
        assert app.filter_text == expression
        assert [(r.frame, r.command_name, r.pv) for r in shown(app)] == [
            (r.frame, r.command_name, r.pv) for r in expected]
        await type_filter(app, pilot, "error")
        assert shown(app) == []
        await type_filter(app, pilot, "latency>10parsecs")  # refused: the filter stays
        assert app.filter_text == "error"

    drive(BASIC, script)


def test_updates_counted_in_bulk_agree_with_records() -> None:
    """A file at full speed takes monitor updates in bulk (per channel, with numpy); the
    channels pane says what it says from one record per update."""
    path = capture("ca_monitors_100hz.pcap")
    bulk = Model()
    FileSource(bulk, path).run()
    assert bulk.bulk.size  # (updates were counted in bulk)
    plain = Model()
    plain.add_batch(records(path))

    def pane(model: Model) -> dict[str, list[Any]]:
        now = model.last_time
        return {row.pv: [row.updates, row.last_time, round(row.rate(now), 6),
                         channel_cells(row, Clock(), now)[-1]]
                for row in model.channels.values()}

    assert pane(bulk) == pane(plain)
    assert (bulk.messages, bulk.records) == (plain.messages, plain.records)
    assert {n: (c.messages, c.bytes) for n, c in bulk.circuits.items()} == {
        n: (c.messages, c.bytes) for n, c in plain.circuits.items()}


def test_jump_to_a_frame_or_a_time() -> None:
    expected = records(BASIC)
    target = expected[len(expected) // 2]
    zero = expected[0].time

    async def jump(app: SharkApp, pilot: Any, text: str) -> None:
        await pilot.press("colon")
        field = app.focused
        assert isinstance(field, Input) and field.id == "jump"
        field.value = text
        await pilot.press("enter")
        await pilot.pause()

    async def script(app: SharkApp, pilot: Any) -> None:
        await jump(app, pilot, str(target.frame))
        assert app.paused and key(app.log_table.cursor_row) == key(
            next(r for r in expected if r.frame >= target.frame))
        seconds = target.time - zero - 1e-7
        await jump(app, pilot, f"{seconds:.7f}s")
        assert key(app.log_table.cursor_row) == key(
            next(r for r in expected if r.time - zero >= seconds))
        await jump(app, pilot, "soon")  # refused: the line stays open
        assert isinstance(app.focused, Input)
        await pilot.press("escape")
        await type_filter(app, pilot, "command=READ_NOTIFY")  # the first shown from there
        await jump(app, pilot, "1")
        assert app.log_table.cursor == 0

    drive(BASIC, script, ring_size=40)


def test_positions_kept_by_entry_number() -> None:
    positions = Positions()
    positions.append(np.array([2, 5, 9]))
    positions.append(np.array([], dtype=np.int64))
    positions.append(np.array([12, 20]))
    assert [positions.get(n) for n in range(6)] == [2, 5, 9, 12, 20, None]
    assert (positions.index_of(12), positions.index_of(11), positions.first_from(10)) == (
        3, None, 3)
    positions.trim(6)  # store positions before 6 let go: entries 0 and 1
    assert (positions.start, positions.end, len(positions)) == (2, 5, 3)
    assert (positions.get(1), positions.get(2)) == (None, 9)
    assert [list(c) for c in positions.all()] == [[9], [12, 20]]
    assert positions.first_from(0) == 2


@pytest.mark.parametrize("path", corpus_params())
def test_the_log_is_shark_read_on_every_capture(path: Path) -> None:
    """The log's rows (read back from disk: a tiny budget) are shark read's records, in
    order, their times as its text lines write them."""
    model = Model(budget=50_000)
    source = FileSource(model, path)
    source.run()
    assert source.error is None
    expected = records(path)
    rows = model.log_rows()
    assert [(r.frame, r.command_name, r.pv, r.src) for r in rows] == [
        key(r) for r in expected]
    clock, text = Clock(model.first_time), TextClock("relative")
    text.start = model.first_time
    assert [clock.ns(r.time) for r in rows] == [text(r.time).strip() for r in expected]


def test_a_long_log_is_filtered_on_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past BACKGROUND_ROWS the log is filtered again on a thread, the screen going on;
    the latest filter asked for is the one shown."""
    monkeypatch.setattr("tui.app.BACKGROUND_ROWS", 0)
    expected = records(BASIC)
    wave = [key(r) for r in expected if r.pv == "DEMO:BASIC:WAVE"]

    async def settled(app: SharkApp, pilot: Any) -> None:
        deadline = time.monotonic() + 10
        while app.filtering and time.monotonic() < deadline:
            await pilot.pause(0.02)
        assert not app.filtering

    async def script(app: SharkApp, pilot: Any) -> None:
        await type_filter(app, pilot, "command=VERSION")
        await type_filter(app, pilot, "pv=DEMO:BASIC:WAVE")  # asked for before the first is done
        await settled(app, pilot)
        assert [key(r) for r in shown(app)] == wave
        await pilot.press("home")
        await type_filter(app, pilot, "")  # paused: the cursor stays on its row
        await settled(app, pilot)
        assert key(app.log_table.cursor_row) == wave[0]
        assert len(shown(app)) == len(expected)

    drive(BASIC, script)

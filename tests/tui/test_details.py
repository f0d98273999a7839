"""A row's details with its channel as it stands now, driven through Textual's pilot on
real captures (whole, and cut before the channels were cleared or after they were
created): the channel's state, type, rights, server, subscriptions and last value, the
last value as the Channels pane shows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from builders import ROOT, pcap_bytes
from tui_pilot import drive, type_filter

import shark
from shark.capture.files import read_frames

pytest.importorskip("textual")

from tui.app import SharkApp  # noqa: E402
from tui.details import channel_row, details, row_details  # noqa: E402
from tui.rows import CHANNEL_COLUMNS, channel_cells  # noqa: E402
from tui.textview import TextView  # noqa: E402

BASIC = ROOT / "captures" / "softioc_pyepics_basic.pcap"
_VALUE = [column.title for column in CHANNEL_COLUMNS].index("Last value")


def _cut(tmp_path: Path, start: int, stop: int | None) -> Path:
    """BASIC with only its frames ``start`` to ``stop`` (list indices)."""
    frames = list(read_frames(BASIC))
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(pcap_bytes([(f.time_ns, bytes(f.data)) for f in frames[start:stop]],
                               frames[0].linktype))
    return cut


async def _details(app: SharkApp, pilot: Any, wanted: str) -> tuple[Any, str]:
    """The first row the filter ``wanted`` keeps, and its details with the model."""
    await type_filter(app, pilot, wanted)
    await pilot.press("home")
    await pilot.pause()
    row = app.log_table.cursor_row
    assert row is not None, wanted
    model = app.model
    text = row_details(row, model.raw(row.position), app.clock, model.midstream, 0,
                       model=model).plain
    return row, text


def _section(text: str) -> str:
    assert "Channel now" in text, text
    return text.split("Channel now", 1)[1].split("\nFields", 1)[0]


def test_details_show_the_channel_as_it_stands_at_the_end() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        row, text = await _details(app, pilot, "pv=DEMO:BASIC:STATE command=READ_NOTIFY")
        now = _section(text)
        channel = channel_row(app.model, row)
        assert channel is not None and channel.pv == "DEMO:BASIC:STATE"
        for part in ("state               cleared", "native type         DBR_ENUM[1]",
                     "access              read/write", "'Idle', 'Running', 'Fault'",
                     f"server              {channel.server}  (tcp circuit #{row.circuit})"):
            assert part in now, part
        value = str(channel_cells(channel, app.clock, app.model.last_time)[_VALUE])
        assert value and f"last value          {value}" in now  # as the Channels pane
        assert f"updates             {channel.updates:,}" in now
        # The message itself is there as before, beside its channel.
        assert text.index("PV  ") < text.index("Channel now") < text.index("Fields")

        _row, text = await _details(app, pilot, "pv=DEMO:BASIC:TEMP command=READ_NOTIFY")
        assert "precision           2" in _section(text)
        # The app's own Details pane shows the same (the model handed over).
        await pilot.pause()
        shown = app._main("#details", TextView).text.plain
        assert "Channel now" in shown and "precision           2" in _section(shown)

    drive(BASIC, script)


def test_details_of_a_channel_never_cleared_list_its_subscription(tmp_path: Path) -> None:
    cut = _cut(tmp_path, 0, 76)  # before the channels were cleared

    async def script(app: SharkApp, pilot: Any) -> None:
        row, text = await _details(app, pilot, "pv=DEMO:BASIC:COUNTER command=EVENT_ADD")
        now = _section(text)
        channel = channel_row(app.model, row)
        # (the end of the file ends its circuit: not cleared, its server gone from view)
        assert channel is not None and channel.channel.state.value == "disconnected"
        assert "state               disconnected" in now
        assert "subscriptions       1" in now
        [subscription] = channel.channel.subscriptions.values()
        assert f"  id={subscription.subscriptionid}" in now
        assert f"{subscription.updates:,} updates, {subscription.state.value}" in now
        assert f"updates             {channel.updates:,}, " in now and "/s" in now

    drive(cut, script)


def test_details_of_a_subscription_joined_mid_stream(tmp_path: Path) -> None:
    cut = _cut(tmp_path, 56, None)  # after the EVENT_ADD request

    async def script(app: SharkApp, pilot: Any) -> None:
        row, text = await _details(app, pilot, "command=EVENT_ADD sender=server")
        channel = channel_row(app.model, row)
        assert channel is not None and channel.channel is None  # the subscription's row
        now = _section(text)
        assert "not seen created" in now and "subscriptions       1" in now
        assert f"  id={row.subscription}" in now and "mask unknown" in now
        assert f"updates             {channel.updates:,}" in now

    drive(cut, script)


def test_details_of_a_row_of_no_channel_have_no_channel_section() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        for wanted in ("command=SEARCH", "command=VERSION"):
            row, text = await _details(app, pilot, wanted)
            assert channel_row(app.model, row) is None
            assert "Channel now" not in text and "Fields" in text

    drive(BASIC, script)


def test_a_record_and_its_row_of_the_log_have_one_header() -> None:
    records = {(r.frame, r.command_name): r for r in shark.read(BASIC, lifecycle=True)}

    async def script(app: SharkApp, pilot: Any) -> None:
        for wanted in ("command=READ_NOTIFY sender=server", "command=SEARCH",
                       "command=CLOSE"):
            row, text = await _details(app, pilot, wanted)
            record = records[(row.frame, row.command)]
            again = details(record, app.clock, app.model.midstream).plain
            head = _head(text)
            assert head == _head(again), wanted
            assert [line.split()[0] for line in head] == [
                row.command, "frame", "from", "to", "via"]

    drive(BASIC, script)


def _head(text: str) -> list[str]:
    """The header's lines but its times (written from nanoseconds for a row, from
    seconds for a record: the last digit may differ)."""
    lines = text.split("\n")
    return [lines[0], *(line for line in lines[1:9] if line.split()
                        and line.split()[0] in ("frame", "from", "to", "via", "problem"))]

"""The pictures, drawn in a small app through Textual's pilot at the sizes people use
(80x24 and 200x50), from real captures and from nothing: each shows its title, axes
and red marks where the series say, or says it has nothing to show."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from builders import OWN_CAPTURES, capture

from shark.analysis.series import BeaconPeriods, BeaconSeries, Latencies, Rates, update_times
from shark.tables.stream import MessageStream

pytest.importorskip("textual_plotext")

from textual.app import App, ComposeResult  # noqa: E402
from textual.containers import Grid  # noqa: E402

from tui.plots import (  # noqa: E402
    BeaconPlot,
    LatencyPlot,
    RatePlot,
    UpdateSparkline,
    duration_text,
    spark_text,
)

SIZES = [(80, 24), (200, 50)]
MONITORS = OWN_CAPTURES / "softioc_pyepics_monitors.pcap"


class Pictures(App):
    """The four pictures in a grid, as a pane of the TUI would hold them."""

    CSS = "Grid { grid-size: 2 2; } UpdateSparkline { height: 3; }"

    def compose(self) -> ComposeResult:
        with Grid():
            yield RatePlot(id="rates")
            yield LatencyPlot(id="latency")
            yield BeaconPlot(id="beacons")
            yield UpdateSparkline(span=20.0, id="spark")


class Summary:
    """What the series say of a capture."""

    def __init__(self, path: Path) -> None:
        batches = list(MessageStream.of_capture(path, lifecycle=True))
        self.origin = batches[0].column("time")[0].value / 1e9
        self.rates = Rates.of(batches)
        self.latencies = Latencies.of(batches)
        self.beacons = BeaconPeriods.of(batches)
        self.updates: dict[str, list[float]] = {}
        for batch in batches:
            for pv, times in update_times(batch).items():
                self.updates.setdefault(pv, []).extend(times.tolist())


def run(size: tuple[int, int], script: Callable[[Pictures, Any], Awaitable[None]]) -> None:
    async def main() -> None:
        app = Pictures()
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await script(app, pilot)

    asyncio.run(main())


def screen_text(app: App) -> str:
    """The characters on the screen (from the screenshot Textual would save)."""
    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


def drawn(widget: Any) -> list[str]:
    """The lines the widget draws at its size."""
    return widget.render().plain.splitlines()


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "200x50"])
def test_every_picture_draws_a_capture_with_its_errors_and_anomalies(
        size: tuple[int, int], tmp_path: Path) -> None:
    summary = Summary(capture("ca_put_callback_and_errors.pcapng"))
    (server,) = summary.beacons.servers
    series = summary.beacons.series(server)
    assert summary.rates.error_count == 5 and series.anomalies

    async def script(app: Pictures, pilot: Any) -> None:
        rates, latency = app.query_one(RatePlot), app.query_one(LatencyPlot)
        beacons, spark = app.query_one(BeaconPlot), app.query_one(UpdateSparkline)
        rates.show_rates(summary.rates, summary.origin)
        latency.show_latencies(summary.latencies)
        beacons.show_beacons(series, summary.origin)
        pv, times = max(summary.updates.items(), key=lambda item: len(item[1]))
        spark.show_times(times, max(times))
        await pilot.pause()
        for widget in (rates, latency, beacons):
            lines = drawn(widget)
            assert len(lines) == widget.size.height >= 8
            assert max(map(len, lines)) <= widget.size.width
        text = screen_text(app)
        assert "messages/s" in text and "latency" in text
        assert "seconds from the start" in text
        assert any("x" in line for line in drawn(rates)[1:-2])  # the errors' marks
        assert sum(line.count("x") for line in drawn(beacons)[1:-2]) >= 2  # anomalies
        assert re.search(r"<\d+(\.\d+)?(µs|ms)", text)  # the histogram's bins
        assert "100ms" in text  # the beacon periods' log axis
        assert any(spark.data) and len(spark.data) == spark.size.width
        app.save_screenshot(str(tmp_path / "pictures.svg"))
        assert (tmp_path / "pictures.svg").stat().st_size > 0

    run(size, script)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "200x50"])
def test_every_picture_says_when_it_has_nothing(size: tuple[int, int]) -> None:
    async def script(app: Pictures, pilot: Any) -> None:
        text = screen_text(app)  # never given anything
        assert "messages: none yet" in text
        assert "no latencies" in text or "latency: no replies with a latency" in text
        app.query_one(RatePlot).show_rates(Rates(), what="PV X:Y")  # counted nothing
        app.query_one(LatencyPlot).show_latencies(Latencies())
        app.query_one(BeaconPlot).show_beacons(
            BeaconSeries("10.0.0.1:5064", np.zeros(0), np.zeros(0), ()))
        app.query_one(UpdateSparkline).show_times([], now=100.0)
        await pilot.pause()
        text = screen_text(app)
        assert "PV X:Y: none yet" in text
        assert "no beacon periods" in text or "beacon periods of 10.0.0.1:5064" in text
        assert not any(app.query_one(UpdateSparkline).data)

    run(size, script)


def test_new_data_redraws_and_follows_a_selection() -> None:
    """Given rates of more rows, or of a followed PV's, the graph shows those."""
    batches = list(MessageStream.of_capture(MONITORS, lifecycle=True))
    whole = pa.Table.from_batches(batches)
    pv = whole.column("pv").cast(pa.string()).to_pylist()
    followed = Rates()
    followed.add(whole, np.array([p == "DEMO:MON:TICK" for p in pv]))
    assert followed.messages > 0

    async def script(app: Pictures, pilot: Any) -> None:
        plot = app.query_one(RatePlot)
        plot.show_rates(Rates.of(batches))
        await pilot.pause()
        assert f"{followed.messages:,} messages" not in screen_text(app)
        everything = drawn(plot)
        plot.show_rates(followed, what="DEMO:MON:TICK")
        await pilot.pause()
        assert drawn(plot) != everything
        assert "DEMO:MON:TICK/s" in screen_text(app)

    run((200, 50), script)


def test_spark_text_and_durations() -> None:
    assert spark_text([]) == ""
    assert spark_text([0, 0]) == "  "
    assert spark_text([0, 1, 8]) == " ▁█"  # one update shows, however few
    assert spark_text([4, 8], top=16) == "▂▄"
    assert [duration_text(s) for s in (2e-5, 0.0015, 2.0, 600.0, 7200.0)] == [
        "20µs", "1.5ms", "2s", "10min", "2h"]
    assert duration_text(float("inf")) == "∞"

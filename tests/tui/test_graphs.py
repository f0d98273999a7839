"""The Graphs pane in the app: the capture's pictures, and a filter's own.

What is plotted is checked against the same counts made straight from the capture's
batches (:mod:`shark.analysis.series`), not against the TUI's own model."""

from __future__ import annotations

from typing import Any

import pytest
from builders import ROOT, capture

from shark.analysis.filters import compile_filter
from shark.analysis.series import BeaconPeriods, Latencies, Rates
from shark.tables.stream import MessageStream

pytest.importorskip("textual_plotext")

from tui_pilot import drive, type_filter  # noqa: E402

from tui.app import SharkApp  # noqa: E402
from tui.plots import BeaconPlot, LatencyPlot, RatePlot  # noqa: E402

BASIC = ROOT / "captures" / "softioc_pyepics_basic.pcap"


def _batches(path: Any) -> list:
    return list(MessageStream.of_capture(path, lifecycle=True))


def test_graphs_show_the_whole_capture() -> None:
    batches = _batches(BASIC)
    rates, latencies = Rates.of(batches), Latencies.of(batches)

    async def script(app: SharkApp, pilot: Any) -> None:
        await pilot.press("6")
        await pilot.pause()
        plot = app.query_one(RatePlot)
        assert plot.display and plot.size.width > 0
        assert plot.rates.messages == rates.messages > 0
        assert plot.what == "messages"
        histogram = app.query_one(LatencyPlot)
        assert histogram.latencies.count == latencies.count > 0
        await pilot.pause()
        assert "messages/s" in str(plot.render())

    drive(BASIC, script)


def test_graphs_of_a_filter_count_its_rows_only() -> None:
    batches = _batches(BASIC)
    wanted = compile_filter("command=READ_NOTIFY")
    start = batches[0].column("time")[0].value / 1e9
    rates, latencies = Rates(), Latencies()
    for batch in batches:
        mask = wanted.mask(batch, start)
        rates.add(batch, mask)
        latencies.add(batch, mask)

    async def script(app: SharkApp, pilot: Any) -> None:
        await type_filter(app, pilot, "command=READ_NOTIFY")
        await pilot.press("6")
        await pilot.pause()
        plot = app.query_one(RatePlot)
        assert plot.what == "command=READ_NOTIFY"
        assert plot.rates.messages == rates.messages > 0
        assert app.query_one(LatencyPlot).latencies.count == latencies.count > 0
        await pilot.press("escape")  # the filter goes: the whole capture again
        await pilot.pause()
        app.refresh_panes()
        assert app.query_one(RatePlot).what == "messages"

    drive(BASIC, script)


def test_beacon_periods_are_the_sessions_judgements() -> None:
    path = capture("ca_server_restart.pcapng")
    periods = BeaconPeriods.of(_batches(path))
    assert periods.servers
    worst = max(periods.servers, key=lambda s: len(periods.series(s).anomalies))

    async def script(app: SharkApp, pilot: Any) -> None:
        await pilot.press("6")
        await pilot.pause()
        beacons = app.query_one(BeaconPlot).beacons
        assert beacons is not None and beacons.server == worst
        # Drawn from what the session decided as it decoded, not judged again.
        discovery = app.model.session.discovery
        session = tuple(a for a in discovery.beacon_anomalies if a.server == worst)
        assert beacons.anomalies == session
        assert len(session) == discovery.beacons[worst].watch.anomalies > 0
        times, gaps = discovery.beacons[worst].watch.periods()
        assert beacons.times.tolist() == times and beacons.periods.tolist() == gaps
        assert [a[1:3] for a in session] == [a[1:3] for a in periods.series(worst).anomalies]

    drive(path, script)

"""The Graphs pane: the pictures of the capture, from what the model counted.

Three plots (:mod:`tui.plots`), each from numbers decided in
:mod:`shark.analysis.series` and counted by the model as batches arrive: messages per
second over the capture with its errors marked (and, with a filter or a followed PV,
those rows' own), the latency histogram of the same rows, and the beacon periods of a
server (the one picked in the Servers pane, else the one with the most anomalies).
The beacons are the session's: its :class:`decoder.Discovery` judged them as the
capture was decoded (as for the Servers pane), and the plot draws the periods and
anomalies that judge decided, without judging them again.

The counts change on the decoding thread: the pane takes a copy of them under the
model's lock when it is refreshed, and draws from the copy (the beacons' series is a
copy too, taken from the judge's arrays in single steps).
"""

from __future__ import annotations

import copy

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical

from shark.analysis.series import BeaconPeriods

from .model import Model
from .plots import BeaconPlot, LatencyPlot, RatePlot

__all__ = ["Graphs"]


class Graphs(Vertical):
    """The IO graph above, the latency histogram and the beacon periods below."""

    DEFAULT_CSS = """
    Graphs { height: 1fr; }
    Graphs RatePlot { height: 1fr; }
    Graphs Horizontal { height: 1fr; }
    Graphs LatencyPlot, Graphs BeaconPlot { width: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield RatePlot(id="rates-plot")
        with Horizontal():
            yield LatencyPlot(id="latency-plot")
            yield BeaconPlot(id="beacon-plot")

    def show(self, model: Model, selection: str | None, server: str | None) -> None:
        """Draw ``model``'s counts; ``selection`` names the filter or followed PV (None:
        the whole capture is shown); ``server``: whose beacons (None: the one with the
        most anomalies)."""
        with model.lock:
            filtered = selection is not None and model.view_rates is not None
            rates = copy.deepcopy(model.view_rates if filtered else model.rates)
            latencies = copy.deepcopy(model.view_latencies if filtered else model.latencies)
            session = model.session
            origin = model.first_time
        beacons = None
        if session is not None:  # (judged by the session as it decoded, read here)
            periods = BeaconPeriods.of_discovery(session.discovery)
            servers = periods.servers
            if server not in servers:
                server = max(servers, key=periods.anomaly_count, default=None)
            beacons = None if server is None else periods.series(server)
        what = selection if filtered else "messages"
        self.query_one(RatePlot).show_rates(rates, origin, what=what)
        self.query_one(LatencyPlot).show_latencies(
            latencies, what=f"latency of {selection}" if filtered else "latency")
        self.query_one(BeaconPlot).show_beacons(beacons, origin)

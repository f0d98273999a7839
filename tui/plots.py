"""The pictures: an IO graph, a latency histogram, beacon periods, and sparklines.

Numbers are what :mod:`shark.analysis.series` decides; these widgets only draw them
(with textual-plotext, a plot of text cells that follows the app's theme). Each owns
what it was last given and draws it again at whatever size it has: the IO graph asks
its :class:`~shark.analysis.series.Rates` for as many bins as it has columns, so
widening the terminal sharpens the graph rather than stretching it. Give a widget new
data with its ``show_*`` method (cheap: it keeps a reference and redraws on the next
refresh); call it again after more batches were counted, or :meth:`refresh` it.

Times on the x axes are seconds from ``origin`` (the capture's first time, as the log's
relative times), errors and anomalies are red, and a plot without data says so in its
title instead of drawing empty axes that look like a silent network.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from textual.app import RenderResult
from textual.widgets import Sparkline
from textual_plotext import PlotextPlot

from shark.analysis.series import BeaconSeries, Latencies, Rates, sparkline

__all__ = ["BeaconPlot", "LatencyPlot", "RatePlot", "UpdateSparkline", "count_text",
           "duration_text", "spark_text"]

#: Columns the y axis' numbers and the frame take from a plot's width.
_AXIS = 10
_ERROR = "red"
_DATA = "cyan"
#: Marker of single points: braille dots are too faint for a red mark that must be seen.
_MARK = "x"


def duration_text(seconds: float) -> str:
    """A duration in the unit that reads best: ``"20µs"``, ``"1.5ms"``, ``"2s"``,
    ``"10min"``."""
    if not np.isfinite(seconds):
        return "∞"
    for unit, size in (("h", 3600.0), ("min", 60.0), ("s", 1.0), ("ms", 1e-3),
                       ("µs", 1e-6)):
        if seconds >= size or unit == "µs":
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds}s"  # (unreachable)


def count_text(value: float) -> str:
    """A count or rate as few characters as reads well: ``"950"``, ``"12k"``, ``"1.5M"``,
    ``"0.5"`` (an axis label, where ``326488.0`` takes the plot's room)."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.3g}"


def _ticks(plt, top: float) -> None:
    """Round y ticks from 0 to just above ``top`` (1, 2 or 5 times a power of ten
    apart), labelled short, and the axis pinned to 0: a rate's height reads from 0."""
    if top <= 0:
        top = 1.0
    raw = top / 4
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(k * power for k in (1, 2, 5, 10) if k * power >= raw)
    if top >= 1:
        step = max(step, 1.0)
    ticks = [step * i for i in range(int(np.ceil(top / step)) + 1)]
    plt.ylim(0, ticks[-1])
    plt.yticks(ticks, [count_text(t) for t in ticks])


class _Plot(PlotextPlot):
    """A plotext plot drawn from the data it holds at each render (plotext keeps the
    last figure's series otherwise, and a resize must redraw from the data)."""

    def render(self) -> RenderResult:
        plt = self.plt
        plt.clear_figure()
        self.draw(max(8, self.size.width - _AXIS))
        return super().render()

    def draw(self, columns: int) -> None:
        """Put the data in the figure; ``columns``: about how many the plot area has."""
        raise NotImplementedError


class RatePlot(_Plot):
    """The IO graph: messages per second over time of a :class:`Rates` (the capture's,
    or the followed PV's, circuit's or server's), errors per second as red marks."""

    def __init__(self, rates: Rates | None = None, origin: float | None = None,
                 what: str = "messages", **options) -> None:
        super().__init__(**options)
        self.rates = rates
        self.origin = origin
        self.what = what

    def show_rates(self, rates: Rates | None, origin: float | None = None,
                   what: str | None = None) -> None:
        """Draw ``rates`` (None: nothing), times from ``origin`` (Unix seconds: the
        capture's first time; None: the first row counted); ``what`` names them in the
        title (``"messages"``, ``"PV X:Y"`` ...)."""
        self.rates = rates
        self.origin = origin
        if what is not None:
            self.what = what
        self.refresh()

    def draw(self, columns: int) -> None:
        plt = self.plt
        rates = self.rates
        series = None if rates is None else rates.series(columns, self.origin)
        if series is None or not len(series):
            plt.title(_fit(self.size.width, [f"{self.what}: none yet", "none yet"]))
            return
        origin = series.start if self.origin is None else self.origin
        starts = np.maximum(series.times - origin, 0.0)
        rates = series.rates
        # Steps, not a line through the bins' middles: a bin is a count over its width.
        xs = np.column_stack([starts, starts + series.step]).ravel()
        plt.plot(xs.tolist(), np.repeat(rates, 2).tolist(), color=_DATA, fillx=True)
        plt.xlim(0, float(xs[-1]))
        _ticks(plt, float(rates.max()))
        errors = np.flatnonzero(series.errors)
        if len(errors):  # on top of their bins' bars, where a glance finds them
            plt.scatter((starts[errors] + series.step / 2).tolist(), rates[errors].tolist(),
                        color=_ERROR, marker=_MARK, label="errors")
        plt.title(_fit(self.size.width, [
            f"{self.what}/s: {_totals(self.rates)}, {duration_text(series.step)} bins",
            f"{self.what}/s", ""]))
        plt.xlabel("seconds from the start")


def _totals(rates: Rates) -> str:
    errors = rates.error_count
    return f"{rates.messages:,} messages, {errors:,} error{'s' * (errors != 1)}"


def _fit(width: int, titles: list[str]) -> str:
    """The first of ``titles`` that fits in ``width`` columns (plotext drops a title
    too long rather than cut it)."""
    return next((title for title in titles if len(title) <= width - 4), "")


class LatencyPlot(_Plot):
    """A latency histogram of a :class:`Latencies` (the capture's, a server's or a
    PV's): bars on log-spaced bins, labelled by their upper edge."""

    def __init__(self, latencies: Latencies | None = None, what: str = "latency",
                 **options) -> None:
        super().__init__(**options)
        self.latencies = latencies
        self.what = what

    def show_latencies(self, latencies: Latencies | None, what: str | None = None) -> None:
        """Draw ``latencies`` (None: nothing); ``what`` names them in the title."""
        self.latencies = latencies
        if what is not None:
            self.what = what
        self.refresh()

    def draw(self, columns: int) -> None:
        plt = self.plt
        latencies = self.latencies
        histogram = None if latencies is None else latencies.histogram()
        if histogram is None or not len(histogram):
            plt.title(_fit(self.size.width, [f"{self.what}: no replies with a latency",
                                             "no latencies", ""]))
            return
        labels = [f"<{duration_text(high)}" if np.isfinite(high)
                  else f"≥{duration_text(low)}" for low, high in
                  zip(histogram.low.tolist(), histogram.high.tolist(), strict=True)]
        plt.bar(labels, histogram.counts.tolist(), color=_DATA, width=0.8)
        median = duration_text(latencies.quantile(0.5))
        top = duration_text(latencies.max)
        plt.title(_fit(self.size.width, [
            f"{self.what}: {latencies.count:,} replies, median <{median}, max {top}",
            f"{self.what}: median <{median}, max {top}", f"median <{median}", ""]))
        _ticks(plt, float(histogram.counts.max()))


class BeaconPlot(_Plot):
    """One server's beacon periods over time (log scale: a start-up ramp from 20 ms to
    15 s reads as the straight climb it is), its beacon anomalies as red marks."""

    def __init__(self, beacons: BeaconSeries | None = None, origin: float | None = None,
                 **options) -> None:
        super().__init__(**options)
        self.beacons = beacons
        self.origin = origin

    def show_beacons(self, beacons: BeaconSeries | None, origin: float | None = None) -> None:
        """Draw ``beacons`` (None: nothing), times from ``origin`` (Unix seconds; None:
        the server's first period)."""
        self.beacons = beacons
        self.origin = origin
        self.refresh()

    def draw(self, columns: int) -> None:
        plt = self.plt
        beacons = self.beacons
        if beacons is None or not len(beacons):
            server = "" if beacons is None else f" of {beacons.server}"
            plt.title(_fit(self.size.width, [f"beacon periods{server}: none yet",
                                             "no beacon periods", ""]))
            return
        origin = float(beacons.times[0]) if self.origin is None else self.origin
        times = (beacons.times - origin).tolist()
        periods = beacons.periods.tolist()
        # Points, not a line: a line from a restart's long period down to its ramp reads
        # as beacons that never came.
        plt.scatter(times, periods, color=_DATA, marker="●", label="period")
        shown = [(a.time - origin, a.period if a.period is not None
                  else _period_at(beacons, a.time)) for a in beacons.anomalies
                 if a.time is not None]
        if shown:
            plt.scatter([t for t, _ in shown], [p for _, p in shown], color=_ERROR,
                        marker=_MARK, label="anomaly")
        plt.yscale("log")
        top, bottom = max(periods), min(periods)
        ticks = [p for p in _PERIOD_TICKS if bottom <= p <= top] or [bottom, top]
        plt.yticks(ticks, [duration_text(p) for p in ticks])
        kinds = sorted({str(a.kind) for a in beacons.anomalies})
        found = f", anomalies: {len(beacons.anomalies)} ({', '.join(kinds)})" if kinds else ""
        count = f"{len(beacons.anomalies)} anomal{'y' if len(beacons.anomalies) == 1 else 'ies'}"
        plt.title(_fit(self.size.width, [f"beacon periods of {beacons.server}{found}",
                                         f"beacon periods of {beacons.server}, {count}",
                                         f"beacons, {count}", ""]))
        plt.xlabel("seconds from the start")


_PERIOD_TICKS = tuple(k * 10.0 ** e for e in range(-3, 4) for k in (1, 2, 5))


def _period_at(beacons: BeaconSeries, time: float) -> float:
    """Where on the period axis to mark an anomaly without a period of its own (a
    restart, lost ids): at the period of the beacon it came with, or the one before."""
    index = int(np.searchsorted(beacons.times, time, side="right")) - 1
    return float(beacons.periods[max(index, 0)])


_BLOCKS = " ▁▂▃▄▅▆▇█"


def spark_text(values: Sequence[float] | np.ndarray, top: float | None = None) -> str:
    """A row of block characters, one per value, as tall as the value is to ``top``
    (None: the largest): a sparkline for a table cell. Zero is a blank, any other
    value at least the lowest block, so that one update in a quiet minute shows."""
    values = np.asarray(values, dtype=float)
    if not len(values):
        return ""
    top = float(values.max()) if top is None else top
    if top <= 0:
        return " " * len(values)
    levels = np.ceil(np.clip(values / top, 0, 1) * (len(_BLOCKS) - 1)).astype(int)
    return "".join(_BLOCKS[level] for level in levels.tolist())


class UpdateSparkline(Sparkline):
    """A channel's update rate over the last ``span`` seconds (Textual's Sparkline):
    give it the channel's update times and the time it is now."""

    DEFAULT_CSS = """
    UpdateSparkline {
        height: 1;
    }
    """

    def __init__(self, span: float = 60.0, **options) -> None:
        super().__init__([], **options)
        self.span = span
        self._times = np.zeros(0)
        self._now: float | None = None

    def show_times(self, times: Sequence[float] | np.ndarray, now: float) -> None:
        """Draw the updates at ``times`` (Unix seconds) as seen at ``now``."""
        self._times = np.asarray(times, dtype=float)
        self._now = now
        self._rebin()

    def on_resize(self) -> None:
        self._rebin()

    def _rebin(self) -> None:
        if self._now is None:
            return
        self.data = sparkline(self._times, self._now, max(1, self.size.width),
                              self.span).tolist()

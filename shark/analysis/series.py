"""The numbers behind the pictures: message rates over time, latency histograms, beacon
periods and channel update sparklines, computed from batches of the ``messages`` table.

Each picture's numbers are decided here once, so that a screen, a report or a test that
draws them cannot disagree, and so that drawing is only drawing (``tui/plots.py``).
Everything is counted from whole columns (numpy, Arrow): a capture of millions of
messages is binned in the time it takes to read it, and counts grow batch by batch as a
capture is read or captured live, never recounted.

- :class:`Rates`: messages and errors per time bin (an IO graph). Bins are round
  widths (1 ms, 2 ms, 10 ms ... 1 min, 2 min, 10 min ...), each a whole multiple of the
  one before, so the fine bins kept merge exactly into the coarser ones a narrower
  screen, or a longer capture, needs. Which rows are errors is
  :func:`shark.analysis.problems.problem_mask`'s to say, as for every view of errors.
- :class:`Latencies`: a histogram of the ``latency`` column on fixed log-spaced bins
  (1, 2, 5 per decade), so that histograms of different batches simply add.
- :class:`BeaconPeriods`: each server's beacon periods over time, with its anomalies,
  both :class:`decoder.beacons.BeaconJudge`'s, the judge every view of beacons asks
  (the ``messages`` table's ``anomaly`` column does not carry them; its watches keep
  the periods they counted). Where a session judged the beacons as it decoded them
  (the TUI), the picture reads that session's judge, so each beacon is judged once;
  from batches alone, they are shown to a judge of the object's own, fed exactly as
  the ``beacons`` table's is, so it comes to the same verdicts. Beacons are rare (a
  server sends one every 15 s), so going through them one by one costs nothing.
- :func:`sparkline`: a channel's update rate over the last moments, for a table cell;
  :func:`update_times` gathers each channel's update times from a batch, and
  :class:`RecentUpdates` keeps the last minute's of every channel as batches come.

Rows whose ``time`` is null (a damaged capture's times outside what nanoseconds since
1970 can hold, kept in ``raw_time``) have no place on a time axis: :class:`Rates`
leaves them out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from decoder.beacons import BeaconAnomaly, BeaconJudge
from decoder.discovery import MAX_BEACON_ANOMALIES, Discovery
from shark.analysis.problems import problem_mask

__all__ = [
    "LATENCY_EDGES", "MAX_BINS", "STEPS", "BeaconPeriods", "BeaconSeries", "Histogram",
    "Latencies", "RateSeries", "Rates", "RecentUpdates", "sparkline", "update_times",
]

_NS = 1_000_000_000
_MS = 1_000_000


def _steps() -> tuple[int, ...]:
    """Bin widths in nanoseconds, round numbers people read, each a whole multiple of
    the one before (so bins merge exactly); past an hour they double, up to about
    a hundred thousand years (a damaged capture's times can be that far apart)."""
    steps = [_MS * k for k in (1, 2, 10, 20, 100, 200)]
    steps += [_NS * k for k in (1, 2, 10, 20, 60, 120, 600, 1200, 3600)]
    while steps[-1] < 1 << 62:
        steps.append(steps[-1] * 2)
    return tuple(steps)


#: The bin widths :class:`Rates` uses, in nanoseconds.
STEPS = _steps()
#: The most fine bins :class:`Rates` keeps: beyond it, it moves to the next width. Four
#: thousand is more than any screen is wide, and costs 64 kB.
MAX_BINS = 4096
#: Circuit ends: rows of the table that are not messages.
_ENDS = ("OPEN", "CLOSE")


def _codes_of(column: pa.Array | pa.ChunkedArray, names: Iterable[str]) -> np.ndarray:
    """Bool per row: whether a dictionary column's value is one of ``names`` (a test of
    the few distinct values, not of every row)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        return pc.fill_null(pc.is_in(column, pa.array(list(names))), False).to_numpy(
            zero_copy_only=False)
    wanted = set(names)
    codes = [i for i, name in enumerate(column.dictionary.to_pylist()) if name in wanted]
    if not codes:
        return np.zeros(len(column), dtype=bool)
    return np.isin(pc.fill_null(column.indices, -1).to_numpy(zero_copy_only=False), codes)


def _time_ns(batch: pa.RecordBatch | pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The ``time`` column as int64 nanoseconds since 1970, and which rows have one."""
    column = batch.column("time")
    valid = pc.is_valid(column).to_numpy(zero_copy_only=False)
    ns = pc.fill_null(column.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    return ns, valid


def _seconds(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """Capture times in Unix seconds, from ``time`` or, where it cannot hold them,
    ``raw_time``; NaN where there is neither."""
    ns, valid = _time_ns(batch)
    seconds = ns / _NS
    if not valid.all() and "raw_time" in batch.schema.names:
        raw = pc.fill_null(batch.column("raw_time"), np.nan).to_numpy(zero_copy_only=False)
        seconds = np.where(valid, seconds, raw)
    elif not valid.all():
        seconds = np.where(valid, seconds, np.nan)
    return seconds


def _mask(rows: np.ndarray | None, n: int) -> np.ndarray:
    if rows is None:
        return np.ones(n, dtype=bool)
    rows = np.asarray(rows, dtype=bool)
    if rows.shape != (n,):
        raise ValueError(f"a row mask of {rows.shape[0]} rows for a batch of {n}")
    return rows


# -- rates over time -------------------------------------------------------------------


class RateSeries(NamedTuple):
    """Messages and errors per bin: bin ``i`` covers ``start + i * step`` seconds (Unix)
    to the next."""

    start: float
    step: float
    counts: np.ndarray
    errors: np.ndarray

    @property
    def rates(self) -> np.ndarray:
        """Messages per second in each bin."""
        return self.counts / self.step

    @property
    def error_rates(self) -> np.ndarray:
        return self.errors / self.step

    @property
    def times(self) -> np.ndarray:
        """The start of each bin, Unix seconds."""
        return self.start + self.step * np.arange(len(self.counts))

    def __len__(self) -> int:
        return len(self.counts)


def _merge(counts: np.ndarray, origin: int, ratio: int) -> tuple[np.ndarray, int]:
    """Bins ``ratio`` times wider: bin indices count from 1970, so fine bin ``i`` falls
    in coarse bin ``i // ratio`` whatever the origin. (Summed by index, not by
    reshaping: a ratio can be in the billions.)"""
    if ratio == 1 or not len(counts):
        return counts, origin // ratio
    index = (origin + np.arange(len(counts), dtype=np.int64)) // ratio
    start = int(index[0])
    merged = np.zeros(int(index[-1]) - start + 1, dtype=counts.dtype)
    np.add.at(merged, index - start, counts)
    return merged, start


class Rates:
    """Messages and errors per time bin of the rows given, counted as batches come.

    :meth:`add` each batch (with a row mask to restrict the count to a filter or a
    followed PV, circuit or server: one :class:`Rates` per selection); :meth:`series`
    gives bins fit to a width. It keeps at most :data:`MAX_BINS` bins of the finest
    width of :data:`STEPS` that holds the capture so far, moving to a wider one as the
    capture grows: memory stays bounded however long it runs.

    Errors are the rows :func:`~shark.analysis.problems.problem_mask` finds, unless the
    caller gives its own mask; the circuits the capture joined mid-stream are learnt
    from the OPEN rows of earlier batches, as that judge requires. Errors count
    whether or not they are messages (a TCP reset is a circuit end); messages are the
    rows but circuit ends.
    """

    def __init__(self, step: int = STEPS[0]) -> None:
        if step not in STEPS:
            raise ValueError(f"a bin width of {step} ns is not one of STEPS")
        #: Width of the fine bins kept, nanoseconds.
        self.step = step
        self._origin = 0  # bin index (from 1970) of counts[0]
        self._counts = np.zeros(0, dtype=np.int64)
        self._errors = np.zeros(0, dtype=np.int64)
        self._joined: set[int] = set()
        self._reset: tuple[int, int] | None = None  # (circuit, frame) of the last reset
        #: Messages and errors counted.
        self.messages = 0
        self.error_count = 0

    @classmethod
    def of(cls, batches: Iterable[pa.RecordBatch]) -> Rates:
        """The rates of every row of ``batches``."""
        rates = cls()
        for batch in batches:
            rates.add(batch)
        return rates

    def add(self, batch: pa.RecordBatch | pa.Table, rows: np.ndarray | None = None,
            errors: np.ndarray | None = None) -> None:
        """Count the rows of ``batch`` that ``rows`` keeps (a bool per row; None: all);
        ``errors`` (a bool per row) says which are errors, else :func:`problem_mask`."""
        n = batch.num_rows
        if not n:
            return
        keep = _mask(rows, n)
        command = batch.column("command")
        ends = _codes_of(command, _ENDS)
        if errors is None:
            errors = self._once(batch, problem_mask(batch, self._joined), ends)
        else:
            errors = _mask(errors, n)
        if ends.any():
            self._learn(batch, ends)
        ns, valid = _time_ns(batch)
        keep = keep & valid
        message_ns = ns[keep & ~ends]
        error_ns = ns[keep & errors]
        if not len(message_ns) and not len(error_ns):
            return
        both = np.concatenate([message_ns, error_ns])
        self._cover(int(both.min()), int(both.max()))
        self._counts += self._bincount(message_ns)
        self._errors += self._bincount(error_ns)
        self.messages += len(message_ns)
        self.error_count += len(error_ns)

    def _once(self, batch: pa.RecordBatch | pa.Table, errors: np.ndarray,
              ends: np.ndarray) -> np.ndarray:
        """``errors`` with a TCP reset counted once: it closes both directions of its
        circuit, two CLOSE rows of one frame (as
        :class:`~shark.analysis.problems.ProblemJudge` and the ``errors`` table count)."""
        resets = np.flatnonzero(errors & ends)
        if not len(resets) or not {"circuit", "frame"} <= set(batch.schema.names):
            return errors
        circuit = pc.fill_null(batch.column("circuit"), 0).to_numpy(zero_copy_only=False)
        frame = batch.column("frame").to_numpy(zero_copy_only=False)
        keys = list(zip(circuit[resets].tolist(), frame[resets].tolist(), strict=True))
        again = [key == last for key, last in zip(keys, [self._reset, *keys], strict=False)]
        self._reset = keys[-1]
        errors = errors.copy()
        errors[resets[np.array(again)]] = False
        return errors

    def _learn(self, batch: pa.RecordBatch | pa.Table, ends: np.ndarray) -> None:
        """The circuits joined mid-stream (OPEN rows without a SYN), for the judge."""
        opens = ends & _codes_of(batch.column("command"), ("OPEN",))
        if not opens.any() or "reason" not in batch.schema.names:
            return
        reason = batch.column("reason")
        syn = pc.fill_null(pc.equal(reason, "syn"), False).to_numpy(zero_copy_only=False)
        circuit = batch.column("circuit")
        has = pc.is_valid(circuit).to_numpy(zero_copy_only=False)
        numbers = pc.fill_null(circuit, 0).to_numpy(zero_copy_only=False)
        self._joined.update(numbers[opens & ~syn & has].tolist())

    def _bincount(self, ns: np.ndarray) -> np.ndarray:
        size = len(self._counts)
        if not len(ns):
            return np.zeros(size, dtype=np.int64)
        return np.bincount(ns // self.step - self._origin, minlength=size)

    def _cover(self, low_ns: int, high_ns: int) -> None:
        """Grow the bins to hold ``low_ns`` .. ``high_ns``, wider bins if need be."""
        step = self.step
        if len(self._counts):
            low_ns = min(low_ns, self._origin * step)
            high_ns = max(high_ns, (self._origin + len(self._counts)) * step - 1)
        while high_ns // step - low_ns // step + 1 > MAX_BINS:
            step = STEPS[STEPS.index(step) + 1]
        if step != self.step:
            ratio = step // self.step
            self._counts, origin = _merge(self._counts, self._origin, ratio)
            self._errors, _ = _merge(self._errors, self._origin, ratio)
            self._origin, self.step = origin, step
        first, last = low_ns // step, high_ns // step
        if not len(self._counts):
            self._origin = first
        front = self._origin - first
        back = last - (self._origin + len(self._counts) - 1)
        if front > 0 or back > 0:
            pad = (max(front, 0), max(back, 0))
            self._counts = np.pad(self._counts, pad)
            self._errors = np.pad(self._errors, pad)
            self._origin = min(self._origin, first)

    def series(self, width: int, start: float | None = None) -> RateSeries:
        """At most ``width`` bins (two at least: bins fall on round times, and the rows
        may straddle one) of the narrowest width of :data:`STEPS` that fits, from
        ``start`` (Unix seconds: the bin that holds it; None: the first row
        counted) to the last row counted. Empty when nothing was counted (after
        ``start``)."""
        width = max(2, int(width))
        step = self.step
        empty = np.zeros(0, np.int64)
        if not len(self._counts):
            return RateSeries(start or 0.0, step / _NS, empty, empty)
        low = self._origin * step if start is None else int(start * _NS)
        high = (self._origin + len(self._counts)) * step - 1
        if low > high:
            return RateSeries(low / _NS, step / _NS, empty, empty)
        # The width first, then the bins: a start hours before the first row (a followed
        # PV's first update) costs a few wide bins, not millions of fine ones.
        wider = next((s for s in STEPS[STEPS.index(step):] if high // s - low // s < width),
                     STEPS[-1])
        first, last = low // wider, high // wider
        counts, origin = _merge(self._counts, self._origin, wider // step)
        errors, _ = _merge(self._errors, self._origin, wider // step)
        return RateSeries(first * wider / _NS, wider / _NS, _window(counts, origin, first, last),
                          _window(errors, origin, first, last))


def _window(counts: np.ndarray, origin: int, first: int, last: int) -> np.ndarray:
    """Bins ``first`` .. ``last`` (indices from 1970) of ``counts``, whose first is bin
    ``origin``: zeros where it has none."""
    out = np.zeros(last - first + 1, dtype=counts.dtype)
    low, high = max(first, origin), min(last, origin + len(counts) - 1)
    if low <= high:
        out[low - first:high - first + 1] = counts[low - origin:high - origin + 1]
    return out


# -- latency ---------------------------------------------------------------------------


def _latency_edges() -> np.ndarray:
    """1, 2 and 5 per decade, from a microsecond to 1000 seconds."""
    return np.array([float(f"{k}e{e}") for e in range(-6, 3) for k in (1, 2, 5)] + [1000.0])


#: The edges of the latency bins, seconds: bin ``i`` of :class:`Histogram` counts
#: latencies from ``LATENCY_EDGES[i - 1]`` up to ``LATENCY_EDGES[i]``; the first bin
#: those below the first edge, the last those from the last edge up.
LATENCY_EDGES = _latency_edges()


class Histogram(NamedTuple):
    """Counts of latencies per bin: bin ``i`` holds those from ``low[i]`` up to
    ``high[i]`` seconds (``low`` 0 for the first, ``high`` inf for the last)."""

    low: np.ndarray
    high: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.counts)


class Latencies:
    """A histogram of the ``latency`` column (seconds from a request to its reply) of
    the rows given, on the fixed bins :data:`LATENCY_EDGES`: the counts of batches add,
    and the histogram of a server or PV is that of a row mask."""

    def __init__(self) -> None:
        self._counts = np.zeros(len(LATENCY_EDGES) + 1, dtype=np.int64)
        self.count = 0
        self.total = 0.0
        self.max: float | None = None

    @classmethod
    def of(cls, batches: Iterable[pa.RecordBatch]) -> Latencies:
        latencies = cls()
        for batch in batches:
            latencies.add(batch)
        return latencies

    def add(self, batch: pa.RecordBatch | pa.Table, rows: np.ndarray | None = None) -> None:
        """Count the latencies of the rows of ``batch`` that ``rows`` keeps (None: all);
        rows without one (most rows: only replies have a latency) count nothing."""
        n = batch.num_rows
        if not n:
            return
        keep = _mask(rows, n)
        values = pc.fill_null(batch.column("latency"), np.nan).to_numpy(zero_copy_only=False)
        values = values[keep & np.isfinite(values) & (values >= 0)]
        if not len(values):
            return
        self._counts += np.bincount(np.searchsorted(LATENCY_EDGES, values, side="right"),
                                    minlength=len(self._counts))
        self.count += len(values)
        self.total += float(values.sum())
        top = float(values.max())
        self.max = top if self.max is None else max(self.max, top)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The upper edge of the bin the ``q`` quantile falls in (a bound good to the
        bin's width, what a histogram can tell); None without latencies."""
        if not self.count:
            return None
        index = int(np.searchsorted(np.cumsum(self._counts), q * self.count, side="left"))
        return float(LATENCY_EDGES[index]) if index < len(LATENCY_EDGES) else self.max

    def histogram(self) -> Histogram:
        """The bins from the first to the last that count something (none when no
        latency was counted)."""
        low = np.concatenate([[0.0], LATENCY_EDGES])
        high = np.concatenate([LATENCY_EDGES, [np.inf]])
        used = np.flatnonzero(self._counts)
        if not len(used):
            return Histogram(low[:0], high[:0], self._counts[:0].copy())
        sl = slice(int(used[0]), int(used[-1]) + 1)
        return Histogram(low[sl], high[sl], self._counts[sl].copy())


# -- beacon periods --------------------------------------------------------------------

_BEACON_FIELDS = (r"version=(?P<version>\d+) server_port=(?P<port>\d+) "
                  r"beaconid=(?P<id>\d+) address=(?P<address>[\d.]+)")


class BeaconSeries(NamedTuple):
    """One server's beacons: the period before each beacon that counted (seconds since
    the one before; libca's rules ignore duplicates), and its anomalies."""

    server: str
    times: np.ndarray
    periods: np.ndarray
    anomalies: tuple[BeaconAnomaly, ...]

    @property
    def anomaly_times(self) -> np.ndarray:
        return np.array([a.time for a in self.anomalies], dtype=float)

    def __len__(self) -> int:
        return len(self.times)


class BeaconPeriods:
    """Each server's beacon periods and anomalies, as a :class:`decoder.beacons.BeaconJudge`
    decided them (module docstring): the periods its watches counted, and the anomalies
    it found.

    Over a session's judge (:meth:`of_discovery`: the judge of the
    :class:`decoder.Discovery` that judged the beacons as the capture was decoded, and
    the anomalies it kept) nothing is judged again: this only reads. Without one, it
    has a judge of its own, fed by :meth:`add` with the beacon (``RSRV_IS_UP``) rows of
    batches as the ``beacons`` table's is: feed it every batch of a capture in order,
    unfiltered (the judge needs every beacon, and the capture's first time for its
    ``new server`` rule)."""

    def __init__(self, judge: BeaconJudge | None = None,
                 anomalies: Iterable[BeaconAnomaly] | None = None) -> None:
        #: Whether :meth:`add` feeds the judge (it is this object's own).
        self.own = judge is None
        self.judge = BeaconJudge() if judge is None else judge
        #: The anomalies found, oldest first (a session's are its own, bounded).
        self.anomalies: Iterable[BeaconAnomaly] = (
            deque(maxlen=MAX_BEACON_ANOMALIES) if anomalies is None else anomalies)

    @classmethod
    def of(cls, batches: Iterable[pa.RecordBatch]) -> BeaconPeriods:
        """The beacons of the batches of a capture, judged here."""
        periods = cls()
        for batch in batches:
            periods.add(batch)
        return periods

    @classmethod
    def of_discovery(cls, discovery: Discovery) -> BeaconPeriods:
        """The beacons a session's discovery state judged (read, never judged again)."""
        return cls(discovery.beacon_judge, discovery.beacon_anomalies)

    @property
    def servers(self) -> list[str]:
        """The servers that sent beacons, in the order they were first seen."""
        return list(self.judge.servers)

    def anomaly_count(self, server: str) -> int:
        """The anomalies the judge found in ``server``'s beacons (all of them, also
        those older than the ones kept)."""
        found = self.judge.servers.get(server)
        return 0 if found is None else found.watch.anomalies

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Judge the beacons of ``batch`` (only with a judge of this object's own: a
        session's judge has seen them already)."""
        if not self.own:
            raise ValueError("these beacons are a session's, judged as it decoded them")
        n = batch.num_rows
        if not n:
            return
        if self.judge.begin is None:  # the capture's first record, as the tables' judge
            first = _seconds(batch.slice(0, 1))[0]
            self.judge.begin = None if np.isnan(first) else float(first)
        beacons = np.flatnonzero(_codes_of(batch.column("command"), ("RSRV_IS_UP",)))
        if not len(beacons):
            return
        rows = batch.take(pa.array(beacons))
        parts = pc.extract_regex(pc.cast(rows.column("fields"), pa.string()), _BEACON_FIELDS)
        hosts = [src.rpartition(":")[0] if src else ""
                 for src in pc.cast(rows.column("src"), pa.string()).to_pylist()]
        copies = _codes_of(rows.column("sender"), ("repeater",)).tolist()
        seconds = _seconds(rows).tolist()
        see, anomalies = self.judge.see, self.anomalies
        for fields, host, copy, time in zip(parts.to_pylist(), hosts, copies, seconds,
                                            strict=True):
            if fields is None:  # (a beacon whose fields could not be read)
                continue
            address = 0
            for part in fields["address"].split("."):
                address = address << 8 | int(part)
            _server, found = see(address, int(fields["port"]), int(fields["id"]),
                                 int(fields["version"]), host,
                                 None if np.isnan(time) else time, copy)
            anomalies.extend(found)

    def series(self, server: str) -> BeaconSeries:
        """The beacons of ``server`` (``"ip:port"``, as :func:`decoder.beacons.server_name`
        names it); empty for a server that sent none."""
        found = self.judge.servers.get(server)
        times, periods = ([], []) if found is None else found.watch.periods()
        # (a copy first: a session's anomalies grow on the decoding thread)
        anomalies = tuple(a for a in list(self.anomalies) if a.server == server)
        return BeaconSeries(server, np.array(times, dtype=float),
                            np.array(periods, dtype=float), anomalies)


# -- channel sparklines ----------------------------------------------------------------

#: Commands whose server replies are a channel's updates.
_UPDATES = ("EVENT_ADD",)


def update_times(batch: pa.RecordBatch | pa.Table,
                 rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Each channel's update times (Unix seconds) in ``batch``: its monitor updates
    (EVENT_ADD replies the server sent), by PV name. One step per distinct PV."""
    n = batch.num_rows
    if not n:
        return {}
    keep = _mask(rows, n) & _codes_of(batch.column("command"), _UPDATES) \
        & _codes_of(batch.column("sender"), ("server",))
    pv = batch.column("pv")
    if isinstance(pv, pa.ChunkedArray):
        pv = pv.combine_chunks()
    if not pa.types.is_dictionary(pv.type):
        pv = pc.dictionary_encode(pv)
    codes = pc.fill_null(pv.indices, -1).to_numpy(zero_copy_only=False)
    keep &= codes >= 0
    if not keep.any():
        return {}
    seconds = _seconds(batch)
    codes, seconds = codes[keep], seconds[keep]
    order = np.argsort(codes, kind="stable")
    codes, seconds = codes[order], seconds[order]
    distinct, starts = np.unique(codes, return_index=True)
    names = pv.dictionary.to_pylist()
    pieces = np.split(seconds, starts[1:])
    return {names[code]: piece for code, piece in zip(distinct.tolist(), pieces, strict=True)}


class RecentUpdates:
    """Each channel's update times over the last ``span`` seconds, as batches come: what
    the Channels pane's sparklines are drawn from. Older times are dropped as newer
    ones come, so memory follows the update rate, not the capture's length."""

    def __init__(self, span: float = 60.0) -> None:
        self.span = span
        self._times: dict[str, np.ndarray] = {}
        #: The latest update time seen (Unix seconds), None before any.
        self.now: float | None = None

    def add(self, batch: pa.RecordBatch | pa.Table, rows: np.ndarray | None = None) -> None:
        found = update_times(batch, rows)
        if not found:
            return
        latest = max(float(np.nanmax(times)) for times in found.values())
        self.now = latest if self.now is None else max(self.now, latest)
        oldest = self.now - self.span
        for pv, times in found.items():
            kept = self._times.get(pv)
            joined = times if kept is None else np.concatenate([kept, times])
            self._times[pv] = joined[joined >= oldest]

    def times(self, pv: str) -> np.ndarray:
        """The update times of ``pv`` kept (at most ``span`` seconds before the
        latest update of any channel when it was last added to)."""
        return self._times.get(pv, np.zeros(0))

    def sparkline(self, pv: str, width: int, now: float | None = None) -> np.ndarray:
        """:func:`sparkline` of ``pv``'s updates up to ``now`` (None: the latest update
        seen): zeros for a channel without updates."""
        now = self.now if now is None else now
        if now is None:
            return np.zeros(max(1, int(width)))
        return sparkline(self.times(pv), now, width, self.span)


def sparkline(times: np.ndarray, now: float, width: int, span: float = 60.0) -> np.ndarray:
    """Updates per second of one channel in ``width`` equal bins of the ``span``
    seconds up to ``now``, oldest first: ``times`` are its update times (Unix seconds,
    any order). Updates outside the span are left out."""
    width = max(1, int(width))
    times = np.asarray(times, dtype=float)
    step = span / width
    start = now - span
    inside = times[(times >= start) & (times <= now)]
    index = np.minimum(((inside - start) / step).astype(np.int64), width - 1)
    return np.bincount(index, minlength=width) / step

"""The numbers behind the pictures, on real captures and at their edges: rates that add
up to the rows and errors the other views count, whatever the batches and bin widths;
latency histograms that hold every latency once; beacon periods with the very anomalies
of the ``beacon_anomalies`` table."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from builders import OWN_CAPTURES, capture, corpus_params
from hypothesis import given, settings
from hypothesis import strategies as st

from decoder.beacons import MAX_PERIODS, BeaconWatch
from shark.analysis.attribution import Session
from shark.analysis.problems import problem_mask
from shark.analysis.series import (
    LATENCY_EDGES,
    MAX_BINS,
    STEPS,
    BeaconPeriods,
    Latencies,
    Rates,
    RecentUpdates,
    sparkline,
    update_times,
)
from shark.capture.files import read_blocks
from shark.extract.reader import BLOCK_PACKETS, CaReader
from shark.tables.capture import Capture
from shark.tables.stream import MessageStream

MONITORS = OWN_CAPTURES / "softioc_pyepics_monitors.pcap"
NS = 1_000_000_000


def batches(path: Path, rows: int = 1 << 15) -> list[pa.RecordBatch]:
    return list(MessageStream.of_capture(path, lifecycle=True, rows=rows))


def table(path: Path) -> pa.Table:
    found = batches(path)
    return pa.Table.from_batches(found, schema=found[0].schema)


def commands(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    return np.array(pc.cast(batch.column("command"), pa.string()).to_pylist(), dtype=object)


def made(seconds: list[float], command: str | list[str] = "READ_NOTIFY",
         latency: list[float | None] | None = None) -> pa.RecordBatch:
    """A batch of a few columns of the messages table: what the series read."""
    names = [command] * len(seconds) if isinstance(command, str) else command
    columns = {
        "time": pa.array([round(s * NS) for s in seconds], pa.timestamp("ns", tz="UTC")),
        "command": pa.array(names, pa.string()).dictionary_encode(),
        "latency": pa.array(latency if latency is not None else [None] * len(seconds),
                            pa.float64()),
    }
    return pa.RecordBatch.from_pydict(columns)


def tables(path: Path, *names: str) -> Capture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Capture(path, tables=names)


# -- rates -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", corpus_params())
def test_rates_count_every_message_and_every_error_once(path: Path) -> None:
    whole = table(path)
    rates = Rates.of(whole.to_batches())
    names = commands(whole)
    messages = int((~np.isin(names, ["OPEN", "CLOSE"])).sum())
    assert rates.messages == messages
    # The rows problem_mask finds, a reset (two CLOSE rows) once: the errors table's.
    assert rates.error_count == len(tables(path, "errors").table("errors"))
    assert rates.error_count <= int(problem_mask(whole).sum())
    small = Rates.of(batches(path, rows=16))  # a reset's two rows in two batches
    assert (small.messages, small.error_count) == (rates.messages, rates.error_count)
    for width in (1, 7, 80, 200, 10_000):
        series = rates.series(width)
        assert 0 < len(series) <= max(width, 2)
        assert round(series.step * NS) in STEPS
        assert series.counts.sum() == messages
        assert series.errors.sum() == rates.error_count
        first = whole.column("time")[0].value / NS
        assert series.start <= first < series.start + series.step


def test_rates_of_small_batches_are_those_of_one_big_one() -> None:
    path = capture("ca_monitors_100hz.pcap")
    small, big = Rates.of(batches(path, rows=97)), Rates.of([table(path)])
    assert small.step == big.step
    for width in (10, 80, 400):
        a, b = small.series(width), big.series(width)
        assert a.start == b.start and a.step == b.step
        assert np.array_equal(a.counts, b.counts) and np.array_equal(a.errors, b.errors)


def test_errors_are_marked_in_the_bins_they_happened_in() -> None:
    whole = table(capture("ca_put_callback_and_errors.pcapng"))
    rates = Rates.of([whole])
    assert rates.error_count == 5
    series = rates.series(10_000)  # the finest bins
    errors = problem_mask(whole)
    seconds = whole.column("time").cast(pa.int64()).to_numpy()[errors] / NS
    index = ((seconds - series.start) // series.step).astype(int)
    expected = np.bincount(index, minlength=len(series))
    assert np.array_equal(series.errors, expected)
    assert series.error_rates.sum() == pytest.approx(5 / series.step)


def test_a_mask_restricts_the_count_to_a_followed_pv() -> None:
    whole = table(MONITORS)
    pv = pc.cast(whole.column("pv"), pa.string()).to_pylist()
    name = max(set(pv) - {None}, key=pv.count)
    mask = np.array([p == name for p in pv])
    rates = Rates()
    start = 0
    for batch in whole.to_batches():
        rates.add(batch, mask[start:start + batch.num_rows])
        start += batch.num_rows
    assert rates.messages == pv.count(name) > 0
    assert rates.error_count == 0
    given = Rates()
    given.add(whole.combine_chunks().to_batches()[0], errors=mask)  # the caller's errors
    assert given.error_count == pv.count(name)
    with pytest.raises(ValueError, match="row mask"):
        rates.add(whole.to_batches()[0], mask[:3])


def test_bins_widen_as_a_capture_grows_and_keep_every_count() -> None:
    rates = Rates()
    rates.add(made([0.0, 0.0005, 1.0]))
    assert rates.step == STEPS[0]
    rates.add(made([100.0, 3600.0]))  # an hour: the millisecond bins cannot hold it
    assert rates.step > STEPS[0]
    assert len(rates._counts) <= MAX_BINS
    series = rates.series(MAX_BINS)
    assert series.counts.sum() == 5 == rates.messages
    rates.add(made([-5.0]))  # a time before the others (capture order is not time order)
    assert rates.series(50).counts.sum() == 6
    assert rates.series(50).start <= -5.0


def test_a_start_pins_the_axis_to_the_capture_start() -> None:
    rates = Rates()
    rates.add(made([10.0, 10.5, 11.0]))
    series = rates.series(100, start=0.0)
    assert series.start == 0.0
    assert series.counts.sum() == 3
    assert series.counts[: int(10 / series.step)].sum() == 0
    later = rates.series(100, start=10.5)  # from a later start: what was before is cut
    assert later.counts.sum() == 2
    assert len(rates.series(100, start=12.0)) == 0  # after every row
    long_before = rates.series(100, start=10.0 - 86400)  # a day of fine bins: not kept
    assert len(long_before) <= 100 and long_before.counts.sum() == 3
    assert long_before.step >= 86400 / 100


def test_rates_at_the_edges() -> None:
    empty = Rates()
    assert len(empty.series(80)) == 0
    empty.add(made([]))
    assert len(empty.series(80)) == 0 and empty.messages == 0
    one = Rates()
    one.add(made([1234.5]))
    series = one.series(80)
    assert len(series) == 1 and series.counts.tolist() == [1]
    assert series.rates[0] == 1 / series.step
    ends = Rates()
    ends.add(made([1.0, 2.0], ["OPEN", "CLOSE"]))
    assert ends.messages == 0
    no_time = made([1.0, 2.0])
    no_time = no_time.set_column(0, "time", pa.array([None, 2 * NS],
                                                     pa.timestamp("ns", tz="UTC")))
    timed = Rates()
    timed.add(no_time)
    assert timed.messages == 1
    with pytest.raises(ValueError, match="not one of STEPS"):
        Rates(step=3)


# -- latency ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", corpus_params())
def test_the_histogram_holds_every_latency_once(path: Path) -> None:
    whole = table(path)
    latencies = Latencies.of(whole.to_batches())
    values = whole.column("latency").drop_null().to_numpy()
    assert latencies.count == len(values)
    histogram = latencies.histogram()
    assert histogram.counts.sum() == len(values)
    if len(values):
        assert latencies.max == values.max()
        assert latencies.mean == pytest.approx(values.mean())
        assert histogram.counts[0] > 0 and histogram.counts[-1] > 0  # trimmed
        for low, high, count in zip(histogram.low, histogram.high, histogram.counts,
                                    strict=True):
            assert count == ((values >= low) & (values < high)).sum()
        median = latencies.quantile(0.5)
        assert (values <= median).mean() >= 0.5


def test_a_latency_histogram_of_one_server() -> None:
    whole = table(capture("ca_two_clients_two_iocs.pcapng"))
    src = pc.cast(whole.column("src"), pa.string()).to_pylist()
    server = next(s for s, lat in zip(src, whole.column("latency").to_pylist(), strict=True)
                  if lat is not None and s.endswith(":5088"))
    mask = np.array([s == server for s in src])
    latencies = Latencies()
    latencies.add(whole, mask)
    every = Latencies.of([whole])
    assert 0 < latencies.count < every.count


def test_latencies_at_the_edges() -> None:
    none = Latencies()
    none.add(made([]))
    none.add(made([1.0, 2.0]))  # rows without a latency
    assert none.count == 0 and len(none.histogram()) == 0
    assert none.quantile(0.5) is None and none.mean is None and none.max is None
    odd = Latencies()
    odd.add(made([1.0] * 5, latency=[0.0, 1e-9, 5000.0, float("nan"), -1.0]))
    histogram = odd.histogram()
    assert odd.count == 3  # NaN and negative ones are no latencies
    assert histogram.low[0] == 0.0 and histogram.high[-1] == np.inf
    assert histogram.counts.tolist()[0] == 2 and histogram.counts.tolist()[-1] == 1
    assert odd.quantile(1.0) == 5000.0
    one = Latencies()
    one.add(made([1.0], latency=[0.003]))
    assert one.histogram().counts.tolist() == [1]
    assert one.histogram().low[0] == 0.002 and one.quantile(0.5) == 0.005
    assert list(LATENCY_EDGES[:3]) == [1e-6, 2e-6, 5e-6]


# -- beacon periods --------------------------------------------------------------------


@pytest.mark.parametrize("path", corpus_params())
def test_beacon_anomalies_are_the_tables_own(path: Path) -> None:
    periods = BeaconPeriods.of(MessageStream.of_capture(path, rows=64))
    cap = tables(path, "beacons", "beacon_anomalies")
    anomalies = cap.table("beacon_anomalies")
    beacons = cap.table("beacons")
    assert periods.servers == beacons.server.astype(str).tolist()
    mine = sorted((server, a.kind.value, a.beacon_id, a.time)
                  for server in periods.servers for a in periods.series(server).anomalies)
    theirs = sorted(zip(anomalies.server.astype(str), anomalies.kind.astype(str),
                        anomalies.beacon_id, anomalies.time.astype("int64") / NS, strict=True))
    assert [m[:3] for m in mine] == [t[:3] for t in theirs]
    assert np.allclose([m[3] for m in mine], [t[3] for t in theirs], atol=1e-6)
    for row in beacons.itertuples():
        series = periods.series(str(row.server))
        assert len(series.periods) <= row.beacons - 1 - row.ignored
        assert (series.periods > 0).all() and (np.diff(series.times) > 0).all()
        if row.last_period == row.last_period:  # (not NaN)
            assert series.periods[-1] == pytest.approx(row.last_period)


def test_a_restarted_server_shows_its_ramp_twice() -> None:
    periods = BeaconPeriods.of(batches(capture("ca_server_restart.pcapng")))
    (server,) = periods.servers
    series = periods.series(server)
    kinds = [a.kind.value for a in series.anomalies]
    assert "restart" in kinds and "period short" in kinds
    restart = next(a.time for a in series.anomalies if a.kind.value == "restart")
    before, after = series.periods[series.times < restart], series.periods[series.times > restart]
    assert before.max() > 4 * after.min()  # the ramp starts again from 20 ms
    assert series.anomaly_times.tolist() == sorted(series.anomaly_times.tolist())


def _session_of(path: Path) -> tuple[Session, list[pa.RecordBatch]]:
    """The session that judged a capture's beacons as it was decoded, and its batches."""
    session = Session()
    reader = CaReader((), lifecycle=True, bulk=True)
    records = session.batches(reader.batches(read_blocks(path, BLOCK_PACKETS)), True)
    return session, list(MessageStream(records, lifecycle=True))


@pytest.mark.parametrize("path", corpus_params())
def test_a_sessions_beacons_are_read_not_judged_again(path: Path) -> None:
    session, made = _session_of(path)
    judged = session.discovery.beacon_judge
    seen = {name: server.watch.beacons for name, server in judged.servers.items()}
    read = BeaconPeriods.of_discovery(session.discovery)
    again = BeaconPeriods.of(made)
    assert read.judge is judged and read.servers == again.servers
    for server in read.servers:
        mine, theirs = read.series(server), again.series(server)
        # (the same verdicts; times to the microsecond: a batch's times are nanoseconds)
        assert [a[1:3] for a in mine.anomalies] == [a[1:3] for a in theirs.anomalies]
        assert np.allclose(mine.anomaly_times, theirs.anomaly_times, rtol=0, atol=1e-6)
        assert np.allclose(mine.times, theirs.times, rtol=0, atol=1e-6)
        assert np.allclose(mine.periods, theirs.periods, rtol=0, atol=1e-6)
        assert read.anomaly_count(server) == len(mine.anomalies)
    assert {name: server.watch.beacons for name, server in judged.servers.items()} == seen
    with pytest.raises(ValueError, match="judged"):
        read.add(made[0])


def test_a_watch_keeps_its_newest_periods() -> None:
    watch = BeaconWatch(0.0, 0, 0.0)
    beats = 3 * MAX_PERIODS
    for i in range(1, beats + 1):
        watch.see(15.0 * i, i, 13)
    times, periods = watch.periods()
    assert len(times) == len(periods) == MAX_PERIODS
    assert times[-1] == 15.0 * beats and set(periods) == {15.0}
    assert len(watch.history) <= 4 * MAX_PERIODS


def test_beacon_periods_at_the_edges() -> None:
    none = BeaconPeriods()
    none.add(made([]))
    none.add(made([1.0, 2.0]))
    assert none.servers == [] and len(none.series("127.0.0.1:5064")) == 0
    assert none.series("127.0.0.1:5064").anomaly_times.tolist() == []
    whole = table(capture("ca_server_restart.pcapng"))
    first = whole.filter(pa.array(commands(whole) == "RSRV_IS_UP")).slice(0, 1)
    one = BeaconPeriods()
    one.add(first)
    assert len(one.servers) == 1 and len(one.series(one.servers[0])) == 0


# -- sparklines ------------------------------------------------------------------------


def test_sparkline_bins_the_last_span() -> None:
    times = np.array([0.5, 9.5, 9.9, 10.0, 3.0, -1.0])
    line = sparkline(times, now=10.0, width=10, span=10.0)
    assert line.tolist() == [1, 0, 0, 1, 0, 0, 0, 0, 0, 3]  # per second, -1 left out
    assert sparkline(np.array([]), 10.0, 4).tolist() == [0, 0, 0, 0]
    assert sparkline(times, 10.0, 0, 10.0).tolist() == [6 / 10 - 0.1]  # one bin at least


def test_update_times_are_each_channels_monitor_updates() -> None:
    whole = table(MONITORS)
    found: dict[str, list[float]] = {}
    for batch in whole.to_batches():
        for pv, times in update_times(batch).items():
            found.setdefault(pv, []).extend(times.tolist())
    names = commands(whole)
    sender = pc.cast(whole.column("sender"), pa.string()).to_pylist()
    pv = pc.cast(whole.column("pv"), pa.string()).to_pylist()
    updates = [p for p, c, s in zip(pv, names, sender, strict=True)
               if c == "EVENT_ADD" and s == "server"]
    assert found and {k: len(v) for k, v in found.items()} == {
        k: updates.count(k) for k in set(updates)}
    for times in found.values():
        assert times == sorted(times)
    assert update_times(made([])) == {}


def test_recent_updates_keep_the_last_span_of_each_channel() -> None:
    whole = table(capture("ca_monitors_100hz.pcap"))
    recent = RecentUpdates(span=0.5)
    for batch in whole.to_batches(max_chunksize=50):
        recent.add(batch)
    every = update_times(whole)
    assert recent.now == max(times.max() for times in every.values())
    for pv, times in every.items():
        kept = recent.times(pv)  # (a channel quiet since is trimmed when it updates again)
        assert np.array_equal(kept[kept >= recent.now - 0.5], times[times >= recent.now - 0.5])
        assert len(kept) < len(times)
        line = recent.sparkline(pv, 10)
        assert np.array_equal(line, sparkline(times, recent.now, 10, 0.5))
    assert recent.sparkline("NO:SUCH:PV", 5).tolist() == [0] * 5
    assert RecentUpdates().sparkline("X", 3).tolist() == [0, 0, 0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-1e4, 1e5, allow_nan=False), max_size=60),
       st.integers(1, 5), st.integers(1, 300), st.sampled_from([0.0, 1.8e9]))
def test_rates_are_a_histogram_of_the_times_whatever_the_batches(
        seconds: list[float], parts: int, width: int, base: float) -> None:
    """Bins of the width chosen hold exactly the rows whose times fall in them (times
    about 1970, across it, and now)."""
    seconds = [base + s for s in seconds]
    rates = Rates()
    for piece in np.array_split(np.array(seconds), parts):
        rates.add(made(piece.tolist()))
    series = rates.series(width)
    assert rates.messages == len(seconds)
    if not seconds:
        assert len(series) == 0
        return
    assert 0 < len(series) <= max(width, 2)
    ns = np.array([round(s * NS) for s in seconds])
    step = round(series.step * NS)
    index = ns // step - ns.min() // step  # (the first bin holds the first time)
    assert series.start == pytest.approx(ns.min() // step * step / NS, abs=1e-6)
    assert np.array_equal(series.counts, np.bincount(index, minlength=len(series)))
    narrower = STEPS.index(step) - 1  # and no narrower width would have fitted
    if narrower >= STEPS.index(rates.step):
        assert ns.max() // STEPS[narrower] - ns.min() // STEPS[narrower] >= max(width, 2)

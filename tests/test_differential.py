"""The columnar pipeline against the decoder's own per-message path, row by row.

Two ways read a capture into the same rows. ``shark.open(path).arrow("messages")`` reads
it in bulk: monitor updates in batches decoded as arrays (:mod:`shark.extract.bulk`),
columns built by numpy (:mod:`shark.tables.chunk`, :mod:`shark.tables.messages`,
:mod:`shark.tables.values`). ``shark.analysis.attribution.read(path, bulk=False)`` gives
one :class:`shark.Record` per message, each decoded by the decoder itself and turned into
a dict by :func:`shark.output.jsonl.record_dict` (what ``shark read --format jsonl``
prints). The fast path is only right while it says what the slow one says, so this test
holds them to it on every capture of ``captures/``, of the shared corpus and of the
hostile inputs beside the repository: the same rows in the same order, the same value in
every column both have, the same number of rows of each command.

The same comparison runs on the table built in tiny chunks and row groups (update
batches cut between chunks, texts and anomalies moved between row groups, which the small
captures here never make happen at the default sizes), on each capture joined mid-stream
(channels known by their SID only), on the fuzzer's damaged captures, and on the start of
the big benchmark captures when they are present (past one chunk of the builder).
"""

from __future__ import annotations

import math
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import mutations
import numpy as np
import pyarrow as pa
import pytest
from builders import CAPTURES, OWN_CAPTURES, ROOT, capture_paths, real_frames, write
from hypothesis import HealthCheck, given, settings

import shark
from decoder.dbr import LAYOUTS, DBRType
from shark.analysis import attribution
from shark.capture.files import CaptureError, read_frames
from shark.extract.record import MESSAGE, Record
from shark.output.jsonl import record_dict
from shark.tables import TableBuilder
from shark.tables.schema import NO_TIME, seconds_to_ns

OWN = sorted(OWN_CAPTURES.glob("*.pcap"))
SHARED = capture_paths()
HOSTILE = ROOT.parent / "shared" / "hostile"
HOSTILE_FILES = sorted(p for p in HOSTILE.iterdir() if p.name != "README.md") \
    if HOSTILE.is_dir() else []


def _params(paths: list[Path], where: Path) -> list:
    """One parameter per file, named by it; one skipped entry saying why if none."""
    if not paths:
        return [pytest.param(None, id="absent", marks=pytest.mark.skip(
            reason=f"no captures found at {where}"))]
    return [pytest.param(p, id=p.name) for p in paths]


#: Every column compared. ``time`` is the table's int64 nanoseconds (or ("raw", seconds)
#: where the time column cannot hold it, kept in ``raw_time``); ``value`` is ("num",
#: float.hex()) or ("text", str) or None.
KEYS = ("frame", "time", "src", "dst", "transport", "circuit", "sender", "command",
        "command_id", "pv", "data_type", "data_count", "status", "value", "latency",
        "request_frame", "sid", "severity", "alarm_status", "epics_time", "anomaly", "size",
        "reason")
#: Columns compared within a tolerance: latency to 1 ns; the EPICS time to 1 us, as the
#: per-message path gives it as float seconds (about 0.24 us apart at today's dates).
TOLERANCE = {"latency": 1e-9, "epics_time": 1e-6}
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


# -- the per-message path ---------------------------------------------------------------


def per_message(path: Path) -> tuple[list[Record], str | None]:
    """The records of the decoder's own path (no lifecycle records: the table has no
    rows for them), and the error that cut the capture short, if one did."""
    records: list[Record] = []
    try:
        records.extend(attribution.read(path, (), lifecycle=False, bulk=False))
    except CaptureError as exc:
        return records, str(exc)
    return records, None


def _is_text(record: Record) -> bool:
    """Whether a record's value is a string: record_dict writes a float NaN as "NaN",
    which a DBR_STRING could hold too."""
    data_type = record.message.data_type
    return not 0 <= data_type < len(LAYOUTS) or LAYOUTS[data_type].native_type == DBRType.STRING


def _scalar(value: Any, text: bool) -> tuple[str, str] | None:
    if value is None:
        return None
    if isinstance(value, str) and (text or value not in _NON_FINITE):
        return ("text", value)
    number = _NON_FINITE[value] if isinstance(value, str) else value
    return ("num", float(number).hex())


def expected_rows(records: list[Record], extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The rows the table must hold, from ``record_dict`` of each record: the columns of
    :data:`KEYS`, and ``extra`` ones as record_dict gives them."""
    seconds = np.array([r.time for r in records], dtype=np.float64)
    nanoseconds = seconds_to_ns(seconds).tolist()  # the table's conversion, one time each
    rows = []
    for record, ns in zip(records, nanoseconds, strict=True):
        d = record_dict(record)
        value = d["value"]
        if isinstance(value, list):
            # Arrays: the table has no array column (``value`` and ``value_text`` hold
            # one element only), so an array's row holds neither: compared as None.
            value = None
        row = {key: d.get(key) for key in (*KEYS, *extra)}
        row.update(
            time=("raw", d["time"]) if ns == NO_TIME else ns,
            command_id=None if d["command_id"] is None else int(d["command_id"]),
            value=_scalar(value, record.kind is MESSAGE and _is_text(record)),
            # record_dict gives the size of GAP and UNDECODED records only; a message's
            # is its bytes on the wire, as the table says too.
            size=record.size,
        )
        rows.append(row)
    return rows


def shared_extra_keys(records: list[Record], table: pa.Table) -> tuple[str, ...]:
    """Keys record_dict gives that the table has a column for, beyond :data:`KEYS`: as
    either side grows a column the other has, it is compared here too."""
    given = {key for record in records for key in record_dict(record)}
    return tuple(sorted(given & set(table.column_names) - set(KEYS)))


# -- the columnar path ------------------------------------------------------------------


def table_rows(table: pa.Table, extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The rows of a ``messages`` table, in the shape of :func:`expected_rows`."""
    plain = [key for key in (*KEYS, *extra) if key not in ("time", "epics_time", "value")]
    columns = {name: table[name].to_pylist() for name in (*plain, "raw_time")}
    times = table["time"].cast(pa.int64()).to_pylist()
    epics_times = table["epics_time"].cast(pa.int64()).to_pylist()
    numbers, texts = table["value"].to_pylist(), table["value_text"].to_pylist()
    rows = []
    for i in range(table.num_rows):
        row = {key: columns[key][i] for key in plain}
        number, text = numbers[i], texts[i]
        row.update(
            time=("raw", columns["raw_time"][i]) if times[i] is None else times[i],
            epics_time=None if epics_times[i] is None else epics_times[i] / 1e9,
            value=(None if number is None and text is None
                   else ("text", text) if text is not None
                   else ("num", float(number).hex())),
        )
        rows.append({key: row[key] for key in (*KEYS, *extra)})
    return rows


def columnar(path: Path, small: bool) -> tuple[pa.Table, str | None]:
    """The ``messages`` table as ``shark.open`` builds it (``small``: in chunks and row
    groups of a few rows), and the error that cut the capture short, if one did."""
    if not small:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "the tables hold what was read before"
            cap = shark.open(path, tables=["messages"])
            try:
                table = cap.arrow("messages")
            except CaptureError as exc:  # not even a capture: no rows
                return TableBuilder(["messages"]).arrow("messages"), str(exc)
        return table, None if cap.error is None else str(cap.error)
    batches: list[pa.RecordBatch] = []
    builder = TableBuilder(["messages"], sink=lambda _name, batch: batches.append(batch),
                           row_group_rows=7, chunk_rows=5)
    error = None
    try:
        builder.read(path)
    except CaptureError as exc:
        error = str(exc)
    builder.finish()
    return pa.Table.from_batches(batches, builder.arrow("messages").schema), error


# -- the comparison ---------------------------------------------------------------------


def _equal(key: str, want: Any, got: Any) -> bool:
    if key in TOLERANCE and want is not None and got is not None:
        return abs(want - got) <= TOLERANCE[key]
    return want == got


def differences(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    return [key for key in want if not _equal(key, want[key], got[key])]


def assert_same_rows(path: Path, small: bool = False) -> tuple[list[dict], list[dict]]:
    """Read ``path`` both ways; assert the rows agree; both row lists."""
    records, slow_error = per_message(path)
    table, fast_error = columnar(path, small)
    extra = shared_extra_keys(records, table)
    want, got = expected_rows(records, extra), table_rows(table, extra)
    for i, (w, g) in enumerate(zip(want, got, strict=False)):
        bad = differences(w, g)
        if bad:
            pytest.fail(
                f"{path.name}: row {i} (frame {w['frame']}) differs in {', '.join(bad)}\n"
                + "\n".join(f"  {k}: per-message {w[k]!r}, table {g[k]!r}" for k in bad)
                + f"\n  per-message row: {w}\n  table row:       {g}", pytrace=False)
    if len(want) != len(got):
        longer, which = (want, "per-message") if len(want) > len(got) else (got, "table")
        pytest.fail(f"{path.name}: {len(want)} rows per message, {len(got)} in the table; "
                    f"the first row only the {which} path has: {longer[min(len(want), len(got))]}"
                    f"\n  errors: per-message {slow_error!r}, table {fast_error!r}",
                    pytrace=False)
    assert Counter(w["command"] for w in want) == Counter(g["command"] for g in got)
    assert (slow_error is None) == (fast_error is None), (slow_error, fast_error)
    return want, got


CAPTURE_PARAMS = [*_params(OWN, OWN_CAPTURES), *_params(SHARED, CAPTURES)]


@pytest.mark.parametrize("path", CAPTURE_PARAMS)
def test_table_rows_are_the_per_message_records(path: Path) -> None:
    want, _ = assert_same_rows(path)
    assert want, f"{path.name}: no rows at all"


@pytest.mark.parametrize("path", CAPTURE_PARAMS)
def test_rows_agree_across_tiny_chunks_and_row_groups(path: Path) -> None:
    assert_same_rows(path, small=True)


@pytest.mark.parametrize("path", CAPTURE_PARAMS)
def test_rows_agree_on_a_capture_joined_mid_stream(path: Path, tmp_path: Path) -> None:
    """Without its first third: channels whose name the capture never saw (the ``sid``
    column), replies to requests it missed."""
    frames, linktype = real_frames(path)
    assert_same_rows(write(tmp_path, frames[len(frames) // 3:], linktype, path.name))


#: Of a benchmark capture, the first frames up to this many bytes: past one chunk of the
#: builder (65536 rows), in a few seconds.
BENCHMARK_BYTES = 4 << 20
#: (``storm.head10.pcap`` and the like are the first megabytes of another: the same start;
#: ``storm.empty.pcap`` its header alone, the read benchmark's start-up.)
BENCHMARKS = sorted(p for p in (ROOT / "benchmarks" / "data").glob("*.pcap")
                    if ".head" not in p.name and ".empty" not in p.name)


@pytest.mark.parametrize("path", _params(BENCHMARKS, ROOT / "benchmarks" / "data"))
def test_rows_agree_on_the_start_of_a_benchmark_capture(path: Path, tmp_path: Path) -> None:
    """The big captures of ``benchmarks/data`` (made by ``make``, not in the repository),
    when present: their first frames only, the whole would take minutes this way."""
    frames, size = [], 0
    for frame in read_frames(path):
        if size > BENCHMARK_BYTES:
            break
        frames.append((frame.time_ns, bytes(frame.data)))
        size += len(frame.data)
        linktype = frame.linktype
    want, _ = assert_same_rows(write(tmp_path, frames, linktype, path.name))
    assert len(want) > 65536, "the start of a benchmark capture is one chunk only"


@pytest.mark.parametrize("path", _params(HOSTILE_FILES, HOSTILE))
def test_hostile_inputs_give_the_same_rows(path: Path) -> None:
    """Damaged captures: the same rows both ways, up to the error that stops both."""
    assert_same_rows(path)


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutations.cases())
def test_rows_agree_on_damaged_captures(case: mutations.Case) -> None:
    """The fuzzer's damage (``tests/helpers/mutations.py``: flipped bits, cuts, lying
    headers) to the captures of ``captures/``: both paths read the damage the same way."""
    with tempfile.TemporaryDirectory() as directory:
        assert_same_rows(case.write(Path(directory)))


def test_the_comparison_sees_a_difference() -> None:
    """The comparison is no tautology: a value, a time off by one nanosecond, a PV and
    an absent anomaly are each found."""
    row = {key: None for key in KEYS}
    row.update(frame=1, time=1_700_000_000_000_000_001, value=("num", (1.5).hex()),
               pv="A", latency=0.25)
    for key, other in (("value", ("num", (1.25).hex())), ("time", 1_700_000_000_000_000_002),
                       ("pv", "B"), ("anomaly", "x: y"), ("latency", 0.25 + 2e-9)):
        assert differences(row, {**row, key: other}) == [key]
    assert differences(row, {**row, "latency": 0.25 + 5e-10}) == []


def test_nan_and_strings_that_say_nan_are_told_apart() -> None:
    assert _scalar("NaN", text=False) == ("num", math.nan.hex())
    assert _scalar("NaN", text=True) == ("text", "NaN")
    assert _scalar(3, text=False) == _scalar(3.0, text=False)

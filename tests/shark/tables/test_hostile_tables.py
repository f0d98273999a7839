"""The tables, ``shark stats`` and ``shark export`` on hostile input: no traceback, and a
mark for what could not be represented as it came.

Over every file of ``../shared/hostile/`` (skipped when absent): stats, export of every
table in every format (to a directory, and one table to a file) and the table API give
exit 0 or one clean ``shark: error:`` line, and the marks each kind of damage should
leave: ``\\x``-escaped names, times null with their seconds in ``raw_time`` (never
wrapped to 1969/1970), a version in a column that holds it, negative latencies counted.
The same facts are also checked on records built here, without the shared files.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from unittest import mock

import entry_points as ep
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from builders import ROOT, capture

import shark
from decoder import DBRType, Role
from decoder import messages as m
from shark.extract.record import MESSAGE, Record
from shark.tables import SCHEMAS, TABLES, TableBuilder
from shark.tables.builder import TableBuilder as _Builder
from shark.tables.schema import NO_TIME, TIME_RANGE, seconds_to_ns

HOSTILE = ROOT.parent / "shared" / "hostile"
FILES = sorted(p.name for p in HOSTILE.iterdir() if p.name != "README.md") \
    if HOSTILE.is_dir() else []
needs_hostile = pytest.mark.skipif(not FILES, reason="../shared/hostile is not present")

ECA_NORMAL = 1
ESCAPED = "\\xff\\xfeAB"
RAW = b"\xff\xfeAB".decode("utf-8", "surrogateescape")


def hostile(name: str) -> Path:
    path = HOSTILE / name
    if not path.is_file():
        pytest.skip(f"{name} not found in ../shared/hostile")
    return path


def opened(path: Path) -> shark.Capture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a damaged capture warns, and keeps what was read
        cap = shark.open(path)
        cap.table("circuits")
    return cap


# -- every file, every way out -----------------------------------------------------------


@needs_hostile
@pytest.mark.parametrize("name", FILES)
def test_stats_is_clean(name: str) -> None:
    for fmt in ("text", "json"):
        result = ep.run_cli(["stats", "-f", fmt, str(HOSTILE / name)])
        ep.check_clean(result, f"stats -f {fmt}")
        text = ep.check_text(result.out, f"stats -f {fmt}")
        if fmt == "json":
            json.loads(text)  # a damaged capture still gets the report of what was read


@needs_hostile
@pytest.mark.parametrize("fmt", ep.EXPORT_FORMATS)
@pytest.mark.parametrize("name", FILES)
def test_export_of_every_table_is_clean(name: str, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = ep.run_cli(["export", "-f", fmt, "-o", str(out), str(HOSTILE / name)])
    ep.check_clean(result, f"export -f {fmt}")
    written = sorted(p.stem for p in out.iterdir())
    assert written == sorted(TABLES)  # also after an error: what was read is written
    for path in out.iterdir():
        ep.read_back(path, fmt)


@needs_hostile
@pytest.mark.parametrize("name", FILES)
def test_export_of_one_table_to_a_file_is_clean(name: str, tmp_path: Path) -> None:
    for table in ("messages", "circuits"):
        out = tmp_path / f"{table}.parquet"
        result = ep.run_cli(["export", "-o", str(out), "-t", table, str(HOSTILE / name)])
        ep.check_clean(result, f"export -o FILE -t {table}")
        assert pq.read_table(out).schema.names == list(SCHEMAS[table].names)


@needs_hostile
@pytest.mark.parametrize("name", FILES)
def test_table_api_is_clean(name: str) -> None:
    cap = opened(HOSTILE / name)
    for table in TABLES:
        frame = cap.table(table)
        assert list(frame.columns) == list(SCHEMAS[table].names)
        cap.arrow(table)
    json.dumps(cap.report(), default=str)


# -- the marks -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["search_nonutf8_name.pcap", "nonutf8_value.pcap"])
def test_names_that_are_not_utf8_are_escaped(name: str, tmp_path: Path) -> None:
    cap = opened(hostile(name))
    names = cap.searches.pv.astype(str).tolist()
    escaped = [pv for pv in names if "\\x" in pv]
    assert escaped, names
    assert set(escaped) <= set(cap.messages.pv.dropna().astype(str))
    ep.check_clean(ep.run_cli(["export", "-o", str(tmp_path / "s.parquet"), "-t", "searches",
                               str(hostile(name))]))
    assert pq.read_table(tmp_path / "s.parquet").column("pv").to_pylist() == names


def test_a_version_of_a_billion_is_kept() -> None:
    circuits = opened(hostile("version_ext_count_1e9.pcap")).circuits
    assert 10**9 in set(circuits.client_version.dropna()) | set(circuits.server_version.dropna())


@pytest.mark.parametrize("name", ["pcapng_ts_max.pcapng", "report_time_valueerror.pcapng",
                                  "pcapng_tsoffset_huge.pcapng"])
def test_times_out_of_range_are_null_and_kept_raw(name: str, tmp_path: Path) -> None:
    path = hostile(name)
    records = ep.iterator(path)  # with OPEN and CLOSE, as the builder counts them
    raw = [r.time for r in records]
    every = [t for t in raw if not TIME_RANGE[0] <= t <= TIME_RANGE[1]]
    outside = [r.time for r in records if r.kind is not shark.CLOSE
               and r.kind is not shark.OPEN and not TIME_RANGE[0] <= r.time <= TIME_RANGE[1]]
    assert outside
    cap = opened(path)
    messages = cap.messages
    flagged = messages[messages.raw_time.notna()]
    assert flagged.time.isna().all()
    assert sorted(flagged.raw_time) == pytest.approx(sorted(outside))
    for table in ("circuits", "channels", "subscriptions", "searches"):
        frame = cap.table(table)
        for column in frame.select_dtypes("datetimetz"):
            years = frame[column].dropna().dt.year
            assert not years.isin([1969, 1970]).any(), (table, column)

    result = ep.run_cli(["stats", "-f", "json", str(path)])
    ep.check_clean(result)
    report = json.loads(result.out)["capture"]
    assert report["times_out_of_range"] == len(every)
    assert report["start_seconds"] == raw[0]
    if report["start"] is None:
        assert not TIME_RANGE[0] <= raw[0] <= TIME_RANGE[1]
    text = ep.run_cli(["stats", str(path)]).out.decode()
    assert f"times     {len(every)} records with a capture time outside" in text

    result = ep.run_cli(["export", "-o", str(tmp_path / "m.parquet"), "-t", "messages",
                         str(path)])
    ep.check_clean(result)
    assert "outside 1677..2262" in result.err  # not written without a word
    back = pd.read_parquet(tmp_path / "m.parquet")
    assert back.time.isna().sum() == len(outside)
    assert back.raw_time.notna().sum() == len(outside)


@pytest.mark.parametrize("name", ["response_before_request.pcap",
                                  "tables_traffic_indexerror.pcapng"])
def test_negative_latency_is_kept_and_counted(name: str) -> None:
    cap = opened(hostile(name))
    negative = int((cap.messages.latency < 0).sum())
    assert negative >= 1
    assert int(cap.latency.negative.sum()) == negative
    assert cap.report()["capture"]["negative_latencies"] == negative
    text = ep.run_cli(["stats", str(hostile(name))]).out.decode()
    assert "responses timestamped before their request" in text


def test_the_end_of_a_subscription_never_created() -> None:
    cap = opened(hostile("event_add_empty_reply_unknown_subscription.pcap"))
    cap.subscriptions  # noqa: B018 (what raised AttributeError)
    assert cap.messages.anomaly.dropna().str.contains("unknown subscription").any()


# -- the same, without the shared files ------------------------------------------------


def test_seconds_outside_the_time_range_are_no_time() -> None:
    low, high = TIME_RANGE
    seconds = np.array([low, high, 1.5, high + 1, low - 1, 1.8e13, -4.6e18, math.nan,
                        math.inf])
    ns = seconds_to_ns(seconds)
    assert ns[:3].tolist() == [int(low) * 10**9, int(high) * 10**9, 1_500_000_000]
    assert (ns[3:] == NO_TIME).all()
    table = SCHEMAS["circuits"].from_rows([
        (1, "a:1", "b:2", 1.8e13, 1.5, None, None, 10**9, None, None, RAW, None,
         0, 0, 0, 0, 0, 0)])
    row = table.to_pylist()[0]
    assert row["start"] is None and row["end"].year == 1970  # null, not wrapped
    assert row["client_version"] == 10**9 and row["user"] == ESCAPED


def _record(message: m.Message, time: float, sender: Role = Role.SERVER) -> Record:
    src, dst = ("10.0.0.2:5064", "10.0.0.1:40000") if sender is Role.SERVER else (
        "10.0.0.1:40000", "10.0.0.2:5064")
    return Record(MESSAGE, 1, time, src, dst, "tcp", 1, sender, message)


def test_built_records_keep_their_marks() -> None:
    value = m.ReadNotifyResponse(data_type=DBRType.STRING, status=ECA_NORMAL, ioid=2,
                                 data=[RAW])
    value_record = _record(value, 1.0)
    value_record.pv = RAW
    late = _record(m.ReadNotifyResponse(data_type=DBRType.DOUBLE, status=ECA_NORMAL, ioid=3,
                                        data=[1.0]), 2.0)
    late.latency = -0.001
    far = _record(m.EchoRequest(), 1.8e13, Role.CLIENT)
    builder = TableBuilder()
    for record in (value_record, late, far):
        builder.add(record)
    builder.finish()
    messages = builder.table("messages")
    assert messages.value_text.tolist()[0] == ESCAPED and messages.pv.tolist()[0] == ESCAPED
    assert messages.latency.tolist()[1] == -0.001
    assert messages.time.isna().tolist() == [False, False, True]
    assert messages.raw_time.tolist()[2] == 1.8e13
    assert builder.table("updates").value_text.tolist()[0] == ESCAPED
    latency = builder.table("latency")
    assert latency.negative.sum() == 1 and latency["min"].min() == -0.001
    assert builder.times_outside == 1
    builder.arrow("messages")  # Arrow holds them too


def test_the_end_of_a_subscription_never_created_ends_nothing() -> None:
    builder = TableBuilder(["subscriptions", "messages"])
    builder.add(_record(m.EventCancelResponse(data_type=DBRType.DOUBLE, data_count=0, sid=1,
                                              subscriptionid=99), 1.0))
    builder.finish()
    assert builder.table("subscriptions").empty
    assert len(builder.table("messages")) == 1


def test_a_failed_read_is_its_error_once() -> None:
    path = capture("ca_basic_default_port.pcap")
    reads = []

    def fails(self: _Builder, *args: object) -> None:
        reads.append(args)
        raise AttributeError("'NoneType' object has no attribute 'channel'")

    with mock.patch.object(_Builder, "read", fails):
        cap = shark.open(path)
        for _ in range(3):
            with pytest.raises(shark.CaptureError, match="AttributeError: 'NoneType'"):
                cap.searches  # noqa: B018
            with pytest.raises(shark.CaptureError, match="could not be built"):
                cap.report()
    assert len(reads) == 1


def test_a_missing_file_is_its_error_once(tmp_path: Path) -> None:
    cap = shark.open(tmp_path / "nothing.pcap")
    for _ in range(2):
        with pytest.raises(FileNotFoundError):
            cap.table("circuits")


def test_two_names_of_one_text_form_are_one_category() -> None:
    builder = TableBuilder(["messages"])
    for index, name in enumerate((RAW, ESCAPED, "PV:OK", RAW)):
        search = m.SearchRequest(cid=index, name=b"x")
        record = _record(search, 1.0 + index, Role.CLIENT)
        record.pv = name
        builder.add(record)
    builder.finish()
    pvs = builder.table("messages").pv
    assert pvs.tolist() == [ESCAPED, ESCAPED, "PV:OK", ESCAPED]
    assert sorted(pvs.cat.categories) == sorted([ESCAPED, "PV:OK"])
    assert builder.arrow("messages").column("pv").to_pylist() == pvs.tolist()

"""The tables of shark.tables against the captures' ground truth, and the builder's promises:
incremental, any table at any time, bounded.

The manifests of the shared corpus (../shared/captures, skipped when absent) and of the
project's own captures (captures/) say what the clients did and saw; the tables must say
the same: channels created, every subscription update with its value, alarm and EPICS
timestamp, unanswered searches and their tries, failed writes and their statuses, TCP
bytes and messages per circuit, the server restart as a beacon anomaly and a new circuit.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import ROOT, capture, corpus_params, manifest

import shark
from decoder import ECA, AlarmSeverity, AlarmStatus, Beacon, Command, DBRType, Role
from decoder.beacons import BeaconWatch
from decoder.dbr import EPICS_EPOCH_OFFSET
from shark.extract.record import MESSAGE, Record
from shark.output.jsonl import record_dict
from shark.tables import SCHEMAS, TABLES, TableBuilder
from shark.tables.builder import CHUNK_BYTES

OWN = sorted((ROOT / "captures").glob("*.pcap"))
ALL = [*corpus_params(), *(pytest.param(p, id=p.stem) for p in OWN)]


@functools.cache
def opened(path: Path) -> shark.Capture:
    return shark.open(path)


# -- messages: the columns of shark read --format jsonl ---------------------------------


def _same(key: str, want: object, row: dict) -> bool:
    got = row.get(key)
    if key in ("time", "epics_time"):
        return abs(got.value / 1e9 - want) < 1e-6
    if key == "value":
        if isinstance(want, list):  # arrays are not in the table
            return pd.isna(row["value"]) and pd.isna(row["value_text"])
        if isinstance(want, str):
            special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
            if want in special and not isinstance(row["value_text"], str):
                return np.isnan(got) if want == "NaN" else got == special[want]
            return row["value_text"] == want
    if want is None:
        return pd.isna(got)
    return got == want


@pytest.mark.parametrize("path", ALL)
def test_messages_are_the_jsonl_records(path: Path) -> None:
    records = [r for r in shark.read(path) if r.kind in (MESSAGE, "gap", "error")]
    frame = opened(path).messages
    assert len(frame) == len(records)
    optional = ("sid", "request_frame", "severity", "alarm_status", "epics_time", "anomaly")
    for row, record in zip(frame.to_dict("records"), records, strict=True):
        want = record_dict(record)
        bad = [key for key, value in want.items() if key not in ("size", "reason")
               and not _same(key, value, row)]
        bad += [key for key in optional if key not in want and not pd.isna(row[key])]
        assert not bad, (record, {k: (want.get(k), row.get(k)) for k in bad})


def test_undecodable_values_read_as_shark_read_says() -> None:
    """The fast path hands payloads it cannot read to the decoder: same values, same
    error messages (a string that is not UTF-8 escaped, as the table's strings are)."""
    from decoder import messages as m

    cases = [
        m.EventAddResponse(data_type=DBRType.TIME_DOUBLE, data_count=1, status=1,
                           subscriptionid=1, payload=b"\0" * 8),  # too short
        m.ReadNotifyResponse(data_type=99, data_count=1, status=1, ioid=2,
                             payload=b"\0" * 8),  # no such DBR type
        m.ReadNotifyResponse(data_type=DBRType.STRING, data_count=1, status=1, ioid=3,
                             data="caf\u00e9"),
        m.ReadNotifyResponse(data_type=DBRType.STSACK_STRING, data_count=1, status=1, ioid=4,
                             data="x"),
        m.ReadNotifyResponse(data_type=DBRType.STRING, data_count=1, status=1, ioid=5,
                             payload=b"a\xffb".ljust(40, b"\0")),  # not UTF-8
    ]
    records = [Record(MESSAGE, i + 1, 1.7e9 + i, "1.2.3.4:5064", "1.2.3.4:40000", "tcp", 1,
                      Role.SERVER, message) for i, message in enumerate(cases)]
    builder = TableBuilder(["messages", "updates"])
    builder.extend(records)
    rows = builder.table("messages").to_dict("records")
    for row, record in zip(rows[:4], records, strict=False):
        want = record_dict(record)
        assert all(_same(k, v, row) for k, v in want.items() if k not in ("size", "reason"))
    assert rows[0]["anomaly"].startswith("undecodable value: DBR_TIME_DOUBLE x 1 needs")
    assert rows[2]["value_text"] == "caf\u00e9"
    assert rows[4]["value_text"] == "a\\xffb"  # Arrow strings are UTF-8
    assert builder.arrow("messages")["value_text"][4].as_py() == "a\\xffb"
    assert len(builder.table("updates")) == 5


# -- the other tables against the manifests ------------------------------------------------


def test_circuits_carry_the_bytes_and_messages_of_each_stream() -> None:
    for path in [p.values[0] for p in ALL if p.values[0] is not None]:
        circuits = opened(path).circuits
        streams = manifest(path)["capture_analysis"]["tcp_streams"]
        seen = {}
        for row in circuits.itertuples():
            seen[f"{row.client}->{row.server}"] = (row.bytes_to_server, row.messages_to_server)
            seen[f"{row.server}->{row.client}"] = (row.bytes_to_client, row.messages_to_client)
        expected = {s["flow"]: (s["bytes"], s["ca_messages"]) for s in streams}
        assert seen == expected, path.name
        assert circuits.ended.notna().all() and (circuits.user.notna()
                                                 | circuits.host.notna()).all()


@pytest.mark.parametrize("path", ALL)
def test_channels_match_what_the_clients_connected(path: Path) -> None:
    truth = manifest(path)
    channels = opened(path).channels
    creates = int(truth["message_counts_by_command"]["tcp_client_to_server"].get("18", 0))
    assert len(channels) == creates
    served = {pv["pv"]: pv for pv in truth["pvs"] if "native_dbr" in pv}
    for row in channels.itertuples():
        pv = served.get(row.pv)
        if pv is None:  # the manifest does not say (caproto's server)
            continue
        assert (row.native_type, row.native_count) == (pv["native_dbr"], pv["element_count"])
        assert row.connected >= row.created and row.connect_latency >= 0
        assert row.ended in ("cleared", "circuit closed"), row
        if "write_access" in pv:
            assert row.access == ("read/write" if pv["write_access"] else "read")


def _client_subscriptions(truth: dict) -> list[dict]:
    """Every subscription a client made, with the updates it saw (both manifest styles)."""
    found = []
    for client in truth["clients"]:
        subscriptions = client.get("subscriptions") or {}
        for sub in subscriptions.values():
            if isinstance(sub, dict) and str(sub.get("dbr", "")).startswith("DBR_"):
                found.append(sub)
    return found


@pytest.mark.parametrize("path", ALL)
def test_updates_are_what_each_subscription_received(path: Path) -> None:
    cap = opened(path)
    updates = cap.updates[cap.updates.command == "EVENT_ADD"]
    subscriptions = cap.subscriptions
    for sub in _client_subscriptions(manifest(path)):
        mine = updates[(updates.pv == sub["pv"]) & (updates.data_type == sub["dbr"])]
        seen = sub["updates"]
        count = sub.get("updates_received", len(seen))
        assert len(mine) == count, sub["pv"]
        rows = subscriptions[(subscriptions.pv == sub["pv"])
                             & (subscriptions.data_type == sub["dbr"])]
        assert rows.updates.sum() == count
        for row, want in zip(mine.itertuples(), seen, strict=False):
            _check_update(row, want)


def _check_update(row: pd.Series, want: dict) -> None:
    value = want["value"]
    if isinstance(value, (dict, list)):  # an array: its length
        assert row.count == (value["len"] if isinstance(value, dict) else len(value))
        assert pd.isna(row.value)
    elif isinstance(value, str):
        assert row.value_text == value
    else:
        assert row.value == value
    if want.get("severity") is not None:
        status = want.get("alarm_status", want.get("status"))
        assert row.severity == AlarmSeverity(want["severity"]).name
        assert row.alarm_status == AlarmStatus(status).name
    stamp = want.get("stamp")
    if stamp is not None:
        ns = (stamp["secPastEpoch"] + EPICS_EPOCH_OFFSET) * 10**9 + stamp["nsec"]
        assert row.epics_time.value == ns
    elif want.get("timestamp") is not None:
        assert abs(row.epics_time.value / 1e9 - want["timestamp"]) < 1e-6


@pytest.mark.parametrize("path", ALL)
def test_monitor_update_counts(path: Path) -> None:
    """Per client subscription, as counted in the client's callbacks. Command-line
    monitors (caproto-monitor, pyepics camonitor) stop with one update in flight."""
    truth = manifest(path)
    subscriptions = opened(path).subscriptions
    for client in truth["monitor_updates_received"]["per_client"].values():
        for name, entry in client.items():
            if not isinstance(entry, dict):  # the own manifests: the name of a subscription
                entry = next(s for c in truth["clients"]
                             for n, s in (c.get("subscriptions") or {}).items() if n == name)
                entry = {**entry, "updates_received": len(entry["updates"])}
            rows = subscriptions[subscriptions.pv == entry["pv"]]
            if str(entry.get("dbr", "")).startswith("DBR_"):
                assert rows[rows.data_type == entry["dbr"]].updates.sum() == entry[
                    "updates_received"], (name, entry)
            else:
                named = {s["dbr"] for s in _client_subscriptions(truth) if s["pv"] == entry["pv"]}
                left = rows[~rows.data_type.isin(named)].updates.sum()
                assert entry["updates_received"] <= left <= entry["updates_received"] + 1


@pytest.mark.parametrize("path", ALL)
def test_searches(path: Path) -> None:
    truth = manifest(path)
    searches = opened(path).searches
    lost = searches[~searches.answered]
    missing = {e["pv"]: e.get("udp_search_requests_in_capture", e.get("udp_search_requests"))
               for e in truth["nonexistent_pvs_searched"]}
    assert dict(zip(lost.pv.astype(str), lost.tries, strict=True)) == missing
    per_pv = truth["capture_analysis"].get("udp_search_requests_per_pv", {})
    if all(isinstance(n, int) for n in per_pv.values()):  # not a summary of many
        assert searches.groupby("pv", observed=True).tries.sum().to_dict() == per_pv
    answered = searches[searches.answered]
    assert (answered.time_to_answer >= answered.reply_latency).all()
    assert (answered.servers == 1).all() and answered.server.notna().all()


@pytest.mark.parametrize("path", ALL)
def test_errors_are_the_failures_the_capture_holds(path: Path) -> None:
    analysis = manifest(path)["capture_analysis"]
    errors = opened(path).errors
    server_errors = errors[errors.kind == "ERROR"]
    expected = sorted((e["eca_status"], e["original_command"], e["message"])
                      for e in analysis.get("tcp_error_messages", []))
    assert sorted((ECA[r.status].value, Command[r.request].value, r.detail)
                  for r in server_errors.itertuples()) == expected
    failed = {int(k): n for k, n in analysis.get("write_notify_reply_status", {}).items()
              if k != "1"}
    writes = errors[errors.kind == "WRITE_NOTIFY"]
    assert writes.status.map(lambda s: ECA[s].value).value_counts().to_dict() == failed
    assert (writes.request == "WRITE_NOTIFY").all() and writes.request_frame.notna().all()
    resets = (analysis.get("tcp_fin_rst_segments") or {}).get("RST", 0)
    assert (errors.kind == "RST").sum() == resets  # one reset per circuit in the corpus
    assert set(errors.kind) <= {"ERROR", "WRITE_NOTIFY", "RST"}  # nothing else went wrong


def test_server_restart_is_a_beacon_anomaly_and_a_new_circuit() -> None:
    path = capture("ca_server_restart.pcapng")
    cap = opened(path)
    [server] = cap.beacons.itertuples()
    assert server.restarts == 1 and server.first_id == 0
    assert server.copies > 0  # the repeater forwarded them: counted apart
    anomalies = cap.beacon_anomalies
    restart = anomalies[anomalies.kind == "restart"].time.iloc[0]
    run = manifest(path)["servers"][0]["runs"]
    killed, restarted = run[0]["t_stop_unix"], run[1]["t_start_unix"]
    assert killed < restart.value / 1e9 < restarted + 2
    after = anomalies[anomalies.time > restart]
    assert "period short" in set(after.kind)  # the new server's beacon ramp
    circuits = cap.circuits
    assert list(circuits.server) == [server.server] * 2
    first, second = circuits.itertuples()
    assert (first.ended, first.closed_by) == ("FIN", "server")  # the kernel closed it
    assert abs(first.end.value / 1e9 - killed) < 0.1
    assert second.start > restart
    subscriptions = cap.subscriptions
    assert list(subscriptions.ended) == ["circuit closed"] * 2 + ["cancelled"] * 2


# -- beacon rules -----------------------------------------------------------------------------


def _watch(beats: list[tuple[float, int]], begin: float = 0.0) -> list[tuple[float, str]]:
    watch = BeaconWatch(*beats[0], begin)
    return [(a.time, a.kind) for t, i in beats[1:] for a in watch.see(t, i, 13)]


def test_beacon_rules() -> None:
    steady = [(10.0 + 15 * i, 100 + i) for i in range(10)]
    assert _watch(steady) == []
    assert _watch([*steady, (steady[-1][0] + 15, 100)]) == [(160.0, "restart")]
    # Copies from a second route, and ids a little ahead, are ignored.
    assert _watch([(0, 5), (15, 6), (15.001, 6), (30, 7), (45, 10), (60, 11)]) == []
    # Three beacons missing: the period is long; lost ids are reported.
    assert _watch([(0, 5), (15, 6), (30, 7), (105, 12)]) == [(105, "ids jumped"),
                                                            (105, "period long")]
    # A server that starts after the capture does: its ramp, then a new server.
    ramp = [(100.0, 0), (100.02, 1), (100.06, 2), (100.14, 3), (100.30, 4), (100.62, 5)]
    kinds = [kind for _, kind in _watch(ramp)]
    assert kinds[0] == "new server" and set(kinds[1:]) <= {"period long"}
    # The same server seen from the start of the capture is not new.
    assert "new server" not in [kind for _, kind in _watch(ramp, begin=100.0)]
    # A restart: the id goes back, then beacons come fast.
    restart = [*steady, (150.0, 0), (150.02, 1), (150.06, 2), (150.14, 3)]
    assert [kind for _, kind in _watch(restart)] == ["restart", "period short",
                                                      "period short", "period short"]


def test_forwarded_beacons_are_copies() -> None:
    """A beacon the repeater forwards counts only when the server's own is not seen."""
    records = []
    for i in range(5):
        beacon = Beacon(server_port=5064, beaconid=i, address=0x7F000001)
        records.append(Record(MESSAGE, 2 * i + 1, 15.0 * i, "127.0.0.1:40000",
                              "127.0.0.1:5065", "udp", None, Role.SERVER, beacon))
        records.append(Record(MESSAGE, 2 * i + 2, 15.0 * i + 0.001, "127.0.0.1:5065",
                              "127.0.0.1:50000", "udp", None, Role.REPEATER, beacon))
    builder = TableBuilder(["beacons"])
    builder.extend(records)
    [row] = builder.table("beacons").itertuples()
    assert (row.server, row.beacons, row.copies, row.ignored, row.anomalies) == (
        "127.0.0.1:5064", 5, 5, 0, 0)
    only_copies = TableBuilder(["beacons"])
    only_copies.extend(records[1::2])
    assert only_copies.table("beacons").beacons.tolist() == [5]


# -- the builder: incremental, at any time, bounded ---------------------------------------


def _frames(builder: TableBuilder) -> dict[str, pd.DataFrame]:
    return {name: builder.table(name) for name in TABLES}


def test_record_at_a_time_equals_all_at_once() -> None:
    path = capture("ca_server_restart.pcapng")
    records = list(shark.read(path, lifecycle=True))
    whole = TableBuilder()
    whole.extend(records)
    piecewise = TableBuilder(chunk_rows=7, row_group_rows=50)
    midway = {}
    for i, record in enumerate(records):
        piecewise.add(record)
        if i == len(records) // 2:  # tables asked for midway change nothing
            midway = _frames(piecewise)
            assert len(midway["messages"]) == i + 1 - sum(
                r.kind in ("open", "close") for r in records[:i + 1])
            kept = {name: frame.copy(deep=True) for name, frame in midway.items()}
    for name, frame in _frames(whole).items():
        other = piecewise.table(name)  # categories may come in another order
        assert frame.dtypes.equals(other.dtypes), name
        pd.testing.assert_frame_equal(frame, other, obj=name, check_categorical=False)
    # The per-message tables, joined into one row group by table(), read the same again.
    for name in ("messages", "updates"):
        pd.testing.assert_frame_equal(piecewise.arrow(name).to_pandas(), whole.table(name),
                                      obj=name, check_categorical=False)
        pd.testing.assert_frame_equal(piecewise.table(name), whole.table(name), obj=name,
                                      check_categorical=False)
    # The frames handed out midway share the builder's columns: growing left them be.
    for name, frame in midway.items():
        pd.testing.assert_frame_equal(frame, kept[name], obj=name)


def test_bounds() -> None:
    path = capture("ca_many_channels_500.pcap")
    batches = []
    builder = TableBuilder(["messages", "channels", "searches", "errors"], max_rows=100,
                           row_group_rows=1000, chunk_rows=300,
                           sink=lambda name, batch: batches.append(batch.num_rows))
    builder.extend(shark.read(path, lifecycle=True))
    builder.finish()
    assert len(builder.table("channels")) == 100  # all 500 ended: the newest kept
    assert len(builder.table("searches")) == 100
    assert sum(batches) == manifest(path)["message_counts_by_command"]["total_ca_messages"]
    # A row group closes once it has 1000 rows: chunks are not split.
    assert all(1000 <= n < 1300 for n in batches[:-1]) and len(builder.table("messages")) == 0
    kept = TableBuilder(["messages"], keep_rows=2000, row_group_rows=1000, chunk_rows=300)
    kept.extend(shark.read(path))
    frame = kept.table("messages")
    assert 2000 <= len(frame) < 3000
    pd.testing.assert_frame_equal(kept.table("messages"), frame)
    pd.testing.assert_frame_equal(kept.arrow("messages").to_pandas(), frame)


def test_large_payloads_are_handed_over_early() -> None:
    """A chunk holds CHUNK_ROWS records, or fewer when their payloads are large."""
    from decoder import messages as m

    def reads(size: int) -> list[Record]:
        reply = m.ReadNotifyResponse(data_type=DBRType.CHAR, data_count=size, status=1,
                                     ioid=1, payload=bytes(size))
        return [Record(MESSAGE, i, 1.7e9 + i, "1.2.3.4:5064", "1.2.3.4:40000", "tcp", 1,
                       Role.SERVER, reply) for i in range(40)]

    small, large = TableBuilder(["updates"]), TableBuilder(["updates"])
    small.extend(reads(1000))
    large.extend(reads(1 << 20))
    # Taken by the tables (a chunk as soon as its payloads reach CHUNK_BYTES), or pending.
    assert (small.records, large.records) == (0, CHUNK_BYTES >> 20)
    assert len(small.table("updates")) == len(large.table("updates")) == 40


def test_unknown_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="no such table: nope"):
        TableBuilder(["messages", "nope"])
    with pytest.raises(KeyError, match="not built here"):
        TableBuilder(["errors"]).table("messages")


def test_every_table_is_documented() -> None:
    for name in TABLES:
        text = SCHEMAS[name].describe()
        assert text.startswith(f"{name}: ") and all(
            c.name in text and c.doc for c in SCHEMAS[name].columns)


# -- the notebook example -------------------------------------------------------------------

NOTEBOOK = """
import shark

cap = shark.open("captures/softioc_pyepics_basic.pcap")

# Which client keeps searching for PVs that do not exist?
lost = cap.searches[~cap.searches.answered]
print(lost[["pv", "client", "tries"]])

# Which server answers slowly? Read latency per PV, in milliseconds.
reads = cap.messages[cap.messages.command == "READ_NOTIFY"].dropna(subset=["latency"])
print((reads.groupby("pv", observed=True).latency.describe() * 1e3).round(3))

# Which PV floods the network? Subscriptions by update rate and bytes.
print(cap.subscriptions[["pv", "data_type", "updates", "rate", "bytes"]])

# The values themselves, with their alarm state and EPICS time.
print(cap.updates[["time", "pv", "value", "severity", "epics_time"]].tail())

# Did a server restart? Beacon anomalies, by libca's rules.
print(cap.beacons[["server", "beacons", "anomalies", "restarts"]])
"""


def test_notebook_example(capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    exec(compile(NOTEBOOK, "notebook", "exec"), {})
    out = capsys.readouterr().out
    assert "DEMO:BASIC:NO_SUCH_PV" in out and "DBR_TIME_DOUBLE" in out


def test_capture_object() -> None:
    path = ROOT / "captures" / "softioc_pyepics_basic.pcap"
    cap = shark.open(path, tables=["searches", "errors"])
    assert cap.searches is cap.table("searches")  # built once, kept
    assert "searches" in dir(cap) and cap.error is None
    assert cap.arrow("errors").schema == SCHEMAS["errors"].arrow
    with pytest.raises(KeyError):
        cap.table("messages")
    with pytest.raises(AttributeError):
        cap.no_such_thing  # noqa: B018
    report = shark.open(path).report()
    assert json.dumps(report) and report["unanswered_searches"]["names"] == 1


def test_damaged_capture_gives_what_was_read(tmp_path: Path) -> None:
    whole = (ROOT / "captures" / "softioc_pyepics_basic.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[: len(whole) // 2 + 7])
    cap = shark.open(cut)
    with pytest.warns(UserWarning, match="what was read"):
        messages = cap.messages
    assert 0 < len(messages) and cap.error is not None


def test_columns_handed_out_are_never_moved() -> None:
    """A per-message column grows in place (its memory map resized) only while nothing
    else refers to it: once a DataFrame views it, it grows into a new map and the view
    stays valid."""
    from shark.tables.rowgroups import _Growing

    column = _Growing(np.int64)
    column.extend(np.arange(100))
    column.extend(np.arange(10_000))  # past the first rows: into a map
    alone = column._map
    column.extend(np.arange(len(column.data)))  # past its capacity, nothing refers to it
    assert column._map is alone
    rows = np.concatenate((np.arange(100), np.arange(10_000), np.arange(len(column.data) // 2)))
    view = column.view()
    assert (view[: len(rows)] == rows[: len(view)]).all()
    before = view.copy()
    column.extend(np.full(len(column.data), -1))
    assert column._map is not alone and (view == before).all()
    assert (column.view()[: len(before)] == before).all() and column.view()[-1] == -1


def test_values_under_nulls_are_put_where_they_matter() -> None:
    """A nullable column's part written only where some value is not null (pages of
    a map) holds every value that is, whatever page it starts in, few or many, in
    parts of any length; and its rows put but not written read as zeros."""
    from shark.tables.rowgroups import _Growing

    rng = np.random.default_rng(11)
    for dtype in (np.float64, np.int64, np.uint32, np.uint16):
        column = _Growing(dtype)
        values, valid = [], []
        for k in range(60):
            rows = int(rng.choice([1, 7, 300, 513, 4096, 5000, 20_000, 65_536]))
            part = np.zeros(rows, dtype=bool)
            if k % 4 == 0:
                part[:] = True
            elif k % 4 == 1:
                part[rng.integers(0, rows, 3)] = True
            elif k % 4 == 3:
                part[rng.random(rows) < 0.5] = True
            numbers = rng.integers(1, 1000, rows).astype(dtype)
            column.put(numbers, part)
            values.append(numbers)
            valid.append(part)
        held, wanted, where = column.view(), np.concatenate(values), np.concatenate(valid)
        assert len(held) == len(wanted) and (held[where] == wanted[where]).all()
        assert ((held == 0) | (held == wanted)).all()


def test_category_columns_know_the_codes_they_hold() -> None:
    """A category column's ``used`` is exactly the codes it holds, however they came:
    new codes among many, few, between codes seen, nulls, codes past a type's range."""
    from shark.tables.rowgroups import _Codes

    rng = np.random.default_rng(5)
    column = _Codes()
    parts = [np.full(10, -1), np.array([3, -1, 3]), np.array([0, 7, 7]),
             rng.integers(-1, 40, 500), np.array([5, 2, 9, -1]), np.array([1, 3, 20, 39]),
             rng.integers(30, 300, 1000), np.array([], dtype=np.int64), np.array([299, 150])]
    for done, part in enumerate(parts, 1):
        column.extend(part.astype(np.int32))
        held = np.concatenate(parts[:done])
        assert (np.flatnonzero(column.used) == np.unique(held[held >= 0])).all()
    assert (column.view() == np.concatenate(parts)).all()


def test_the_codes_a_batch_uses_are_found() -> None:
    """The codes of a part (a batch's, or a frame's rows since some row) are found
    exactly, be they few or many, of any width, with nulls or without."""
    from shark.tables.rowgroups import _codes_in

    rng = np.random.default_rng(7)
    for low, high in ((-1, 0), (-1, 1), (0, 5), (3, 12), (-1, 9), (-1, 40), (100, 3000)):
        for dtype in (np.int8, np.int16, np.int32):
            if high > np.iinfo(dtype).max:
                continue
            for rows in (1, 7, 5000):
                codes = rng.integers(low, high + 1, rows).astype(dtype)
                found = _codes_in(codes, 3001)
                assert found.dtype == np.intp
                assert found.tolist() == np.unique(codes[codes >= 0]).tolist()
    assert _codes_in(np.zeros(0, dtype=np.int32), 5).tolist() == []


def test_full_collections_are_deferred_while_a_capture_is_read() -> None:
    """Python's garbage collections come far less often while tables read a capture
    (see ``shark.tables.builder``), and as they did once it is read, also when reading
    fails."""
    import gc
    import io

    seen = []

    class Watched(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            seen.append(gc.get_threshold())
            return super().read(size)

    before = gc.get_threshold()
    whole = (ROOT / "captures" / "softioc_pyepics_basic.pcap").read_bytes()
    for data in (whole, whole[: len(whole) // 2 + 7]):
        builder = TableBuilder(["messages"])
        try:
            builder.read(Watched(data))
        except shark.CaptureError:
            assert data is not whole
        assert gc.get_threshold() == before
        builder.finish()
        assert len(builder.table("messages"))
    # (a read of the builder's own records, which leaves no garbage in cycles: young
    # collections far apart too)
    assert seen and all(t == (max(before[0], 1_000_000), before[1], max(before[2], 100))
                        for t in seen)


def test_schema_dtypes_are_those_of_its_frames() -> None:
    """The dtypes a schema says its DataFrames have (without making one through Arrow)
    are those Arrow gives back (a category's: with the categories of each frame)."""
    for schema in SCHEMAS.values():
        through_arrow = schema.frame(schema.empty()).dtypes
        for name, dtype in schema.dtypes.items():
            if dtype == "category":
                assert isinstance(through_arrow[name], pd.CategoricalDtype)
            else:
                assert dtype == through_arrow[name], (schema.name, name)

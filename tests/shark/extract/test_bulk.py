"""Monitor updates in bulk (``shark.read(..., bulk=True)``, :mod:`shark.extract.bulk`) change how
the tables are computed, never what they hold.

Every capture is read both ways and every table compared exactly (values, dtypes,
category order), with the ``shark stats`` report for the undamaged: the captures of
the shared corpus and of ``captures/``, and damaged ones made from them (cut, packets
lost, swapped, repeated, garbage in a server's stream among the updates, streams cut
into other segments, files truncated inside a packet, whose CaptureError must come
after the same tables). The records a bulk read gives, each
:class:`shark.extract.bulk.UpdateBatch` expanded with ``records()``, must be those of a plain
read, field by field; and the captures full of monitor updates must give batches, so
that none of this passes vacuously.
"""

from __future__ import annotations

import io
import itertools
import json
import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import pytest
from builders import (
    ROOT,
    Frames,
    capture,
    chunked,
    connection,
    corpus_params,
    pcap_bytes,
    real_frames,
    split_points,
    tcp_frames,
    tcp_payload_size,
    write,
)

import shark
import shark.extract.reader
import shark.tables.builder
from decoder import Role
from decoder import messages as m
from shark.analysis.attribution import read
from shark.capture.files import CaptureError, LinkType
from shark.cli import main
from shark.extract.bulk import UPDATES, UpdateBatch, placed
from shark.extract.record import MESSAGE, Record
from shark.tables import TABLES, TableBuilder
from shark.tables.report import build_report

OWN = sorted((ROOT / "captures").glob("*.pcap"))
ALL = [*corpus_params(), *(pytest.param(p, id=p.stem) for p in OWN)]
#: Captures full of monitor updates (the last one is bundled: always there).
MONITORED = ["ca_monitors_100hz.pcap", "ca_server_restart.pcapng",
             "ca_two_clients_two_iocs.pcapng", "softioc_pyepics_monitors.pcap"]

#: A capture file, or its bytes (read as a stream).
Source = Path | bytes
Fields = tuple[Any, ...]


def source(name: str) -> Path:
    """A capture of ``captures/``, else of the shared corpus (skipped when absent)."""
    own = ROOT / "captures" / name
    return own if own.is_file() else capture(name)


def _open(source: Source) -> Path | io.BytesIO:
    return io.BytesIO(source) if isinstance(source, bytes) else source


# -- both ways, compared -------------------------------------------------------------


class Built(NamedTuple):
    tables: dict[str, pd.DataFrame]
    summary: str  #: records taken, first and last time; the stats report with ``report``
    error: str | None  #: the CaptureError that ended the capture


def tables(source: Source, bulk: bool, options: dict[str, Any] | None = None,
           report: bool = False, **kw: Any) -> Built:
    """Every table (or those ``options`` name) built from a read of ``source``."""
    builder = TableBuilder(**(options or {}))
    error = None
    try:
        builder.extend(read(_open(source), lifecycle=True, bulk=bulk, **kw))
    except CaptureError as exc:
        error = str(exc)
    builder.finish()
    summary = json.dumps([builder.records, builder.first_time, builder.last_time,
                          build_report(builder) if report else None],
                         default=str, sort_keys=True)
    return Built({name: builder.table(name) for name in builder.names}, summary, error)


def assert_same_frames(got: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame],
                       **kw: Any) -> None:
    assert list(got) == list(expected)
    for name, frame in expected.items():
        assert got[name].dtypes.equals(frame.dtypes), name
        pd.testing.assert_frame_equal(got[name], frame, check_exact=True, obj=name, **kw)


def assert_same_tables(source: Source, options: dict[str, Any] | None = None,
                       report: bool = False, **kw: Any) -> Built:
    """The tables (and summary, and error) of a bulk read are those of a plain read."""
    plain, bulk = (tables(source, b, options, report, **kw) for b in (False, True))
    assert bulk.error == plain.error
    assert_same_frames(bulk.tables, plain.tables)
    assert bulk.summary == plain.summary
    return plain


def fields(record: Record) -> Fields:
    """What a consumer may read of a record."""
    message, anomaly = record.message, record.anomaly
    subscription, request = record.subscription, record.request
    return (record.kind, record.frame, record.time, record.src, record.dst, record.transport,
            record.circuit, record.sender, None if message is None else message.to_bytes(),
            record.pv, record.size, record.reason, record.latency,
            None if anomaly is None else anomaly.kind,
            None if subscription is None else subscription.subscriptionid,
            None if request is None else request.frame)


def batch_records(batch: UpdateBatch) -> list[Record]:
    """The records of a batch, checked against what the batch says of them."""
    assert isinstance(batch, UpdateBatch)
    records = batch.records()
    assert len(records) == len(batch) > 0
    for r in records:
        assert r.kind == MESSAGE and type(r.message) is m.EventAddResponse
        assert (r.src, r.dst, r.circuit, r.sender, r.transport) == (
            batch.src, batch.dst, batch.circuit, Role.SERVER, "tcp")
    return records


class Seen(NamedTuple):
    records: list[Fields]  #: every record, those of batches expanded
    #: (subscription id, updates counted) of each subscription named, once read through
    subscriptions: list[tuple[int, int]]
    batches: int  #: UpdateBatch items
    batched: int  #: records in them
    batched_frames: int  #: frames of those records
    error: str | None


def records(source: Source, bulk: bool, lifecycle: bool = False, **kw: Any) -> Seen:
    out: list[Fields] = []
    subscriptions: dict[int, Any] = {}
    batches = batched = 0
    batched_frames: set[int] = set()
    error = None
    try:
        for item in read(_open(source), lifecycle=lifecycle, bulk=bulk, **kw):
            if item.kind == UPDATES:
                expanded = batch_records(item)
                batches += 1
                batched += len(expanded)
                batched_frames.update(r.frame for r in expanded)
            else:
                expanded = [item]
            for record in expanded:
                out.append(fields(record))
                if record.subscription is not None:
                    subscriptions.setdefault(id(record.subscription), record.subscription)
    except CaptureError as exc:
        error = str(exc)
    counts = [(s.subscriptionid, s.updates) for s in subscriptions.values()]
    return Seen(out, counts, batches, batched, len(batched_frames), error)


def assert_same_records(source: Source, lifecycle: bool = False, **kw: Any) -> Seen:
    """The records of a bulk read, batches expanded, are those of a plain read."""
    plain, bulk = (records(source, b, lifecycle, **kw) for b in (False, True))
    assert plain.batches == 0
    assert bulk.error == plain.error
    for index, (got, expected) in enumerate(itertools.zip_longest(bulk.records,
                                                                  plain.records)):
        assert got == expected, f"record {index} differs"
    assert bulk.subscriptions == plain.subscriptions
    return bulk


def assert_equivalent(source: Source, **kw: Any) -> tuple[Built, Seen]:
    return assert_same_tables(source, **kw), assert_same_records(source, **kw)


# -- the captures ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL)
def test_tables_of_every_capture(path: Path) -> None:
    assert_same_tables(path, report=True)


@pytest.mark.parametrize("lifecycle", [False, True])
@pytest.mark.parametrize("path", ALL)
def test_records_of_every_capture(path: Path, lifecycle: bool) -> None:
    assert_same_records(path, lifecycle)


@pytest.mark.parametrize("name", MONITORED)
def test_monitor_updates_come_in_batches(name: str) -> None:
    """Not vacuous: most updates of these captures come in batches."""
    path = source(name)
    seen = assert_same_records(path)
    updates = sum(type(r.message) is m.EventAddResponse for r in read(path))
    assert seen.batches > 0 and seen.batched > updates // 2, (seen.batched, updates)
    # A batch stands for consecutive packets of a server, not one each.
    assert seen.batches < seen.batched_frames, seen


def test_from_a_stream() -> None:
    assert_equivalent((ROOT / "captures" / "softioc_pyepics_monitors.pcap").read_bytes())


@pytest.mark.parametrize("options", [
    {"chunk_rows": 7, "row_group_rows": 50}, {"chunk_rows": 1}, {"tables": ["updates"]},
    {"tables": ["subscriptions", "circuits", "commands", "latency"]},
    {"keep_rows": 100, "row_group_rows": 64, "chunk_rows": 10}, {"max_rows": 3},
], ids=str)
@pytest.mark.parametrize("name", [MONITORED[0], MONITORED[-1]])
def test_builder_options(name: str, options: dict[str, Any]) -> None:
    """Chunks and row groups that end inside a batch; some tables only."""
    assert_same_tables(source(name), options)


@pytest.mark.parametrize(("packets", "held"), [(1, 1 << 20), (3, 1 << 20), (4096, 1),
                                               (5, 100)])
@pytest.mark.parametrize("name", MONITORED)
def test_small_blocks(monkeypatch: pytest.MonkeyPatch, name: str, packets: int,
                      held: int) -> None:
    """The reader releases what it holds every few packets, or every few bytes."""
    monkeypatch.setattr(shark.extract.reader, "BLOCK_PACKETS", packets, raising=False)
    monkeypatch.setattr(shark.extract.reader, "HOLD_BYTES", held, raising=False)
    assert_equivalent(source(name))


@pytest.mark.parametrize("block_bytes", [1, 2000])
@pytest.mark.parametrize("name", MONITORED)
def test_blocks_of_few_bytes(name: str, block_bytes: int) -> None:
    """Blocks bounded in bytes (``read(..., block_bytes=)``) give the same records."""
    assert_same_records(source(name), block_bytes=block_bytes)


def test_max_payload() -> None:
    """Updates larger than max_payload are errors, both ways."""
    built, _ = assert_equivalent(source("ca_big_arrays.pcap"), max_payload=100_000)
    assert len(built.tables["errors"])


@pytest.mark.parametrize("name", [MONITORED[0], MONITORED[-1]])
def test_open_and_export_take_updates_in_bulk(monkeypatch: pytest.MonkeyPatch, name: str,
                                              tmp_path: Path) -> None:
    """``shark.open`` and ``shark export`` read in bulk, and give the plain tables."""
    asked: list[bool] = []

    def spy(*args: Any, **kw: Any) -> Any:
        asked.append(kw.get("bulk", False))
        return read(*args, **kw)

    monkeypatch.setattr(shark.tables.builder, "read", spy)  # (TableBuilder.read's)
    path = source(name)
    plain = tables(path, bulk=False).tables
    cap = shark.open(path)
    assert_same_frames({table: cap.table(table) for table in TABLES}, plain)
    assert main(["export", str(path), "-o", str(tmp_path / "tables")]) == 0
    assert_same_frames({table: pd.read_parquet(tmp_path / "tables" / f"{table}.parquet")
                        for table in TABLES}, plain, check_categorical=False)
    assert asked == [True, True]


# -- damaged captures ------------------------------------------------------------------


class Case(NamedTuple):
    source: Path
    kw: dict[str, Any]
    #: The bulk read must still give batches (when released in small blocks: a held
    #: stretch with bytes that do not frame as CA is all expanded).
    batches: bool


def update_frames(path: Path) -> list[int]:
    """The frames that complete monitor updates, in order."""
    return sorted({r.frame for r in shark.read(path) if type(r.message) is m.EventAddResponse})


def reordered(path: Path, tmp_path: Path, **damage: int) -> Case:
    """The capture damaged by :func:`shuffle`."""
    frames, linktype = real_frames(path)
    order = shuffle(len(frames), update_frames(path), **damage)
    assert len(order) != len(frames) or order != sorted(order)
    return Case(write(tmp_path, [frames[n - 1] for n in order], linktype), {}, True)


def shuffle(frames: int, updates: list[int], drop: int = 0, swap: int = 0,
            repeat: int = 0) -> list[int]:
    """Frames 1 to ``frames`` with, in the middle third of the updates, every ``drop``th
    update frame lost, every ``swap``th swapped with the next, every ``repeat``th
    captured twice."""
    middle = updates[len(updates) // 3 : 2 * len(updates) // 3]
    lost = set(middle[::drop]) if drop else set()
    swapped = {n: middle[i + 1] for i, n in enumerate(middle[:-1]) if swap and i % swap == 0
               and middle[i + 1] not in lost and n not in lost}
    swapped.update({after: n for n, after in list(swapped.items())})
    twice = set(middle[::repeat]) if repeat else set()
    order: list[int] = []
    for n in range(1, frames + 1):
        if n not in lost:
            order += [swapped.get(n, n)] * (2 if n in twice else 1)
    return order


#: Bytes no server sent, put among the updates.
GARBAGE = {
    "noise": random.Random(7).randbytes(53),
    "ones": b"\xff" * 24,
    "zeros": bytes(20),  # a VERSION header, and 4 bytes
    "huge": struct.pack("!HHHHIIII", 1, 0xFFFF, 6, 0, 1, 1, 0x7FFFFFF0, 1),  # extended
    "unknown command": struct.pack("!HHHHII", 0x7777, 8, 0, 0, 0, 0) + bytes(8),
    "unknown subscription": struct.pack("!HHHHII", 1, 8, 6, 1, 1, 0xDEAD) + bytes(8),
}


def overwritten(path: Path, tmp_path: Path, garbage: bytes) -> Case:
    """The update packet in the middle of the capture with garbage over part of its
    payload (lengths unchanged)."""
    frames, linktype = real_frames(path)
    updates = update_frames(path)
    n = updates[len(updates) // 2]
    time, data = frames[n - 1]
    payload = bytearray(data)
    size = tcp_payload_size(data, linktype)
    at = len(data) - size + size // 3
    payload[at : at + len(garbage)] = garbage[: len(data) - at]
    frames[n - 1] = (time, bytes(payload))
    return Case(write(tmp_path, frames, linktype), {}, True)


class Raw:
    """Bytes a side sent, standing for a record in :func:`builders.connection`."""

    def __init__(self, sender: Role, data: bytes) -> None:
        self.sender = sender
        self.message = self
        self.data = data

    def to_bytes(self) -> bytes:
        return self.data


def resegmented(path: Path, tmp_path: Path, pattern: tuple[int, ...] = (),
                garbage: bytes = b"") -> Case:
    """The circuit with the most updates alone, with ``garbage`` among the updates
    halfway, its server's stream cut into segments of sizes cycling through ``pattern``
    (without: a message a segment). No segment runs past a message the client sent
    next, so no reply comes before its request."""
    full = list(shark.read(path))
    circuit = max({r.circuit for r in full}, key=lambda c: sum(
        r.circuit == c and type(r.message) is m.EventAddResponse for r in full))
    kept = [r for r in full if r.circuit == circuit]
    raws = [Raw(r.sender, r.message.to_bytes()) for r in kept]
    if garbage:
        updates = [i for i, r in enumerate(kept) if type(r.message) is m.EventAddResponse]
        raws.insert(updates[len(updates) // 2], Raw(Role.SERVER, garbage))
    runs: list[list[bytes]] = [[]]  # what the server sent between two client messages
    for raw in raws:
        if raw.sender == Role.CLIENT:
            runs.append([])
        else:
            runs[-1].append(raw.data)
    server = [size for run in runs for size in (
        [len(piece) for _, piece in chunked(b"".join(run), pattern)] if pattern
        else split_points(run, ()))]
    client = split_points([r.data for r in raws if r.sender == Role.CLIENT], ())
    segments = connection(raws, client, server)  # type: ignore[arg-type]
    frames: Frames = [(f.time_ns, bytes(f.data)) for f in tcp_frames(segments)]
    return Case(write(tmp_path, frames, LinkType.IPV4), {}, True)


def cut_mid_updates(path: Path, tmp_path: Path) -> Case:
    """Captured from the middle of the updates on: their subscriptions are unknown."""
    frames, linktype = real_frames(path)
    updates = update_frames(path)
    return Case(write(tmp_path, frames[updates[len(updates) // 2] - 1 :], linktype), {},
                False)


Damage = Callable[[Path, Path], Case]
DAMAGES: dict[str, Damage] = {
    "cut mid updates": cut_mid_updates,
    "lost": lambda p, t: reordered(p, t, drop=5),
    "swapped": lambda p, t: reordered(p, t, swap=3),
    "repeated": lambda p, t: reordered(p, t, repeat=4),
    "lost swapped repeated": lambda p, t: reordered(p, t, drop=7, swap=5, repeat=3),
    **{f"overwritten {k}": lambda p, t, g=g: overwritten(p, t, g) for k, g in GARBAGE.items()},
    "a message a segment": resegmented,
    "odd segments": lambda p, t: resegmented(p, t, (1, 5, 64, 3, 700, 2, 41)),
    "large segments": lambda p, t: resegmented(p, t, (300, 1400, 9000)),
    **{f"inserted {k}": lambda p, t, g=g: resegmented(p, t, (200, 33, 90), g)
       for k, g in GARBAGE.items()},
}


@pytest.mark.parametrize("blocks", [None, 16])
@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("name", MONITORED)
def test_damaged_captures(monkeypatch: pytest.MonkeyPatch, name: str, damage: str,
                          blocks: int | None, tmp_path: Path) -> None:
    """Read as they are, and with the held packets released every 16 packets."""
    case = DAMAGES[damage](source(name), tmp_path)
    if blocks:
        monkeypatch.setattr(shark.extract.reader, "BLOCK_PACKETS", blocks, raising=False)
    built, seen = assert_equivalent(case.source, **case.kw)
    assert built.error is None
    if blocks and case.batches:
        assert seen.batches > 0


def test_cut_mid_circuit_with_a_port(tmp_path: Path) -> None:
    """ca_many_channels_500 cut after most CREATE_CHAN requests, read with the server's
    port given (as in test_midstream.py)."""
    path = capture("ca_many_channels_500.pcap")
    full = list(shark.read(path))
    cut = sorted({r.frame for r in full if type(r.message) is m.CreateChanRequest})[-2] + 1
    port = int(next(r.dst for r in full if r.circuit and r.sender == Role.CLIENT)
               .rpartition(":")[2])
    frames, linktype = real_frames(path)
    assert_equivalent(write(tmp_path, frames[cut - 1 :], linktype), ports=[port])


# -- truncated files -------------------------------------------------------------------


@pytest.mark.parametrize("inside", ["record header", "packet data"])
@pytest.mark.parametrize("at", [0.3, 0.6, 0.95])
@pytest.mark.parametrize("name", MONITORED)
def test_truncated_inside_an_update_packet(name: str, at: float, inside: str,
                                           tmp_path: Path) -> None:
    """A CaptureError ends both reads after the same tables and records."""
    path = source(name)
    frames, linktype = real_frames(path)
    updates = update_frames(path)
    n = updates[int(len(updates) * at)]
    start = 24 + sum(16 + len(data) for _, data in frames[: n - 1])
    cut = start + (8 if inside == "record header" else 16 + len(frames[n - 1][1]) // 2)
    cut_path = tmp_path / "truncated.pcap"
    cut_path.write_bytes(pcap_bytes(frames, linktype, nanoseconds=True)[:cut])
    built, seen = assert_equivalent(cut_path)
    assert built.error is not None and seen.batches > 0
    assert max(r[1] for r in seen.records) < n


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("name", MONITORED)
def test_truncated_files(name: str, stream: bool, tmp_path: Path) -> None:
    """The original file (pcap or pcapng) cut at offsets spread over it."""
    data = source(name).read_bytes()
    for k in range(1, 8):
        cut = data[: len(data) * k // 8 + 5]
        if stream:
            assert_equivalent(cut)
        else:
            cut_path = tmp_path / f"truncated{k}"
            cut_path.write_bytes(cut)
            assert_equivalent(cut_path)


def test_packets_with_first_updates_are_split(tmp_path: Path) -> None:
    """A packet that holds subscriptions' first updates (each answers its EVENT_ADD and
    is a record) and later ones: the later ones still come in a batch, of that frame."""
    case = resegmented(source("softioc_pyepics_monitors.pcap"), tmp_path, (9000,))
    seen = assert_same_records(case.source)
    assert seen.batches
    items = list(read(case.source, bulk=True))
    batched = {item.frame for item in items if item.kind == UPDATES}
    first_updates = {item.frame for item in items if item.kind != UPDATES
                     and type(item.message) is m.EventAddResponse}
    assert batched & first_updates
    assert_same_tables(case.source)


def test_placed_puts_what_stands_for_each_batch_in_its_place() -> None:
    """:func:`shark.extract.bulk.placed`, given where the batches are: each one expanded
    gives way to what stands for it (nothing, for an empty list), wherever it is (first,
    last, next to another); the others and the records around stay, in order."""

    class Batch:
        def __init__(self, expanded: list[str] | None) -> None:
            self.expanded = expanded

    kept = Batch(None)
    cases = [
        ([], [], []),
        (["a", "b"], [], ["a", "b"]),
        ([kept], [0], [kept]),
        ([Batch(["x", "y"])], [0], ["x", "y"]),
        ([Batch([])], [0], []),
        ([Batch(["x"]), "a", Batch(["y"])], [0, 2], ["x", "a", "y"]),
        (["a", Batch(["x"]), Batch([]), kept, Batch(["y", "z"]), "b"], [1, 2, 3, 4],
         ["a", "x", kept, "y", "z", "b"]),
    ]
    for items, at, expected in cases:
        before = list(items)
        out = placed(items, at)
        assert out == expected
        assert out is not items and items == before  # (a new list: the reader empties its own)

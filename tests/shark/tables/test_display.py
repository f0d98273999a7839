"""The ``display`` of values, column at a time (Chunk.display, shark.tables.display),
against the record path's judge (decoder.display through shark.output.text.shown), and
what channels learn of it from monitor updates taken in bulk."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from builders import CAPTURES, OWN_CAPTURES, conversation
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from decoder import DBRType, DBRValue, DecodeError
from decoder import messages as m
from shark.analysis.attribution import read
from shark.extract.bulk import UPDATES
from shark.output.text import shown
from shark.tables.chunk import Chunk, Vocabularies
from shark.tables.display import fixed, integers, shortest

EVERY_CAPTURE = sorted(OWN_CAPTURES.glob("*.pcap")) + sorted(
    p for p in CAPTURES.glob("*") if p.suffix in (".pcap", ".pcapng"))
ECA_NORMAL = 1


# -- numbers as Python writes them ------------------------------------------------------

EDGES = [0.0, -0.0, 0.5, 1.5, 2.5, -2.5, 2.675, 1.005, 0.125, 0.375, -0.001, 0.045,
         1e-4, 9.999e-5, 1e-5, 1e10, 9999999999.5, 1e15, 1e16, 4503599627370495.5,
         123456789012.5, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308,
         math.nan, math.inf, -math.inf, 61.225299458304725, 0.1, 0.3, 1 / 3]
floats = arrays(np.float64, st.integers(0, 60), elements=st.floats(width=64))
#: Values near the ones a display shows: decimals of a few places, halves.
decimal_floats = arrays(np.float64, st.integers(0, 60), elements=st.one_of(
    st.integers(-10**9, 10**9).map(lambda i: i / 1000),
    st.integers(-10**6, 10**6).map(lambda i: i / 8),
    st.floats(-1e6, 1e6)))


@pytest.mark.parametrize("precision", range(18))
def test_fixed_edges(precision: int) -> None:
    assert fixed(np.array(EDGES), precision).to_pylist() == [
        f"{v:.{precision}f}" for v in EDGES]


@settings(max_examples=150, deadline=None)
@given(floats | decimal_floats, st.integers(0, 17))
def test_fixed_is_python_formatting(values: np.ndarray, precision: int) -> None:
    assert fixed(values, precision).to_pylist() == [
        f"{v:.{precision}f}" for v in values.tolist()]


@settings(max_examples=150, deadline=None)
@given(floats | decimal_floats)
def test_shortest_is_repr(values: np.ndarray) -> None:
    assert shortest(values).to_pylist() == [repr(v) for v in values.tolist()]


def test_shortest_edges() -> None:
    assert shortest(np.array(EDGES)).to_pylist() == [repr(v) for v in EDGES]
    float32 = np.float32([0.1, 3.4028235e38, 1e-40, 85.5]).astype(np.float64)
    assert shortest(float32).to_pylist() == [repr(v) for v in float32.tolist()]


@settings(max_examples=100, deadline=None)
@given(arrays(np.int64, st.integers(0, 60), elements=st.integers(-2**31, 2**32)))
def test_integers_are_str(values: np.ndarray) -> None:
    assert integers(values.astype(np.float64)).to_pylist() == [str(v) for v in values.tolist()]


# -- Chunk.display agrees with the record path ------------------------------------------------


def record_shown(chunk: Chunk) -> list[str | None]:
    """Per row of ``chunk``, the value as the record path shows it (None: no value): with
    what the channel knew when the value came (``record.reading``)."""
    out: list[str | None] = []
    for row in range(chunk.size):
        record = chunk.records[row]
        try:
            value = (shown(record.message.data, record.reading)
                     if isinstance(record.message, m._DataPayload) else None)
        except DecodeError:
            value = None
        out.append(value)
    return out


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "records"])
@pytest.mark.parametrize("path", EVERY_CAPTURE, ids=lambda p: p.name)
def test_display_agrees_with_the_record_path(path: Path, bulk: bool) -> None:
    chunk = Chunk(list(read(path, lifecycle=True, bulk=bulk)), Vocabularies())
    display = chunk.display
    assert len(display) == chunk.size and str(display.type) == "large_string"
    expected = record_shown(chunk)
    assert display.to_pylist() == expected
    assert any(v is not None for v in expected) or "unanswered" in path.name


def test_display_has_the_prec_and_states_the_capture_carried() -> None:
    chunk = Chunk(list(read(OWN_CAPTURES / "softioc_pyepics_basic.pcap", lifecycle=True,
                            bulk=True)), Vocabularies())
    shown_by_pv: dict[tuple[str, str], set[str]] = {}
    for row, text in enumerate(chunk.display.to_pylist()):
        if text is not None:
            record = chunk.records[row]
            shown_by_pv.setdefault((record.pv, record.message.data_type_name), set()).add(text)
    assert shown_by_pv["DEMO:BASIC:TEMP", "DBR_CTRL_DOUBLE"] == {"85.50"}  # PREC 2
    assert shown_by_pv["DEMO:BASIC:STATE", "DBR_CTRL_ENUM"] == {"Running"}
    # Read before the channel's state strings came (its CTRL_ENUM read is later): the
    # index, as every view shows it, whatever the capture tells afterwards.
    assert shown_by_pv["DEMO:BASIC:STATE", "DBR_ENUM"] == {"1"}
    assert "hello shark" in shown_by_pv["DEMO:BASIC:LABEL", "DBR_STRING"]
    assert "3" in shown_by_pv["DEMO:BASIC:MODE", "DBR_LONG"]
    assert "[0.0, 0.5, 1.0, 1.5, ...] (10)" in shown_by_pv["DEMO:BASIC:WAVE", "DBR_DOUBLE"]
    assert not np.isnan(chunk.values.value[chunk.values.has_value]).any()  # raw values stay


# -- learning from updates in bulk ------------------------------------------------------------


def monitored(precisions: list[int], per_packet: int = 10) -> bytes:
    """A capture of one channel monitored as DBR_CTRL_DOUBLE whose updates carry the
    given precisions, ``per_packet`` updates a packet."""
    create = m.CreateChanRequest(name="DEMO:PREC", cid=1).to_bytes()
    replies = (m.AccessRightsResponse(cid=1, access_rights=3).to_bytes()
               + m.CreateChanResponse(data_type=DBRType.DOUBLE, data_count=1, cid=1,
                                      sid=7).to_bytes())
    subscribe = m.EventAddRequest(data_type=DBRType.CTRL_DOUBLE, data_count=1, sid=7,
                                  subscriptionid=1, mask=1).to_bytes()
    updates = [m.EventAddResponse(
        data_type=DBRType.CTRL_DOUBLE, status=ECA_NORMAL, subscriptionid=1,
        data=DBRValue(DBRType.CTRL_DOUBLE, [i + 0.123456], precision=p)).to_bytes()
        for i, p in enumerate(precisions)]
    pieces = [(True, create), (False, replies), (True, subscribe)] + [
        (False, b"".join(updates[i : i + per_packet]))
        for i in range(0, len(updates), per_packet)]
    return conversation(pieces, closed=True)


def test_updates_in_bulk_teach_their_channel() -> None:
    """A precision that changes in the middle of updates taken in bulk: the channel
    ends with the last one, as the record path's channel does."""
    capture = monitored([2] * 45 + [5] * 15)
    items = list(read(io.BytesIO(capture), lifecycle=True, bulk=True))
    batches = [item for item in items if item.kind is UPDATES]
    assert batches and sum(map(len, batches)) > 50  # most updates came in bulk
    channel = batches[0].run.subscriptions[0].channel
    assert channel.name == "DEMO:PREC" and channel.precision == 5
    records = [r for r in read(io.BytesIO(capture), lifecycle=True) if r.channel is not None]
    assert records[-1].channel.precision == 5
    display = [v for v in Chunk(items, Vocabularies()).display.to_pylist() if v is not None]
    assert display[-1] == "59.12346" and len(display) == 60


def test_updates_in_bulk_teach_only_from_their_last() -> None:
    capture = monitored([3] * 30 + [1] * 29 + [4])
    items = list(read(io.BytesIO(capture), lifecycle=True, bulk=True))
    channel = next(i for i in items if i.kind is UPDATES).run.subscriptions[0].channel
    assert channel.precision == 4

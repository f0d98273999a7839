"""The table builder: what it keeps while a capture goes through it."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from builders import conversation

import shark
from decoder import DBRType
from decoder import messages as m
from decoder.circuit import MAX_ANOMALIES, Anomaly, Channel
from shark.tables.stream import MessageStream

CHANNELS = 200
#: Replies to nothing, per channel: an anomaly each (more of them, all told, than a
#: circuit keeps: :data:`decoder.circuit.MAX_ANOMALIES`).
STRAYS = 6


def churn(path: Path) -> Path:
    """A capture of one circuit whose client creates, subscribes to, writes and clears
    channel after channel (half of them cancel their subscription first), and whose
    server answers a few clears never asked for."""
    pieces = [(True, m.VersionRequest(priority=0, version=13).to_bytes()),
              (False, m.VersionResponse(version=13).to_bytes())]
    for n in range(CHANNELS):
        cid, sid = n, 5000 + n
        pieces += [
            (True, m.CreateChanRequest(name=f"CHURN:{n}", cid=cid).to_bytes()),
            (False, m.AccessRightsResponse(cid=cid, access_rights=3).to_bytes()
             + m.CreateChanResponse(data_type=DBRType.DOUBLE, data_count=1, cid=cid,
                                    sid=sid).to_bytes()),
            (True, m.EventAddRequest(data_type=DBRType.DOUBLE, data_count=1, sid=sid,
                                     subscriptionid=n, mask=1).to_bytes()
             + m.WriteRequest(data_type=DBRType.DOUBLE, sid=sid, ioid=n, data=[n]).to_bytes()),
            (False, m.EventAddResponse(data_type=DBRType.DOUBLE, status=1, subscriptionid=n,
                                       data=[n]).to_bytes()),
        ]
        if n % 2:
            pieces += [
                (True, m.EventCancelRequest(data_type=DBRType.DOUBLE, data_count=1, sid=sid,
                                            subscriptionid=n).to_bytes()),
                (False, m.EventCancelResponse(data_type=DBRType.DOUBLE, data_count=1, sid=sid,
                                              subscriptionid=n).to_bytes())]
        pieces += [(True, m.ClearChannelRequest(sid=sid, cid=cid).to_bytes()),
                   (False, m.ClearChannelResponse(sid=sid, cid=cid).to_bytes()
                    + STRAYS * m.ClearChannelResponse(sid=99999, cid=cid).to_bytes())]
    path.write_bytes(conversation(pieces))
    return path


def _churned() -> int:
    return sum(1 for o in gc.get_objects()
               if type(o) is Channel and isinstance(o.name, str) and o.name.startswith("CHURN:"))


def _anomalies() -> int:
    return sum(1 for o in gc.get_objects() if type(o) is Anomaly)


@pytest.mark.parametrize("way", ["table", "stream"])
def test_cleared_channels_go_as_the_capture_is_read(tmp_path: Path, way: str) -> None:
    # A channel cleared leaves nothing in a reference cycle, neither in the session's
    # circuit nor through the records the builder read itself: memory does not pile
    # up until (if ever) Python's cycle collector looks, on a capture that creates and
    # clears channels for hours. The circuit is still open at the end of the capture.
    # Nor do anomalies: the circuit keeps the latest only.
    path = churn(tmp_path / "churn.pcap")
    assert CHANNELS * STRAYS > MAX_ANOMALIES
    gc.collect()
    anomalies = _anomalies()
    gc.disable()
    try:
        if way == "table":
            table = shark.open(path, tables=["messages"]).table("messages")
            assert (table.command == "CLEAR_CHANNEL").sum() == (2 + STRAYS) * CHANNELS
            assert table.anomaly.notna().sum() == STRAYS * CHANNELS
            assert table.pv.notna().sum() == len(table) - 2 - STRAYS * CHANNELS
        else:
            rows = sum(batch.num_rows for batch in MessageStream.of_capture(path))
            assert rows == 2 + CHANNELS * (8 + STRAYS) + CHANNELS // 2 * 2
        assert _churned() == 0
        assert _anomalies() - anomalies <= MAX_ANOMALIES
    finally:
        gc.enable()


def test_records_given_to_the_builder_keep_their_channels(tmp_path: Path) -> None:
    # Records the builder did not read itself may be someone else's (the viewer keeps
    # its own): they stay as they were.
    path = churn(tmp_path / "churn.pcap")
    records = list(shark.read(path))
    stream = MessageStream((), lifecycle=True)
    assert sum(batch.num_rows for batch in stream.take(records)) == len(records)
    created = [r for r in records if r.command_name == "CREATE_CHAN"]
    assert len(created) == 2 * CHANNELS
    assert all(r.channel is not None and r.channel.name == r.pv for r in created)
    assert sum(r.anomaly is not None for r in records) == STRAYS * CHANNELS


def test_a_read_leaves_the_collector_as_it_found_it(tmp_path: Path) -> None:
    # While the builder reads a capture of its own, the collector looks at young
    # objects seldom; at the end those still alive move to the oldest generation
    # unlooked at (no young collection over all of them when the thresholds come back),
    # and the thresholds are as they were. Objects someone froze stay frozen.
    path = churn(tmp_path / "churn.pcap")
    thresholds = gc.get_threshold()
    assert len(shark.open(path, tables=["messages"]).table("messages")) > CHANNELS
    assert gc.get_threshold() == thresholds
    kept = [object() for _ in range(3)]  # (ours, frozen below)
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert len(shark.open(path, tables=["messages"]).table("messages")) > CHANNELS
        assert gc.get_freeze_count() >= frozen and gc.get_threshold() == thresholds
    finally:
        gc.unfreeze()
    del kept

"""The replay server answers bare requests as a CA server must, and serves metadata as the
capture showed it.

A capture of softioc serving the conformance checks' ``ival`` and ``aval`` (made once
for the module, in the private network namespace) is replayed in process, and every
check of ``tests/helpers/ca_conformance.py`` runs against the replay, as against our
server and RSRV in ``tests/shark/peers/test_conformance.py``. Then the metadata: a
GR/CTRL read of a type the capture has a reply of gets that reply's fields, others are
converted from the best one (NaN limits stay NaN), from captures of the project.
"""

from __future__ import annotations

import asyncio
import math
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ca_conformance as conformance
import peers
import pytest
from builders import CAPTURES
from ca_conformance import Target, clear_channel, expect, open_channel

from decoder import ECA
from decoder import messages as m
from decoder.dbr import DBRType, DBRValue
from shark.peers.convert import LIMITS
from shark.replay import load, serve

FAMILIES = CAPTURES / "ca_dbr_families.pcapng"
PUTS = CAPTURES / "ca_put_callback_and_errors.pcapng"
ALARM_LIMITS = [name for name in LIMITS if "alarm" in name or "warning" in name]


@pytest.fixture(scope="module")
def conformance_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """softioc serving ``ival`` and ``aval``, read once by a raw client, captured."""
    reason = peers.peers_missing() or peers.capture_missing()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("conformance-capture")
    pcap = work / "conformance.pcap"
    records = [{"name": conformance.IVAL, "type": "longout", "db": True,
                "fields": {"VAL": 42}},
               {"name": conformance.AVAL, "type": "waveform", "db": True,
                "fields": {"FTVL": "SHORT", "NELM": 5}}]
    result = peers.run_scenario(
        records, [sys.executable, conformance.__file__, "capture-client"], work, pcap=pcap,
        client_timeout=30, timeout=60)
    assert result["ok"], result["errors"]
    return pcap


@contextmanager
def replaying(pcap: Path) -> Iterator[Target]:
    """The capture's server replayed on free loopback ports, in a thread of its own."""
    (replay,) = serve(load(pcap), beacon_address=None)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(replay.start(), loop).result(5)
    try:
        yield Target(replay.server.udp_port, replay.server.tcp_port)
    finally:
        asyncio.run_coroutine_threadsafe(replay.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.mark.parametrize("name", list(conformance.ALL))
def test_the_replay_behaves(conformance_capture: Path, name: str) -> None:
    with replaying(conformance_capture) as target:
        conformance.ALL[name](target)


def _read(target: Target, name: str, native: int, count: int, data_type: int) -> DBRValue:
    wire, sid = open_channel(target, name, native, count)
    wire.send(m.ReadNotifyRequest(data_type=data_type, data_count=1, sid=sid, ioid=1))
    reply = expect(wire.recv(), m.ReadNotifyResponse, status=ECA.ECA_NORMAL, ioid=1)
    clear_channel(wire, sid)
    return reply.data


def _display(data: DBRValue) -> dict[str, object]:
    return {k: v for k, v in data.metadata().items() if k in ("units", "precision", *LIMITS)}


def test_the_replay_serves_metadata_as_captured_or_converted(conformance_capture: Path
                                                            ) -> None:
    recorded = load(conformance_capture)
    (server,) = recorded.servers.values()
    captured = {s.data.dbr_type: s.data for s in server.pvs[conformance.IVAL].samples}
    assert set(conformance.CAPTURED_READS) - {DBRType.CLASS_NAME} <= set(captured)
    with replaying(conformance_capture) as target:
        def ival(data_type: int) -> DBRValue:
            return _read(target, conformance.IVAL, DBRType.LONG, 1, data_type)

        for data_type in (DBRType.GR_LONG, DBRType.CTRL_DOUBLE):  # as captured
            assert _display(ival(data_type)) == pytest.approx(
                _display(captured[data_type]), nan_ok=True)
        # Not captured: converted from the CTRL_DOUBLE reply, NaN limits and all.
        ctrl = _display(captured[DBRType.CTRL_DOUBLE])
        gr_float = _display(ival(DBRType.GR_FLOAT))
        assert gr_float == pytest.approx({k: v for k, v in ctrl.items()
                                          if "ctrl" not in k}, nan_ok=True)
        assert ival(DBRType.CLASS_NAME).value == "longout"
        # No metadata captured: an IOC's defaults, NaN alarm and warning limits.
        aval = _read(target, conformance.AVAL, DBRType.SHORT, 5, DBRType.GR_DOUBLE)
        assert all(math.isnan(getattr(aval, name)) for name in ALARM_LIMITS)


def test_metadata_is_taken_from_the_reply_that_tells_it_best() -> None:
    if not FAMILIES.exists():
        pytest.skip(f"{FAMILIES} missing")
    pvs = {pv.name: pv for server in load(FAMILIES).servers.values()
           for pv in server.pvs.values()}
    steps = pvs["DEMO:DBR:STEPS"]  # a LONG read as GR_LONG, CTRL_LONG, CTRL_DOUBLE
    assert steps.metadata_from == "DBR_CTRL_DOUBLE"
    assert math.isnan(steps.metadata["upper_alarm_limit"])
    assert steps.metadata["upper_warning_limit"] == 150000.0
    assert steps.metadata_by_type[DBRType.GR_LONG]["upper_alarm_limit"] == 0
    # A SHORT waveform read only in integer types: its 0 alarm limits are the IOC's NaN.
    counts = pvs["DEMO:DBR:COUNTS"]
    assert counts.metadata_from == "DBR_CTRL_SHORT"
    assert all(math.isnan(counts.metadata[name]) for name in ALARM_LIMITS)
    assert counts.metadata["upper_ctrl_limit"] == 0.0
    assert pvs["DEMO:DBR:VOLTAGE"].metadata["record_type"] == "ai"


def test_an_alarm_acknowledgement_is_no_value() -> None:
    """A DBR_PUT_ACKT write in a capture does not become a value of the timeline."""
    if not PUTS.exists():
        pytest.skip(f"{PUTS} missing")
    for server in load(PUTS).servers.values():
        for pv in server.pvs.values():
            kinds = {sample.data.dbr_type for sample in pv.samples}
            assert not kinds & {DBRType.PUT_ACKT, DBRType.PUT_ACKS, DBRType.CLASS_NAME}

"""``shark.epics``, pyepics' API on shark's client: its conversions, and one script run
through pyepics and through it against one softioc, giving the same results (times
aside; the script is ``tests/helpers/epics_compat.py``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time

import epics_compat
import numpy
import peers
import pytest

from decoder.dbr import DBRType, DBRValue
from shark import epics
from shark.peers.server import PV as ServerPV
from shark.peers.server import Server


@pytest.mark.parametrize(("dbr_type", "values", "nelm", "expected"), [
    (DBRType.TIME_DOUBLE, numpy.array([1.5], ">f8"), 1, 1.5),
    (DBRType.TIME_LONG, numpy.array([42], ">i4"), 1, 42),
    (DBRType.TIME_STRING, ["hello"], 1, "hello"),
    (DBRType.TIME_STRING, ["a", "b"], 2, ["a", "b"]),
    (DBRType.TIME_ENUM, numpy.array([2], ">u2"), 1, 2),
])
def test_values_are_unpacked_as_pyepics_gives_them(dbr_type: DBRType, values: object,
                                                   nelm: int, expected: object) -> None:
    got = epics._unpack(DBRValue(dbr_type, values), nelm)
    assert got == expected and type(got) is type(expected)


def test_arrays_are_numpy_in_the_native_dtype() -> None:
    got = epics._unpack(DBRValue(DBRType.SHORT, numpy.array([1, 2], ">i2")), 2)
    assert got.dtype == numpy.int16 and got.tolist() == [1, 2]
    chars = epics._unpack(DBRValue(DBRType.CHAR, numpy.array([97], "u1")), 32)
    assert chars.dtype == numpy.uint8 and chars.tolist() == [97]
    assert epics._unpack(DBRValue(DBRType.LONG, numpy.array([1, 2], ">i4")), 2,
                         as_numpy=False) == [1, 2]


def test_time_metadata_has_pyepics_names() -> None:
    value = DBRValue(DBRType.TIME_DOUBLE, [1.0], status=3, severity=2, seconds=10,
                     nanoseconds=123456789)
    meta = epics._metadata(value)
    assert meta == {"status": 3, "severity": 2, "posixseconds": 631152010,
                    "nanoseconds": 123456789, "timestamp": 631152010 + 0.123456}


def test_a_pv_nobody_serves_is_none_and_the_threads_are_daemons(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert epics.caget("SHARK:EPICS:NOBODY", connection_timeout=0.2) is None
    assert "cannot connect to SHARK:EPICS:NOBODY" in capsys.readouterr().out
    ours = [t for t in threading.enumerate() if t.name.startswith("shark.epics")]
    assert len(ours) == 2 and all(t.daemon for t in ours)
    epics._shutdown()
    assert not any(t.is_alive() for t in ours)


def test_one_script_through_pyepics_and_shark_epics(tmp_path) -> None:
    reason = peers.peers_missing()
    if reason:
        pytest.skip(reason)
    result = peers.run_scenario(
        epics_compat.RECORDS, [sys.executable, epics_compat.__file__], tmp_path,
        client_timeout=90)
    assert result["ok"], json.dumps(
        {k: result.get(k) for k in ("errors", "processes")}, indent=1)[-4000:]
    ran = result["client_result"]
    theirs, ours = ran["pyepics"], ran["shark"]
    assert theirs.keys() == ours.keys()
    differ = {label: {"pyepics": theirs[label], "shark": ours[label]}
              for label in theirs if theirs[label] != ours[label]}
    assert not differ, json.dumps(differ, indent=1)[-6000:]
    assert len(theirs["camonitor"]) == 3  # the three puts, none after the clear


def test_the_interpreter_leaves_with_pvs_still_searched_for() -> None:
    code = ("from shark import epics\n"
            "pv = epics.PV('SHARK:EPICS:NOBODY', callback=print)\n"
            "print(epics.caget('SHARK:EPICS:NOBODY:EITHER', connection_timeout=0.1))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=20)
    assert done.returncode == 0 and done.stdout.endswith("None\n"), done
    assert done.stderr == "", done.stderr


class ServerThread:
    """A shark server on a loop of its own thread (shark.epics blocks the test's)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: Server | None = None
        self.port = 0

    def run(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def start(self) -> None:
        async def start() -> None:
            pvs = [ServerPV("EPX:VAL", DBRType.DOUBLE, 1.5, precision=2, units="mm"),
                   ServerPV("EPX:MODE", DBRType.ENUM, 0, enum_strings=["Off", "On"])]
            self.server = Server(pvs, port=self.port, beacon_address=None)
            await self.server.start()
            self.port = self.server.udp_port

        self.run(start())

    def stop(self) -> None:
        assert self.server is not None
        self.run(self.server.stop())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_connection_callbacks_follow_the_server_away_and_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = ServerThread()
    try:
        server.port = peers.free_port()
        server.start()
        epics._shutdown()  # the next call starts a client on this environment
        monkeypatch.setenv("EPICS_CA_ADDR_LIST", f"127.0.0.1:{server.port}")
        events: list[tuple[str, object]] = []
        changed = threading.Event()

        def connection(pvname: str = "", conn: bool = False, **_: object) -> None:
            events.append(("conn", conn))
            changed.set()

        def update(value: object = None, char_value: str = "", **_: object) -> None:
            events.append(("value", char_value))

        pv = epics.PV("EPX:VAL", callback=update, connection_callback=connection)
        assert pv.wait_for_connection(5) and pv.get() == 1.5
        assert epics.caput("EPX:MODE", "On", wait=True) == 1
        assert epics.caget("EPX:MODE", as_string=True) == "On"
        changed.clear()
        before = len(events)
        server.stop()
        assert changed.wait(5)
        changed.clear()
        server.start()
        assert changed.wait(10)
        connections = [event for event in events[before:] if event[0] == "conn"]
        assert connections == [("conn", False), ("conn", True)], events
        assert epics.caput("EPX:VAL", 2.25, wait=True) == 1
        deadline = time.monotonic() + 5
        while ("value", "2.25") not in events and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ("value", "2.25") in events, events
        server.stop()
    finally:
        epics._shutdown()
        server.close()

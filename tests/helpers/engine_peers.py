"""Real peers around our asyncio engines (shark.peers.server, shark.peers.client).

What ``tests/shark/peers/test_engines.py`` shares with the scripts it runs in the
private network namespace: the softioc records (:data:`RECORDS`), our server's
stand-ins for them (:func:`engine_pvs`) and the exercise our client runs against either
(:func:`exercise`). Run as a script, this module is

* ``engine_peers.py softioc-client PARAMS``: our client against softioc, the client of
  ``peers.run_scenario``;
* ``engine_peers.py serve SPEC [--netns]``: our server, with pyepics against it
  (:mod:`pyepics_sessions`);
* ``engine_peers.py pyepics-client PARAMS``: that pyepics client.

Everything is pinned to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import peers
from pyepics_sessions import PyepicsClient, reads_with_metadata, script_main, session_ports

from decoder import ECA
from decoder.dbr import DBRType, DBRValue
from shark.peers.client import CAError, Client
from shark.peers.server import PV, Server

SCRIPT = Path(__file__).resolve()
LOOPBACK = peers.LOOPBACK
READABLE_TYPES = range(DBRType.CTRL_DOUBLE + 1)
STATES = ["Zero", "One", "Two"]

#: softioc records and, in :func:`engine_pvs`, the PVs our server serves in their place.
RECORDS: list[dict[str, Any]] = [
    {"name": "ENG:AO", "type": "ao", "value": 3.14159,
     "fields": {"EGU": "mm", "PREC": 3, "HOPR": 10, "LOPR": -10, "HIHI": 9, "HIGH": 8,
                "LOW": -8, "LOLO": -9, "HHSV": "MAJOR", "HSV": "MINOR", "LSV": "MINOR",
                "LLSV": "MAJOR", "DRVH": 9.5, "DRVL": -9.5}},
    {"name": "ENG:HALF", "type": "ao", "value": 0.125, "fields": {"PREC": 2}},
    {"name": "ENG:BIG", "type": "ao", "value": 123456789.5, "fields": {"PREC": 2}},
    {"name": "ENG:MBBO", "type": "mbbo", "value": 1, "options": STATES},
    {"name": "ENG:LO", "type": "longout", "value": 70000,
     "fields": {"EGU": "cts", "HOPR": 100, "LOPR": 1, "DRVH": 80000, "DRVL": -5}},
    {"name": "ENG:SO", "type": "stringout", "value": "12.5"},
    {"name": "ENG:WF", "type": "waveform_out", "value": [1.5, 2.5, -3.5], "nelm": 5,
     "ftvl": "DOUBLE"},
    {"name": "ENG:WFC", "type": "waveform", "value": [65, 66, 120], "nelm": 4, "ftvl": "CHAR"},
    {"name": "ENG:WFF", "type": "waveform", "value": [0.125, 2.5, 1e9], "nelm": 3,
     "ftvl": "FLOAT"},
]
NAMES = [r["name"] for r in RECORDS]


def engine_pvs() -> list[PV]:
    """Our server's stand-ins for :data:`RECORDS`, plus a read-only PV and a counter."""
    return [
        PV("ENG:AO", DBRType.DOUBLE, 3.14159, units="mm", precision=3, upper_disp_limit=10,
           lower_disp_limit=-10, upper_alarm_limit=9, upper_warning_limit=8,
           lower_warning_limit=-8, lower_alarm_limit=-9, upper_ctrl_limit=9.5,
           lower_ctrl_limit=-9.5),
        PV("ENG:HALF", DBRType.DOUBLE, 0.125, precision=2),
        PV("ENG:BIG", DBRType.DOUBLE, 123456789.5, precision=2),
        PV("ENG:MBBO", DBRType.ENUM, 1, enum_strings=STATES),
        PV("ENG:LO", DBRType.LONG, 70000, units="cts", upper_disp_limit=100,
           lower_disp_limit=1, upper_ctrl_limit=80000, lower_ctrl_limit=-5),
        PV("ENG:SO", DBRType.STRING, "12.5"),
        PV("ENG:WF", DBRType.DOUBLE, [1.5, 2.5, -3.5], count=5),
        PV("ENG:WFC", DBRType.CHAR, [65, 66, 120], count=4),
        PV("ENG:WFF", DBRType.FLOAT, [0.125, 2.5, 1e9], count=3),
        PV("ENG:RO", DBRType.LONG, 5, writable=False),
        PV("ENG:COUNTER", DBRType.LONG, 0),
    ]


def run(coro: Any, timeout: float = 20.0) -> Any:
    """Run a coroutine on a fresh event loop, bounded."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def comparable(value: DBRValue) -> dict[str, Any]:
    """A DBR value as JSON, without what differs between two servers by nature
    (the timestamp, the struct padding rsrv leaves uninitialised)."""
    meta = {k: v for k, v in value.metadata().items()
            if k not in ("seconds", "nanoseconds", "RISC_pad")}
    return peers.jsonable({"type": int(value.dbr_type), "values": list(value.values), **meta})


async def _outcome(action: Any) -> Any:
    try:
        result = await action
    except CAError as error:
        return f"error {ECA(error.status).name}"
    return comparable(result) if isinstance(result, DBRValue) else "ok"


async def exercise(client: Client) -> dict[str, Any]:
    """Everything our client does against a server with :data:`RECORDS`; the result
    must not depend on which server it is."""
    out: dict[str, Any] = {"reads": {}}
    for name in NAMES:
        out["reads"][name] = {t: await _outcome(client.read(name, t)) for t in READABLE_TYPES}
    out["padded"] = await _outcome(client.read("ENG:WF", DBRType.DOUBLE, count=5))
    writes = {
        "ao": ("ENG:AO", 1.25), "ao text": ("ENG:AO", "2.5"), "ao garbage": ("ENG:AO", "abc"),
        "mbbo state": ("ENG:MBBO", "Two"), "mbbo bad state": ("ENG:MBBO", "Nine"),
        "lo text": ("ENG:LO", "12.7"), "so number": ("ENG:SO", 7),
        "wf": ("ENG:WF", [4.0, 5.0, 6.0, 7.0]),
    }
    out["writes"] = {label: await _outcome(client.write(name, value))
                     for label, (name, value) in writes.items()}
    await client.write("ENG:LO", 42, notify=False)
    out["after"] = {name: [await _outcome(client.read(name, t)) for t in (0, 6)]
                    for name in ("ENG:AO", "ENG:MBBO", "ENG:LO", "ENG:SO", "ENG:WF")}
    sub = client.subscribe("ENG:AO", DBRType.TIME_DOUBLE)
    updates = [(await asyncio.wait_for(anext(sub), 5)).value]
    await client.write("ENG:AO", 3.0)
    updates.append((await asyncio.wait_for(anext(sub), 5)).value)
    await sub.cancel()
    out["updates"] = updates
    out["after cancel"] = [v.value async for v in sub]
    try:
        await client.read("ENG:NO-SUCH-PV", timeout=0.5)
        out["bad name"] = "found"
    except TimeoutError:
        out["bad name"] = "timeout"
    return out


# ------------------------------------------------------- scripts run inside the namespace


def _softioc_client_main(params_path: str) -> int:
    params = peers.load_client_params([params_path])
    port = params["port"]

    async def main() -> dict[str, Any]:
        async with Client([(LOOPBACK, port)], timeout=5) as client:
            return await exercise(client)

    peers.save_client_result(params, run(main(), timeout=35))
    return 0


async def _tick(server: Server) -> None:
    for n in range(1, 10_000):
        await asyncio.sleep(0.1)
        server.set("ENG:COUNTER", n)


async def _serve_pyepics(spec: dict[str, Any], netns: bool) -> dict[str, Any]:
    """Serve :func:`engine_pvs` while the pyepics client script runs against them."""
    port, repeater = session_ports(netns)
    out: dict[str, Any] = {"errors": [], "started": time.time()}
    async with Server(engine_pvs(), port=port, beacon_address=(LOOPBACK, repeater)) as server:
        ticker = asyncio.create_task(_tick(server))
        client = await PyepicsClient.start(SCRIPT, Path(spec["workdir"]), port, repeater)
        await client.finish(spec["client_timeout"], out)
        ticker.cancel()
        out["server_values"] = {name: pv.value for name, pv in server.pvs.items()}
    return out


def _pyepics_client_main(params_path: str) -> int:
    """pyepics against our server: caget in three forms, caput with wait, camonitor."""
    from epics import ca, dbr

    params = peers.load_client_params([params_path])
    names = [*NAMES, "ENG:RO", "ENG:COUNTER"]
    chids = {n: ca.create_channel(n, connect=False, auto_cb=False) for n in names}
    seen: dict[str, Any] = {
        "connected": {n: ca.connect_channel(c, timeout=5) for n, c in chids.items()}}
    seen["plain"] = {n: ca.get(c, timeout=5) for n, c in chids.items()}
    # DBR_STRING asked of the server, not pyepics' own formatting (as_string=True).
    seen["string"] = {n: ca.get(c, ftype=dbr.STRING, timeout=5) for n, c in chids.items()}
    seen.update(reads_with_metadata(chids, ("time", "ctrl")))
    seen["write_access"] = {n: bool(ca.write_access(c)) for n, c in chids.items()}
    seen["counter"], seen["ao_updates"] = [], []
    monitors = [  # keep the references: pyepics drops callbacks it no longer holds
        ca.create_subscription(chids["ENG:COUNTER"], use_time=True,
                               callback=lambda value=None, **_: seen["counter"].append(value)),
        ca.create_subscription(chids["ENG:AO"],
                               callback=lambda value=None, **_: seen["ao_updates"].append(value)),
    ]
    time.sleep(0.2)
    seen["put"] = ca.put(chids["ENG:AO"], 1.25, wait=True, timeout=5)
    seen["put_enum"] = ca.put(chids["ENG:MBBO"], 2, wait=True, timeout=5)
    seen["put_string"] = ca.put(chids["ENG:SO"], "hello", wait=True, timeout=5)
    seen["after_put"] = {n: ca.get(chids[n], ftype=dbr.STRING, timeout=5)
                         for n in ("ENG:AO", "ENG:MBBO", "ENG:SO")}
    time.sleep(0.8)
    # Subscriptions cleared before their callbacks go: libca's thread may call one
    # still (ENG:COUNTER ticks every 0.1 s), and calling a callback pyepics dropped
    # crashes the client (seen once: exit -11 between the last put and the result).
    for _callback, _user_callback, event in monitors:
        ca.clear_subscription(event)
    ca.poll()
    del monitors
    peers.save_client_result(params, seen)
    ca.finalize_libca()
    return 0


def main(argv: list[str]) -> int:
    return script_main(argv, {"softioc-client": _softioc_client_main,
                              "pyepics-client": _pyepics_client_main},
                       serve=_serve_pyepics, slack=10)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

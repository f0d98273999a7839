"""Real peers around ``shark replay``.

What ``tests/shark/replay/test_replay.py`` shares with the scripts it runs in the
private network namespace: the softioc records whose capture is replayed
(:data:`RECORDS`, :data:`CHANGED`) and ``shark`` run in process (:func:`cli`). Run as a
script, this module is

* ``replay_peers.py capture-client PARAMS``: pyepics against softioc serving
  :data:`RECORDS`, what the replay must redo (the client of ``peers.run_scenario``);
* ``replay_peers.py replay-client PARAMS``: ``shark replay CAPTURE --as-client``
  against the scenario's softioc;
* ``replay_peers.py serve SPEC [--netns]``: ``shark replay BASIC --as-server`` with
  pyepics and a sender of random bytes as its clients (:mod:`pyepics_sessions`);
* ``replay_peers.py pyepics-client PARAMS``: that pyepics client.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import json
import random
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import peers
from builders import OWN_CAPTURES, manifest
from pyepics_sessions import PyepicsClient, reads_with_metadata, script_main, session_ports

from shark.cli import main as shark_main

SCRIPT = Path(__file__).resolve()
BASIC = OWN_CAPTURES / "softioc_pyepics_basic.pcap"
LOOPBACK = peers.LOOPBACK

#: softioc records whose values change only when a client writes (a capture of them
#: replayed against a fresh IOC must give the same answers), and a counter that
#: changes on its own (its values can only be the same in timing).
RECORDS: list[dict[str, Any]] = [
    {"name": "RPL:TEMP", "type": "ai", "value": 21.5,
     "fields": {"EGU": "degC", "PREC": 1, "HOPR": 50, "LOPR": -10, "HIGH": 20, "HSV": "MINOR",
                "HIHI": 40, "HHSV": "MAJOR"}},
    {"name": "RPL:MODE", "type": "longout", "value": 3,
     "fields": {"EGU": "step", "DRVL": 0, "DRVH": 100}},
    {"name": "RPL:STATE", "type": "mbbo", "value": 1, "options": ["Idle", "Running", "Fault"]},
    {"name": "RPL:LABEL", "type": "stringout", "value": "hello replay"},
    {"name": "RPL:SETPOINT", "type": "ao", "value": 0.5, "fields": {"EGU": "mm", "PREC": 2}},
    {"name": "RPL:WAVE", "type": "waveform_out", "ftvl": "DOUBLE", "nelm": 5,
     "value": [1.0, 2.0, 3.0]},
    {"name": "RPL:TICK", "type": "calc", "db": True,
     "fields": {"SCAN": ".1 second", "CALC": "A+1", "INPA": "RPL:TICK"}},
]
NAMES = [record["name"] for record in RECORDS]
#: The deliberate change: another value and other units.
CHANGED = [{**RECORDS[0], "value": 22.5, "fields": {**RECORDS[0]["fields"], "EGU": "K"}},
           *RECORDS[1:]]


def basic_records() -> list[dict[str, Any]]:
    """The softioc records :data:`BASIC` was captured from (``captures/make_captures.py``)."""
    import importlib.util

    path = OWN_CAPTURES / "make_captures.py"
    spec = importlib.util.spec_from_file_location("make_captures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return copy.deepcopy(module.BASIC_RECORDS)


def cli(*argv: str) -> tuple[int, str, str]:
    """``shark ARGV`` in process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = shark_main(list(argv))
    return status, out.getvalue(), err.getvalue()


# ------------------------------------------------------- scripts run inside the namespace


def _capture_client_main(params_path: str) -> int:
    """pyepics against softioc serving :data:`RECORDS`: what the replay must redo."""
    from epics import ca

    params = peers.load_client_params([params_path])
    chids = {name: ca.create_channel(name, connect=False, auto_cb=False) for name in NAMES}
    seen: dict[str, Any] = {"connected": {n: ca.connect_channel(c, timeout=5)
                                          for n, c in chids.items()}}
    seen.update(reads_with_metadata(chids, ("plain", "time", "ctrl")))
    ca.put(chids["RPL:MODE"], 7, wait=False)
    seen["put_state"] = ca.put(chids["RPL:STATE"], 2, wait=True, timeout=5)
    seen["mode_after"] = ca.get(chids["RPL:MODE"], timeout=5)
    updates: list[Any] = []
    sub = ca.create_subscription(chids["RPL:SETPOINT"], use_time=True,
                                 callback=lambda value=None, **_: updates.append(value))
    ticks: list[Any] = []
    tick = ca.create_subscription(chids["RPL:TICK"], use_time=True,
                                  callback=lambda value=None, **_: ticks.append(value))
    time.sleep(0.2)
    for value in (1.25, 2.5):
        ca.put(chids["RPL:SETPOINT"], value, wait=True, timeout=5)
        time.sleep(0.2)
    ca.clear_subscription(tick[2])
    ca.clear_subscription(sub[2])
    ca.put(chids["RPL:WAVE"], [4.0, 5.0], wait=True, timeout=5)
    seen["wave_after"] = ca.get(chids["RPL:WAVE"], timeout=5)
    seen["updates"] = updates
    seen["ticks"] = ticks
    for chid in chids.values():
        ca.clear_channel(chid)
    ca.finalize_libca()
    peers.save_client_result(params, seen)
    return 0


def _replay_client_main(params_path: str) -> int:
    """``shark replay CAPTURE --as-client`` against the scenario's softioc."""
    params = peers.load_client_params([params_path])
    status, out, err = cli("replay", params["capture"], "--as-client", "--to",
                           f"{LOOPBACK}:{params['port']}", "--latency-slack", "2",
                           *params.get("options", []))
    peers.save_client_result(params, {"status": status, "stdout": out, "stderr": err})
    return 0


async def _garbage(port: int, stop: asyncio.Event) -> dict[str, int]:
    """Random bytes on fresh circuits and to the search port until ``stop``."""
    rng = random.Random(4321)
    out = {"circuits": 0, "closed": 0, "datagrams": 0}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        while not stop.is_set():
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
            writer.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))))
            writer.write_eof()
            out["circuits"] += 1
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                while await asyncio.wait_for(reader.read(65536), 3):
                    pass
                out["closed"] += 1
            writer.close()
            for _ in range(4):
                udp.sendto(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 100))),
                           (LOOPBACK, port))
                out["datagrams"] += 1
            await asyncio.sleep(0.05)
    return out


async def _serve_pyepics(spec: dict[str, Any], netns: bool) -> dict[str, Any]:
    """The replay server (the command line), pyepics and the garbage sender."""
    work = Path(spec["workdir"])
    port, repeater = session_ports(netns)
    out: dict[str, Any] = {"errors": []}
    # pyepics starts first and waits for the word: the replay's clock starts with the
    # server, and the reads must come before the captured writes however slow the
    # machine is to start Python.
    go_path = work / "go.json"
    client = await PyepicsClient.start(SCRIPT, work, port, repeater, go=str(go_path))
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shark", "replay", str(BASIC), "--as-server", "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    ready = b""
    try:
        assert server.stdout is not None
        ready = await asyncio.wait_for(server.stdout.readline(), 20)
        go_path.write_text(json.dumps({"started": time.time()}))
        stop = asyncio.Event()
        garbage = asyncio.create_task(_garbage(port, stop))
        await client.finish(spec["client_timeout"], out)
        stop.set()
        out["garbage"] = await garbage
    finally:
        if server.returncode is None:
            server.send_signal(signal.SIGTERM)
        await client.stop()
        rest, err = await asyncio.wait_for(server.communicate(), 10)
        out["server"] = {"returncode": server.returncode, "stderr": err.decode(),
                         "stdout": (ready + rest).decode()}
    return out


def _pyepics_client_main(params_path: str) -> int:
    """pyepics against the replay of BASIC: caget in three forms, camonitor, caput."""
    from epics import ca

    params = peers.load_client_params([params_path])
    ca.initialize_libca()
    go = Path(params["go"])
    deadline = time.time() + 25
    while not go.exists() and time.time() < deadline:
        time.sleep(0.01)
    started = json.loads(go.read_text())["started"]
    names = [pv["pv"] for pv in manifest(BASIC)["pvs"]]
    chids = {n: ca.create_channel(n, connect=False, auto_cb=False) for n in names}
    for chid in chids.values():
        ca.connect_channel(chid, timeout=5)
    seen: dict[str, Any] = {"native": {
        n: [ca.field_type(c), ca.element_count(c), bool(ca.write_access(c))]
        for n, c in chids.items()}}
    seen["counter"] = []
    monitor = ca.create_subscription(  # keep the reference: pyepics drops what it does not hold
        chids["DEMO:BASIC:COUNTER"], use_time=True,
        callback=lambda value=None, timestamp=None, **_: seen["counter"].append(
            (time.time() - started, value, timestamp)))
    seen["plain"] = {n: ca.get(c, timeout=5) for n, c in chids.items()}
    seen.update(reads_with_metadata(chids, ("time", "ctrl")))
    seen["read_before_s"] = time.time() - started
    seen["put"] = ca.put(chids["DEMO:BASIC:LABEL"], "replayed", wait=True, timeout=5)
    seen["label_after"] = ca.get(chids["DEMO:BASIC:LABEL"], timeout=5)
    deadline = time.time() + 8
    while time.time() < deadline and (not seen["counter"] or seen["counter"][-1][1] < 31):
        time.sleep(0.05)
    time.sleep(0.2)
    seen["end"] = {n: ca.get(chids[n], timeout=5)
                   for n in ("DEMO:BASIC:MODE", "DEMO:BASIC:ENABLE", "DEMO:BASIC:LABEL")}
    seen["special"] = _special_reads(ca, chids["DEMO:BASIC:TEMP"])
    ca.clear_subscription(monitor[2])  # (before its callback goes: see engine_peers)
    ca.poll()
    del monitor
    peers.save_client_result(params, seen)
    ca.finalize_libca()
    return 0


def _special_reads(ca: Any, chid: Any) -> dict[str, Any]:
    """A libca read of DBR_PUT_ACKT, which is only ever written: it fails, and must not
    cost the circuit: a plain read on the same circuit follows. (pyepics knows no
    DBR_CLASS_NAME or DBR_STSACK_STRING: the raw checks read those.)"""
    out: dict[str, Any] = {}
    for name, ftype in (("put_ackt", 35), ("after", None)):
        try:
            out[name] = ca.get(chid, ftype=ftype, timeout=2)
        except Exception as error:  # noqa: BLE001 - what went wrong is the result
            out[name] = f"{type(error).__name__}: {error}"
    out["connected"] = bool(ca.isConnected(chid))
    return out


def main(argv: list[str]) -> int:
    return script_main(argv, {"capture-client": _capture_client_main,
                              "replay-client": _replay_client_main,
                              "pyepics-client": _pyepics_client_main},
                       serve=_serve_pyepics, slack=15)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

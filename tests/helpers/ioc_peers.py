"""pyepics (libca) against ``shark serve``: the IOC file both sides know, and the scripts
``tests/shark/ioc/test_serve.py`` runs in the private network namespace.

Run as a script, this module is

* ``ioc_peers.py serve SPEC [--netns]``: ``shark serve`` on :data:`IOC_FILE` (a
  subprocess, placed by the EPICS variables alone), then the pyepics client against it
  (:mod:`pyepics_sessions`);
* ``ioc_peers.py pyepics-client PARAMS``: that client: caget of every PV in three forms,
  caput of every type, camonitor of every PV.

Everything is pinned to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import peers
from pyepics_sessions import PyepicsClient, reads_with_metadata, script_main, session_ports

SCRIPT = Path(__file__).resolve()
PREFIX = "IOCT:"
#: Every native type, scalars and arrays, with the metadata each can carry.
IOC_FILE = """\
prefix = "IOCT:"

[[pv]]
name = "DOUBLE"
type = "double"
value = 1.5
units = "mm"
precision = 3
display = { low = -50, high = 50 }
control = { low = -20, high = 40 }
alarm = { lolo = -15, low = -5, high = 30, hihi = 35 }

[[pv]]
name = "FLOAT"
type = "float"
value = 2.25
units = "V"
precision = 2

[[pv]]
name = "LONG"
type = "long"
value = 70000
units = "cts"
control = { low = 0, high = 100000, beyond = "refuse" }

[[pv]]
name = "SHORT"
type = "short"
value = -3
display = { low = -100, high = 100 }

[[pv]]
name = "CHAR"
type = "char"
value = 65

[[pv]]
name = "ENUM"
enum = ["Zero", "One", ["Two", "MAJOR"]]
value = "One"

[[pv]]
name = "STRING"
value = "hello"

[[pv]]
name = "WAVE"
type = "double"
count = 5
value = [1.5, 2.5, -3.5]

[[pv]]
name = "FLOATS"
type = "float"
count = 3
value = [0.5, 1.5, 2.5]

[[pv]]
name = "LONGS"
type = "long"
count = 4
value = [1, 2, 3, 4]

[[pv]]
name = "TEXT"
type = "char"
count = 80
value = "a text longer than the forty characters a CA string holds"

[[pv]]
name = "RO"
value = 5
writable = false

[[pv]]
name = "COUNTER"
type = "long"
scan = { kind = "counter", period = 0.1 }

[[pv]]
name = "RAMP"
type = "double"
value = 0.0
scan = { kind = "ramp", period = 0.1, stop = 1, step = 0.25 }
"""
NAMES = ["DOUBLE", "FLOAT", "LONG", "SHORT", "CHAR", "ENUM", "STRING", "WAVE", "FLOATS",
         "LONGS", "TEXT", "RO", "COUNTER", "RAMP"]
#: What the client writes (in order), and what each PV then holds.
PUTS: list[tuple[str, Any]] = [
    ("DOUBLE", 32.0), ("FLOAT", 3.5), ("LONG", 12345), ("SHORT", -7), ("CHAR", 66),
    ("ENUM", 2), ("STRING", "world"), ("WAVE", [4.0, 5.0, 6.0, 7.0]),
    ("FLOATS", [9.5, 8.5, 7.5]), ("LONGS", [9, 8]), ("TEXT", "short now"),
]


# ------------------------------------------------------- scripts run inside the namespace


async def _serve_pyepics(spec: dict[str, Any], netns: bool) -> dict[str, Any]:
    """``shark serve`` on the IOC file, placed by the EPICS variables; then pyepics."""
    work = Path(spec["workdir"])
    port, repeater = session_ports(netns)
    ioc_file = work / "ioc.toml"
    ioc_file.write_text(IOC_FILE)
    out: dict[str, Any] = {"errors": [], "started": time.time()}
    env = {**os.environ, **peers.epics_env(port, repeater)}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shark", "serve", str(ioc_file), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    ready = b""
    client = None
    try:
        assert server.stdout is not None
        ready = await asyncio.wait_for(server.stdout.readline(), 30)
        client = await PyepicsClient.start(SCRIPT, work, port, repeater)
        await client.finish(spec["client_timeout"], out)
    finally:
        if server.returncode is None:
            server.send_signal(signal.SIGTERM)
        if client is not None:
            await client.stop()
        rest, err = await asyncio.wait_for(server.communicate(), 10)
        out["server"] = {"returncode": server.returncode, "stderr": err.decode(),
                         "stdout": (ready + rest).decode(), "port": port}
    return out


def _pyepics_client_main(params_path: str) -> int:
    """caget (plain, time, ctrl, as text), caput of every type, camonitor of every PV."""
    from epics import ca, dbr

    params = peers.load_client_params([params_path])
    chids = {n: ca.create_channel(PREFIX + n, connect=False, auto_cb=False) for n in NAMES}
    seen: dict[str, Any] = {
        "connected": {n: ca.connect_channel(c, timeout=5) for n, c in chids.items()}}
    seen["native"] = {n: [dbr.Name(ca.field_type(c)), ca.element_count(c),
                          bool(ca.write_access(c))] for n, c in chids.items()}
    seen["plain"] = {n: ca.get(c, timeout=5) for n, c in chids.items()}
    seen["text"] = ca.get(chids["TEXT"], as_string=True, timeout=5)
    seen["string"] = {n: ca.get(c, ftype=dbr.STRING, timeout=5) for n, c in chids.items()}
    seen.update(reads_with_metadata(chids, ("time", "ctrl")))
    updates: dict[str, list[Any]] = {n: [] for n in NAMES}

    def record(pvname: str = "", value: Any = None, severity: Any = None, **_: Any) -> None:
        updates[pvname.removeprefix(PREFIX)].append([value, severity])

    monitors = [ca.create_subscription(c, use_time=True, callback=record)  # keep them
                for c in chids.values()]
    time.sleep(0.3)
    seen["puts"] = {n: ca.put(chids[n], v, wait=True, timeout=5) for n, v in PUTS}
    try:
        ca.put(chids["RO"], 6, wait=True, timeout=5)
        seen["read_only_put"] = "accepted"
    except Exception as exc:  # libca refuses before sending: no write access
        seen["read_only_put"] = f"{type(exc).__name__}: {exc}"
    seen["after"] = reads_with_metadata(chids, ("time",))["time"]
    seen["after_text"] = ca.get(chids["TEXT"], as_string=True, timeout=5)
    ca.put(chids["DOUBLE"], 100.0, wait=True, timeout=5)  # beyond DRVH: clipped to 40
    ca.put(chids["LONG"], 200000, wait=True, timeout=5)  # beyond, and refused
    seen["beyond"] = reads_with_metadata({n: chids[n] for n in ("DOUBLE", "LONG")},
                                         ("time",))["time"]
    time.sleep(0.8)
    seen["updates"] = updates
    for monitor in monitors:  # (cleared before their callbacks go: see engine_peers)
        ca.clear_subscription(monitor[2])
    ca.poll()
    del monitors
    peers.save_client_result(params, seen)
    ca.finalize_libca()
    return 0


def main(argv: list[str]) -> int:
    return script_main(argv, {"pyepics-client": _pyepics_client_main},
                       serve=_serve_pyepics, slack=15)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

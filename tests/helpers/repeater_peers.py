"""libca through ``shark repeater``: a softioc restarted under a monitoring pyepics client.

What ``tests/shark/peers/test_repeater.py`` runs in the private network namespace. Run as
a script, this module is

* ``repeater_peers.py serve SPEC [--netns]``: ``shark repeater`` on 5065 before any
  EPICS process (so that libca finds the port taken and starts no caRepeater of its
  own), a softioc beaconing every second, the pyepics client; then the softioc killed,
  left down for a while and started again; what everyone saw in ``result.json``
  (:mod:`pyepics_sessions`);
* ``repeater_peers.py pyepics-client PARAMS``: that client: a ``PV`` monitoring a
  counter, printing its connection changes and values, with their times, one a line.

Everything is pinned to 127.0.0.1 (:func:`peers.epics_env`).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import peers
from pyepics_sessions import script_main, session_ports

SCRIPT = Path(__file__).resolve()
PV = "RPT:COUNT"
#: A counter the IOC itself counts up, ten times a second.
RECORDS = [{"name": PV, "type": "calc",
            "fields": {"SCAN": ".1 second", "CALC": "A+1", "INPA": f"{PV} NPP"}}]
#: Beacons every second (rsrv's default is 15 s): the test should not wait for them.
BEACON_PERIOD = "1"
#: How long the IOC stays down. libca searches again for channels lost with their circuit
#: only every 10 s (its "disconnect governor"), beacons or not: the client reconnects about
#: 10 s after the IOC went, and the IOC must be back by then.
DOWN_SECONDS = 2.0


# ------------------------------------------------------------------ inside the namespace


class Lines:
    """A subprocess whose stdout lines are collected as they come, to wait for some."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.lines: list[tuple[float, str]] = []
        self._new = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, name: str, *argv: str, env: dict[str, str]) -> Lines:
        """Start ``argv``; its stdout and stderr are read as one."""
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        return cls(name, proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            async with self._new:
                self.lines.append((time.time(), raw.decode(errors="replace").rstrip("\n")))
                self._new.notify_all()

    async def wait_for(self, pattern: str, after: int = 0, timeout: float = 20.0) -> int:
        """The index of the first line from ``after`` on matching ``pattern``."""
        async def found() -> int:
            async with self._new:
                while True:
                    for i in range(after, len(self.lines)):
                        if re.search(pattern, self.lines[i][1]):
                            return i
                    if self._reader.done():
                        raise RuntimeError(f"{self.name} ended without {pattern!r}: "
                                           f"{self.lines[-10:]}")
                    await self._new.wait()

        try:
            return await asyncio.wait_for(found(), timeout)
        except asyncio.TimeoutError:
            raise RuntimeError(f"{self.name}: no line {pattern!r} in {timeout} s: "
                               f"{self.lines[-5:]}") from None

    async def stop(self, signum: int = signal.SIGTERM, timeout: float = 10.0) -> dict[str, Any]:
        """Signal it, wait for its end; what it said."""
        if self.proc.returncode is None:
            self.proc.send_signal(signum)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await self._reader
        return {"returncode": self.proc.returncode, "pid": self.proc.pid,
                "lines": [[t, line] for t, line in self.lines]}


async def stop_started(started: list[tuple[str, Lines]], out: dict[str, Any]) -> None:
    """Stop what a scenario started, each once, its report in ``out`` under its name: the
    repeater last (its totals count what the others sent)."""
    for key, lines in sorted(started, key=lambda item: item[0] == "repeater"):
        if key not in out:
            out[key] = await lines.stop()


def udp_ports() -> dict[int, set[int]]:
    """The local ports of the UDP sockets of each process (of this namespace), by PID."""
    ports_by_inode = {}
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        ports_by_inode[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    found: dict[int, set[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:
            continue
        for link in links:
            inode = link.removeprefix("socket:[").removesuffix("]")
            if inode in ports_by_inode:
                found.setdefault(int(entry.name), set()).add(ports_by_inode[inode])
    return found


async def _scenario(spec: dict[str, Any], netns: bool) -> dict[str, Any]:
    work = Path(spec["workdir"])
    port, repeater_port = session_ports(netns)
    env = {**os.environ, **peers.epics_env(port, repeater_port),
           "EPICS_CAS_BEACON_PERIOD": BEACON_PERIOD, "PYTHONUNBUFFERED": "1"}
    out: dict[str, Any] = {"errors": [], "ports": [port, repeater_port], "events": {}}
    events = out["events"]
    config = work / "ioc.json"
    config.write_text(json.dumps({"records": RECORDS, "log_path": str(work / "ioc_log.json")}))
    ioc_argv = (sys.executable, str(Path(peers.__file__).resolve()), "ioc", str(config))
    out["taken_before"] = sorted(p for ports in udp_ports().values() for p in ports)
    repeater = await Lines.start("repeater", sys.executable, "-m", "shark", "repeater",
                                 "-v", "--every", "1", env=env)
    started: list[tuple[str, Lines]] = [("repeater", repeater)]
    try:
        await repeater.wait_for(r"^CA repeater on ")
        ioc = await Lines.start("ioc", *ioc_argv, env=env)
        started.append(("ioc_first", ioc))
        await ioc.wait_for(peers.IOC_READY, timeout=30)
        client = await Lines.start("client", sys.executable, str(SCRIPT), "pyepics-client",
                                   PV, env=env)
        started.append(("client", client))
        up = await client.wait_for(r"^conn 1 ")
        await client.wait_for(r"^value ", after=await client.wait_for(r"^value ", after=up) + 1)
        # libca registers with the repeater 10 s after it starts, and again each second
        # until confirmed: beacons reach it only from then on.
        ports = "|".join(str(p) for p in udp_ports().get(client.proc.pid, ())) or "none"
        await repeater.wait_for(rf"client {re.escape(peers.LOOPBACK)}:({ports}) registered \(")
        out["udp_ports"] = {str(pid): sorted(ports) for pid, ports in udp_ports().items()}
        out["pids"] = {"repeater": repeater.proc.pid, "client": client.proc.pid}
        events["killed"] = time.time()
        out["ioc_first"] = await ioc.stop(signal.SIGKILL)
        down = await client.wait_for(r"^conn 0 ", after=up)
        await asyncio.sleep(DOWN_SECONDS)
        events["restarted"] = time.time()
        ioc = await Lines.start("ioc", *ioc_argv, env=env)
        started.append(("ioc", ioc))
        await ioc.wait_for(peers.IOC_READY, timeout=30)
        events["ioc_ready"] = time.time()
        again = await client.wait_for(r"^conn 1 ", after=down, timeout=30)
        await client.wait_for(r"^value ", after=again)
        await asyncio.sleep(1.5)  # a beacon or two more through the repeater
    except Exception as exc:  # reported in the result
        out["errors"].append(f"{type(exc).__name__}: {exc}")
    finally:  # (the client's lines are complete once it is stopped)
        await stop_started(started, out)
    return out


# ------------------------------------------------------------------------ the client


def _pyepics_client_main(name: str) -> int:
    """A PV with a monitor: ``conn 0|1 TIME`` and ``value V TIME`` lines, until SIGTERM."""
    import epics

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))

    def connection(conn: bool = False, **_: Any) -> None:
        print(f"conn {int(conn)} {time.time():.6f}", flush=True)

    def value(value: Any = None, **_: Any) -> None:
        print(f"value {value} {time.time():.6f}", flush=True)

    pv = epics.PV(name, connection_callback=connection, callback=value, auto_monitor=True)
    while not stop:
        time.sleep(0.02)
    # libca's own account (``ca_client_status``, on stdout): whether the repeater
    # confirmed its registration, and the beacon period it estimates for each server.
    epics.ca.client_status(epics.ca.current_context(), 4)
    ctypes.CDLL(None).fflush(None)
    pv.disconnect()
    epics.ca.finalize_libca()
    return 0


def main(argv: list[str]) -> int:
    return script_main(argv, {"pyepics-client": _pyepics_client_main},
                       serve=_scenario, slack=20)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

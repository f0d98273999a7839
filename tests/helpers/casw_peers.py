"""``shark casw`` through ``shark repeater``: a softioc started, killed and started again.

What ``tests/shark/peers/test_casw.py`` runs in the private network namespace. Run as
``casw_peers.py serve SPEC [--netns]`` (:mod:`pyepics_sessions`): ``shark repeater`` on
5065, ``shark casw -i 1`` registered with it, a softioc beaconing every second (after
rsrv's ramp from 20 ms); once casw has printed the new server, the softioc is killed
and started again, and casw's lines are collected until it prints the restart. What
each process said goes to ``result.json``. Everything is pinned to 127.0.0.1
(:func:`peers.epics_env`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import peers
from pyepics_sessions import script_main, session_ports
from repeater_peers import Lines, stop_started

SCRIPT = Path(__file__).resolve()
RECORDS = [{"name": "CASW:AI", "type": "ai", "value": 1.0}]
#: rsrv's beacon period, after its ramp (its default is 15 s).
BEACON_PERIOD = "1"


async def _scenario(spec: dict[str, Any], netns: bool) -> dict[str, Any]:
    work = Path(spec["workdir"])
    port, repeater_port = session_ports(netns)
    env = {**os.environ, **peers.epics_env(port, repeater_port),
           "EPICS_CAS_BEACON_PERIOD": BEACON_PERIOD, "PYTHONUNBUFFERED": "1"}
    out: dict[str, Any] = {"errors": [], "ports": [port, repeater_port]}
    config = work / "ioc.json"
    config.write_text(json.dumps({"records": RECORDS, "log_path": str(work / "ioc_log.json")}))
    ioc_argv = (sys.executable, str(Path(peers.__file__).resolve()), "ioc", str(config))
    repeater = await Lines.start("repeater", sys.executable, "-m", "shark", "repeater",
                                 env=env)
    started: list[tuple[str, Lines]] = [("repeater", repeater)]
    try:
        await repeater.wait_for(r"^CA repeater on ")
        casw = await Lines.start("casw", sys.executable, "-m", "shark", "casw", "-i", "1",
                                 env=env)
        started.append(("casw", casw))
        await repeater.wait_for(rf"client {re.escape(peers.LOOPBACK)}:\d+ registered \(")
        await asyncio.sleep(0.3)  # started well after casw: a new server, by libca's rule
        ioc = await Lines.start("ioc", *ioc_argv, env=env)
        started.append(("ioc_first", ioc))
        await ioc.wait_for(peers.IOC_READY, timeout=30)
        new = await casw.wait_for(r"new server", timeout=10)
        await asyncio.sleep(0.5)  # a few beacons more
        out["ioc_first"] = await ioc.stop(signal.SIGKILL)
        await asyncio.sleep(0.5)
        ioc = await Lines.start("ioc", *ioc_argv, env=env)
        started.append(("ioc", ioc))
        await ioc.wait_for(peers.IOC_READY, timeout=30)
        await casw.wait_for(r"restart", after=new + 1, timeout=10)
    except Exception as exc:  # reported in the result
        out["errors"].append(f"{type(exc).__name__}: {exc}")
    finally:
        await stop_started(started, out)
    return out


def main(argv: list[str]) -> int:
    return script_main(argv, {}, serve=_scenario, slack=20)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

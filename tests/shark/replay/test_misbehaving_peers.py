"""``shark replay`` under attack: one error line per cause against a lying server, and a
replay server that stays quiet and up after a client with many subscriptions resets.

The lying servers are the test's own (``lying_servers``), on free loopback ports; the
command runs in a child process so that all it prints, asyncio's logging included, is
seen.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from typing import Any

from lying_servers import BAD_NATIVE_TYPE, LOOPBACK, NATIVE_TYPE, RESET, LyingServer, run_shark
from raw_circuits import subscribe_many_and_reset, until_no_circuits
from replay_peers import BASIC

from decoder.dbr import DBRType
from shark.peers.client import Client
from shark.replay import load, serve

FLOODS = ("socket.send() raised exception", "never retrieved", "Exception in callback",
          "Traceback")


def run(coro: Any, timeout: float = 60.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def _replay_against(behaviour: str) -> tuple[int, int, str, str]:
    async with LyingServer(behaviour) as lying:
        status, out, err = await run_shark(
            "replay", "--as-client", "--to", f"{LOOPBACK}:{lying.port}", str(BASIC),
            "--speed", "0", "--timeout", "1")
    return lying.port, status, out, err


def test_replay_as_client_against_a_server_naming_no_dbr_type():
    port, status, out, err = run(_replay_against(BAD_NATIVE_TYPE))
    assert status == 2
    creates = sum(op.kind == "create" for op in load(BASIC).clients[0].operations)
    assert re.fullmatch(
        rf"shark replay: error: server {LOOPBACK}:{port}: native type {NATIVE_TYPE} of "
        rf"DEMO:BASIC:\w+ is not a DBR type \({creates} channels\)\n", err), err
    # Each create says why it got no answer.
    assert out.count(f"native type {NATIVE_TYPE} of DEMO:BASIC:") == creates


def test_replay_as_client_against_a_server_resetting_every_connection():
    port, status, out, err = run(_replay_against(RESET))
    assert status == 2
    lines = err.splitlines()
    assert 1 <= len(lines) <= 3, err  # one per cause: refused, reset
    for line in lines:
        assert line.startswith(f"shark replay: error: server {LOOPBACK}:{port}: "), err
    assert not any(flood in err for flood in FLOODS)


def test_replay_server_quiet_and_up_after_a_client_with_many_subscriptions_resets(caplog):
    caplog.set_level(logging.DEBUG)
    many = 20_000
    monitors = BASIC.with_name("softioc_pyepics_monitors.pcap")

    async def body() -> None:
        [replay] = serve(load(monitors), [0], speed=20, loop=True, beacon_address=None)
        async with replay:
            server = replay.server
            # A reset, the updates on their way.
            await subscribe_many_and_reset(server.tcp_port, "DEMO:MON:SINE",
                                           DBRType.TIME_DOUBLE, 1, many)
            assert await until_no_circuits(server) == 0
            await asyncio.sleep(0.3)  # the timeline goes on posting
            async with Client([(LOOPBACK, server.udp_port)], timeout=3) as client:
                value = await client.read("DEMO:MON:SINE")
                assert value.dbr_type == DBRType.DOUBLE

    run(body())
    gc.collect()
    assert not [r.getMessage() for r in caplog.records
                if r.exc_info or any(flood in r.getMessage() for flood in FLOODS)]
    # The replay's log of clients and requests (what -v and -vv show) aside.
    told = [r for r in caplog.records if r.name.startswith("shark")
            and not (r.name == "shark.replay.serve" and r.levelno < logging.WARNING)]
    assert len(told) <= 4

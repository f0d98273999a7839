"""``shark casw``: beacons watched live through the CA repeater (or bound directly), each
judged by the judge ``shark stats`` uses, printed as EPICS base's casw prints them. A
shark server started, stopped and started again on 127.0.0.1 (ephemeral ports) is a new
server, then a restart; the same with a softioc, ``shark repeater`` and the command in a
private network namespace (the scenario is ``tests/helpers/casw_peers.py``); beacons back
after a silence, on a clock of the test's, are connectivity restored."""

from __future__ import annotations

import asyncio
import re
import sys

import casw_peers
import peers
import pyepics_sessions
import pytest

from decoder import messages as m
from decoder.beacons import BeaconAnomalyKind, BeaconJudge
from shark.cli import main
from shark.peers.casw import BeaconWatcher, Sighting, lines, stamp
from shark.peers.repeater import Repeater
from shark.peers.server import Server

LOOPBACK = "127.0.0.1"
KIND = BeaconAnomalyKind
#: A line of casw: mark, server padded to 40, date and time to the nanosecond.
LINE = re.compile(r"^([* ]) (\S+) +(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9})(?: (.+))?$")


def sighting_of(judge: BeaconJudge, time: float, beacon_id: int) -> Sighting:
    server, anomalies = judge.see(0x7F000001, 5064, beacon_id, 13, LOOPBACK, time, True)
    return Sighting(time, server, beacon_id, anomalies)


def test_lines_are_casws() -> None:
    judge = BeaconJudge(begin=100.0)
    first = sighting_of(judge, 110.0, 0)
    second = sighting_of(judge, 110.02, 1)  # a server started after the watch: new
    assert lines(first) == [] and lines(first, 2) == [f"  {'127.0.0.1:5064':<40} {stamp(110.0)}"]
    (line,) = lines(second)
    assert line == f"* {'127.0.0.1:5064':<40} {stamp(110.02)} new server"
    assert LINE.match(line).group(4) == "new server"
    assert lines(second, 1)[1] == "\testimate=0.020000 current=0.020000"
    restart = sighting_of(judge, 111.0, 0)
    assert [a.kind for a in restart.anomalies] == [KIND.RESTART]
    assert lines(restart, 1)[1] == "\testimate=0.020000"


def test_the_stamp_is_to_the_nanosecond() -> None:
    assert stamp(0.5).endswith(".500000000")
    assert stamp(1.9999999999).endswith(".000000000")


async def _watch_restart(via_repeater: bool) -> list[Sighting]:
    seen: list[Sighting] = []
    async with Repeater(LOOPBACK, 0) as repeater:
        if via_repeater:
            watcher = BeaconWatcher(seen.append, repeater=repeater.address)
        else:
            watcher = BeaconWatcher(seen.append, repeater=None, listen=(LOOPBACK, 0))
        async with watcher:
            target = repeater.address if via_repeater else watcher.address
            for _ in range(100):
                if not via_repeater or watcher.confirmed is not None:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            server = Server([], port=0, tcp_port=0, beacon_address=target, beacon_period=0.1)
            async with server:
                await asyncio.sleep(0.5)
            await asyncio.sleep(0.3)
            again = Server([], port=0, tcp_port=server.tcp_port, beacon_address=target,
                           beacon_period=0.1)
            async with again:
                await asyncio.sleep(0.5)
    return seen


@pytest.mark.parametrize("via_repeater", [True, False], ids=["repeater", "direct"])
def test_a_new_server_then_its_restart(via_repeater: bool) -> None:
    seen = asyncio.run(_watch_restart(via_repeater))
    assert len({s.server.name for s in seen}) == 1
    kinds = [a.kind for s in seen for a in s.anomalies]
    assert kinds[0] is KIND.NEW_SERVER
    assert KIND.RESTART in kinds[1:], kinds
    restart = kinds.index(KIND.RESTART)
    assert KIND.PERIOD_SHORT in kinds[restart:] or KIND.PERIOD_LONG in kinds[restart:]


async def _command_beside(args: list[str]) -> tuple[int, str, str]:
    async with Repeater(LOOPBACK, 0) as repeater:
        host, port = repeater.address
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shark", "casw", "--repeater", f"{host}:{port}", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        for _ in range(200):  # until the command has registered
            if repeater.core.clients:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        server = Server([], port=0, tcp_port=0, beacon_address=(host, port), beacon_period=0.1)
        async with server:
            await asyncio.sleep(0.4)
        again = Server([], port=0, tcp_port=server.tcp_port, beacon_address=(host, port),
                       beacon_period=0.1)
        async with again:
            await asyncio.sleep(0.4)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    return proc.returncode or 0, out.decode(), err.decode()


def test_the_command_prints_the_new_server_then_the_restart() -> None:
    status, out, err = asyncio.run(_command_beside(["-i", "1", "-w", "3"]))
    assert status == 0, err
    marked = [LINE.match(line) for line in out.splitlines() if line.startswith("*")]
    assert all(marked), out
    kinds = [match.group(4) for match in marked]
    assert kinds[0] == "new server", out
    assert any("restart" in kind for kind in kinds[1:]), out
    assert all(line.startswith("\testimate=") or line.startswith("\tcurrent=")
               for line in out.splitlines() if not line.startswith("*")), out


def test_a_port_taken_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    async def taken() -> int:
        async with Repeater(LOOPBACK, 0) as repeater:
            host, port = repeater.address
            return await asyncio.to_thread(main, ["casw", "--listen", f"{host}:{port}",
                                                  "-w", "1"])

    assert asyncio.run(taken()) == 2
    err = capsys.readouterr().err
    assert err.startswith("shark casw: error: cannot listen on UDP 127.0.0.1:") and \
        err.count("\n") == 1, err


def test_casw_through_shark_repeater_across_a_softioc_restart(tmp_path) -> None:
    reason = peers.peers_missing()
    if reason:
        pytest.skip(reason)
    if peers.namespace_command() is None:
        pytest.skip("needs a private network namespace (root and unshare) of its own: "
                    "it uses the standard CA ports")
    result, done = pyepics_sessions.run_session(
        casw_peers.SCRIPT, tmp_path, client_timeout=40, timeout=90)
    assert result is not None, done
    assert not result["errors"], result
    printed = [line for _, line in result["casw"]["lines"]]
    marked = [LINE.match(line) for line in printed if line.startswith("*")]
    assert all(marked), printed
    names = {match.group(2) for match in marked}
    assert names == {"127.0.0.1:5064"}, printed
    kinds = [match.group(4) for match in marked]
    assert kinds[0] == "new server", printed
    assert any("restart" in kind for kind in kinds[1:]), printed


def test_a_restarted_repeater_takes_the_watcher_back() -> None:
    async def scenario() -> tuple[bool, bool]:
        async with Repeater(LOOPBACK, 0) as first:
            address = first.address
            watcher = BeaconWatcher(lambda _: None, repeater=address, renew_period=0.3)
            await watcher.start()
            for _ in range(100):
                if first.core.clients:
                    break
                await asyncio.sleep(0.02)
            registered_first = bool(first.core.clients)
        await asyncio.sleep(0.1)  # the socket closes on the loop's next turns
        async with Repeater(*address) as second:
            for _ in range(100):
                if second.core.clients:
                    break
                await asyncio.sleep(0.02)
            registered_again = bool(second.core.clients)
        await watcher.stop()
        return registered_first, registered_again

    assert asyncio.run(scenario()) == (True, True)


def test_no_repeater_is_said_once_and_the_watch_goes_on() -> None:
    port = peers.free_port()
    done = peers.run_bounded([sys.executable, "-m", "shark", "casw", "--repeater",
                              f"{LOOPBACK}:{port}", "-w", "2.5"], timeout=20)
    assert done["returncode"] == 0, done
    assert done["stderr"].count("no CA repeater answers on") == 1, done
    assert done["stdout"] == ""


def test_beacons_back_after_a_silence_are_restored_connectivity() -> None:
    now = [1000.0]
    seen: list[Sighting] = []
    watcher = BeaconWatcher(seen.append, repeater=None, listen=(LOOPBACK, 0),
                            clock=lambda: now[0])
    watcher.judge.begin = 1000.5  # just before the first beacon: a server already there
    for beacon_id in [*range(10), 15]:  # one a second, then five seconds of nothing
        now[0] += 5.0 if beacon_id == 15 else 1.0
        watcher.received(m.Beacon(server_port=5064, beaconid=beacon_id,
                                  address=0x7F000001).to_bytes(), (LOOPBACK, 5064))
    kinds = [a.kind for s in seen for a in s.anomalies]
    assert kinds == [KIND.IDS_JUMPED, KIND.PERIOD_LONG], kinds
    (line, numbers) = lines(seen[-1], 1)
    assert line.endswith(" ids jumped, period long") and numbers == \
        "\testimate=1.000000 current=5.000000"

"""``shark replay``: a capture's server side as a stand-in IOC, its client side as a check.

* The recording model, from the project's captures and their manifests.
* In process, on free loopback ports: the replay server plays a timeline (pace, alarms,
  timestamps, loop, several servers); the client replay against the replay server.
* Real peers, in the private network namespace (``peers.run_scenario``):
  - a capture of pyepics against softioc with records that do not change by
    themselves, made once for the module (``replay_peers.RECORDS``);
  - that capture replayed ``--as-client`` against a fresh softioc with the same records
    (no difference) and with one record changed (reported, exit status 1);
  - ``captures/softioc_pyepics_basic.pcap`` replayed ``--as-server`` by the command line
    while pyepics (libca) reads, subscribes and writes, and while another client sends
    random bytes.
  The scripts run inside the namespace are ``tests/helpers/replay_peers.py``'s modes.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import peers
import pyepics_sessions
import pytest
import replay_peers
from builders import OWN_CAPTURES, capture, manifest
from replay_peers import BASIC, CHANGED, RECORDS, cli

from decoder import ECA, AccessRights, EventMask
from decoder.dbr import DBRType, DBRValue
from shark.peers.client import Client
from shark.replay import Answer, RecordedServer, load, replay_clients, serve
from shark.replay.compare import Tolerance, Verdict, differences, verdict

MONITORS = OWN_CAPTURES / "softioc_pyepics_monitors.pcap"
LOOPBACK = peers.LOOPBACK


def run(coro: Any, timeout: float = 20.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


# ------------------------------------------------------------------ the recording


def test_recording_of_the_basic_capture() -> None:
    recording = load(BASIC)
    truth = manifest(BASIC)
    [server] = recording.servers.values()
    assert server.address == f"127.0.0.1:{truth['ports']['server']}"
    pvs = {pv["pv"]: pv for pv in truth["pvs"]}
    assert set(server.pvs) == set(pvs)
    for name, recorded in server.pvs.items():
        assert (recorded.native_type, recorded.native_count, recorded.writable) == (
            pvs[name]["native_dbr_type"], pvs[name]["element_count"], pvs[name]["write_access"])
    temp = server.pvs["DEMO:BASIC:TEMP"]
    assert temp.metadata_from == "DBR_CTRL_DOUBLE" and temp.metadata["units"] == "degC"
    assert server.pvs["DEMO:BASIC:STATE"].metadata["enum_strings"] == ["Idle", "Running", "Fault"]
    assert "default metadata" in server.pvs["DEMO:BASIC:MODE"].note
    assert server.pvs["DEMO:BASIC:LABEL"].note == ""  # a string has no metadata to miss
    # The timeline: a plain read takes its alarm and timestamp from the TIME read after it.
    first = temp.states()[0]
    assert (first.values, first.status, first.severity) == ([85.5], 4, 1)
    assert first.stamp == (1164117993, 260477976)
    assert [s.values[0] for s in server.pvs["DEMO:BASIC:MODE"].states()] == [3, 3, 42, 42]
    counter = [(s.kind, s.values[0]) for s in server.pvs["DEMO:BASIC:COUNTER"].states()]
    assert counter[:2] == [("read", 20.0), ("initial", 21.0)]
    assert counter[2:] == [("update", float(n)) for n in range(22, 32)]
    # The client: its operations in order, each with the captured answer.
    [client] = recording.clients
    kinds = [op.kind for op in client.operations]
    assert kinds == ["create"] * 7 + ["read"] * 11 + ["write", "write_notify", "write_notify",
                                                     "read", "subscribe", "cancel"] + ["clear"] * 7
    gets = [op for op in truth["clients"][0]["ops"] if op["op"] == "get"]
    reads = [op for op in client.operations if op.kind == "read"]
    for op, get in zip(reads, gets, strict=True):
        assert (op.pv, op.data_type) == (get["pv"], get["dbr_type"])
        assert op.answer is not None and op.answer.data is not None
        assert json.loads(json.dumps(peers.jsonable(op.answer.data.value))) == get["value"]
        assert 0 < op.answer.latency < 0.1
    subscribe = kinds.index("subscribe")
    updates = client.operations[subscribe].updates
    assert [u.data.value for u in updates] == [float(n) for n in range(21, 32)]
    assert client.operations[subscribe + 1].subscription is client.operations[subscribe]
    created = client.operations[0].answer
    assert created.native_type == DBRType.DOUBLE and created.access == AccessRights(3)


def test_recording_of_the_monitors_capture() -> None:
    recording = load(MONITORS)
    truth = manifest(MONITORS)["clients"][0]["subscriptions"]
    ops = {op.pv: op for op in recording.clients[0].operations if op.kind == "subscribe"}
    for key, sub in truth.items():
        op = ops[sub["pv"]]
        assert op.data_type == sub["dbr_type"] and op.mask == EventMask.VALUE | EventMask.ALARM
        seen = [(u.data.value, u.data.severity) for u in op.updates]
        assert seen == [(u["value"], u["severity"]) for u in sub["updates"]], key
    tick = recording.servers[next(iter(recording.servers))].pvs["DEMO:MON:TICK"]
    assert tick.metadata_from == "DBR_CTRL_DOUBLE"  # from the updates of a CTRL subscription


def test_enum_states_named_by_reads_as_strings() -> None:
    """With no GR/CTRL reply, an enum PV's states are named by what a read (or write)
    as a string showed next to the index: the replay answers a string read with the
    name, and takes a write of it."""
    puts = load(capture("ca_put_callback_and_errors.pcapng"))
    [server] = puts.servers.values()
    assert server.pvs["DEMO:PUT:SHUTTER"].metadata["enum_strings"] == ["0", "Open", "Moving"]
    basic = load(capture("ca_basic_default_port.pcap"))
    [server] = basic.servers.values()
    assert server.pvs["DEMO:BASIC:STATE"].metadata["enum_strings"][1] == "Running"
    assert "enum_strings" not in server.pvs["DEMO:BASIC:MODE"].metadata  # no enum


# ------------------------------------------------------------ replay server, in process


def test_replay_server_plays_the_captured_updates_at_pace() -> None:
    """A subscriber gets the captured sequence: values, alarms, timestamps, pace."""
    speed = 8.0
    sine = manifest(MONITORS)["clients"][0]["subscriptions"]["sine_time"]["updates"]

    async def body() -> list[tuple[float, Any]]:
        [replay] = serve(load(MONITORS), [0], speed=speed, beacon_address=None)
        await replay.start(play=False)  # subscribe first, however slow the machine is
        try:
            async with Client([(LOOPBACK, replay.server.udp_port)]) as client:
                loop = asyncio.get_running_loop()
                seen: list[tuple[float, Any]] = []
                client.subscribe("DEMO:MON:SINE", DBRType.TIME_DOUBLE,
                                 callback=lambda v: seen.append((loop.time(), v)))
                deadline = loop.time() + 10
                while not seen and loop.time() < deadline:
                    await asyncio.sleep(0.01)
                replay.play()
                await asyncio.wait_for(replay.played.wait(), 10)
                await client.echo()
                return seen
        finally:
            await replay.stop()

    seen = run(body())
    values = [(v.value, v.severity, v.timestamp) for _, v in seen]
    captured = [(u["value"], u["severity"], u["timestamp"]) for u in sine]
    assert [v[:2] for v in values[-len(captured):]] == [c[:2] for c in captured]
    for (_, _, ours), (_, _, theirs) in zip(values[-len(captured):], captured, strict=True):
        assert ours == pytest.approx(theirs, abs=1e-6)
    times = [t for t, _ in seen[-len(captured):]]
    captured_span = sine[-1]["t_rel"] - sine[0]["t_rel"]
    assert times[-1] - times[0] == pytest.approx(captured_span / speed, abs=0.15)


def test_loop_writes_and_several_servers() -> None:
    """--loop starts over; a write holds until the timeline changes the PV; each
    captured server gets a port of its own."""
    recording = load(BASIC)
    [(address, server)] = recording.servers.items()
    recording.servers["127.0.0.2:5064"] = RecordedServer("127.0.0.2:5064", server.pvs)

    async def body() -> dict[str, Any]:
        replays = serve(recording, [0], speed=20, loop=True, beacon_address=None)
        out: dict[str, Any] = {"addresses": [r.recorded.address for r in replays]}
        for replay in replays:
            await replay.start()
        try:
            ports = [r.server.udp_port for r in replays]
            out["distinct"] = len(set(ports)) == 2
            async with Client([(LOOPBACK, ports[1])]) as client:
                await client.write("DEMO:BASIC:LABEL", "mine")
                out["label"] = (await client.read("DEMO:BASIC:LABEL")).value
                counter: list[float] = []
                client.subscribe("DEMO:BASIC:COUNTER", callback=lambda v: counter.append(v.value))
                await asyncio.sleep(0.5)  # > 2 passes of 3.5 s / 20
                out["counter"] = counter
        finally:
            for replay in replays:
                await replay.stop()
        return out

    out = run(body())
    assert out["addresses"] == [address, "127.0.0.2:5064"] and out["distinct"]
    assert out["label"] == "mine"
    counter = out["counter"]
    restarts = [i for i in range(1, len(counter)) if counter[i] < counter[i - 1]]
    assert restarts and counter[restarts[0]] == 20.0 and 31.0 in counter


def test_two_captured_iocs_on_two_ports() -> None:
    """A capture of two IOCs (from the shared corpus): each served on a port of its own,
    with its own PVs."""
    path = capture("ca_two_clients_two_iocs.pcapng")
    recording = load(path)
    truth = {pv["pv"]: pv for pv in manifest(path)["pvs"]}

    async def body() -> dict[str, Any]:
        replays = serve(recording, [0, 0], beacon_address=None)
        for replay in replays:
            await replay.start()
        try:
            ports = {r.server.udp_port for r in replays}
            served = [sorted(r.server.pvs) for r in replays]
            async with Client([(LOOPBACK, port) for port in ports]) as client:
                channels = {name: await client.connect(name) for name in truth}
                return {"ports": len(ports), "served": served,
                        "where": {n: c.server[1] for n, c in channels.items()},
                        "types": {n: c.native_type for n, c in channels.items()}}
        finally:
            for replay in replays:
                await replay.stop()

    out = run(body())
    assert out["ports"] == 2
    assert sorted(out["served"]) == [
        sorted(n for n in truth if "IOCA" in n), sorted(n for n in truth if "IOCB" in n)]
    assert len({out["where"][n] for n in truth if "IOCA" in n}) == 1
    assert out["where"]["DEMO:IOCA:TEMP"] != out["where"]["DEMO:IOCB:PRESSURE"]
    assert out["types"] == {n: pv["native_dbr_type"] for n, pv in truth.items()}


def test_what_differs() -> None:
    """The comparison, field by field: what a report says."""
    [client] = load(BASIC).clients
    read = next(op for op in client.operations if op.data_type == DBRType.CTRL_DOUBLE)
    captured = read.answer
    assert captured is not None and captured.data is not None
    same = Answer(0, captured.latency, data=captured.data)
    assert differences(read, same, [], latency_slack=0.1) == []
    changed = DBRValue(DBRType.CTRL_LONG, [85, 1], **{**captured.data.metadata(),
                                                      "units": "K", "seconds": 5})
    slow = Answer(0, captured.latency + 0.5, status=ECA.ECA_GETFAIL, data=changed)
    assert [str(d) for d in differences(read, slow, [], latency_slack=0.1)] == [
        "status: ECA_NORMAL -> ECA_GETFAIL", "type: DBR_CTRL_DOUBLE -> DBR_CTRL_LONG",
        "count: 1 -> 2", "value: 85.5 -> [85, 1] (2)", "units: 'degC' -> 'K'",
        f"latency: {captured.latency * 1e3:.1f} ms -> {(captured.latency + 0.5) * 1e3:.1f} ms"
        " (timing)"]
    subscribe = next(op for op in client.operations if op.kind == "subscribe")
    updates = [Answer(0, 0.001, data=u.data) for u in subscribe.updates]
    updates[3] = Answer(0, None, data=DBRValue(DBRType.TIME_DOUBLE, [0.0], status=3,
                                               severity=2))
    assert [str(d) for d in differences(subscribe, updates[0], updates[:-1], 0.1)] == [
        "updates: 11 -> 10 (timing)", "update 4 value: 24.0 -> 0.0",
        "update 4 severity: 0 -> 2", "update 4 status: 0 -> 3"]
    # A PV the capture shows changing on its own: its values and alarms depend on timing.
    found = differences(subscribe, updates[0], updates[:-1], 0.1, changing=True)
    assert [str(d) for d in found] == [
        "updates: 11 -> 10 (timing)", "update 4 value: 24.0 -> 0.0 (timing)",
        "update 4 severity: 0 -> 2 (timing)", "update 4 status: 0 -> 3 (timing)"]
    assert verdict(found) is Verdict.TIMING
    strict = differences(subscribe, updates[0], updates[:-1], 0.1, changing=True, strict=True)
    assert not any(d.timing for d in strict) and verdict(strict) is Verdict.DIFFERENT
    # Numbers within a tolerance are the same.
    near = Answer(0, captured.latency, data=DBRValue(
        DBRType.CTRL_DOUBLE, [85.5 + 1e-3], **captured.data.metadata()))
    assert [d.what for d in differences(read, near, [], 0.1)] == ["value"]
    assert differences(read, near, [], 0.1, tolerance=Tolerance(absolute=0.01)) == []
    assert differences(read, near, [], 0.1, tolerance=Tolerance(relative=1e-4)) == []
    assert differences(read, near, [], 0.1, tolerance=Tolerance(relative=1e-6)) != []
    # Limits too, not the codes (severity).
    limits = {**captured.data.metadata(), "upper_disp_limit": 150.001, "severity": 2}
    off = Answer(0, captured.latency, data=DBRValue(DBRType.CTRL_DOUBLE, [85.5], **limits))
    assert [d.what for d in differences(read, off, [], 0.1, tolerance=Tolerance(0.01))] == [
        "severity"]
    created = next(op for op in client.operations if op.kind == "create")
    other = Answer(0, 0.001, native_type=DBRType.LONG, native_count=3,
                   access=AccessRights.READ)
    assert [str(d) for d in differences(created, other, [], 0.1)] == [
        "native type: DBR_DOUBLE -> DBR_LONG", "native count: 1 -> 3",
        "access: READ|WRITE -> READ"]


def test_cli_usage_and_dry_run(tmp_path: Path) -> None:
    assert cli("replay", str(BASIC), "--as-client")[0] == 2
    assert cli("replay", str(BASIC), "--as-server", "--to", "127.0.0.1:5064")[0] == 2
    assert cli("replay", str(BASIC), "--as-server", "--speed", "0")[0] == 2
    assert cli("replay", str(BASIC), "--as-server", "--tolerance", "1")[0] == 2
    assert cli("replay", str(BASIC), "--as-client", "--dry-run", "-v")[0] == 2
    for wrong in ("x", "-1", "inf%"):
        with pytest.raises(SystemExit) as exit_:
            cli("replay", str(BASIC), "--as-client", "--dry-run", "--tolerance", wrong)
        assert exit_.value.code == 2
    status, _, err = cli("replay", __file__, "--as-client", "--dry-run")
    assert status == 2 and "error" in err
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(BASIC.read_bytes()[:6000])
    status, out, err = cli("replay", str(cut), "--as-client", "--dry-run")
    assert status == 0 and "note: capture damaged" in err and "read DEMO:BASIC:TEMP" in out
    status, out, _ = cli("replay", str(BASIC), "--as-client", "--dry-run", "--speed", "2")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("client 127.0.0.1:") and "31 requests" in lines[0]
    assert lines[8].split() == ["+0.754", "s", "read", "DEMO:BASIC:TEMP", "DBR_DOUBLE[0]"]
    assert "write_notify DEMO:BASIC:WAVE DBR_DOUBLE[10] [1.0, 2.0, 3.0, 4.0, ...] (10)" in out
    assert "subscribe DEMO:BASIC:COUNTER DBR_TIME_DOUBLE[0] mask=VALUE|ALARM" in out


def test_the_basic_capture_against_its_own_replay_server() -> None:
    """Issue 17's check of the tool against itself: ``shark replay --as-server`` of the
    basic capture, then ``--as-client`` of it at --speed 1 and, once the server's
    timeline has run out (the client comes late), at --speed 0: no difference, not
    even in timing (the write of 42 after the reads, the counter's 11 updates). The
    server logs each client and each request it was asked for (-vv)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "shark", "replay", str(BASIC), "--as-server", "--port", "0",
         "-vv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        found = re.search(r"searches on UDP port (\d+)", line)
        assert found, line
        to = f"{LOOPBACK}:{found.group(1)}"
        reports = [cli("replay", str(BASIC), "--as-client", "--to", to, "--speed", speed)
                   for speed in ("1", "0")]
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=10)
    for status, out, _ in reports:
        assert status == 0, out
        assert out.splitlines()[-1].endswith(": 31 same, 0 timing-dependent, 0 differ"), out
    assert server.returncode == 0, err
    assert len(re.findall(r"client 127\.0\.0\.1:\d+ connected", err)) == 2, err
    assert err.count("acts as the captured 127.0.0.1:33700 (circuit 1)") == 2
    assert "read DEMO:BASIC:MODE DBR_LONG (as captured at 2.46" in err
    assert "write DEMO:BASIC:MODE DBR_LONG 42 (as captured at 2.49" in err
    assert "subscribe DEMO:BASIC:COUNTER DBR_TIME_DOUBLE (as captured at 2.50" in err
    assert err.count("disconnected (31 requests as captured)") == 2


def test_as_client_without_a_server_is_a_connection_error() -> None:
    port = peers.free_port()
    status, out, err = cli("replay", str(BASIC), "--as-client", "--to", f"127.0.0.1:{port}",
                           "--speed", "0", "--timeout", "0.3")
    assert status == 2 and "no answer from" in err
    assert "not sent: DEMO:BASIC:TEMP did not connect" in out


# ------------------------------------------------------- a capture of real peers


@pytest.fixture(scope="module")
def real_capture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """pyepics against softioc serving :data:`RECORDS`, captured once for the module."""
    reason = peers.peers_missing() or peers.capture_missing()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("capture")
    pcap = work / "replay.pcap"
    result = peers.run_scenario(
        RECORDS, [sys.executable, str(replay_peers.SCRIPT), "capture-client"], work,
        pcap=pcap, client_timeout=30, timeout=50)
    assert result["ok"], result["errors"]
    return {"pcap": pcap, "seen": result["client_result"]}


def _replay_against_softioc(records: list[dict[str, Any]], pcap: Path, work: Path
                            ) -> dict[str, Any]:
    result = peers.run_scenario(
        records, [sys.executable, str(replay_peers.SCRIPT), "replay-client"], work,
        client_params={"capture": str(pcap)}, client_timeout=30, timeout=50)
    assert result["ok"], result["errors"]
    return result["client_result"]


def _verdicts(out: str) -> dict[str, list[str]]:
    """The request lines of a replay's report, by verdict."""
    found: dict[str, list[str]] = {}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("  ") and words and words[-1] in ("same", "timing", "DIFFERS"):
            found.setdefault(words[-1], []).append(line)
    return found


def test_as_client_reproduces_the_captured_answers(real_capture: dict[str, Any],
                                                   tmp_path: Path) -> None:
    """No difference against a fresh softioc with the same records; the counter, which
    counts on its own, differs only in timing, if at all."""
    replayed = _replay_against_softioc(RECORDS, real_capture["pcap"], tmp_path)
    out = replayed["stdout"]
    assert replayed["status"] == 0, out
    summary = out.splitlines()[-1]
    assert summary.endswith(" 0 differ") and "DIFFERS" not in out, out
    verdicts = _verdicts(out)
    assert "subscribe RPL:SETPOINT DBR_TIME_DOUBLE[0] mask=VALUE|ALARM  same" in out
    # (The IOC started as long before as when captured: the counter may even agree.)
    timing = verdicts.get("timing", [])
    assert all(" RPL:TICK " in line for line in timing), out
    assert f"{len(timing)} timing-dependent" in summary


def test_as_client_reports_a_changed_record(real_capture: dict[str, Any],
                                            tmp_path: Path) -> None:
    """One record changed on purpose: exactly one PV differs, and the exit status says so."""
    replayed = _replay_against_softioc(CHANGED, real_capture["pcap"], tmp_path)
    out = replayed["stdout"]
    assert replayed["status"] == 1, out
    differing = _verdicts(out)["DIFFERS"]
    assert differing and all(" RPL:TEMP " in line for line in differing)
    assert "value: 21.5 -> 22.5" in out and "units: 'degC' -> 'K'" in out
    assert out.splitlines()[-1] == "1 PV differs: RPL:TEMP"
    assert "same" in out  # the other records are as captured


@pytest.mark.parametrize("changed", [False, True], ids=["same", "changed"])
def test_the_basic_capture_against_softioc(changed: bool, tmp_path: Path) -> None:
    """Issue 17's capture against a softioc loaded with the records it was made from:
    only the counter, which counts on its own, differs (in timing); with MODE changed
    on purpose, exactly one PV differs. --timing strict counts the counter."""
    reason = peers.peers_missing()
    if reason:
        pytest.skip(reason)
    records = replay_peers.basic_records()
    mode = next(record for record in records if record["name"] == "DEMO:BASIC:MODE")
    if changed:
        mode["value"] = 4
    result = peers.run_scenario(
        records, [sys.executable, str(replay_peers.SCRIPT), "replay-client"], tmp_path,
        client_params={"capture": str(BASIC),
                       "options": ["--speed", "0"] + ([] if changed else ["--timing", "strict"])},
        client_timeout=30, timeout=50)
    assert result["ok"], result["errors"]
    out = result["client_result"]["stdout"]
    lines = out.splitlines()
    verdicts = _verdicts(out)
    if changed:
        assert result["client_result"]["status"] == 1, out
        assert lines[-1] == "1 PV differs: DEMO:BASIC:MODE", out
        assert "value: 3 -> 4" in out
        assert all(" DEMO:BASIC:COUNTER " in line for line in verdicts.get("timing", [])), out
    else:  # strict: the counter's reads and subscription differ (unless it agrees by chance)
        differing = verdicts.get("DIFFERS", [])
        assert result["client_result"]["status"] == (1 if differing else 0), out
        assert all(" DEMO:BASIC:COUNTER " in line for line in differing), out
        assert "timing" not in verdicts
        assert not differing or lines[-1] == "1 PV differs: DEMO:BASIC:COUNTER"


@pytest.mark.parametrize("speed", [0, 1])
def test_client_replay_against_the_replay_server(real_capture: dict[str, Any],
                                                 speed: float) -> None:
    """The two halves agree, even in timing: the replay server answers the replayed
    client as the softioc of the capture did (the client's writes drive one
    subscription, the counter's own clock the other), at the captured pace and as
    fast as it answers, the client coming after the server's timeline has run out."""
    recording = load(real_capture["pcap"])

    async def body() -> Any:
        [replay] = serve(recording, [0], speed=8, beacon_address=None)
        async with replay:
            await asyncio.wait_for(replay.played.wait(), 10)
            return await replay_clients(recording, [(LOOPBACK, replay.server.udp_port)],
                                        speed=speed, latency_slack=2)

    outcomes = run(body())
    assert len(outcomes) > 30
    assert [(o.operation.describe(), o.error, [str(d) for d in o.differences])
            for o in outcomes if o.differences or o.error] == []


# ------------------------------------------- pyepics against the replay server


@pytest.fixture(scope="module")
def pyepics_session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``shark replay BASIC --as-server`` with pyepics and a garbage sender as clients,
    in the private namespace when there is one."""
    reason = peers.peers_missing()
    if reason:
        pytest.skip(reason)
    result, done = pyepics_sessions.run_session(
        replay_peers.SCRIPT, tmp_path_factory.mktemp("replay-server"), client_timeout=30,
        timeout=50)
    assert result is not None, done
    assert not result["errors"], (result, done["stderr"])
    return result


def test_pyepics_reads_the_captured_values_and_metadata(pyepics_session: dict[str, Any]
                                                        ) -> None:
    seen = pyepics_session["client_result"]
    truth = manifest(BASIC)
    assert seen["read_before_s"] < 2.4  # the reads came before the capture's writes
    for pv in truth["pvs"]:
        assert seen["native"][pv["pv"]] == [pv["native_dbr_type"], pv["element_count"],
                                            pv["write_access"]]
    gets = [op for op in truth["clients"][0]["ops"] if op["op"] == "get"]
    first_plain = {}
    for get in gets:
        if get["form"] == "plain":
            first_plain.setdefault(get["pv"], get["value"])
    # pyepics subscribed to the counter first: it went on from where the captured
    # subscription began (a PV subscribed to only goes forwards).
    counter = "DEMO:BASIC:COUNTER"
    assert seen["plain"][counter] >= 21.0
    assert {name: seen["plain"][name] for name in first_plain if name != counter} == {
        name: value for name, value in first_plain.items() if name != counter}
    captured = {(g["pv"], g["form"]): g for g in gets}
    for key in [("DEMO:BASIC:TEMP", "ctrl"), ("DEMO:BASIC:STATE", "ctrl"),
                ("DEMO:BASIC:TEMP", "time"), ("DEMO:BASIC:MODE", "time")]:
        ours = seen[key[1]][key[0]]
        theirs = captured[key]
        assert ours["value"] == theirs["value"]
        for name, value in theirs["meta"].items():
            if name == "timestamp":
                assert ours[name] == pytest.approx(value, abs=1e-6)
            elif name != "posixseconds":
                assert ours[name] == value, (key, name)
    # A PV whose metadata was not captured is served with defaults.
    mode = seen["ctrl"]["DEMO:BASIC:MODE"]
    assert (mode["units"], mode["upper_ctrl_limit"], mode["severity"]) == ("", 0, 0)
    assert seen["time"]["DEMO:BASIC:STATE"]["severity"] == 0


def test_pyepics_subscription_gets_the_captured_sequence(pyepics_session: dict[str, Any]
                                                         ) -> None:
    updates = pyepics_session["client_result"]["counter"]
    values = [value for _, value, _ in updates]
    # The captured subscription's sequence, from its first update on.
    assert values == [float(n) for n in range(21, 32)]
    captured = manifest(BASIC)["clients"][0]["subscriptions"]["counter_time"]["updates"]
    for (_, _, ours), theirs in zip(updates[-11:], captured, strict=True):
        assert ours == pytest.approx(theirs["timestamp"], abs=1e-6)
    times = [t for t, _, _ in updates[-11:]]
    span = captured[-1]["t_rel"] - captured[0]["t_rel"]
    assert times[-1] - times[0] == pytest.approx(span, abs=0.25)  # the original pace


def test_pyepics_write_notify_and_the_timeline_end(pyepics_session: dict[str, Any]) -> None:
    seen = pyepics_session["client_result"]
    assert seen["put"] == 1 and seen["label_after"] == "replayed"
    # pyepics acts out the captured client, and did not make its writes: the values
    # stay as they were before them (the counter, on the server's clock, went on).
    assert seen["end"] == {"DEMO:BASIC:MODE": 3, "DEMO:BASIC:ENABLE": 0,
                           "DEMO:BASIC:LABEL": "replayed"}
    assert pyepics_session["server"]["returncode"] == 0
    assert "serving 7 PVs of 127.0.0.1:5064" in pyepics_session["server"]["stdout"]
    assert "DEMO:BASIC:MODE (127.0.0.1:5064): no GR/CTRL reply captured" in \
        pyepics_session["server"]["stderr"]


def test_pyepics_reads_of_the_special_types(pyepics_session: dict[str, Any]) -> None:
    """A read of DBR_PUT_ACKT fails (ECA_GETFAIL, as RSRV answers it: libca tells the
    caller) and the circuit goes on: the next read on it is answered."""
    special = pyepics_session["client_result"]["special"]
    assert special["put_ackt"].endswith("status code: 152"), special  # ECA_GETFAIL
    assert special["connected"] and isinstance(special["after"], float), special


def test_garbage_does_not_disturb_pyepics(pyepics_session: dict[str, Any]) -> None:
    garbage = pyepics_session["garbage"]
    assert garbage["circuits"] >= 5 and garbage["closed"] == garbage["circuits"]
    assert garbage["datagrams"] >= 20
    assert pyepics_session["client_result"]["put"] == 1  # served all along

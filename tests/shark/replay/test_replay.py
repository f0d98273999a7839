"""``shark replay``: a capture's server side as a stand-in IOC, its client side as a check.

* The recording model, from the project's captures and their manifests.
* In process, on free loopback ports: the replay server plays a timeline (pace, alarms,
  timestamps, loop, several servers); the client replay against the replay server.
* Real peers, in the private network namespace (``peers.run_scenario``):
  - a capture of pyepics against softioc with records that do not change by
    themselves, made once for the module (:data:`RECORDS`, :func:`_capture_client_main`);
  - that capture replayed ``--as-client`` against a fresh softioc with the same records
    (no difference) and with one record changed (reported, exit status 1);
  - ``captures/softioc_pyepics_basic.pcap`` replayed ``--as-server`` by the command line
    while pyepics (libca) reads, subscribes and writes, and while another client sends
    random bytes. This module is also the script run inside the namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import peers
import pytest
from builders import OWN_CAPTURES, capture

from decoder import ECA, AccessRights, EventMask
from decoder.dbr import DBRType, DBRValue
from shark.cli import main as shark_main
from shark.peers.client import Client
from shark.replay import Answer, RecordedServer, load, replay_clients, serve
from shark.replay.compare import differences

HERE = Path(__file__).resolve()
BASIC = OWN_CAPTURES / "softioc_pyepics_basic.pcap"
MONITORS = OWN_CAPTURES / "softioc_pyepics_monitors.pcap"
LOOPBACK = peers.LOOPBACK

#: softioc records whose values change only when a client writes: a capture of them
#: replayed against a fresh IOC must give the same answers.
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
]
NAMES = [record["name"] for record in RECORDS]
#: The deliberate change: another value and other units.
CHANGED = [{**RECORDS[0], "value": 22.5, "fields": {**RECORDS[0]["fields"], "EGU": "K"}},
           *RECORDS[1:]]


def manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.with_suffix(".json").read_text())


def run(coro: Any, timeout: float = 20.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def cli(*argv: str) -> tuple[int, str, str]:
    """``shark ARGV`` in process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = shark_main(list(argv))
    return status, out.getvalue(), err.getvalue()


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
        f"latency: {captured.latency * 1e3:.1f} ms -> {(captured.latency + 0.5) * 1e3:.1f} ms"]
    subscribe = next(op for op in client.operations if op.kind == "subscribe")
    updates = [Answer(0, 0.001, data=u.data) for u in subscribe.updates]
    updates[3] = Answer(0, None, data=DBRValue(DBRType.TIME_DOUBLE, [0.0], status=3,
                                               severity=2))
    assert [str(d) for d in differences(subscribe, updates[0], updates[:-1], 0.1)] == [
        "updates: 11 -> 10", "update 4 value: 24.0 -> 0.0", "update 4 severity: 0 -> 2",
        "update 4 status: 0 -> 3"]
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
    status, _, err = cli("replay", str(HERE), "--as-client", "--dry-run")
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
    result = peers.run_scenario(RECORDS, [sys.executable, str(HERE), "capture-client"],
                                work, pcap=pcap, client_timeout=30, timeout=50)
    assert result["ok"], result["errors"]
    return {"pcap": pcap, "seen": result["client_result"]}


def _replay_against_softioc(records: list[dict[str, Any]], pcap: Path, work: Path
                            ) -> dict[str, Any]:
    result = peers.run_scenario(records, [sys.executable, str(HERE), "replay-client"], work,
                                client_params={"capture": str(pcap)}, client_timeout=30,
                                timeout=50)
    assert result["ok"], result["errors"]
    return result["client_result"]


def test_as_client_reproduces_the_captured_answers(real_capture: dict[str, Any],
                                                   tmp_path: Path) -> None:
    replayed = _replay_against_softioc(RECORDS, real_capture["pcap"], tmp_path)
    assert replayed["status"] == 0, replayed["stdout"]
    summary = replayed["stdout"].splitlines()[-1]
    assert summary.endswith(" 0 differ") and "DIFFERS" not in replayed["stdout"]
    assert "subscribe RPL:SETPOINT DBR_TIME_DOUBLE[0] mask=VALUE|ALARM  same" in \
        replayed["stdout"]


def test_as_client_reports_a_changed_record(real_capture: dict[str, Any],
                                            tmp_path: Path) -> None:
    replayed = _replay_against_softioc(CHANGED, real_capture["pcap"], tmp_path)
    out = replayed["stdout"]
    assert replayed["status"] == 1, out
    differing = [line for line in out.splitlines() if line.endswith("DIFFERS")]
    assert differing and all(" RPL:TEMP " in line for line in differing)
    assert "value: 21.5 -> 22.5" in out and "units: 'degC' -> 'K'" in out
    assert "same" in out  # the other records are as captured


def test_client_replay_against_the_replay_server(real_capture: dict[str, Any]) -> None:
    """The two halves agree: the replay server answers the replayed client as the
    softioc of the capture did (the client's writes drive its subscription)."""
    recording = load(real_capture["pcap"])

    async def body() -> Any:
        [replay] = serve(recording, [0], beacon_address=None)
        async with replay:
            return await replay_clients(recording, [(LOOPBACK, replay.server.udp_port)],
                                        speed=0, latency_slack=2)

    outcomes = run(body())
    assert len(outcomes) > 30
    assert [(o.operation.describe(), o.error, o.differences) for o in outcomes
            if o.differs] == []


# ------------------------------------------- pyepics against the replay server


@pytest.fixture(scope="module")
def pyepics_session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``shark replay BASIC --as-server`` with pyepics and a garbage sender as clients,
    in the private namespace when there is one."""
    reason = peers.peers_missing()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("replay-server")
    spec = work / "spec.json"
    spec.write_text(json.dumps({"workdir": str(work), "client_timeout": 30}))
    argv = [sys.executable, str(HERE), "serve", str(spec)]
    prefix = peers.namespace_command()
    if prefix:
        argv = [*prefix, *argv, "--netns"]
    done = peers.run_bounded(argv, timeout=50)
    result_path = work / "result.json"
    assert result_path.exists(), done
    result = json.loads(result_path.read_text())
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
    assert {name: seen["plain"][name] for name in first_plain} == first_plain
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
    assert values[0] == 20.0 and values[-11:] == [float(n) for n in range(21, 32)]
    captured = manifest(BASIC)["clients"][0]["subscriptions"]["counter_time"]["updates"]
    for (_, _, ours), theirs in zip(updates[-11:], captured, strict=True):
        assert ours == pytest.approx(theirs["timestamp"], abs=1e-6)
    times = [t for t, _, _ in updates[-11:]]
    span = captured[-1]["t_rel"] - captured[0]["t_rel"]
    assert times[-1] - times[0] == pytest.approx(span, abs=0.25)  # the original pace


def test_pyepics_write_notify_and_the_timeline_end(pyepics_session: dict[str, Any]) -> None:
    seen = pyepics_session["client_result"]
    assert seen["put"] == 1 and seen["label_after"] == "replayed"
    assert seen["end"] == {"DEMO:BASIC:MODE": 42, "DEMO:BASIC:ENABLE": 1,
                           "DEMO:BASIC:LABEL": "replayed"}
    assert pyepics_session["server"]["returncode"] == 0
    assert "serving 7 PVs of 127.0.0.1:5064" in pyepics_session["server"]["stdout"]
    assert "DEMO:BASIC:MODE (127.0.0.1:5064): no GR/CTRL reply captured" in \
        pyepics_session["server"]["stderr"]


def test_garbage_does_not_disturb_pyepics(pyepics_session: dict[str, Any]) -> None:
    garbage = pyepics_session["garbage"]
    assert garbage["circuits"] >= 5 and garbage["closed"] == garbage["circuits"]
    assert garbage["datagrams"] >= 20
    assert pyepics_session["client_result"]["put"] == 1  # served all along


# ------------------------------------------------------- scripts run inside the namespace


def _capture_client_main(params_path: str) -> int:
    """pyepics against softioc serving :data:`RECORDS`: what the replay must redo."""
    from epics import ca

    params = peers.load_client_params([params_path])
    chids = {name: ca.create_channel(name, connect=False, auto_cb=False) for name in NAMES}
    seen: dict[str, Any] = {"connected": {n: ca.connect_channel(c, timeout=5)
                                          for n, c in chids.items()}}
    for form, promote in (("plain", {}), ("time", {"use_time": True}),
                          ("ctrl", {"use_ctrl": True})):
        seen[form] = {n: ca.get_with_metadata(c, ftype=ca.promote_type(c, **promote),
                                              timeout=5) for n, c in chids.items()}
    ca.put(chids["RPL:MODE"], 7, wait=False)
    seen["put_state"] = ca.put(chids["RPL:STATE"], 2, wait=True, timeout=5)
    seen["mode_after"] = ca.get(chids["RPL:MODE"], timeout=5)
    updates: list[Any] = []
    sub = ca.create_subscription(chids["RPL:SETPOINT"], use_time=True,
                                 callback=lambda value=None, **_: updates.append(value))
    time.sleep(0.2)
    for value in (1.25, 2.5):
        ca.put(chids["RPL:SETPOINT"], value, wait=True, timeout=5)
        time.sleep(0.2)
    ca.clear_subscription(sub[2])
    ca.put(chids["RPL:WAVE"], [4.0, 5.0], wait=True, timeout=5)
    seen["wave_after"] = ca.get(chids["RPL:WAVE"], timeout=5)
    seen["updates"] = updates
    for chid in chids.values():
        ca.clear_channel(chid)
    ca.finalize_libca()
    peers.save_client_result(params, seen)
    return 0


def _replay_client_main(params_path: str) -> int:
    """``shark replay CAPTURE --as-client`` against the scenario's softioc."""
    params = peers.load_client_params([params_path])
    status, out, err = cli("replay", params["capture"], "--as-client", "--to",
                           f"{LOOPBACK}:{params['port']}", "--latency-slack", "2")
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
    port = peers.SERVER_PORT if netns else peers.free_port()
    repeater = peers.REPEATER_PORT if netns else peers.free_port(avoid=[port])
    env = {**os.environ, **peers.epics_env(port, repeater),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent),
                                                       os.environ.get("PYTHONPATH")]))}
    out: dict[str, Any] = {"errors": []}
    # pyepics starts first and waits for the word: the replay's clock starts with the
    # server, and the reads must come before the captured writes however slow the
    # machine is to start Python.
    go_path, result_path = work / "go.json", work / "client_result.json"
    params_path = work / "client_params.json"
    params_path.write_text(json.dumps({"result_path": str(result_path), "go": str(go_path)}))
    client = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE), "pyepics-client", str(params_path), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
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
        try:
            _, err = await asyncio.wait_for(client.communicate(), spec["client_timeout"])
        except asyncio.TimeoutError:
            client.kill()
            _, err = await client.communicate()
            out["errors"].append("pyepics client timed out")
        stop.set()
        out["garbage"] = await garbage
        if client.returncode:
            out["errors"].append(f"pyepics exit {client.returncode}: {err.decode()[-3000:]}")
        if result_path.exists():
            out["client_result"] = json.loads(result_path.read_text())
        else:
            out["errors"].append("pyepics client wrote no result")
    finally:
        for proc in (client, server):
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(client.wait(), 10)
        rest, err = await asyncio.wait_for(server.communicate(), 10)
        out["server"] = {"returncode": server.returncode, "stderr": err.decode(),
                         "stdout": (ready + rest).decode()}
    return out


def _serve_main(spec_path: str, netns: bool) -> int:
    spec = json.loads(Path(spec_path).read_text())
    if netns:
        peers.bring_up_loopback()
    peers.become_subreaper()  # caRepeater, spawned by libca, must not outlive us
    try:
        result = run(_serve_pyepics(spec, netns), timeout=spec["client_timeout"] + 15)
    except Exception as exc:  # reported in the result
        result = {"errors": [f"{type(exc).__name__}: {exc}"]}
    finally:
        strays = peers.stop_strays()
    result["strays_stopped"] = strays
    (Path(spec["workdir"]) / "result.json").write_text(json.dumps(peers.jsonable(result)))
    return 0


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
    for form, promote in (("time", {"use_time": True}), ("ctrl", {"use_ctrl": True})):
        seen[form] = {n: ca.get_with_metadata(c, ftype=ca.promote_type(c, **promote),
                                              timeout=5) for n, c in chids.items()}
    seen["read_before_s"] = time.time() - started
    seen["put"] = ca.put(chids["DEMO:BASIC:LABEL"], "replayed", wait=True, timeout=5)
    seen["label_after"] = ca.get(chids["DEMO:BASIC:LABEL"], timeout=5)
    deadline = time.time() + 8
    while time.time() < deadline and (not seen["counter"] or seen["counter"][-1][1] < 31):
        time.sleep(0.05)
    time.sleep(0.2)
    seen["end"] = {n: ca.get(chids[n], timeout=5)
                   for n in ("DEMO:BASIC:MODE", "DEMO:BASIC:ENABLE", "DEMO:BASIC:LABEL")}
    del monitor
    ca.finalize_libca()
    peers.save_client_result(params, seen)
    return 0


def main(argv: list[str]) -> int:
    mode, path = argv[0], argv[1]
    if mode == "capture-client":
        return _capture_client_main(path)
    if mode == "replay-client":
        return _replay_client_main(path)
    if mode == "serve":
        return _serve_main(path, "--netns" in argv)
    if mode == "pyepics-client":
        return _pyepics_client_main(path)
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

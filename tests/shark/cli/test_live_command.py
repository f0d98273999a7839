"""``shark live`` against real peers: a softioc, a pyepics client, and shark capturing
``lo`` at the same time, in a private network namespace.

The scenario is :func:`peers.run_scenario`'s: the runner starts the IOC, then the client
script below. The client starts ``shark live -i lo --format jsonl -w FILE`` (and the
TUI's live source, headless, in its own process) before it touches CA, does its reads,
write and subscription, then stops shark with SIGINT as a person would with Ctrl-C. The
tests compare what shark printed with what the client did and saw.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import peers
import pytest
from builders import ROOT

from shark.cli import main as shark_main

RECORDS = [
    {"name": "LIVE:TEMP", "type": "ai", "value": 21.5, "fields": {"EGU": "degC", "PREC": 1}},
    {"name": "LIVE:SETPOINT", "type": "longout", "value": 7},
    {"name": "LIVE:NAME", "type": "stringin", "value": "shark live"},
    {"name": "LIVE:COUNTER", "type": "calc", "fields": {"SCAN": ".1 second", "CALC": "VAL+1"}},
]
PVS = [r["name"] for r in RECORDS]

CLIENT = textwrap.dedent('''
    """Start shark live (and the TUI's live source), then read, write and subscribe."""
    import os, signal, subprocess, sys, time
    from pathlib import Path

    import peers

    params = peers.load_client_params()
    sys.path.insert(0, params["root"])
    work = Path(params["result_path"]).parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([params["root"], os.environ["PYTHONPATH"]]))
    out, err = open(work / "live.jsonl", "w"), open(work / "live.err", "w")
    live = subprocess.Popen(
        [sys.executable, "-m", "shark", "live", "-i", "lo", "--format", "jsonl",
         "-w", str(work / "live.pcapng")], stdout=out, stderr=err, env=env)
    deadline = time.monotonic() + 20
    while "capturing on" not in (work / "live.err").read_text():
        if live.poll() is not None or time.monotonic() > deadline:
            sys.exit("shark live did not start: " + (work / "live.err").read_text())
        time.sleep(0.02)

    from tui.model import Model
    from tui.source import LiveSource

    model = Model()
    source = LiveSource(model, "lo")
    source.start()

    from epics import ca

    seen = {"get": {}, "monitor": []}
    chids = {name: ca.create_channel(name, connect=False) for name in params["pvs"]}
    seen["connected"] = {n: ca.connect_channel(c, timeout=5) for n, c in chids.items()}
    for name, chid in chids.items():
        seen["get"][name] = ca.get(chid, timeout=5)
    seen["put_status"] = ca.put(chids["LIVE:SETPOINT"], 42, wait=True, timeout=5)
    seen["get_after_put"] = ca.get(chids["LIVE:SETPOINT"], timeout=5)

    def updated(value=None, **_):
        seen["monitor"].append(value)

    subscription = ca.create_subscription(chids["LIVE:COUNTER"], callback=updated)
    end = time.monotonic() + 0.7
    while time.monotonic() < end:
        ca.poll(0.01)
    ca.clear_subscription(subscription[2])
    ca.finalize_libca()
    time.sleep(0.3)  # the last packets reach the ring (its blocks are handed over in 50 ms)
    live.send_signal(signal.SIGINT)
    seen["shark_exit"] = live.wait(15)
    source.stop()
    source.join(5)
    seen["tui"] = {
        "messages": model.messages, "error": source.error,
        "channels": sorted({row.pv for row in model.channels.values()}),
        "counter_updates": sum(row.updates for row in model.channels.values()
                               if row.pv == "LIVE:COUNTER"),
        "dropped": source.stats().dropped,
    }
    peers.save_client_result(params, seen)
''')


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    reason = peers.peers_missing()
    if reason:
        pytest.skip(reason)
    if peers.namespace_command() is None:
        pytest.skip("needs root and unshare: shark live runs in a private network namespace")
    work = tmp_path_factory.mktemp("live-command")
    client = work / "client.py"
    client.write_text(CLIENT)
    result = peers.run_scenario(RECORDS, [sys.executable, str(client)], work / "scenario",
                                client_params={"pvs": PVS, "root": str(ROOT)},
                                client_timeout=40)
    assert result["ok"], (result["errors"], result["processes"]["client"]["stderr_tail"])
    result["work"] = work / "scenario"
    lines = (result["work"] / "live.jsonl").read_text().splitlines()
    result["messages"] = [json.loads(line) for line in lines]
    result["stderr"] = (result["work"] / "live.err").read_text()
    return result


def _server(messages: list[dict[str, Any]], command: str, pv: str) -> list[dict[str, Any]]:
    return [m for m in messages
            if m["command"] == command and m["pv"] == pv and m["sender"] == "server"]


def test_it_stops_on_ctrl_c_with_a_summary(scenario: dict[str, Any]) -> None:
    seen = scenario["client_result"]
    assert seen["shark_exit"] == 0
    assert "shark: capturing on lo" in scenario["stderr"]
    assert ", 0 dropped by the kernel;" in scenario["stderr"]
    assert "DROPPED" not in {m["command"] for m in scenario["messages"]}


def test_channels_and_reads_match_what_the_client_did(scenario: dict[str, Any]) -> None:
    seen, messages = scenario["client_result"], scenario["messages"]
    assert all(seen["connected"].values())
    created = [m["pv"] for m in messages if m["command"] == "CREATE_CHAN"
               and m["sender"] == "client"]
    assert sorted(created) == sorted(PVS)
    searched = {m["pv"] for m in messages if m["command"] == "SEARCH" and m["transport"] == "udp"}
    assert searched >= set(PVS)
    for pv, value in seen["get"].items():
        if pv == "LIVE:SETPOINT":
            continue
        replies = _server(messages, "READ_NOTIFY", pv)
        assert replies, pv
        assert replies[0]["value"] == value and replies[0]["status"] == "ECA_NORMAL"
        assert replies[0]["latency"] is not None and replies[0]["request_frame"]
    assert [r["value"] for r in _server(messages, "READ_NOTIFY", "LIVE:SETPOINT")] == [
        seen["get"]["LIVE:SETPOINT"], seen["get_after_put"]] == [7, 42]


def test_the_write_and_the_subscription(scenario: dict[str, Any]) -> None:
    seen, messages = scenario["client_result"], scenario["messages"]
    [write] = [m for m in messages if m["command"] == "WRITE_NOTIFY" and m["sender"] == "client"]
    assert (write["pv"], write["value"]) == ("LIVE:SETPOINT", 42)
    [reply] = _server(messages, "WRITE_NOTIFY", "LIVE:SETPOINT")
    assert seen["put_status"] == 1 and reply["status"] == "ECA_NORMAL"
    sent = _server(messages, "EVENT_ADD", "LIVE:COUNTER")
    updates = [m["value"] for m in sent if m["value"] is not None]
    received = seen["monitor"]
    assert len(received) >= 4  # 0.7 s of a 10 Hz record
    # What the client took before it cancelled, in order; what it did not take yet was
    # on its way (more of it on a loaded machine), and nothing came after the reply to
    # the cancel (the update without a value).
    assert updates[: len(received)] == received
    [cancelled] = [m["frame"] for m in sent if m["value"] is None]
    assert all(m["frame"] < cancelled for m in sent if m["value"] is not None)


def test_the_capture_file_holds_what_was_shown(scenario: dict[str, Any],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert shark_main(["read", str(scenario["work"] / "live.pcapng"), "--format", "jsonl"]) == 0
    saved = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    keys = ("frame", "command", "pv", "value", "src", "dst")
    assert [[m[k] for k in keys] for m in saved] == [
        [m[k] for k in keys] for m in scenario["messages"]]


def test_the_tui_live_source_saw_the_same(scenario: dict[str, Any]) -> None:
    tui, messages = scenario["client_result"]["tui"], scenario["messages"]
    assert tui["error"] is None and tui["dropped"] == 0
    assert tui["channels"] == sorted(PVS)
    values = [m for command in ("EVENT_ADD", "READ_NOTIFY")
              for m in _server(messages, command, "LIVE:COUNTER") if m["value"] is not None]
    assert tui["counter_updates"] == len(values)  # subscription updates and read replies
    assert abs(tui["messages"] - len(messages)) <= 20  # it started a moment later


def test_without_the_privilege_the_message_says_how(tmp_path: Path) -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None or not peers.namespace_command():
        pytest.skip("needs root and setpriv (util-linux) to drop CAP_NET_RAW")
    for command in ("live", "tui"):  # the TUI says it before taking the terminal
        done = subprocess.run([setpriv, "--bounding-set", "-net_raw", sys.executable, "-m",
                               "shark", command, "-i", "lo"], capture_output=True, text=True,
                              timeout=30, cwd=ROOT)
        assert done.returncode == 1
        assert "live capture needs root or the CAP_NET_RAW capability" in done.stderr
        assert "Traceback" not in done.stderr


def test_bad_options() -> None:
    assert shark_main(["live", "--filter", "colour=blue"]) == 2
    assert shark_main(["live", "-i", "shark-nope0"]) == 1


def test_kernel_drops_are_marked_where_they_happened() -> None:
    from shark.cli.live import _Printer

    out = io.StringIO()
    _Printer(out, "jsonl", None, None).drops(3, 5)
    notice = json.loads(out.getvalue())
    assert (notice["command"], notice["dropped"], notice["total_dropped"]) == ("DROPPED", 3, 5)
    assert {"frame", "pv", "value", "latency"} <= notice.keys() and notice["frame"] is None
    out = io.StringIO()
    _Printer(out, "text", None, None).drops(3, 5)
    assert "the kernel dropped 3 frames" in out.getvalue()

"""``--wire`` against a real IOC: what ``shark get`` and ``shark put`` show of the wire
is, line for line, what ``shark read`` prints of the capture they saved (``--write``),
with a softioc (EPICS base's RSRV) at the other end, in a private network namespace
pinned to 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import catools_peers
import peers
import pytest

from shark.cli import main


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path]:
    missing = peers.peers_missing()
    if missing:
        pytest.skip(missing)
    work = tmp_path_factory.mktemp("wire")
    get, put = work / "get.pcapng", work / "put.pcapng"
    steps = [
        {"argv": ["get", "--wire", "--write", str(get), "TEST:AI", "TEST:WFSHORT"]},
        {"argv": ["put", "-c", "--wire", "--write", str(put), "TEST:AO", "2.5"]},
    ]
    result = peers.run_scenario(
        catools_peers.RECORDS, [sys.executable, str(catools_peers.SCRIPT), "client"],
        work, client_params={"steps": steps}, client_timeout=60,
        max_array_bytes=catools_peers.MAX_ARRAY_BYTES)
    assert result["ok"], result["errors"]
    return result["client_result"], work


@pytest.mark.parametrize(("step", "saved", "tool_lines"), [
    (0, "get.pcapng", ["TEST:AI                        3.14159"]),
    (1, "put.pcapng", ["Old : TEST:AO                        1.5",
                       "New : TEST:AO                        2.5"]),
])
def test_the_wire_shown_is_shark_read_of_the_capture(
        ran: tuple[list[dict[str, Any]], Path], step: int, saved: str, tool_lines: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    results, work = ran
    tool = results[step]
    assert tool["status"] == 0, tool["output"]
    assert main(["read", str(work / saved)]) == 0
    lines = tool["output"].splitlines()
    wire = capsys.readouterr().out.splitlines()
    assert wire, "the capture saved holds the exchange"
    assert [line for line in lines if line not in wire][:len(tool_lines)] == tool_lines
    assert [line for line in lines if line in wire] == wire  # every one, in order
    commands = {line.split()[7] for line in wire}
    assert {"SEARCH", "CREATE_CHAN"} <= commands
    assert any(line.endswith(" ms]") for line in wire)  # with latencies
    assert all("127.0.0.1:" in line.split()[2] for line in wire)  # loopback only

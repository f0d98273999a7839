"""``shark serve FILE``: the command line, and pyepics (libca) against it reading,
writing and monitoring every type, in the private network namespace when there is one
(``tests/helpers/ioc_peers.py`` holds the IOC file and the client)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import ioc_peers
import peers
import pyepics_sessions
import pytest
from builders import ROOT

from decoder import AlarmSeverity, AlarmStatus
from decoder.dbr import DBRType
from shark.cli import main
from shark.ioc import Ioc, load
from shark.peers.client import Client

EXAMPLE = ROOT / "examples" / "ioc.toml"


def test_list_prints_the_pvs_and_serves_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(EXAMPLE), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "OVEN:TEMP  double ro = 21.5 degC (noise of ±0.25 every 1 s)"
    assert "OVEN:MODE  enum rw = 'Off'" in lines
    assert "OVEN:NOTE  char[128] rw = 'Preheat for ten minutes before the first tray goes in.'" \
        in lines
    assert len(lines) == 9


def test_a_bad_file_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[pv]]\nname = 'A'\nvalue = 1.0\nunit = 'mm'\n")
    assert main(["serve", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"shark serve: error: {path}: pv 'A': unknown key 'unit' "
                   f"(did you mean 'units'?)\n")
    assert main(["serve", str(tmp_path / "none.toml")]) == 2
    assert "No such file" in capsys.readouterr().err


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    reason = peers.peers_missing()
    if reason:
        pytest.skip(reason)
    result, done = pyepics_sessions.run_session(
        ioc_peers.SCRIPT, tmp_path_factory.mktemp("serve"), client_timeout=30, timeout=45)
    assert result is not None, done
    assert not result["errors"], (result, done["stderr"])
    return result


def test_the_server_says_where_it_listens_and_stops_cleanly(session: dict[str, Any]) -> None:
    server = session["server"]
    assert server["stdout"].startswith(f"serving 14 PVs on 127.0.0.1:{server['port']} ")
    assert server["returncode"] == 0 and server["stderr"] == ""


def test_pyepics_sees_every_type_count_and_access(session: dict[str, Any]) -> None:
    seen = session["client_result"]
    assert all(seen["connected"].values())
    assert seen["native"] == {
        "DOUBLE": ["DOUBLE", 1, True], "FLOAT": ["FLOAT", 1, True], "LONG": ["LONG", 1, True],
        "SHORT": ["INT", 1, True], "CHAR": ["CHAR", 1, True], "ENUM": ["ENUM", 1, True],
        "STRING": ["STRING", 1, True], "WAVE": ["DOUBLE", 5, True],
        "FLOATS": ["FLOAT", 3, True], "LONGS": ["LONG", 4, True], "TEXT": ["CHAR", 80, True],
        "RO": ["LONG", 1, False], "COUNTER": ["LONG", 1, True], "RAMP": ["DOUBLE", 1, True]}


def test_pyepics_reads_values_and_metadata(session: dict[str, Any]) -> None:
    seen = session["client_result"]
    plain = seen["plain"]
    assert [plain[n] for n in ("DOUBLE", "FLOAT", "LONG", "SHORT", "CHAR", "ENUM", "STRING")
            ] == [1.5, 2.25, 70000, -3, 65, 1, "hello"]
    assert (plain["WAVE"], plain["FLOATS"], plain["LONGS"]) == (
        [1.5, 2.5, -3.5], [0.5, 1.5, 2.5], [1, 2, 3, 4])
    assert seen["text"] == "a text longer than the forty characters a CA string holds"
    assert seen["string"]["DOUBLE"] == "1.500" and seen["string"]["ENUM"] == "One"
    ctrl = seen["ctrl"]
    double = ctrl["DOUBLE"]
    assert (double["units"], double["precision"]) == ("mm", 3)
    assert [double[k] for k in ("upper_disp_limit", "lower_disp_limit", "upper_alarm_limit",
                                "upper_warning_limit", "lower_warning_limit",
                                "lower_alarm_limit", "upper_ctrl_limit", "lower_ctrl_limit")
            ] == [50, -50, 35, 30, -5, -15, 40, -20]
    assert ctrl["FLOAT"]["units"] == "V" and ctrl["FLOAT"]["precision"] == 2
    assert ctrl["FLOAT"]["upper_alarm_limit"] == "nan"  # no alarm limit: NaN, as an IOC says
    assert (ctrl["LONG"]["units"], ctrl["LONG"]["upper_ctrl_limit"]) == ("cts", 100000)
    assert ctrl["SHORT"]["lower_disp_limit"] == -100
    assert ctrl["ENUM"]["enum_strs"] == ["Zero", "One", "Two"]
    stamp = seen["time"]["DOUBLE"]["timestamp"]
    assert abs(stamp - session["started"]) < 60


def test_pyepics_writes_every_type(session: dict[str, Any]) -> None:
    seen = session["client_result"]
    assert set(seen["puts"].values()) == {1}
    after = {name: read["value"] for name, read in seen["after"].items()}
    for name, value in ioc_peers.PUTS:
        if name != "TEXT":
            assert after[name] == value, name
    assert seen["after_text"] == "short now"
    assert "Write access denied" in seen["read_only_put"] and after["RO"] == 5


def test_alarms_follow_the_limits_and_the_control_limits_hold(session: dict[str, Any]) -> None:
    seen = session["client_result"]
    double = seen["after"]["DOUBLE"]  # 32: beyond HIGH (30), below HIHI (35)
    assert (double["status"], double["severity"]) == (AlarmStatus.HIGH, AlarmSeverity.MINOR)
    enum = seen["after"]["ENUM"]  # state Two has severity MAJOR
    assert (enum["status"], enum["severity"]) == (AlarmStatus.STATE, AlarmSeverity.MAJOR)
    beyond = seen["beyond"]
    assert beyond["DOUBLE"]["value"] == 40.0  # 100 clipped to DRVH, and so past HIHI
    assert (beyond["DOUBLE"]["status"], beyond["DOUBLE"]["severity"]) == (
        AlarmStatus.HIHI, AlarmSeverity.MAJOR)
    assert beyond["LONG"]["value"] == 12345  # 200000 refused


def test_monitors_see_writes_alarms_and_scans(session: dict[str, Any]) -> None:
    updates = session["client_result"]["updates"]
    assert updates["DOUBLE"] == [[1.5, 0], [32.0, 1], [40.0, 2]]
    assert updates["ENUM"] == [[1, 0], [2, 2]]
    for name, value in ioc_peers.PUTS:
        if name != "TEXT":
            assert value in [update[0] for update in updates[name]], name
    assert updates["LONG"] == [[70000, 0], [12345, 0]]  # nothing of the refused write
    assert updates["RO"] == [[5, 0]]
    counter = [value for value, _ in updates["COUNTER"]]
    assert len(counter) >= 5 and counter == list(range(counter[0], counter[0] + len(counter)))
    ramp = [value for value, _ in updates["RAMP"]]
    assert set(ramp) <= {0.0, 0.25, 0.5, 0.75, 1.0} and len(ramp) >= 5
    assert any(b < a for a, b in zip(ramp, ramp[1:], strict=False))  # it starts again
    assert not any(math.isnan(v) for v in ramp)


def test_the_example_serves() -> None:
    """The README's file, served in process, read back by our own client."""
    async def body() -> list[Any]:
        async with Ioc(load(EXAMPLE), port=0, beacons=False) as ioc:
            async with Client([("127.0.0.1", ioc.server.udp_port)], timeout=3) as client:
                return [(await client.read(name, DBRType.STRING)).values for name in
                        ("OVEN:TEMP", "OVEN:MODE", "OVEN:PROFILE", "OVEN:RECIPE")]

    temp, mode, profile, recipe = asyncio.run(asyncio.wait_for(body(), 20))
    assert 21.0 <= float(temp[0]) <= 22.0
    assert (mode, recipe) == (["Off"], ["bread"])
    assert profile == ["20", "180", "180", "40"]

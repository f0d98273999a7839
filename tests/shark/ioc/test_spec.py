"""The IOC file: the example parses into what it says, and every mistake is one clear
line naming the file, the PV and the key."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from builders import ROOT

from decoder import AlarmSeverity, AlarmStatus
from decoder.dbr import DBRType
from shark.ioc import Beyond, Counter, Noise, Ramp, SpecError, load
from shark.ioc.spec import define, parse

EXAMPLE = ROOT / "examples" / "ioc.toml"


def test_the_example_file_is_the_readme_s() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    assert EXAMPLE.read_text() in blocks


def test_the_example_declares_what_it_says() -> None:
    spec = load(EXAMPLE)
    assert spec.prefix == "OVEN:"
    pvs = {pv.name: pv for pv in spec.pvs}
    assert {pv.data_type for pv in spec.pvs} == set(DBRType) & set(range(7))
    temp = pvs["TEMP"]
    assert (temp.value, temp.units, temp.precision, temp.writable) == ([21.5], "degC", 2, False)
    assert temp.limits == {"upper_disp_limit": 250, "lower_disp_limit": 0,
                           "upper_alarm_limit": 230, "upper_warning_limit": 200,
                           "lower_warning_limit": 10, "lower_alarm_limit": 5}
    assert temp.alarm_rule.hysteresis == 0.5
    assert temp.scan == Noise(1.0, amplitude=0.25)
    assert pvs["SETPOINT"].alarm_rule.severities == {"high": AlarmSeverity.MINOR}
    assert pvs["HEATER:POWER"].beyond is Beyond.REFUSE
    assert pvs["MODE"].enum_strings == ("Off", "Heating", "Holding", "Fault")
    assert pvs["MODE"].state_severities[3] == AlarmSeverity.MAJOR
    assert pvs["DOOR:CYCLES"].scan == Counter(5.0)
    assert pvs["FAN:DUTY"].scan == Ramp(0.5, stop=100, step=5, start=0)
    assert (pvs["PROFILE"].count, len(pvs["PROFILE"].value)) == (8, 4)
    note = pvs["NOTE"]
    assert bytes(note.value).decode().startswith("Preheat") and note.count == 128


def test_built_pvs_carry_prefix_metadata_and_alarm() -> None:
    pvs = {pv.name: pv for pv in load(EXAMPLE).build()}
    temp = pvs["OVEN:TEMP"]
    assert (temp.limits["upper_ctrl_limit"], math.isnan(temp.limits["lower_ctrl_limit"])) == (
        0.0, False)
    hot = define("T", value=235.0, alarm={"hihi": 230}).build()
    assert (hot.status, hot.severity) == (AlarmStatus.HIHI, AlarmSeverity.MAJOR)
    assert math.isnan(hot.limits["upper_warning_limit"])  # no severity: NaN, as an IOC says


@pytest.mark.parametrize(("keys", "value", "data_type", "count"), [
    ({}, 1.5, DBRType.DOUBLE, 1),
    ({}, 3, DBRType.LONG, 1),
    ({}, "text", DBRType.STRING, 1),
    ({"enum": ["a", "b"]}, "b", DBRType.ENUM, 1),
    ({}, [1.0, 2.0], DBRType.DOUBLE, 2),
    ({"type": "short", "count": 4}, None, DBRType.SHORT, 4),
])
def test_the_type_and_count_come_from_the_value_when_not_given(
        keys: dict[str, Any], value: Any, data_type: DBRType, count: int) -> None:
    spec = define("P", value=value, **keys)
    assert (spec.data_type, spec.count) == (data_type, count)


def test_defaults_without_a_value() -> None:
    assert define("A", type="string").value == [""]
    assert define("A", type="double", count=3).value == [0.0, 0.0, 0.0]
    assert define("A", type="enum", enum=["x", "y"]).value == [0]


def test_an_empty_list_is_an_array_with_no_elements_yet() -> None:
    # as a waveform never written: what a client reading it gets (0 elements)
    assert define("A", type="short", count=5, value=[]).value == []
    assert define("A", type="short", value=[]).value == [0]  # (a scalar has its value)


def _error(text: str, tmp_path: Path) -> str:
    path = tmp_path / "ioc.toml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message[len(str(path)) + 2:]


@pytest.mark.parametrize(("text", "message"), [
    ("[[pv]]\nname = 'A'\nunit = 'mm'\nvalue = 1.0",
     "pv 'A': unknown key 'unit' (did you mean 'units'?)"),
    ("[[pv]]\nvalue = 1.0", "pv #1: name: required, as text"),
    ("[[pv]]\nname = 'A'", "pv 'A': type: required when the value does not say it"),
    ("[[pv]]\nname = 'A'\ntype = 'int'", "pv 'A': type: 'int' is none of double, float"),
    ("[[pv]]\nname = 'A'\ntype = 'long'\nvalue = 'abc'",
     "pv 'A': value: 'abc' is not a number (type long)"),
    ("[[pv]]\nname = 'A'\nvalue = [1.0, 2.0]\ncount = 1", "pv 'A': value: 2 values for 1"),
    ("[[pv]]\nname = 'A'\nvalue = '" + "x" * 40 + "'", "longer than CA's 39 characters"),
    ("[[pv]]\nname = 'A'\ntype = 'string'\nunits = 'mm'", "pv 'A': units: a string PV has"),
    ("[[pv]]\nname = 'A'\nvalue = 1\nprecision = 2",
     "pv 'A': precision: a long PV has none (float and double only)"),
    ("[[pv]]\nname = 'A'\nvalue = 1.0\nalarm = { high = 'x' }",
     "pv 'A': alarm.high: expected a number, got 'x'"),
    ("[[pv]]\nname = 'A'\nvalue = 1.0\nalarm = { high = 5, hihi = 4 }",
     "pv 'A': alarm: limits must go lolo <= low <= high <= hihi"),
    ("[[pv]]\nname = 'A'\nvalue = 1.0\nalarm = { high = 5, high_severity = 'BAD' }",
     "pv 'A': alarm.high_severity: severity 'BAD' is none of NO_ALARM, MINOR"),
    ("[[pv]]\nname = 'A'\nvalue = 1.0\nalarm = { hgh = 5 }",
     "pv 'A': alarm: unknown key 'hgh' (did you mean 'high'?)"),
    ("[[pv]]\nname = 'A'\nvalue = 1.0\ndisplay = { low = 5, high = 1 }",
     "pv 'A': display: high (1) is not above low (5)"),
    ("[[pv]]\nname = 'A'\nvalue = 1.0\ncontrol = { high = 5, beyond = 'wrap' }",
     "pv 'A': control.beyond: 'wrap' is neither 'clip' nor 'refuse'"),
    ("[[pv]]\nname = 'A'\nenum = ['a', 'b']\nvalue = 'c'",
     "pv 'A': value: 'c' is not one of ['a', 'b'] (type enum)"),
    ("[[pv]]\nname = 'A'\nenum = ['a', 'b']\nvalue = 2",
     "pv 'A': value: state 2 is not one of the 2 states"),
    ("[[pv]]\nname = 'A'\nenum = ['a', ['b', 'LOUD']]", "pv 'A': enum: severity 'LOUD'"),
    ("[[pv]]\nname = 'A'\nvalue = 1\nenum = ['a']\ntype = 'long'",
     "pv 'A': enum: states are for an enum PV, not a long"),
    ("[[pv]]\nname = 'A'\nvalue = true", "pv 'A': type: true/false says no type"),
    ("[[pv]]\nname = 'A'\nvalue = 1.0\nscan = { kind = 'wave', period = 1 }",
     "pv 'A': scan.kind: 'wave' is none of ramp, noise, counter, call"),
    ("[[pv]]\nname = 'A'\nvalue = 1.0\nscan = { kind = 'ramp', period = 1 }",
     "pv 'A': scan.stop: required for a ramp"),
    ("[[pv]]\nname = 'A'\nvalue = 1.0\nscan = { kind = 'noise' }",
     "pv 'A': scan.period: required (seconds)"),
    ("[[pv]]\nname = 'A'\nvalue = 1.0\nscan = { kind = 'noise', period = 0 }",
     "pv 'A': scan.period: 0.0 is not above 0"),
    ("[[pv]]\nname = 'A'\nvalue = 'x'\nscan = { kind = 'counter', period = 1 }",
     "pv 'A': scan: a counter needs a numeric PV, not DBR_STRING"),
    ("[[pv]]\nname = 'A'\nvalue = 1\nscan = { kind = 'counter', period = 1, step = 0.5 }",
     "pv 'A': scan.step: expected a whole number, got 0.5"),
    ("[[pv]]\nname = 'A'\nvalue = 1\nscan = { kind = 'call', period = 1, "
     "function = 'nosuch_module_q:f' }",
     "pv 'A': scan.function: cannot import 'nosuch_module_q'"),
    ("[[pv]]\nname = 'A'\nvalue = 1\n[[pv]]\nname = 'A'\nvalue = 2",
     "pv 'A': declared twice"),
    ("prefix = 'X:'\n", "no PV declared (add a [[pv]] table)"),
    ("prefixes = 'X:'\n", "unknown key 'prefixes' (did you mean 'prefix'?)"),
    ("[[pv]\nname = 'A'", "not valid TOML"),
])
def test_a_mistake_is_one_line_naming_pv_and_key(text: str, message: str,
                                                 tmp_path: Path) -> None:
    assert message in _error(text, tmp_path)


def test_a_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="No such file"):
        load(tmp_path / "none.toml")


def test_a_call_finds_its_module_beside_the_file(tmp_path: Path) -> None:
    (tmp_path / "ovenmodel_beside.py").write_text("def tick(value, t):\n    return value + 1\n")
    path = tmp_path / "ioc.toml"
    path.write_text("[[pv]]\nname = 'A'\nvalue = 1\n"
                    "scan = { kind = 'call', period = 0.5, function = 'ovenmodel_beside:tick' }")
    (pv,) = load(path).pvs
    assert pv.scan is not None and pv.scan.function(1, 0.0) == 2
    assert pv.scan.describe() == "ovenmodel_beside:tick(value, elapsed) every 0.5 s"


def test_parse_takes_a_document() -> None:
    spec = parse({"pv": [{"name": "A", "value": 1.0}]})
    assert spec.pvs[0].name == "A" and spec.source == "<ioc>"

"""Alarms from limits as an ai record's ``checkAlarms`` computes them, and from enum
states as an mbbi's; applied by :class:`IocPV` on every new value, not on an alarm
given explicitly."""

from __future__ import annotations

import math

import pytest

from decoder import AlarmSeverity, AlarmStatus, EventMask
from decoder.dbr import DBRType, DBRValue
from shark.ioc.alarms import AlarmRule, LevelAlarms, state_alarm
from shark.ioc.pv import Beyond, IocPV
from shark.peers.convert import ConversionError

MAJOR, MINOR, NONE = AlarmSeverity.MAJOR, AlarmSeverity.MINOR, AlarmSeverity.NO_ALARM
LIMITS = {"upper_alarm_limit": 40.0, "upper_warning_limit": 30.0,
          "lower_warning_limit": 0.0, "lower_alarm_limit": -5.0}


@pytest.mark.parametrize(("value", "alarm"), [
    (20.0, (AlarmStatus.NO_ALARM, NONE)),
    (30.0, (AlarmStatus.HIGH, MINOR)),      # a limit is reached at equality, as records do
    (45.0, (AlarmStatus.HIHI, MAJOR)),
    (0.0, (AlarmStatus.LOW, MINOR)),
    (-7, (AlarmStatus.LOLO, MAJOR)),
    (math.nan, (AlarmStatus.NO_ALARM, NONE)),
])
def test_levels_by_default_severities(value: float, alarm: tuple[int, int]) -> None:
    assert LevelAlarms(AlarmRule.default()).check(value, LIMITS) == alarm


def test_a_limit_without_severity_or_a_nan_limit_is_not_checked() -> None:
    rule = AlarmRule({"hihi": MAJOR, "high": NONE})
    assert LevelAlarms(rule).check(35.0, LIMITS) == (AlarmStatus.NO_ALARM, NONE)
    assert LevelAlarms(rule).check(41.0, LIMITS) == (AlarmStatus.HIHI, MAJOR)
    assert LevelAlarms(AlarmRule.default()).check(1e9, {}) == (AlarmStatus.NO_ALARM, NONE)


def test_hysteresis_holds_an_alarm_until_the_value_is_back_by_that_much() -> None:
    levels = LevelAlarms(AlarmRule(AlarmRule.default().severities, hysteresis=2.0))
    seen = [levels.check(v, LIMITS)[0] for v in (31, 29, 28.5, 27.9, 29, 31)]
    assert seen == [AlarmStatus.HIGH, AlarmStatus.HIGH, AlarmStatus.HIGH,
                    AlarmStatus.NO_ALARM, AlarmStatus.NO_ALARM, AlarmStatus.HIGH]


def test_state_severities() -> None:
    severities = [NONE, NONE, MAJOR]
    assert state_alarm(2, severities) == (AlarmStatus.STATE, MAJOR)
    assert state_alarm(0, severities) == (AlarmStatus.NO_ALARM, NONE)
    assert state_alarm(9, severities) == (AlarmStatus.NO_ALARM, NONE)


def _pv(**kwargs: object) -> IocPV:
    return IocPV("X", DBRType.DOUBLE, 20.0, upper_alarm_limit=40, upper_warning_limit=30,
                 **kwargs)


def test_a_pv_starts_in_the_alarm_its_value_gives_and_follows_its_values() -> None:
    assert (_pv().status, _pv().severity) == (0, 0)
    pv = IocPV("X", DBRType.LONG, 50, upper_warning_limit=30)
    assert (pv.status, pv.severity) == (AlarmStatus.HIGH, MINOR)
    events = pv.update(35.0)
    assert (pv.status, pv.severity) == (AlarmStatus.HIGH, MINOR) and events == (
        EventMask.VALUE | EventMask.LOG)
    events = pv.update(10)
    assert (pv.status, pv.severity) == (0, 0) and events & EventMask.ALARM


def test_new_limits_make_a_new_alarm_and_an_explicit_one_wins() -> None:
    pv = _pv()
    assert pv.update(upper_warning_limit=10) & EventMask.ALARM
    assert pv.status == AlarmStatus.HIGH
    pv.update(25.0, status=AlarmStatus.COMM, severity=AlarmSeverity.INVALID)
    assert (pv.status, pv.severity) == (AlarmStatus.COMM, AlarmSeverity.INVALID)


def test_an_enum_takes_the_severity_of_its_state() -> None:
    pv = IocPV("M", DBRType.ENUM, 0, enum_strings=["Ok", "Bad"],
               state_severities=[NONE, MAJOR])
    pv.update("Bad")
    assert (pv.status, pv.severity) == (AlarmStatus.STATE, MAJOR)


def _write(pv: IocPV, value: object, data_type: int = DBRType.DOUBLE) -> EventMask:
    return pv.write(DBRValue(data_type, [value]))


def test_a_write_beyond_high_raises_the_alarm() -> None:
    pv = _pv()
    assert _write(pv, 41.0) & EventMask.ALARM
    assert (pv.value, pv.status, pv.severity) == (41.0, AlarmStatus.HIHI, MAJOR)


def test_writes_beyond_the_control_limits_are_clipped_or_refused() -> None:
    pv = _pv(upper_ctrl_limit=35, lower_ctrl_limit=-10)
    _write(pv, 99.0)
    assert pv.value == 35.0 and pv.status == AlarmStatus.HIGH
    _write(pv, "-20", DBRType.STRING)
    assert pv.value == -10.0
    strict = _pv(upper_ctrl_limit=35, lower_ctrl_limit=-10, beyond=Beyond.REFUSE)
    with pytest.raises(ConversionError, match=r"beyond the control limits of X \[-10, 35\]"):
        _write(strict, 36.0)
    assert strict.value == 20.0
    free = _pv()  # control limits 0 and 0: none, as DRVH/DRVL
    _write(free, 1e6)
    assert free.value == 1e6


def test_an_enum_refuses_a_state_it_does_not_have() -> None:
    pv = IocPV("M", DBRType.ENUM, 0, enum_strings=["Ok", "Bad"])
    with pytest.raises(ConversionError, match="no state 5"):
        _write(pv, 5, DBRType.SHORT)
    _write(pv, "Bad", DBRType.STRING)
    assert pv.value == 1


def test_a_putter_keeps_changes_or_refuses_a_write(caplog: pytest.LogCaptureFixture) -> None:
    def putter(value: float) -> float | None:
        if value < 0:
            raise ValueError("no negative setpoints")
        if value == 13:
            raise RuntimeError("a bug")
        return round(value) if value > 100 else None

    pv = _pv(putter=putter)
    _write(pv, 2.5)
    assert pv.value == 2.5
    _write(pv, 150.4)
    assert pv.value == 150.0
    with pytest.raises(ConversionError, match="X: no negative setpoints"):
        _write(pv, -1.0)
    assert not caplog.records
    with pytest.raises(ConversionError, match="the putter of X failed: a bug"):
        _write(pv, 13.0)
    assert "putter of X failed" in caplog.text and pv.value == 150.0


def test_an_alarm_raised_is_unacknowledged_until_a_client_acknowledges_it() -> None:
    """The alarm goes through PV.update, which keeps the account DBR_STSACK_STRING reads;
    an acknowledgement (DBR_PUT_ACKS) is PV's to take, not a value to check."""
    pv = _pv()
    assert pv.acks == 0
    pv.update(41.0)
    assert (pv.severity, pv.acks) == (MAJOR, MAJOR)
    pv.update(20.0)
    assert (pv.severity, pv.acks) == (NONE, MAJOR)  # transient: still to acknowledge
    events = pv.acknowledge(MAJOR)
    assert events & EventMask.ALARM and pv.acks == 0
    born = IocPV("B", DBRType.DOUBLE, 50.0, upper_alarm_limit=40)
    assert (born.status, born.severity, born.acks) == (AlarmStatus.HIHI, MAJOR, MAJOR)

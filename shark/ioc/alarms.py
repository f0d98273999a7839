"""Alarm status and severity from a value, the way records compute them.

An ``ai`` (or ``ao``, ``longin`` ...) record compares its value with four limits, HIHI,
HIGH, LOW and LOLO, each with a severity of its own (HHSV, HSV, LSV, LLSV), and takes the
first one crossed in that order; a limit whose severity is NO_ALARM is not checked, and a
hysteresis (HYST) keeps an alarm until the value has come back by that much. An
``mbbi``/``mbbo`` record takes the severity of its current state (STATE alarm). This
module is that logic and nothing else: :mod:`shark.ioc.pv` applies it whenever a value
changes.

The limits themselves are the PV's alarm and warning limits (what CA clients read as
``upper_alarm_limit`` ...), so one number serves both the alarm and what a client sees;
a limit that is NaN (never set) is not checked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from decoder import AlarmSeverity, AlarmStatus

__all__ = ["LIMIT_FIELDS", "AlarmRule", "LevelAlarms", "state_alarm"]

#: Each alarm level (in the order a record checks them): the status it raises and the
#: PV limit field holding its limit.
LIMIT_FIELDS: dict[str, tuple[AlarmStatus, str]] = {
    "hihi": (AlarmStatus.HIHI, "upper_alarm_limit"),
    "lolo": (AlarmStatus.LOLO, "lower_alarm_limit"),
    "high": (AlarmStatus.HIGH, "upper_warning_limit"),
    "low": (AlarmStatus.LOW, "lower_warning_limit"),
}
#: The severities a level has unless told (a record's own default is NO_ALARM, which
#: would make a limit given without a severity do nothing: not what anyone means).
DEFAULT_SEVERITIES: dict[str, AlarmSeverity] = {
    "hihi": AlarmSeverity.MAJOR, "lolo": AlarmSeverity.MAJOR,
    "high": AlarmSeverity.MINOR, "low": AlarmSeverity.MINOR,
}

#: (status, severity)
Alarm = tuple[int, int]
NO_ALARM: Alarm = (AlarmStatus.NO_ALARM, AlarmSeverity.NO_ALARM)


@dataclass(frozen=True)
class AlarmRule:
    """The severity of each level and the hysteresis; the limits are the PV's."""

    severities: Mapping[str, AlarmSeverity]
    hysteresis: float = 0.0

    @classmethod
    def default(cls) -> AlarmRule:
        return cls(dict(DEFAULT_SEVERITIES))


class LevelAlarms:
    """The alarm of a numeric value against HIHI/HIGH/LOW/LOLO limits, as a record's
    ``checkAlarms`` gives it. It keeps the last limit alarmed on (LALM), which the
    hysteresis needs, so use one per PV."""

    def __init__(self, rule: AlarmRule) -> None:
        self.rule = rule
        self._last: float | None = None  # LALM: the limit of the alarm in force

    def check(self, value: float, limits: Mapping[str, float]) -> Alarm:
        """(status, severity) of ``value`` given the PV's ``limits`` (by field name)."""
        if isinstance(value, float) and math.isnan(value):  # beyond no limit
            self._last = None
            return NO_ALARM
        hyst = self.rule.hysteresis
        for level, (status, field) in LIMIT_FIELDS.items():
            limit = limits.get(field, math.nan)
            severity = self.rule.severities.get(level, AlarmSeverity.NO_ALARM)
            if not severity or math.isnan(limit):
                continue
            upper = level in ("hihi", "high")
            held = self._last == limit
            beyond = (value >= limit or (held and value >= limit - hyst)) if upper else (
                value <= limit or (held and value <= limit + hyst))
            if beyond:
                self._last = limit
                return status, severity
        self._last = None
        return NO_ALARM


def state_alarm(index: int, severities: Sequence[AlarmSeverity]) -> Alarm:
    """The STATE alarm of an enum in state ``index``, as an mbbi/mbbo record gives it;
    a state beyond those given has no alarm."""
    if 0 <= index < len(severities) and severities[index]:
        return AlarmStatus.STATE, severities[index]
    return NO_ALARM

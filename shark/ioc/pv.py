"""A PV that behaves like a record: alarms from its limits, writes held to its control
limits, and a hook that sees every write.

:class:`shark.peers.server.PV` holds a value and the metadata CA carries; the server
calls its :meth:`~IocPV.write` for a client's write and its :meth:`~IocPV.update` for
a change from inside (:meth:`Server.set <shark.peers.server.Server.set>`), and posts the
events they return. :class:`IocPV` overrides the two, so the server needs no knowledge
of records:

* after every new value the alarm status and severity are computed again, from the
  HIHI/HIGH/LOW/LOLO limits of a numeric scalar or from the state severities of an enum
  (:mod:`shark.ioc.alarms`), unless the change names its own ``status`` or ``severity``;
* a client's write beyond the control limits (``upper_ctrl_limit`` above
  ``lower_ctrl_limit``, as an ao record's DRVH/DRVL) is clipped to them, or refused when
  the PV says so; an enum state beyond the enum's strings is refused;
* the *putter*, when there is one, sees the value of a client's write (a scalar, or a
  list for an array) and returns the value to keep (None: as written) or raises to
  refuse it.

A refused write raises :class:`ConversionError`, which the server answers with
ECA_PUTFAIL; a putter's own failure is logged with its traceback first.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

from decoder import AlarmSeverity, EventMask
from decoder.dbr import DBRType, layout
from shark.ioc.alarms import AlarmRule, LevelAlarms, state_alarm
from shark.peers.convert import ConversionError, convert
from shark.peers.server import PV

__all__ = ["Beyond", "IocPV", "Putter"]

log = logging.getLogger(__name__)

#: A client's written value -> the value to keep (None: as written); raises to refuse.
Putter = Callable[[Any], Any]
_LEVEL_TYPES = {DBRType.DOUBLE, DBRType.FLOAT, DBRType.LONG, DBRType.SHORT, DBRType.CHAR}
_UNSET: Any = object()


class Beyond(Enum):
    """What a client's write beyond the control limits does."""

    CLIP = "clip"      #: held to the nearest limit, as an ao record's DRVH/DRVL do
    REFUSE = "refuse"  #: refused (ECA_PUTFAIL), the value unchanged


class IocPV(PV):
    """A :class:`PV` with alarms from its limits, control limits on writes and a putter.

    ``alarm_rule`` gives the severities of the HIHI/HIGH/LOW/LOLO limits (the limits are
    the PV's ``upper_alarm_limit`` ...: NaN, the default, is no limit) and the
    hysteresis; ``state_severities`` the severity of each enum state; ``beyond`` what a
    write beyond the control limits does; ``putter`` the hook of client writes. Other
    arguments are :class:`PV`'s.
    """

    def __init__(
        self,
        name: str,
        data_type: int,
        value: Any = 0,
        *,
        alarm_rule: AlarmRule | None = None,
        state_severities: Sequence[AlarmSeverity] = (),
        beyond: Beyond = Beyond.CLIP,
        putter: Putter | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, data_type, value, **kwargs)
        self.levels = LevelAlarms(alarm_rule or AlarmRule.default())
        self.state_severities = list(state_severities)
        self.beyond = beyond
        self.putter = putter
        if "status" not in kwargs and "severity" not in kwargs:
            self._raise(self.alarm())

    def alarm(self) -> tuple[int, int]:
        """(status, severity) the current value gives, as a record computes it."""
        if self.count != 1 or not self.values:
            return 0, 0
        if self.data_type == DBRType.ENUM:
            return state_alarm(self.values[0], self.state_severities)
        if self.data_type in _LEVEL_TYPES:
            return self.levels.check(self.values[0], self.limits)
        return 0, 0

    def update(self, value: Any = _UNSET, *, status: int | None = None,
               severity: int | None = None, **changes: Any) -> EventMask:
        """:meth:`PV.update`, the alarm computed again after a new value or new limits
        unless ``status`` or ``severity`` is given."""
        if value is not _UNSET:  # PV's own marker of no value is its own
            changes["value"] = value
        events = super().update(status=status, severity=severity, **changes)
        if status is None and severity is None and (events & (EventMask.VALUE |
                                                              EventMask.PROPERTY)):
            events |= self._raise(self.alarm())
        return events

    def _raise(self, alarm: tuple[int, int]) -> EventMask:
        """Set the alarm as :meth:`PV.update` does (which keeps the account of what is
        unacknowledged), the timestamp as it is."""
        if alarm == (self.status, self.severity):
            return EventMask.NONE
        status, severity = alarm
        return super().update(status=status, severity=severity, stamp=self.stamp)

    def write(self, data: Any) -> EventMask:
        """A client's write: converted, checked against the enum's states and the control
        limits, shown to the putter, then applied. Raises ConversionError to refuse.
        Writes of other than a plain value type (an alarm acknowledgement) are PV's."""
        if data.dbr_type > DBRType.DOUBLE:
            return super().write(data)
        source = layout(data.dbr_type).native_type
        values = list(convert(data.values, source, self.data_type,
                              enum_strings=self.enum_strings, precision=self.precision))
        values = self._within_limits(values)
        if self.putter is not None:
            values = self._put(values)
        return self.update(values)  # a new time even for the same value, as a put gives

    def _within_limits(self, values: list[Any]) -> list[Any]:
        if self.data_type == DBRType.ENUM and self.enum_strings:
            bad = [v for v in values if not 0 <= v < len(self.enum_strings)]
            if bad:
                raise ConversionError(f"{self.name} has no state {bad[0]}")
        if self.data_type not in _LEVEL_TYPES:
            return values
        low, high = self.limits["lower_ctrl_limit"], self.limits["upper_ctrl_limit"]
        if not high > low:  # as DRVH/DRVL: no limits unless high is above low
            return values
        outside = [v for v in values if not low <= v <= high and not _nan(v)]
        if not outside:
            return values
        if self.beyond is Beyond.REFUSE:
            raise ConversionError(f"{outside[0]} is beyond the control limits of {self.name} "
                                  f"[{_number(low)}, {_number(high)}]")
        return [v if _nan(v) else min(max(v, low), high) for v in values]

    def _put(self, values: list[Any]) -> Any:
        written = values[0] if self.count == 1 and values else values
        try:
            kept = self.putter(written)  # type: ignore[misc]
        except ConversionError:
            raise
        except ValueError as exc:  # the putter's way to say no
            raise ConversionError(f"{self.name}: {exc}") from None
        except Exception as exc:  # the putter's own bug: tell it, refuse the write
            log.exception("the putter of %s failed; the write is refused", self.name)
            raise ConversionError(f"the putter of {self.name} failed: {exc}") from None
        return values if kept is None else kept  # update() converts what it is given


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)

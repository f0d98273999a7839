"""What an IOC serves, declared: the TOML file ``shark serve`` reads, checked into
:class:`PVSpec` values that the Python form (:mod:`shark.ioc.group`) builds too.

The file::

    prefix = "DEMO:"                 # optional, put before every name

    [[pv]]
    name = "TEMP"                    # required
    type = "double"                  # double float long short char enum string
                                     # (default: from the value)
    value = 21.5                     # a scalar, or a list for an array (default: 0, empty
                                     # text, the first state; an array of zeros);
                                     # [] for an array: no elements yet, as a waveform
                                     # never written
    count = 1                        # elements (default: as many as the value has)
    units = "degC"                   # numbers only
    precision = 2                    # float and double only
    writable = false                 # default true
    display = { low = -10, high = 50 }             # HOPR/LOPR
    control = { low = -10, high = 45, beyond = "clip" }  # DRVL/DRVH; "refuse" refuses
    alarm = { low = 0, high = 30, hihi = 40, hysteresis = 0.5, high_severity = "MINOR" }
                                     # and lolo; severities default to MAJOR for
                                     # HIHI/LOLO, MINOR for HIGH/LOW
    enum = ["Idle", ["Fault", "MAJOR"]]  # an enum's states (severity optional)
    scan = { kind = "noise", period = 1.0, amplitude = 0.2 }
           # ramp: stop, step, start | counter: step, start, stop | noise: amplitude,
           # center, seed | call: function = "module:function" (beside the file is searched)

Every mistake is a :class:`SpecError` naming the file, the PV and the key, never a
traceback: an unknown key (with the known one it resembles), a value of the wrong type,
a value the PV's type cannot hold, metadata the type has no field for.
"""

from __future__ import annotations

import difflib
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from decoder import AlarmSeverity
from decoder.dbr import MAX_ENUM_STATES, MAX_ENUM_STRING_SIZE, MAX_STRING_SIZE, DBRType
from shark.errors import SharkError
from shark.ioc.alarms import DEFAULT_SEVERITIES, LIMIT_FIELDS, AlarmRule
from shark.ioc.pv import Beyond, IocPV, Putter
from shark.ioc.scan import Call, Counter, Noise, Periodic, Ramp, ScanKind, resolve
from shark.peers.convert import ConversionError, from_python

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

__all__ = ["KEYS", "TYPES", "IocSpec", "PVSpec", "SpecError", "check_keys", "define", "load",
           "parse"]

#: The type names a file may give, and the native DBR type of each.
TYPES: dict[str, DBRType] = {
    "double": DBRType.DOUBLE, "float": DBRType.FLOAT, "long": DBRType.LONG,
    "short": DBRType.SHORT, "char": DBRType.CHAR, "enum": DBRType.ENUM,
    "string": DBRType.STRING,
}
_NAMES = {native: name for name, native in TYPES.items()}
_FLOATS = {DBRType.DOUBLE, DBRType.FLOAT}
_ZERO = {DBRType.STRING: "", DBRType.DOUBLE: 0.0, DBRType.FLOAT: 0.0}
_NUMBERS = {*_FLOATS, DBRType.LONG, DBRType.SHORT, DBRType.CHAR}
#: The keys of a ``[[pv]]`` table (and of :func:`define`).
KEYS = ("name", "type", "value", "count", "units", "precision", "writable", "display",
         "control", "alarm", "enum", "scan")
_ALARM_KEYS = (*LIMIT_FIELDS, *(f"{level}_severity" for level in LIMIT_FIELDS), "hysteresis")
_SCAN_KEYS: dict[ScanKind, tuple[str, ...]] = {
    ScanKind.RAMP: ("stop", "step", "start"),
    ScanKind.COUNTER: ("step", "start", "stop"),
    ScanKind.NOISE: ("amplitude", "center", "seed"),
    ScanKind.CALL: ("function",),
}
_SCANS = {ScanKind.RAMP: Ramp, ScanKind.COUNTER: Counter, ScanKind.NOISE: Noise,
          ScanKind.CALL: Call}


class SpecError(SharkError, ValueError):
    """An IOC declaration that cannot be served, said where and why."""


@dataclass(frozen=True)
class PVSpec:
    """One PV, checked: everything :class:`~shark.ioc.pv.IocPV` needs but the prefix
    and the putter. ``limits`` are under the PV's field names (``upper_disp_limit`` ...)."""

    name: str
    data_type: DBRType
    value: Any
    count: int
    units: str = ""
    precision: int = 0
    writable: bool = True
    limits: Mapping[str, float] = field(default_factory=dict)
    alarm_rule: AlarmRule = field(default_factory=AlarmRule.default)
    enum_strings: tuple[str, ...] = ()
    state_severities: tuple[AlarmSeverity, ...] = ()
    beyond: Beyond = Beyond.CLIP
    scan: Periodic | None = None

    @property
    def type_name(self) -> str:
        return _NAMES[self.data_type]

    def build(self, prefix: str = "", putter: Putter | None = None) -> IocPV:
        """The PV to serve, named ``prefix + name``."""
        return IocPV(prefix + self.name, self.data_type, self.value, count=self.count,
                     units=self.units, precision=self.precision,
                     enum_strings=self.enum_strings, writable=self.writable,
                     alarm_rule=self.alarm_rule, state_severities=self.state_severities,
                     beyond=self.beyond, putter=putter, **self.limits)


@dataclass(frozen=True)
class IocSpec:
    """A whole file: the prefix and the PVs, in the file's order."""

    pvs: tuple[PVSpec, ...]
    prefix: str = ""
    source: str = ""

    def build(self) -> list[IocPV]:
        return [pv.build(self.prefix) for pv in self.pvs]


def load(path: str | Path) -> IocSpec:
    """The IOC a TOML file declares. Raises SpecError."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise SpecError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    return parse(document, source=str(path), near=path.resolve().parent)


def parse(document: Mapping[str, Any], source: str = "<ioc>",
          near: Path | None = None) -> IocSpec:
    """The IOC a parsed document declares (``near``: where ``call`` functions are looked
    for first). Raises SpecError."""
    check_keys(document, ("prefix", "pv"), source)
    prefix = document.get("prefix", "")
    if not isinstance(prefix, str):
        raise SpecError(f"{source}: prefix: expected text, got {prefix!r}")
    tables = document.get("pv", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise SpecError(f"{source}: pv: expected [[pv]] tables")
    if not tables:
        raise SpecError(f"{source}: no PV declared (add a [[pv]] table)")
    pvs, seen = [], set()
    for number, table in enumerate(tables, 1):
        name = table.get("name")
        where = f"{source}: pv {name!r}" if isinstance(name, str) else f"{source}: pv #{number}"
        if not isinstance(name, str) or not name:
            raise SpecError(f"{where}: name: required, as text")
        check_keys(table, KEYS, where)
        if prefix + name in seen:
            raise SpecError(f"{where}: declared twice")
        seen.add(prefix + name)
        pvs.append(define(**table, where=where, near=near))
    return IocSpec(tuple(pvs), prefix, source)


def define(
    name: str,
    *,
    type: str | int | None = None,
    value: Any = None,
    count: int | None = None,
    units: str = "",
    precision: int | None = None,
    writable: bool = True,
    display: Mapping[str, Any] | None = None,
    control: Mapping[str, Any] | None = None,
    alarm: Mapping[str, Any] | None = None,
    enum: Sequence[Any] | None = None,
    scan: Mapping[str, Any] | Periodic | None = None,
    where: str | None = None,
    near: Path | None = None,
) -> PVSpec:
    """One PV from the keys of a ``[[pv]]`` table (the Python form passes the same, a
    scan possibly as a :class:`~shark.ioc.scan.Ramp` ...). ``where`` names it in errors.
    Raises SpecError."""
    where = where or f"pv {name!r}"

    def fail(key: str, problem: str) -> SpecError:
        return SpecError(f"{where}: {key}: {problem}")

    states, severities = _states(enum, fail)
    data_type = _type(type, value, states, fail)
    is_number = data_type in _NUMBERS
    for key, given in (("units", units), ("display", display), ("control", control),
                       ("alarm", alarm)):
        if given and not is_number:
            raise fail(key, f"a {_NAMES[data_type]} PV has none (numbers only)")
    if precision is not None and data_type not in _FLOATS:
        raise fail("precision", f"a {_NAMES[data_type]} PV has none (float and double only)")
    if enum is not None and data_type != DBRType.ENUM:
        raise fail("enum", f"states are for an enum PV, not a {_NAMES[data_type]}")
    if not isinstance(units, str):
        raise fail("units", f"expected text, got {units!r}")
    if not isinstance(writable, bool):
        raise fail("writable", f"expected true or false, got {writable!r}")
    precision = _integer(precision or 0, "precision", fail, lowest=0, highest=17)
    values = _values(value, data_type, states, fail)
    if count is None:
        count = max(1, len(values))
    count = _integer(count, "count", fail, lowest=1)
    if len(values) > count:
        raise fail("value", f"{len(values)} values for {count} elements")
    empty = value == [] and count > 1  # (an array with no elements yet, as RSRV's)
    if not values and not empty:  # 0, empty text or the first state; an array of zeros
        values = [_ZERO.get(data_type, 0)] * count
    limits: dict[str, float] = {}
    beyond = Beyond.CLIP
    if display:
        limits.update(_range(display, "display", ("upper_disp_limit", "lower_disp_limit"), fail))
    if control:
        control = dict(control)
        beyond = _beyond(control.pop("beyond", "clip"), fail)
        limits.update(_range(control, "control", ("upper_ctrl_limit", "lower_ctrl_limit"), fail))
    rule = AlarmRule.default()
    if alarm:
        rule, alarm_limits = _alarm(alarm, fail)
        limits.update(alarm_limits)
    return PVSpec(
        name=name, data_type=data_type, value=values, count=count, units=units,
        precision=precision, writable=writable, limits=limits, alarm_rule=rule,
        enum_strings=states, state_severities=severities, beyond=beyond,
        scan=_scan(scan, data_type, values, count, states, fail, near))


# -- the parts of a PV -----------------------------------------------------------------


def check_keys(table: Mapping[str, Any], keys: Sequence[str], where: str) -> None:
    """Raise SpecError for a key not in ``keys``, naming the known one it resembles."""
    for key in table:
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(keys)})"
            raise SpecError(f"{where}: unknown key {key!r}{hint}")


def _type(given: str | int | None, value: Any, states: tuple[str, ...], fail: Any) -> DBRType:
    if isinstance(given, str):
        try:
            return TYPES[given.lower()]
        except KeyError:
            raise fail("type", f"{given!r} is none of {', '.join(TYPES)}") from None
    if isinstance(given, int) and not isinstance(given, bool) and given in _NAMES:
        return DBRType(given)
    if given is not None:
        raise fail("type", f"expected one of {', '.join(TYPES)}, got {given!r}")
    if states:
        return DBRType.ENUM
    first = value[0] if isinstance(value, (list, tuple)) and value else value
    if isinstance(first, bool):
        raise fail("type", "true/false says no type: give one (enum with two states?)")
    if isinstance(first, float):
        return DBRType.DOUBLE
    if isinstance(first, int):
        return DBRType.LONG
    if isinstance(first, str):
        return DBRType.STRING
    raise fail("type", "required when the value does not say it (double, long, string ...)")


def _states(enum: Sequence[Any] | None, fail: Any) -> tuple[tuple[str, ...],
                                                            tuple[AlarmSeverity, ...]]:
    if enum is None:
        return (), ()
    if isinstance(enum, str) or not isinstance(enum, Sequence):
        raise fail("enum", "expected a list of states")
    if len(enum) > MAX_ENUM_STATES:
        raise fail("enum", f"{len(enum)} states; CA carries at most {MAX_ENUM_STATES}")
    states, severities = [], []
    for item in enum:
        if isinstance(item, str):
            state, severity = item, AlarmSeverity.NO_ALARM
        elif (isinstance(item, Sequence) and len(item) == 2 and isinstance(item[0], str)):
            state, severity = item[0], _severity(item[1], "enum", fail)
        else:
            raise fail("enum", f"a state is a name or [name, severity], not {item!r}")
        if len(state.encode()) >= MAX_ENUM_STRING_SIZE:
            raise fail("enum", f"{state!r} is longer than CA's "
                               f"{MAX_ENUM_STRING_SIZE - 1} characters")
        states.append(state)
        severities.append(severity)
    return tuple(states), tuple(severities) if any(severities) else ()


def _severity(given: Any, key: str, fail: Any) -> AlarmSeverity:
    if isinstance(given, AlarmSeverity):
        return given
    if isinstance(given, str):
        try:
            return AlarmSeverity[given.upper()]
        except KeyError:
            pass
    names = ", ".join(s.name for s in AlarmSeverity)
    raise fail(key, f"severity {given!r} is none of {names}")


def _integer(given: Any, key: str, fail: Any, lowest: int, highest: int | None = None) -> int:
    if isinstance(given, bool) or not isinstance(given, int):
        raise fail(key, f"expected a whole number, got {given!r}")
    if given < lowest or (highest is not None and given > highest):
        bounds = f"from {lowest} to {highest}" if highest is not None else f"at least {lowest}"
        raise fail(key, f"{given} is not {bounds}")
    return given


def _number(given: Any, key: str, fail: Any) -> float:
    if isinstance(given, bool) or not isinstance(given, (int, float)):
        raise fail(key, f"expected a number, got {given!r}")
    return float(given)


def _values(value: Any, data_type: DBRType, states: tuple[str, ...], fail: Any) -> list[Any]:
    if value is None:
        return []
    if data_type == DBRType.CHAR and isinstance(value, str):  # text in a char array
        value = list(value.encode())
    if isinstance(value, bool) or (isinstance(value, (list, tuple))
                                   and any(isinstance(v, bool) for v in value)):
        raise fail("value", "true/false is no CA value: give 1/0, or an enum's state")
    try:
        values = from_python(value, data_type, states)
    except ConversionError as exc:
        raise fail("value", f"{exc} (type {_NAMES[data_type]})") from None
    except (TypeError, ValueError) as exc:
        raise fail("value", f"{value!r} is no {_NAMES[data_type]} value ({exc})") from None
    if data_type == DBRType.STRING:
        long = [v for v in values if len(v.encode()) >= MAX_STRING_SIZE]
        if long:
            raise fail("value", f"{long[0]!r} is longer than CA's {MAX_STRING_SIZE - 1} "
                                f"characters (a char array holds longer text)")
    if data_type == DBRType.ENUM and states:
        bad = [v for v in values if not 0 <= v < len(states)]
        if bad:
            raise fail("value", f"state {bad[0]} is not one of the {len(states)} states")
    return values


def _range(table: Mapping[str, Any], key: str, fields: tuple[str, str],
           fail: Any) -> dict[str, float]:
    if not isinstance(table, Mapping):
        raise fail(key, "expected a table such as { low = 0, high = 10 }")
    _known_in(table, ("low", "high"), key, fail)
    limits = {name: _number(table[end], f"{key}.{end}", fail)
              for name, end in zip(fields, ("high", "low"), strict=True) if end in table}
    high, low = limits.get(fields[0]), limits.get(fields[1])
    if high is not None and low is not None and not high > low:
        raise fail(key, f"high ({high:g}) is not above low ({low:g})")
    return limits


def _known_in(table: Mapping[str, Any], keys: Sequence[str], key: str, fail: Any) -> None:
    try:
        check_keys(table, keys, "")
    except SpecError as exc:
        raise fail(key, str(exc).removeprefix(": ")) from None


def _beyond(given: Any, fail: Any) -> Beyond:
    try:
        return given if isinstance(given, Beyond) else Beyond(given)
    except ValueError:
        raise fail("control.beyond", f"{given!r} is neither 'clip' nor 'refuse'") from None


def _alarm(table: Mapping[str, Any], fail: Any) -> tuple[AlarmRule, dict[str, float]]:
    if not isinstance(table, Mapping):
        raise fail("alarm", "expected a table such as { high = 30, hihi = 40 }")
    _known_in(table, _ALARM_KEYS, "alarm", fail)
    severities, limits = {}, {}
    for level, (_, limit_field) in LIMIT_FIELDS.items():
        severity_key = f"{level}_severity"
        severity = DEFAULT_SEVERITIES[level]
        if severity_key in table:
            severity = _severity(table[severity_key], f"alarm.{severity_key}", fail)
        if level in table:
            limits[limit_field] = _number(table[level], f"alarm.{level}", fail)
            severities[level] = severity
        elif severity_key in table:
            raise fail(f"alarm.{severity_key}", f"a severity without alarm.{level}")
    hysteresis = _number(table.get("hysteresis", 0), "alarm.hysteresis", fail)
    if hysteresis < 0 or math.isnan(hysteresis):
        raise fail("alarm.hysteresis", f"{hysteresis:g} is below 0")
    order = [limits.get(LIMIT_FIELDS[level][1]) for level in ("lolo", "low", "high", "hihi")]
    given = [limit for limit in order if limit is not None]
    if given != sorted(given):
        raise fail("alarm", "limits must go lolo <= low <= high <= hihi")
    return AlarmRule(severities, hysteresis), limits


def _scan(scan: Mapping[str, Any] | Periodic | None, data_type: DBRType, values: list[Any],
          count: int, states: tuple[str, ...], fail: Any, near: Path | None
          ) -> Periodic | None:
    if scan is None:
        periodic = None
    elif isinstance(scan, (Ramp, Counter, Noise, Call)):
        periodic = scan
    elif isinstance(scan, Mapping):
        periodic = _scan_table(scan, fail, near)
    else:
        raise fail("scan", f"expected a table such as {{ kind = 'ramp', ... }}, got {scan!r}")
    if periodic is None:
        return None
    if not periodic.period > 0:
        raise fail("scan.period", f"{periodic.period} is not above 0")
    # A trial run on a stand-in PV: the kind's own checks (a ramp on text, an array).
    trial = IocPV("trial", data_type, values, count=count, enum_strings=states)
    try:
        periodic.stepper(trial)
    except ValueError as exc:
        raise fail("scan", str(exc)) from None
    return periodic


def _scan_table(table: Mapping[str, Any], fail: Any, near: Path | None) -> Periodic:
    try:
        kind = ScanKind(table.get("kind"))
    except ValueError:
        names = ", ".join(k.value for k in ScanKind)
        raise fail("scan.kind", f"{table.get('kind')!r} is none of {names}") from None
    keys = _SCAN_KEYS[kind]
    _known_in(table, ("kind", "period", *keys), "scan", fail)
    if "period" not in table:
        raise fail("scan.period", "required (seconds)")
    period = _number(table["period"], "scan.period", fail)
    if kind is ScanKind.CALL:
        path = table.get("function")
        if not isinstance(path, str):
            raise fail("scan.function", "required: 'module:function'")
        try:
            return Call(period, resolve(path, near), path)
        except ValueError as exc:
            raise fail("scan.function", str(exc)) from None
    if kind is ScanKind.RAMP and "stop" not in table:
        raise fail("scan.stop", "required for a ramp")
    arguments = {}
    for key in keys:
        if key in table:
            whole = kind is ScanKind.COUNTER or key == "seed"
            arguments[key] = (_integer(table[key], f"scan.{key}", fail, lowest=-(2**63))
                              if whole else _number(table[key], f"scan.{key}", fail))
    return _SCANS[kind](period, **arguments)

"""What differs between a captured answer and the answer to the same request replayed.

Compared: the ECA status, the DBR type and element count, the values, the metadata
(alarm status and severity, units, precision, limits, enum strings), for a channel
its native type, count and access rights, for a subscription its sequence of
updates, and the latency when the replayed one exceeds the captured one by more than
a slack. Timestamps are not compared (a replay happens at another time), nor the
struct padding rsrv leaves uninitialised.

A difference is real (another value, type, count, status, metadata, access) or
depends on timing: how many updates a subscription got, how long an answer took, the
value of a PV that the capture shows changing on its own (a counter read a moment
later holds another count). The two are told apart (:attr:`Difference.timing`) so
that a verdict says what a server does differently, not when the replay read; with
``strict`` every difference is real. Numbers may differ by a :class:`Tolerance`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from decoder import AccessRights
from decoder.dbr import DBRValue, dbr_name
from decoder.status import eca_name
from shark.replay.recording import CREATE, SUBSCRIBE, Answer, Operation, flag_names, short

__all__ = ["Difference", "Tolerance", "Verdict", "differences"]

_NOT_COMPARED = frozenset({"seconds", "nanoseconds", "RISC_pad"})


class Verdict(Enum):
    """An operation replayed: as captured, different only in timing, or different."""

    SAME = "same"
    TIMING = "timing"
    DIFFERENT = "DIFFERS"


@dataclass(frozen=True)
class Tolerance:
    """How far a replayed number may be from the captured one and still be the same:
    ``absolute`` or ``relative`` (a fraction of the larger magnitude), whichever is
    wider, as :func:`math.isclose` has it."""

    absolute: float = 0.0
    relative: float = 0.0

    def same(self, a: Any, b: Any) -> bool:
        """Equality where NaN equals NaN, numbers within the tolerance, element by
        element for lists."""
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(map(self.same, a, b))
        if _number(a) and _number(b):
            if math.isnan(a) or math.isnan(b):
                return math.isnan(a) and math.isnan(b)
            return a == b or math.isclose(a, b, rel_tol=self.relative, abs_tol=self.absolute)
        return bool(a == b)


EXACT = Tolerance()


@dataclass(frozen=True)
class Difference:
    """One field that differs: ``what`` (``value``, ``status``, ``units``, ``latency``,
    ``update 3 value`` ...) and both sides, as text; ``timing`` when it depends on
    when the replay asked rather than on what the server does."""

    what: str
    captured: str
    replayed: str
    timing: bool = False

    def __str__(self) -> str:
        text = f"{self.what}: {self.captured} -> {self.replayed}"
        return f"{text} (timing)" if self.timing else text


def differences(op: Operation, answer: Answer | None, updates: Sequence[Answer],
                latency_slack: float, *, changing: bool = False,
                tolerance: Tolerance = EXACT, strict: bool = False) -> list[Difference]:
    """How the replayed ``answer`` (and ``updates``, for a subscription) differ from
    what the capture holds for ``op``; nothing unless both sides have an answer.
    ``changing``: the capture shows the PV change on its own, so its values depend on
    timing (unless ``strict``)."""
    captured = op.answer
    if captured is None or answer is None:
        return []
    timely = not strict
    found = []
    if captured.status != answer.status:
        found.append(Difference("status", eca_name(captured.status), eca_name(answer.status)))
    if op.kind == CREATE:
        found += _channel(captured, answer)
    elif op.kind == SUBSCRIBE:
        found += _updates(op.updates, updates, tolerance, changing and timely, timely)
    elif captured.data is not None and answer.data is not None:
        found += data_differences(captured.data, answer.data, tolerance=tolerance,
                                  timing=changing and timely)
    if (captured.latency is not None and answer.latency is not None
            and answer.latency > captured.latency + latency_slack):
        found.append(Difference("latency", _ms(captured.latency), _ms(answer.latency),
                                timing=timely))
    return found


def verdict(found: Sequence[Difference]) -> Verdict:
    if any(not difference.timing for difference in found):
        return Verdict.DIFFERENT
    return Verdict.TIMING if found else Verdict.SAME


def data_differences(captured: DBRValue, replayed: DBRValue, prefix: str = "", *,
                     tolerance: Tolerance = EXACT, timing: bool = False) -> list[Difference]:
    """Type, count, values and metadata of two DBR values; with ``timing``, another
    value (not type, count or metadata) is a difference of timing."""
    found = []
    if captured.dbr_type != replayed.dbr_type:
        found.append(Difference(prefix + "type", dbr_name(captured.dbr_type),
                                dbr_name(replayed.dbr_type)))
    if captured.count != replayed.count:
        found.append(Difference(prefix + "count", str(captured.count), str(replayed.count)))
    if not tolerance.same(_items(captured.values), _items(replayed.values)):
        found.append(Difference(prefix + "value", short(captured.values),
                                short(replayed.values), timing=timing))
    mine, theirs = captured.metadata(), replayed.metadata()
    for name in sorted((mine.keys() | theirs.keys()) - _NOT_COMPARED):
        a, b = mine.get(name), theirs.get(name)
        # Limits are numbers like the values; status, severity, precision are codes.
        if not (tolerance if isinstance(a, float) and isinstance(b, float) else EXACT).same(a, b):
            # The alarm of a PV changing on its own changes with its value.
            alarm = name in ("status", "severity")
            found.append(Difference(prefix + name, repr(a), repr(b), timing=timing and alarm))
    return found


def _channel(captured: Answer, replayed: Answer) -> list[Difference]:
    found = []
    if captured.native_type != replayed.native_type:
        found.append(Difference("native type", _type_name(captured.native_type),
                                _type_name(replayed.native_type)))
    if captured.native_count != replayed.native_count:
        found.append(Difference("native count", str(captured.native_count),
                                str(replayed.native_count)))
    if captured.access is not None and captured.access != replayed.access:
        found.append(Difference("access", _access(captured), _access(replayed)))
    return found


def _updates(captured: Sequence[Answer], replayed: Sequence[Answer], tolerance: Tolerance,
             changing: bool, timely: bool) -> list[Difference]:
    """The updates' number (timing, unless strict), and the differences of the first
    pair that differs (values of timing when the PV changes on its own)."""
    found = []
    if len(captured) != len(replayed):
        found.append(Difference("updates", str(len(captured)), str(len(replayed)),
                                timing=timely))
    for number, (mine, theirs) in enumerate(zip(captured, replayed, strict=False), 1):
        if mine.data is None or theirs.data is None:
            continue
        first = data_differences(mine.data, theirs.data, f"update {number} ",
                                 tolerance=tolerance, timing=changing)
        if first:
            return found + first
    return found


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _items(values: Any) -> list[Any]:
    return [v.item() if hasattr(v, "item") else v for v in values]


def _type_name(data_type: int | None) -> str:
    return "unknown" if data_type is None else dbr_name(data_type)


def _access(answer: Answer) -> str:
    return "unknown" if answer.access is None else flag_names(AccessRights, answer.access)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"

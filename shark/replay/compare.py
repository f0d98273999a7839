"""What differs between a captured answer and the answer to the same request replayed.

Compared: the ECA status, the DBR type and element count, the values, the metadata
(alarm status and severity, units, precision, limits, enum strings), for a channel
its native type, count and access rights, for a subscription its sequence of
updates, and the latency when the replayed one exceeds the captured one by more than
a slack. Timestamps are not compared (a replay happens at another time), nor the
struct padding rsrv leaves uninitialised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from decoder import AccessRights
from decoder.dbr import DBRValue, dbr_name
from decoder.status import eca_name
from shark.replay.recording import CREATE, SUBSCRIBE, Answer, Operation, flag_names, short

__all__ = ["Difference", "differences"]

_NOT_COMPARED = frozenset({"seconds", "nanoseconds", "RISC_pad"})


@dataclass(frozen=True)
class Difference:
    """One field that differs: ``what`` (``value``, ``status``, ``units``, ``latency``,
    ``update 3 value`` ...) and both sides, as text."""

    what: str
    captured: str
    replayed: str

    def __str__(self) -> str:
        return f"{self.what}: {self.captured} -> {self.replayed}"


def differences(op: Operation, answer: Answer | None, updates: Sequence[Answer],
                latency_slack: float) -> list[Difference]:
    """How the replayed ``answer`` (and ``updates``, for a subscription) differ from
    what the capture holds for ``op``; nothing unless both sides have an answer."""
    captured = op.answer
    if captured is None or answer is None:
        return []
    found = []
    if captured.status != answer.status:
        found.append(Difference("status", eca_name(captured.status), eca_name(answer.status)))
    if op.kind == CREATE:
        found += _channel(captured, answer)
    elif op.kind == SUBSCRIBE:
        found += _updates(op.updates, updates)
    elif captured.data is not None and answer.data is not None:
        found += data_differences(captured.data, answer.data)
    if (captured.latency is not None and answer.latency is not None
            and answer.latency > captured.latency + latency_slack):
        found.append(Difference("latency", _ms(captured.latency), _ms(answer.latency)))
    return found


def data_differences(captured: DBRValue, replayed: DBRValue, prefix: str = ""
                     ) -> list[Difference]:
    """Type, count, values and metadata of two DBR values."""
    found = []
    if captured.dbr_type != replayed.dbr_type:
        found.append(Difference(prefix + "type", dbr_name(captured.dbr_type),
                                dbr_name(replayed.dbr_type)))
    if captured.count != replayed.count:
        found.append(Difference(prefix + "count", str(captured.count), str(replayed.count)))
    if not _same(_items(captured.values), _items(replayed.values)):
        found.append(Difference(prefix + "value", short(captured.values),
                                short(replayed.values)))
    mine, theirs = captured.metadata(), replayed.metadata()
    for name in sorted((mine.keys() | theirs.keys()) - _NOT_COMPARED):
        if not _same(mine.get(name), theirs.get(name)):
            found.append(Difference(prefix + name, repr(mine.get(name)),
                                    repr(theirs.get(name))))
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


def _updates(captured: Sequence[Answer], replayed: Sequence[Answer]) -> list[Difference]:
    """The updates' number, and the differences of the first pair that differs."""
    found = []
    if len(captured) != len(replayed):
        found.append(Difference("updates", str(len(captured)), str(len(replayed))))
    for number, (mine, theirs) in enumerate(zip(captured, replayed, strict=False), 1):
        if mine.data is None or theirs.data is None:
            continue
        first = data_differences(mine.data, theirs.data, f"update {number} ")
        if first:
            return found + first
    return found


def _items(values: Any) -> list[Any]:
    return [v.item() if hasattr(v, "item") else v for v in values]


def _same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN, element by element for lists."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _type_name(data_type: int | None) -> str:
    return "unknown" if data_type is None else dbr_name(data_type)


def _access(answer: Answer) -> str:
    return "unknown" if answer.access is None else flag_names(AccessRights, answer.access)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"

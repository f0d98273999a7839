"""``shark monitor --stats``: per PV, how often updates came, the gaps between them and
the updates that repeated the value before (a server sending what did not change)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from decoder.dbr import DBRValue

__all__ = ["UpdateStats"]


@dataclass
class _PV:
    times: list[float] = field(default_factory=list)
    repeats: int = 0
    last: Any = None


class UpdateStats:
    """Updates counted as they come (client receive times), summed up at the end."""

    def __init__(self) -> None:
        self.pvs: dict[str, _PV] = {}

    def add(self, name: str, value: DBRValue, when: float) -> None:
        pv = self.pvs.setdefault(name, _PV())
        values = value.values
        current = (values.tobytes() if hasattr(values, "tobytes") else tuple(values),
                   value.status, value.severity)
        if pv.times and current == pv.last:
            pv.repeats += 1
        pv.last = current
        pv.times.append(when)

    def summary(self, name: str) -> dict[str, Any]:
        """updates, rate (per second, over the span of the updates), max and p99 of the
        gaps (seconds; None with fewer than two updates), repeats."""
        pv = self.pvs.get(name, _PV())
        times = np.asarray(pv.times, dtype=float)
        gaps = np.diff(times)
        span = float(times[-1] - times[0]) if len(times) > 1 else 0.0
        return {"pv": name, "updates": len(times),
                "rate": (len(times) - 1) / span if span > 0 else None,
                "max_gap": float(gaps.max()) if len(gaps) else None,
                "p99_gap": float(np.percentile(gaps, 99)) if len(gaps) else None,
                "repeats": pv.repeats}

    def table(self, names: list[str]) -> str:
        """The summaries as a text table, one PV a line."""
        def number(value: float | None, digits: int) -> str:
            return "-" if value is None else f"{value:.{digits}f}"

        lines = [f"{'PV':<30} {'updates':>8} {'rate/s':>9} {'max gap s':>10} "
                 f"{'p99 gap s':>10} {'repeats':>8}"]
        for name in names:
            s = self.summary(name)
            lines.append(f"{name:<30} {s['updates']:>8} {number(s['rate'], 3):>9} "
                         f"{number(s['max_gap'], 6):>10} {number(s['p99_gap'], 6):>10} "
                         f"{s['repeats']:>8}")
        return "".join(line + "\n" for line in lines)

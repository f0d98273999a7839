"""Each channel's reply latencies, for the channels pane's percentiles.

"Which PV answers slowest" is a question of percentiles per channel, not of one
histogram. The latencies are in the ``latency`` column of the store's rows (seconds
from a request to the reply that answers it); they are read a batch at a time as
batches arrive (a batch never changes once stored), only the rows that have one, and
gathered per channel (circuit, PV) with one Arrow group-by per batch: no Python per
message. Percentiles are worked out only for the channels drawn or sorted.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shark.tables.store import BatchStore

__all__ = ["ChannelLatencies"]

Key = tuple[int, str]


class ChannelLatencies:
    """Reply latencies by channel (circuit number, PV name), read from ``store``."""

    def __init__(self, store: BatchStore) -> None:
        self.store = store
        self._read = 0
        self._parts: dict[Key, list[np.ndarray]] = {}
        self._sorted: dict[Key, np.ndarray] = {}

    def update(self) -> None:
        """Read the batches that came since the last call."""
        store = self.store
        start = max(self._read, store.start)
        end = store.end
        if start >= end:
            return
        for _position, batch in store.batches(start, end):
            latency = batch.column("latency")
            if latency.null_count == len(latency):
                continue
            table = pa.Table.from_batches([batch.select(["circuit", "pv", "latency"])])
            table = table.filter(pc.and_(pc.is_valid(table.column("latency")),
                                         pc.is_valid(table.column("pv"))))
            if not table.num_rows:
                continue
            table = table.set_column(1, "pv", pc.cast(table.column("pv"), pa.string()))
            grouped = table.group_by(["circuit", "pv"], use_threads=False).aggregate(
                [("latency", "list")])
            # (each channel's values a slice of one array: no Python float per reply)
            lists = grouped.column("latency_list").combine_chunks()
            values = lists.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
            lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
            stops = lengths.cumsum()
            starts = stops - lengths
            for circuit, pv, first, stop in zip(grouped.column("circuit").to_pylist(),
                                                grouped.column("pv").to_pylist(),
                                                starts.tolist(), stops.tolist(), strict=True):
                key = (circuit if circuit is not None else -1, pv)
                parts = self._parts.setdefault(key, [])
                parts.append(values[first:stop])
                # (merged while the one before is at most twice as long: a few arrays per
                # channel, not one per batch that had its replies, each ~100 bytes)
                while len(parts) > 1 and len(parts[-2]) <= len(parts[-1]) * 2:
                    parts[-2:] = [np.concatenate(parts[-2:])]
                self._sorted.pop(key, None)
        self._read = end

    def percentile(self, circuit: int | None, pv: str | None, q: float) -> float | None:
        """The ``q``-th percentile (0-100) of the channel's reply latencies in seconds;
        None if it has none."""
        if pv is None:
            return None
        key = (circuit if circuit is not None else -1, pv)
        values = self._sorted.get(key)
        if values is None:
            parts = self._parts.get(key)
            if not parts:
                return None
            values = self._sorted[key] = np.sort(np.concatenate(parts))
            self._parts[key] = [values]
        index = min(len(values) - 1, max(0, int(np.ceil(q / 100 * len(values))) - 1))
        return float(values[index])

    def count(self, circuit: int | None, pv: str | None) -> int:
        """How many replies of the channel have a latency."""
        parts = self._parts.get((circuit if circuit is not None else -1, pv or ""), ())
        return sum(len(part) for part in parts)

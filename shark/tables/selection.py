"""Which frames hold some chosen messages, with the frames that give them their names.

A slice of a capture (:func:`shark.capture.slice.write_slice`) that held only the frames
of, say, the failed writes would read back with every PV unnamed: the channel's name
travels once, in CREATE_CHAN, and a subscription's updates are tied to their channel
only by EVENT_ADD. So the frames of those set-ups, for every channel the chosen messages
concern, go into the slice with them, and the slice reads back named as the capture did.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["CONTEXT", "FrameSelection"]

#: The messages whose frames name a channel's later messages: CREATE_CHAN both ways,
#: and EVENT_ADD's request (not the updates, which are most of many captures).
CONTEXT = ("CREATE_CHAN", "EVENT_ADD")


class FrameSelection:
    """Frames of the messages chosen so far, and of the set-ups of their channels.

    Give it every batch of a stream with :meth:`add` (all rows, and the rows chosen);
    then :meth:`frames` are the frame numbers to copy, sorted."""

    def __init__(self, context: bool = True) -> None:
        self.context = context
        self._chosen: list[np.ndarray] = []
        #: (circuit, pv) -> frames of its CREATE_CHAN and EVENT_ADD messages.
        self._setups: dict[tuple[int, str], list[int]] = {}
        self._channels: set[tuple[int, str]] = set()

    def add(self, batch: pa.RecordBatch, chosen: pa.RecordBatch) -> None:
        """Note ``batch``'s set-ups, and the frames and channels of ``chosen`` (some of
        its rows)."""
        self._chosen.append(chosen.column("frame").to_numpy())
        if not self.context:
            return
        command = batch.column("command")
        setup = pc.or_(pc.equal(command, CONTEXT[0]),
                       pc.and_(pc.equal(command, CONTEXT[1]),
                               pc.equal(batch.column("sender"), "client")))
        setups = batch.filter(pc.fill_null(setup, False))
        for circuit, pv, frame in zip(*(setups.column(c).to_pylist()
                                        for c in ("circuit", "pv", "frame")), strict=True):
            if circuit is not None and pv is not None:
                self._setups.setdefault((circuit, pv), []).append(frame)
        if chosen.num_rows:
            table = pa.Table.from_batches([chosen.select(["circuit", "pv"])])
            pairs = table.group_by(["circuit", "pv"], use_threads=False).aggregate([])
            self._channels.update(zip(pairs.column("circuit").to_pylist(),
                                      pairs.column("pv").to_pylist(), strict=True))

    def frames(self) -> np.ndarray:
        """The frame numbers to copy, sorted, each once."""
        context = [frame for channel in self._channels
                   for frame in self._setups.get(channel, ())]
        every = [*self._chosen, np.asarray(context, np.int64)]
        return np.unique(np.concatenate(every).astype(np.int64))

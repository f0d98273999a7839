"""The frames of chosen messages come with those that name their channels."""

from __future__ import annotations

import pyarrow.compute as pc
from builders import OWN_CAPTURES

from shark.tables.selection import FrameSelection
from shark.tables.stream import MessageStream

MONITORS = OWN_CAPTURES / "softioc_pyepics_monitors.pcap"


def _selection(context: bool) -> tuple[FrameSelection, set[int], set[int]]:
    """Updates of one PV chosen; the frames of its set-ups and of its updates."""
    selection = FrameSelection(context)
    setups: set[int] = set()
    updates: set[int] = set()
    pv = None
    for batch in MessageStream.of_capture(MONITORS):
        if pv is None:
            names = [p for p in batch.column("pv").to_pylist() if p]
            pv = names[0]
        mine = batch.filter(pc.fill_null(pc.equal(batch.column("pv"), pv), False))
        chosen = mine.filter(pc.and_(pc.equal(mine.column("command"), "EVENT_ADD"),
                                     pc.equal(mine.column("sender"), "server")))
        selection.add(batch, chosen)
        updates.update(chosen.column("frame").to_pylist())
        made = mine.filter(pc.equal(mine.column("command"), "CREATE_CHAN"))
        setups.update(made.column("frame").to_pylist())
    return selection, setups, updates


def test_context_frames_come_with_the_chosen() -> None:
    selection, setups, updates = _selection(context=True)
    frames = set(selection.frames().tolist())
    assert updates and setups
    assert updates <= frames and setups <= frames
    assert selection.frames().tolist() == sorted(frames)


def test_without_context_only_the_chosen() -> None:
    selection, _, updates = _selection(context=False)
    assert set(selection.frames().tolist()) == updates

"""A live capture's frames as one iterable, with the housekeeping a consumer needs between
kernel batches: saving frames, flushing output, noticing drops.

``shark live`` and the TUI's live source both read through it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from shark.capture.files import Frame, FrameBlock
from shark.capture.live import LiveCapture
from shark.capture.writer import PcapngWriter

__all__ = ["FramePump"]

#: Seconds between two reads of the kernel's drop counter (a system call each).
STATS_INTERVAL = 0.5
#: How long one wait for packets lasts before the stop conditions are checked again.
POLL_TIMEOUT = 0.2


class FramePump:
    """The frames of a live capture as one iterable, for :class:`shark.extract.reader.CaReader`:
    frame by frame, or (:meth:`blocks`) in the blocks the kernel hands over, which a bulk
    reader frames and attributes a block at a time.

    Because the reader pulls frames lazily, every record of the frames handed out so far
    has been consumed when the pump is asked for more: that is when ``on_idle`` runs
    (before waiting for packets), so output can be flushed exactly once per batch.
    Frames are written to ``writer`` as they are read; drops the kernel counts are
    passed to ``on_drops(new, total)`` as soon as they are seen.
    """

    def __init__(self, capture: LiveCapture, writer: PcapngWriter | None = None,
                 on_idle: Callable[[], None] = lambda: None,
                 on_drops: Callable[[int, int], None] = lambda new, total: None) -> None:
        self.capture = capture
        self.writer = writer
        self.on_idle = on_idle
        self.on_drops = on_drops
        #: Frames and bytes read so far, and seconds spent waiting for them.
        self.frames = 0
        self.bytes = 0
        self.waited = 0.0
        self._dropped = 0
        self._stats_due = 0.0
        self.stopped = False

    def stop(self) -> None:
        """End the iteration promptly; callable from any thread or a signal handler."""
        self.stopped = True
        self.capture.stop()

    def __iter__(self) -> Iterator[Frame]:
        for block in self.blocks():
            yield from block.frames()

    def blocks(self) -> Iterator[FrameBlock]:
        """The frames as the kernel hands them over, a block of them at a time (see
        :meth:`shark.capture.live.LiveCapture.read_blocks`), for a reader that takes
        frames in bulk: ``on_idle`` runs once the reader has asked for the next block,
        having made all the records of those before."""
        capture, writer = self.capture, self.writer
        while True:
            self.on_idle()
            self.check_drops()
            before = time.monotonic()
            blocks = capture.read_blocks(POLL_TIMEOUT)
            self.waited += time.monotonic() - before
            if not blocks:
                if self.stopped:
                    return
                if writer is not None:
                    writer.flush()
                continue
            for block in blocks:
                self.frames += len(block)
                self.bytes += sum(block.ends) - sum(block.starts)
                if writer is not None:
                    for frame in block.frames():
                        writer.write(frame)
            yield from blocks

    def check_drops(self, force: bool = False) -> None:
        """Read the kernel's counter (at most every :data:`STATS_INTERVAL` seconds)."""
        now = time.monotonic()
        if not force and now < self._stats_due:
            return
        self._stats_due = now + STATS_INTERVAL
        dropped = self.capture.stats().dropped
        if dropped > self._dropped:
            self.on_drops(dropped - self._dropped, dropped)
            self._dropped = dropped

"""Where the TUI's records come from: a capture file or a live interface, decoded on a
thread of its own.

The screen must stay responsive whatever the traffic, so the capture is read,
reassembled, decoded and attributed (:class:`shark.extract.reader.CaReader`,
:class:`shark.analysis.attribution.Session`) on a worker thread, which makes the batches
of the ``messages`` table of them (:class:`shark.tables.stream.MessageStream`, with each
message's bytes for the details pane) and hands records and batches to the
:class:`~tui.model.Model` together: at least every :data:`COMMIT_INTERVAL` seconds, or
every :data:`BATCH` rows, and always before it waits (for packets, or for a file's
original pace). The screen then draws whatever the model holds, ten times a second,
without waiting for the decoder.

Frames are read as the tables read them: in blocks, monitor updates framed and
attributed in bulk (:mod:`shark.extract.bulk`), so that a capture of millions of updates
loads at the speed of ``shark export``, and a live capture keeps up with more traffic.
Nothing waits for a block to fill: a live capture's blocks are what the kernel has
handed over (:meth:`shark.capture.live.LiveCapture.read_blocks`), a file played at its
pace is cut into blocks of the frames already due, and the reader frames every block
whole before the next one is read, so that the commit interval still bounds the wait
of a row.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from shark.analysis.attribution import Session
from shark.capture.files import CaptureError, FrameBlock, read_blocks
from shark.capture.live import LiveCapture, LiveCaptureError
from shark.capture.pump import FramePump
from shark.capture.writer import PcapngWriter
from shark.extract.bulk import UpdateBatch
from shark.extract.reader import CaReader
from shark.extract.record import UPDATES, Record
from shark.tables.stream import MessageStream

from .model import Model

__all__ = ["FileSource", "LiveSource", "Source", "SourceStats"]

#: Longest a decoded record waits before the model gets it (seconds).
COMMIT_INTERVAL = 0.05
#: Most rows handed to the model at once.
BATCH = 1 << 15
#: Frames read at once from a file at full speed: fewer than the tables read
#: (:data:`shark.extract.reader.BLOCK_PACKETS`), so that the first rows show sooner (a
#: capture of large packets holds hundreds of updates each); as fast over the whole.
BLOCK = 2048


class SourceStats(NamedTuple):
    """What a source has read so far."""

    frames: int
    bytes: int
    #: Frames the kernel dropped (live capture only).
    dropped: int


class Source(threading.Thread):
    """Decodes frames into records for ``model``; subclasses say where frames come from.

    ``ports`` are CA server ports besides 5064 and those the traffic announces. After
    :meth:`stop` (or the end of a file) the thread ends; :attr:`error` then says why it
    ended early, if it did.
    """

    #: Shown in the status bar.
    description = ""

    def __init__(self, model: Model, ports: Iterable[int] = ()) -> None:
        super().__init__(name=f"shark-{type(self).__name__}", daemon=True)
        self.model = model
        self.ports = tuple(ports)
        self.error: str | None = None
        self.finished = False
        self.frames = 0
        self.bytes = 0
        self._batch: list[Record | UpdateBatch] = []
        self._rows = 0
        # The texts of numbers are not kept from chunk to chunk for the screen: they cost
        # some 9 MB of the memory budget on a storm of random values, for a tenth of a
        # second less of loading it.
        self._stream = MessageStream((), lifecycle=True, raw=True, numbers_kept=0)
        self._committed = time.monotonic()
        self._stopping = threading.Event()
        self._waited = 0.0
        self._load_sample = (time.monotonic(), 0.0)

    def run(self) -> None:
        session = Session()
        self.model.session = session
        try:
            for record in self._records(session):
                self._batch.append(record)
                self._rows += len(record) if record.kind is UPDATES else 1
                if self._rows >= BATCH:  # a burst (held TCP data released at once)
                    self._commit()
        except (CaptureError, LiveCaptureError, OSError) as exc:
            self.error = str(exc)
        except Exception as exc:  # a decoder bug: say so on screen rather than just stop
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._commit()
            self._close()
            self.finished = True

    def stop(self) -> None:
        """End decoding soon, from any thread."""
        self._stopping.set()

    def stats(self) -> SourceStats:
        return SourceStats(self.frames, self.bytes, 0)

    def waited(self) -> float:
        """Seconds the decoder has spent waiting for frames (a file at full speed never
        waits: the decoder is then as busy as it can be)."""
        return self._waited

    def load(self) -> float:
        """How busy the decoder was since the previous call, from 0 (idle) to 1 (never
        waited): the screen draws less often when it is 1, leaving it the CPU."""
        now, waited = time.monotonic(), self.waited()
        last, last_waited = self._load_sample
        self._load_sample = (now, waited)
        if self.finished or now - last <= 0:
            return 0.0
        return max(0.0, min(1.0, 1.0 - (waited - last_waited) / (now - last)))

    def _records(self, session: Session) -> Iterator[Record | UpdateBatch]:
        """The attributed records (circuit ends too), a block of frames at a time."""
        reader = CaReader(self.ports, lifecycle=True, bulk=True)
        return session.batches(reader.batches(self._blocks()), lifecycle=True)

    def _blocks(self) -> Iterator[FrameBlock]:
        """The frames, in blocks: each is asked for once the records of the one before
        are all in the batch to commit."""
        raise NotImplementedError

    def _close(self) -> None:
        """Release what the source holds, once decoding has ended."""

    def _commit(self) -> None:
        """Hand the records decoded so far, and the rows made of them, to the model."""
        batch = self._batch
        if batch:
            self._batch = []
            self._rows = 0
            self.model.add_batch(batch, self._stream.take(batch))
        self._committed = time.monotonic()

    def _maybe_commit(self) -> None:
        if self._rows >= BATCH or time.monotonic() - self._committed >= COMMIT_INTERVAL:
            self._commit()


class FileSource(Source):
    """A pcap or pcapng file, at full speed or, with ``speed``, at ``speed`` times the
    pace the capture was recorded at."""

    def __init__(self, model: Model, path: str | Path, ports: Iterable[int] = (),
                 speed: float | None = None) -> None:
        super().__init__(model, ports)
        self.path = Path(path)
        self.speed = speed
        pace = "full speed" if not speed else "original pace" if speed == 1 else f"x{speed:g}"
        self.description = f"{self.path.name} ({pace})"

    def _blocks(self) -> Iterator[FrameBlock]:
        """The file's frames in blocks: at full speed as they are read, else cut where
        a frame is not due yet, to wait for it."""
        stopping = self._stopping
        blocks = read_blocks(self.path, BLOCK)
        if self.speed:
            blocks = self._paced(blocks)
        for block in blocks:
            if stopping.is_set():
                return
            self.frames += len(block)
            self.bytes += sum(block.ends) - sum(block.starts)
            self._maybe_commit()
            yield block

    def _paced(self, blocks: Iterable[FrameBlock]) -> Iterator[FrameBlock]:
        """``blocks`` at ``speed`` times the pace they were captured at: each as the
        frames of it that are due, waiting (having committed) for the next one due."""
        speed, stopping = self.speed or 1.0, self._stopping
        started: float | None = None
        first = 0
        for block in blocks:
            stamps = np.asarray(block.time_ns, dtype=np.int64)
            if started is None:
                first, started = int(stamps[0]), time.monotonic()
            # when each frame is due (frames out of time order go with the one before)
            due = np.maximum.accumulate(started + (stamps - first) / (1e9 * speed))
            begin, size = 0, len(block)
            while begin < size:
                now = time.monotonic()
                stop = int(np.searchsorted(due, now, "right"))
                if stop <= begin:
                    delay = float(due[begin]) - now
                    self._commit()
                    self._waited += delay
                    if stopping.wait(delay):
                        return
                    continue
                yield block if begin == 0 and stop == size else block.part(begin, stop)
                begin = stop


class LiveSource(Source):
    """A live capture on ``interface`` (see :class:`shark.capture.live.LiveCapture`), saved to
    ``write`` (pcapng) as it arrives if given.

    The capture is opened here, on the caller's thread, so that a missing privilege or
    interface is reported before the screen takes over the terminal.
    """

    def __init__(self, model: Model, interface: str, ports: Iterable[int] = (),
                 write: str | Path | None = None) -> None:
        super().__init__(model, ports)
        model.live()  # a live capture may run for days: the log keeps its latest rows
        self.capture = LiveCapture(interface, self.ports)
        self.writer: PcapngWriter | None = None
        #: The pcapng file the capture is saved to (the TUI's export slices it).
        self.written = Path(write) if write is not None else None
        if write is not None:
            try:
                self.writer = PcapngWriter(write)
            except OSError:
                self.capture.close()
                raise
            self.writer.add_interface(self.capture.linktype, interface, self.capture.snaplen)
        self.description = f"live on {interface}"
        self._pump = FramePump(self.capture, self.writer, on_idle=self._commit)
        self._dropped = 0

    def _blocks(self) -> Iterator[FrameBlock]:
        """The blocks the kernel hands over; the pump commits before it waits for more,
        and a backlog read at once is committed as the interval says."""
        for block in self._pump.blocks():
            self._maybe_commit()
            yield block

    def stop(self) -> None:
        super().stop()
        self._pump.stop()

    def waited(self) -> float:
        return self._pump.waited

    def stats(self) -> SourceStats:
        pump = self._pump
        try:
            self._dropped = self.capture.stats().dropped
        except OSError:
            pass  # closed: the last count stands
        return SourceStats(pump.frames, pump.bytes, self._dropped)

    def _close(self) -> None:
        self.stats()
        self.capture.close()
        if self.writer is not None:
            self.writer.close()

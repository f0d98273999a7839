"""A slice of a capture: only the frames asked for, written as a new pcapng file.

What a person found with a filter (the failed writes, one client's traffic) is worth
handing to a colleague as a capture any tool opens, not as text. The frames are copied
byte for byte with their times and link types, so the slice reads back as the same
packets. A CA message names the frame that completed it; one spread over several TCP
segments loses its earlier segments in a slice that holds only that frame, and reads
back as a gap followed by the message's tail, which the reader marks.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from shark.capture.files import read_blocks
from shark.capture.writer import PcapngWriter

__all__ = ["write_slice"]


def write_slice(source: str | Path | BinaryIO, frames: Iterable[int] | np.ndarray,
                target: str | Path | BinaryIO) -> int:
    """Copy the frames of ``source`` numbered ``frames`` (1-based, as everywhere in
    shark) into a new pcapng ``target``; return how many were written. Numbers past
    the end of the capture are ignored. Reading errors
    (:class:`shark.capture.files.CaptureError`) come after the frames read before."""
    wanted = np.unique(np.asarray(frames if isinstance(frames, np.ndarray)
                                  else list(frames), dtype=np.int64))
    with PcapngWriter(target) as writer:
        if not len(wanted):
            return 0
        last = int(wanted[-1])
        for block in read_blocks(source):
            first = block.first
            if first > last:
                break
            numbers = np.arange(first, first + len(block), dtype=np.int64)
            for index in np.flatnonzero(np.isin(numbers, wanted, assume_unique=True)).tolist():
                writer.write(block.frame(index))
        return writer.frames

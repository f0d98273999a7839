"""shark: packet analysis for EPICS Channel Access.

``shark.read(path)`` yields one :class:`~shark.record.Record` per CA message (or gap,
or undecodable bytes) in a pcap or pcapng capture::

    for record in shark.read("capture.pcapng"):
        print(record.time, record.src, record.dst, record.message)

The layers, each usable on its own: :mod:`shark.capture` (files to frames),
:mod:`shark.packets` (frames to UDP/TCP packets), :mod:`shark.tcp` (reassembly),
:mod:`shark.stream` (packets to CA records, using the sans-I/O :mod:`decoder`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import BinaryIO

from .capture import CaptureError
from .record import ERROR, GAP, MESSAGE, Record
from .stream import CaReader, read_records

try:
    __version__ = metadata.version("epics-shark")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

__all__ = [
    "ERROR",
    "GAP",
    "MESSAGE",
    "CaReader",
    "CaptureError",
    "Record",
    "__version__",
    "read",
]


def read(path: str | Path | BinaryIO, ports: Iterable[int] = ()) -> Iterator[Record]:
    """Yield the CA records of a capture: a path, ``"-"`` for stdin, or a binary stream.

    ``ports`` are CA server ports to decode besides 5064 and those learned from the
    capture. A damaged or truncated capture raises :class:`CaptureError` after the
    records that could be read.
    """
    return read_records(path, ports)

"""shark: packet analysis for EPICS Channel Access.

``shark.read(path)`` yields one :class:`~shark.record.Record` per CA message (or gap,
or undecodable bytes) in a pcap or pcapng capture, each with the PV it concerns and,
for a response, the request it answers and the latency::

    for record in shark.read("capture.pcapng"):
        print(record.time, record.src, record.dst, record.pv, record.message)

``shark.open(path)`` gives the same capture as typed tables (pandas DataFrames: see
:mod:`shark.tables`)::

    cap = shark.open("capture.pcapng")
    cap.searches[~cap.searches.answered]    # names nobody serves, who asked, how often

The layers, each usable on its own: :mod:`shark.capture` (files to frames),
:mod:`shark.packets` (frames to UDP/TCP packets), :mod:`shark.tcp` (reassembly),
:mod:`shark.stream` (packets to CA records, using the sans-I/O :mod:`decoder`),
:mod:`shark.session` (which PV, which request: the decoder's circuit and UDP state).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from . import tables as _tables
from .capture import CaptureError
from .record import CLOSE, ERROR, GAP, MESSAGE, OPEN, Record
from .session import Session
from .session import read as _read
from .stream import CaReader

if TYPE_CHECKING:
    from .tables.capture import Capture

try:
    __version__ = metadata.version("epics-shark")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

__all__ = [
    "CLOSE",
    "ERROR",
    "GAP",
    "MESSAGE",
    "OPEN",
    "CaReader",
    "Capture",
    "CaptureError",
    "Record",
    "Session",
    "__version__",
    "read",
]


def read(
    path: str | Path | BinaryIO, ports: Iterable[int] = (), lifecycle: bool = False
) -> Iterator[Record]:
    """Yield the CA records of a capture: a path, ``"-"`` for stdin, or a binary stream.

    ``ports`` are CA server ports to decode besides 5064 and those learned from the
    capture; with ``lifecycle``, OPEN and CLOSE records mark TCP circuits. A damaged
    or truncated capture raises :class:`CaptureError` after the records that could
    be read.
    """
    return _read(path, ports, lifecycle)


def open(  # not in __all__: ``from shark import *`` must not hide the built-in
    path: str | Path | BinaryIO, ports: Iterable[int] = (), tables: Iterable[str] | None = None
) -> Capture:
    """The capture at ``path`` as tables (:class:`shark.tables.Capture`), built on first
    use: ``cap.table("searches")`` or ``cap.searches``. ``tables`` limits which are built."""
    return _tables.Capture(path, ports, tables)


def __getattr__(name: str) -> Any:
    # shark.Capture loads pandas and pyarrow on first use, not with ``import shark``.
    if name == "Capture":
        return _tables.Capture
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

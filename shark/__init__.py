"""shark: packet analysis for EPICS Channel Access.

``shark.read(path)`` yields one :class:`~shark.extract.record.Record` per CA message (or gap,
or undecodable bytes) in a pcap or pcapng capture, each with the PV it concerns and,
for a response, the request it answers and the latency::

    for record in shark.read("capture.pcapng"):
        print(record.time, record.src, record.dst, record.pv, record.message)

``shark.open(path)`` gives the same capture as typed tables (pandas DataFrames: see
:mod:`shark.tables`)::

    cap = shark.open("capture.pcapng")
    cap.searches[~cap.searches.answered]    # names nobody serves, who asked, how often

The pipeline, a folder per stage, each usable on its own (``docs/architecture.md``):

=====================  =============================================================
:mod:`shark.capture`    capture files and live capture to frames; the pcapng writer
:mod:`shark.network`    frames to UDP datagrams and TCP segments; TCP reassembly
:mod:`shark.extract`    which traffic is CA, framing, resynchronisation: CA records
:mod:`shark.analysis`   attribution (PV, request, latency), beacons, problems
:mod:`shark.tables`     records to typed tables, Parquet files, the stats report
:mod:`shark.output`     records to text lines and JSON, filters for people
:mod:`shark.peers`      an asyncio CA client and server on the decoder
:mod:`shark.replay`     a capture acted out again, as a server or as clients
:mod:`shark.cli`        the ``shark`` command line, a module per subcommand
=====================  =============================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from shark import tables as _tables
from shark.analysis.attribution import Session
from shark.analysis.attribution import read as _read
from shark.capture.files import CaptureError
from shark.extract.reader import CaReader
from shark.extract.record import CLOSE, ERROR, GAP, MESSAGE, OPEN, Record

if TYPE_CHECKING:
    from shark.tables.capture import Capture

__all__ = [
    "CLOSE",
    "ERROR",
    "GAP",
    "MESSAGE",
    "OPEN",
    "CaReader",
    "Capture",
    "CaptureError",
    "FilterError",
    "Record",
    "Session",
    "__version__",
    "read",
]


def read(
    path: str | Path | BinaryIO, ports: Iterable[int] = (), lifecycle: bool = False,
    filter: str | Sequence[str] | None = None,  # noqa: A002 (the word users expect)
) -> Iterator[Record]:
    """Yield the CA records of a capture: a path, ``"-"`` for stdin, or a binary stream.

    ``ports`` are CA server ports to decode besides 5064 and those learned from the
    capture; with ``lifecycle``, OPEN and CLOSE records mark TCP circuits; ``filter``
    keeps the records that match, in the language of ``shark read --filter``
    (:mod:`shark.analysis.filters`: ``filter="status=failed"``; a list: all must match;
    :class:`shark.analysis.filters.FilterError` when it cannot be understood). A damaged
    or truncated capture raises :class:`CaptureError` after the records that could
    be read.

    The records are the decoder's own messages, attributed: the rows of the
    ``messages`` table (:func:`open`, :class:`shark.tables.stream.MessageStream`) are
    made from these same records, so both tell the same PVs, requests and latencies;
    a record also holds the whole message (``record.message``: every field, the
    payload), which a table row does not.
    """
    if filter is None:
        return _read(path, ports, lifecycle)
    from shark.analysis.filters import compile_filter  # (pyarrow: loaded when needed)

    compiled = compile_filter(filter)  # (an error now, not at the first record)
    records = compiled.records(_read(path, ports, lifecycle=True))
    if lifecycle:
        return records
    return (r for r in records if r.kind is not OPEN and r.kind is not CLOSE)


def open(  # not in __all__: ``from shark import *`` must not hide the built-in
    path: str | Path | BinaryIO, ports: Iterable[int] = (), tables: Iterable[str] | None = None
) -> Capture:
    """The capture at ``path`` as tables (:class:`shark.tables.Capture`), built on first
    use: ``cap.table("searches")`` or ``cap.searches``. ``tables`` limits which are built."""
    return _tables.Capture(path, ports, tables)


def __getattr__(name: str) -> Any:
    # shark.Capture loads pandas and pyarrow on first use, not with ``import shark``;
    # __version__ is looked up when asked for (importlib.metadata takes 20 ms to load).
    if name == "__version__":
        global __version__
        from importlib import metadata

        try:
            __version__ = metadata.version("epics-shark")
        except metadata.PackageNotFoundError:  # a source tree that is not installed
            __version__ = "0.1.0"
        return __version__
    if name == "Capture":
        return _tables.Capture
    if name == "FilterError":
        from shark.analysis.filters import FilterError

        return FilterError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""A capture file as tables: what ``shark.open`` gives."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import pyarrow as pa

from shark.analysis.filters import compile_filter
from shark.capture.files import CaptureError
from shark.tables.builder import TableBuilder
from shark.tables.names import TABLES
from shark.tables.report import build_report

__all__ = ["Capture"]


class Capture:
    """The tables of a capture file, built in one pass over it when first asked for.

    ``cap.table("searches")`` and ``cap.searches`` are the same DataFrame; ``tables``
    limits which are built (the per-message ``messages`` and ``updates`` hold a row per
    message in memory: leave them out for a summary of a huge capture, or export them).
    A damaged or truncated capture gives the tables of what could be read, with a
    warning, and the error in ``error``. Should reading fail otherwise (the file cannot
    be opened, or a fault in shark), every use of the tables raises that error (a fault
    as a :class:`shark.capture.files.CaptureError` that names it), the file read once.
    """

    def __init__(self, source: str | Path | BinaryIO, ports: Iterable[int] = (),
                 tables: Iterable[str] | None = None) -> None:
        self.source = source
        self.ports = tuple(ports)
        self.tables = TABLES if tables is None else tuple(tables)
        #: The error that cut the capture short, if one did.
        self.error: CaptureError | None = None
        self._builder: TableBuilder | None = None
        #: Why the tables cannot be built, once that is known (raised on every use).
        self._failure: Exception | None = None
        self._frames: dict[str, pd.DataFrame] = {}

    @property
    def builder(self) -> TableBuilder:
        """The builder, fed the whole capture (on first use)."""
        if self._builder is None:
            if self._failure is None:
                self._failure = self._build()
            if self._failure is not None:
                # Never an AttributeError: Python would take it for a missing attribute
                # and ask __getattr__, which would hide it. (Its traceback starts here
                # each time, not piled up.)
                raise self._failure.with_traceback(None)
        return self._builder

    def _build(self) -> Exception | None:
        """Read the capture into a builder; what stops that, if anything."""
        builder = TableBuilder(self.tables)
        try:
            try:
                builder.read(self.source, self.ports)
            except CaptureError as exc:
                self.error = exc
                warnings.warn(f"{self.source}: {exc}; the tables hold what was read before",
                              stacklevel=4)
            builder.finish()
        except (CaptureError, OSError) as exc:
            return exc
        except Exception as exc:  # a fault in shark: named, not hidden
            failure = CaptureError(f"{self.source}: the tables could not be built: "
                                   f"{type(exc).__name__}: {exc}")
            failure.__cause__ = exc
            return failure
        self._builder = builder
        return None

    def table(self, name: str) -> pd.DataFrame:
        """Table ``name`` (one of ``tables``) as a pandas DataFrame."""
        frame = self._frames.get(name)
        if frame is None:
            frame = self._frames[name] = self.builder.table(name)
        return frame

    def arrow(self, name: str) -> pa.Table:
        """Table ``name`` as an Arrow table."""
        return self.builder.arrow(name)

    def filter(self, expression: str | Sequence[str]) -> pd.DataFrame:
        """The rows of the ``messages`` table that match a filter in the language of
        ``shark read --filter`` (:mod:`shark.analysis.filters`; several expressions must
        all match): ``cap.filter("status=failed or severity>=MINOR")``. Raises
        :class:`shark.analysis.filters.FilterError` for a filter it cannot understand."""
        compiled = compile_filter(expression)
        builder = self.builder
        mask = compiled.mask(self.arrow("messages"), start=builder.first_time,
                             midstream=builder.midstream)
        return self.table("messages")[mask].reset_index(drop=True)

    def report(self, top: int = 10) -> dict[str, Any]:
        """The analysis report of ``shark stats`` (:mod:`shark.tables.report`), as a dict."""
        return build_report(self.builder, top)

    def __getattr__(self, name: str) -> pd.DataFrame:
        if name in TABLES:
            return self.table(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.tables]

    def __repr__(self) -> str:
        return f"<Capture {self.source!s} tables={', '.join(self.tables)}>"

"""The ``/`` filter bar and the restrictions on what the log shows.

The log shows the rows that every active restriction keeps: the filter typed after
``/`` (the filter language of ``shark read --filter``), the PV followed (``f``), and the
circuit or server picked in a pane (Enter there). Each is cleared on its own, with its
own key; :func:`restrictions` says them all, with those keys, for the status bar and
the log's lower border.

The bar checks what is typed as it is typed (:class:`FilterValidator`): a filter that
cannot be understood marks the bar invalid and says why in its title, and one that can
is counted (:func:`count_matches`, on a thread: a file may hold millions of rows) into
"n of N match" there, with the other restrictions.

Keys typed quickly after ``/`` while a capture loads must reach the bar. Textual hands
a key to the widget focused when the app takes it from its queue, and ``focus()`` only
takes effect later: the keys queued behind ``/`` went to the pane focused before (whose
Enter followed a PV). So the app binds ``/`` (and ``:``) with priority, which runs
before the next key is taken, and focuses the line there and then (see
:meth:`tui.app.SharkApp.action_open_filter`); Enter and Escape are handled by the line
itself in the order typed (as bindings they would act only when the key came back up to
the app, after the keys typed next were put in the line), and a key that reaches the
line after it closed is handed back to the app, to go where it would have gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from textual import events
from textual.binding import Binding, BindingType
from textual.validation import ValidationResult, Validator
from textual.widgets import Input

from shark.analysis.filters import Filter, FilterError, compile_filter

from .model import Model, RowFilter

__all__ = ["FilterInput", "FilterValidator", "LineInput", "Restriction", "count_matches",
           "restrictions", "row_filter"]


class FilterValidator(Validator):
    """Whether the text is a filter :func:`compile_filter` understands; the failure's
    description is its error message (which lists the choices)."""

    def validate(self, value: str) -> ValidationResult:
        try:
            compile_filter([value.strip()]) if value.strip() else None
        except FilterError as exc:
            return self.failure(str(exc), value)
        return self.success()


class LineInput(Input):
    """A line the app opens for one answer (the filter, a place to jump to): Enter
    gives it (:meth:`action_submit`), Escape gives up (:meth:`action_cancel`)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Whether the line is open (shown, taking keys).
        self.open = False

    def action_cancel(self) -> None:
        raise NotImplementedError

    async def _on_key(self, event: events.Key) -> None:
        """Enter and Escape act here, in the order the keys were typed (as bindings
        they would act when the key came back to the app, after the keys typed next
        were put in the bar); a key that reaches the closed bar goes back to the app."""
        if not self.open:
            event.stop()
            event.prevent_default()
            key = events.Key(event.key, event.character)
            key.set_sender(self.app)
            self.app.post_message(key)
            return
        if event.key in ("enter", "escape"):
            event.stop()
            event.prevent_default()
            if event.key == "enter":
                await self.action_submit()
            else:
                self.action_cancel()
            return
        await super()._on_key(event)


class FilterInput(LineInput):
    """The ``/`` filter line: checked as typed; Enter applies, Escape gives up."""

    DEFAULT_CSS = """
    FilterInput { border-title-align: left; }
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("validators", [FilterValidator()])
        kwargs.setdefault("validate_on", ["changed"])
        super().__init__(*args, **kwargs)

    def action_cancel(self) -> None:
        self.app.action_close_filter()  # type: ignore[attr-defined]

    async def action_submit(self) -> None:
        self.app.submit_filter(self.value.strip())  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Restriction:
    """One restriction on the rows the log shows: what it is, and the key that clears it."""

    kind: str
    text: str
    key: str

    def __str__(self) -> str:
        return f"{self.kind} {self.text} [{self.key}]"


def restrictions(filter_text: str, follow: str | None, scope: str | None
                 ) -> list[Restriction]:
    """The active restrictions, in the order they are applied."""
    found = []
    if filter_text:
        found.append(Restriction("filter", filter_text, "⌫"))
    if follow is not None:
        found.append(Restriction("PV", follow, "f"))
    if scope is not None:
        kind, _, value = scope.partition("=")
        found.append(Restriction("circuit" if kind == "circuit" else "server", value, "c"))
    return found


def row_filter(model: Model, wanted: Filter | None, follow: str | None,
               scope: Filter | None) -> RowFilter | None:
    """Which rows of a batch every restriction keeps (None: all): the filter's rows
    (times counted from the capture's first, errors judged knowing the circuits joined
    mid-stream), of the followed PV, on the circuit or server picked."""
    if wanted is None and follow is None and scope is None:
        return None

    def keep(batch: pa.RecordBatch) -> np.ndarray:
        mask = (np.ones(batch.num_rows, dtype=bool) if wanted is None
                else wanted.mask(batch, model.first_time, model.midstream))
        if scope is not None:
            mask &= scope.mask(batch, model.first_time, model.midstream)
        if follow is not None:
            mask &= equal(batch.column("pv"), follow)
        return mask

    return keep


def count_matches(model: Model, keep: RowFilter | None,
                  current: Callable[[], bool] = lambda: True) -> tuple[int, int] | None:
    """How many of the rows held ``keep`` keeps, and how many there are; None if
    ``current()`` turns False meanwhile (a newer text was typed)."""
    with model.lock:
        start, end = model.store.start, model.store.end
    total = end - start
    if keep is None:
        return total, total
    kept = 0
    for _position, batch in model.store.batches(start, end):
        kept += int(np.count_nonzero(keep(batch)))
        if not current():
            return None
    return kept, total


def equal(column: pa.Array, text: str) -> np.ndarray:
    """Which values of a dictionary column of strings are ``text``."""
    if pa.types.is_dictionary(column.type):
        names = column.dictionary.to_pylist()
        if text not in names:
            return np.zeros(len(column), dtype=bool)
        codes = column.indices.fill_null(-1).to_numpy()
        return codes == names.index(text)
    return np.asarray(pc.fill_null(pc.equal(column, text), False))

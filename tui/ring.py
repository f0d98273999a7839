"""A bounded sequence of the latest items, addressed by absolute position.

The message log keeps the last N records of a capture that may run for days at
100k messages/s: memory must not grow, and the screen must be able to name a row
that stays the same row while older ones fall off the front. Positions count every
item ever appended (``start`` is the oldest one still held, ``end`` the next one),
so a position taken at one screen refresh still means the same item at the next, or
nothing (``get`` returns None) once it has been dropped.

Appends come from the decoding thread and reads from the screen's: the deque's
operations are atomic under the GIL, and every read tolerates items vanishing; a
reader that needs an exact snapshot holds the lock the writer holds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Ring", "Window"]


class Ring(Generic[T]):
    """The last ``capacity`` items appended."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be positive: {capacity}")
        self.capacity = capacity
        self._items: deque[T] = deque(maxlen=capacity)
        #: Position of the next item appended (= items ever appended).
        self.end = 0

    @property
    def start(self) -> int:
        """Position of the oldest item held."""
        return self.end - len(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def append(self, item: T) -> None:
        self._items.append(item)
        self.end += 1

    def extend(self, items: Iterable[T]) -> None:
        items = list(items)
        self._items.extend(items)
        self.end += len(items)

    def clear(self) -> None:
        """Forget every item (positions go on counting)."""
        self._items.clear()

    def get(self, position: int) -> T | None:
        """The item at ``position``, None if it was dropped or is not there yet."""
        items = self._items
        index = position - (self.end - len(items))
        if index < 0:
            return None
        try:
            return items[index]
        except IndexError:
            return None

    def __iter__(self) -> Iterator[T]:
        return iter(self.snapshot()[1])

    def snapshot(self) -> tuple[int, list[T]]:
        """(position of the first, the items): exact when the writer is held off (the
        model's lock), at worst one item off otherwise."""
        items = list(self._items)
        return self.end - len(items), items

    def window(self) -> Window[T]:
        """The items held now, as a sequence that keeps its length while the ring moves."""
        end = self.end
        return Window(self, end - len(self._items), end)


class Window(Generic[T]):
    """Positions ``start`` to ``end`` of a ring, indexed from 0; items dropped since the
    window was taken read as None."""

    __slots__ = ("ring", "start", "end")

    def __init__(self, ring: Ring[T], start: int, end: int) -> None:
        self.ring = ring
        self.start = start
        self.end = end

    def __len__(self) -> int:
        return self.end - self.start

    def __getitem__(self, index: int) -> T | None:
        if not 0 <= index < self.end - self.start:
            raise IndexError(index)
        return self.ring.get(self.start + index)

    def __iter__(self) -> Iterator[T | None]:
        return (self[index] for index in range(len(self)))

    def items(self) -> list[T]:
        """The items of the window still held, in order."""
        first, items = self.ring.snapshot()
        return items[max(0, self.start - first) : max(0, self.end - first)]

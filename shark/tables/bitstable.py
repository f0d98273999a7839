"""A bounded table from 64-bit keys (a number's bits, with a small tag) to positions,
looked up a whole array at a time with numpy.

:class:`shark.tables.display.Written` looks up every value of the ``display`` column
here, some two million for a big capture. A pandas ``Index.get_indexer`` hashes each
value too, but checks its index (unique, dtypes) on every call and wants the positions
gathered after; here a key's first slot is where the top bits of its product with an
odd constant point (Fibonacci hashing: evenly spread for the arithmetic runs of values
an ADC gives), and it takes that or one of the next few (linear probing), so that a
lookup is a few passes of numpy over the keys and one gather (of a slot's two words).
Most keys are in their first slot; a new one is known as such at the first empty slot
it may take.

A key whose slots are all taken is not kept (its lookups miss: the caller writes it
again, as it would a new one). The table has twice the slots of the keys it may be
given, so that next to none are turned away; it never grows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BitsTable"]

#: Fibonacci hashing's multiplier (2**64 over the golden ratio, made odd).
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
#: Told apart by tags as well, keys of one tag land apart from those of another.
_TAG_OFFSET = 0xD6E8FEB86659FD93
#: Slots a key may take: its first and those after it.
_BUCKET = 16
#: Bits of a slot's second word that hold its tag (plus one: 0 is an empty slot).
_TAG_BITS = 8


class BitsTable:
    """Positions (1 and up; 0: none) of up to ``capacity`` keys, each an int64 with a
    tag (0 to 254), in :meth:`find` / :meth:`put` calls over arrays of one tag.

    A slot is two words, next to each other (one cache line, where a lookup misses
    the cache: a table of megabytes, met again after the rest of a chunk's work): the
    key, and its position and tag as ``position << 8 | tag + 1`` (0: empty)."""

    def __init__(self, capacity: int) -> None:
        self._bits = max(4, int(2 * capacity - 1).bit_length())
        size = (1 << self._bits) + _BUCKET - 1  # (the last slots' next ones too)
        self._shift = np.uint64(64 - self._bits)
        self._slot = np.zeros((size, 2), dtype=np.int64)

    def _slots(self, keys: np.ndarray, tag: int) -> np.ndarray:
        """The first slot each key may take: the top bits of its product with the
        multiplier, moved along by the tag's offset (so that the slots of a tag are
        spread as those of the keys alone, but elsewhere)."""
        slots = keys.view(np.uint64) * _MULTIPLIER
        slots += np.uint64((tag * _TAG_OFFSET) % (1 << 64))
        slots >>= self._shift
        return slots.view(np.int64)

    def find(self, keys: np.ndarray, tag: int) -> tuple[np.ndarray, np.ndarray]:
        """The position of each of ``keys`` (int64) of ``tag``, 0 where not kept, and
        which those are (indexes, in order)."""
        slots = self._slots(keys, tag)
        mark = tag + 1
        slot = self._slot.take(slots, axis=0)
        held = slot[:, 1]
        missed = np.flatnonzero((slot[:, 0] != keys) | ((held & 0xFF) != mark))
        at = held >> _TAG_BITS
        at[missed] = 0
        # A key is in the first empty slot it may take or before it: looked for in the
        # next slots only while they are full (most new keys stop at the first).
        other = missed[held[missed] != 0]
        for next_slot in range(1, _BUCKET):
            if not len(other):
                break
            slot = self._slot[slots[other] + next_slot]
            held = slot[:, 1]
            found = ((held & 0xFF) == mark) & (slot[:, 0] == keys[other])
            at[other[found]] = held[found] >> _TAG_BITS
            other = other[~found & (held != 0)]
        return at, missed[at[missed] == 0]

    def put(self, keys: np.ndarray, tag: int, first: int) -> None:
        """Keep the distinct ``keys`` of ``tag``, none of them kept yet, at positions
        ``first``, ``first + 1`` ...: each in the first empty slot of those it may
        take, if any."""
        slots = self._slots(keys, tag)
        left = np.arange(len(keys))
        for next_slot in range(_BUCKET):
            mine = slots[left] + next_slot if next_slot else slots
            empty = np.flatnonzero(self._slot[mine, 1] == 0)
            chosen, mine = left[empty], mine[empty]
            # Keys meeting in one slot: one of them stays (whichever numpy wrote last).
            wanted = keys[chosen]
            self._slot[mine, 0] = wanted
            won = self._slot[mine, 0] == wanted
            self._slot[mine[won], 1] = ((chosen[won] + first) << _TAG_BITS) | (tag + 1)
            stay = np.ones(len(left), dtype=bool)
            stay[empty[won]] = False
            left = left[stay]
            if not len(left):
                return

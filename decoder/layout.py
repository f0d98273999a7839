"""A wire layout declared once, and what is derived from it.

A :class:`Layout` is a byte order and ``(name, struct code)`` pairs, as dpkt's
``__hdr__`` declares a header. The :mod:`struct` format, the size, each field's offset
and (for bulk reading, only when numpy is there) a numpy structured dtype all come
from that one declaration, so that a header is never spelled out twice.
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["Layout"]

#: numpy's letter for each struct code read here (``s`` is bytes, sized by its count).
_NUMPY_CODES = {"B": "u1", "H": "u2", "I": "u4", "Q": "u8", "b": "i1", "h": "i2",
                "i": "i4", "q": "i8", "f": "f4", "d": "f8", "s": "S"}


class Layout:
    """Fields of fixed size, in order: ``Layout("<", (("type", "I"), ("length", "I")))``.

    A field whose code is padding (``"2x"``) takes room but has no value. Derived:
    ``format`` and ``struct`` (one unpack for every field), ``size``, ``names`` (of
    the fields with a value, in the order ``struct`` gives them), ``offsets`` (name
    -> byte offset) and :meth:`numpy_dtype`.
    """

    __slots__ = ("order", "fields", "format", "struct", "size", "names", "offsets")

    def __init__(self, order: str, fields: tuple[tuple[str, str], ...]) -> None:
        self.order = order
        self.fields = fields
        self.format = order + "".join(code for _, code in fields)
        self.struct = struct.Struct(self.format)
        self.size = self.struct.size
        self.names = tuple(name for name, code in fields if not code.endswith("x"))
        offsets: dict[str, int] = {}
        codes = order
        for name, code in fields:
            offsets[name] = struct.calcsize(codes)
            codes += code
        self.offsets = offsets

    def part(self, first: str, last: str | None = None) -> Layout:
        """The fields from ``first`` to ``last`` (included; by default to the end), to
        read some of a header in one unpack at ``offset + offsets[first]``."""
        names = [name for name, _ in self.fields]
        stop = len(names) if last is None else names.index(last) + 1
        return Layout(self.order, self.fields[names.index(first) : stop])

    def with_order(self, order: str) -> Layout:
        """The same fields in another byte order (pcapng sections choose theirs)."""
        return Layout(order, self.fields)

    def numpy_dtype(self) -> Any:
        """The numpy structured dtype of one record of this layout (numpy is imported
        here, not with the module: the decoder does not need it)."""
        import numpy as np

        endian = "<" if self.order == "<" else ">"
        names, formats, offsets = [], [], []
        for name, code in self.fields:
            if code.endswith("x"):
                continue
            count, letter = code[:-1], code[-1]
            numpy_code = _NUMPY_CODES[letter]
            names.append(name)
            formats.append(f"S{count or 1}" if letter == "s" else endian + numpy_code)
            offsets.append(self.offsets[name])
        return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                         "itemsize": self.size})

    def __repr__(self) -> str:
        return f"Layout({self.format!r}: {', '.join(self.names)})"

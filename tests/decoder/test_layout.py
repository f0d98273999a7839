"""Wire layouts declared once: formats, sizes, offsets and dtypes derived alike."""

from __future__ import annotations

import numpy as np

from decoder.layout import Layout
from decoder.messages import EXTENSION, HEADER
from decoder.protocol import (
    EXTENDED_HEADER_SIZE,
    EXTENSION_LAYOUT,
    HEADER_LAYOUT,
    HEADER_SIZE,
)


def test_the_ca_header_is_derived_from_its_declaration() -> None:
    assert HEADER.format == ">HHHHII" and EXTENSION.format == ">II"
    assert (HEADER_SIZE, EXTENDED_HEADER_SIZE) == (16, 24)
    assert HEADER_LAYOUT.offsets == {"command": 0, "payload_size": 2, "data_type": 4,
                                     "data_count": 6, "parameter1": 8, "parameter2": 12}
    assert EXTENSION_LAYOUT.size == 8


def test_numpy_dtype_reads_what_struct_reads_at_any_offset() -> None:
    values = (1, 0xFFFF, 6, 0, 0xDEADBEEF, 7)
    buffer = b"\x00" * 3 + HEADER.pack(*values)  # an odd offset: no alignment assumed
    dtype = HEADER_LAYOUT.numpy_dtype()
    assert dtype.itemsize == HEADER_SIZE
    record = np.frombuffer(buffer, np.uint8)[3:].view(dtype)[0]
    assert tuple(int(record[name]) for name in HEADER_LAYOUT.names) == values


def test_padding_and_parts() -> None:
    layout = Layout("<", (("a", "B"), ("_pad", "3x"), ("b", "I"), ("c", "4s")))
    assert layout.format == "<B3xI4s" and layout.size == 12
    assert layout.names == ("a", "b", "c")
    assert layout.offsets == {"a": 0, "_pad": 1, "b": 4, "c": 8}
    assert layout.part("b").format == "<I4s" and layout.part("a", "b").size == 8
    assert layout.with_order(">").struct.pack(1, 2, b"xyzw") == b"\x01\0\0\0\0\0\0\x02xyzw"
    dtype = layout.numpy_dtype()
    assert dtype.names == ("a", "b", "c") and dtype.itemsize == 12


"""The IPv4, TCP and pcapng packet block layouts, declared once."""

from __future__ import annotations

from shark.capture.files import EPB_LAYOUT
from shark.network.headers import IPV4_HEADER, TCP_HEADER, UDP_HEADER


def test_network_and_capture_layouts() -> None:
    assert (IPV4_HEADER.size, TCP_HEADER.size, UDP_HEADER.size) == (20, 20, 8)
    assert IPV4_HEADER.offsets["src"] == 12 and IPV4_HEADER.offsets["protocol"] == 9
    assert TCP_HEADER.offsets["offset_flags"] == 12
    assert EPB_LAYOUT.size == 28 and EPB_LAYOUT.offsets["captured_length"] == 20

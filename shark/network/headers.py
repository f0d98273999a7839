"""The IPv4, TCP and UDP headers, declared once (:class:`decoder.layout.Layout`).

:mod:`shark.network.packets` reads them a frame at a time with :mod:`struct`,
:mod:`shark.network.segments` a block of frames at a time with numpy: both take
their formats and offsets from here. Fields are named as in RFC 791, 793 and 768.
"""

from __future__ import annotations

from decoder.layout import Layout

__all__ = ["IPV4_HEADER", "TCP_HEADER", "UDP_HEADER"]

#: An IPv4 header without options (``version_ihl``: version and header length in
#: 32-bit words; ``fragment``: flags and fragment offset).
IPV4_HEADER = Layout("!", (
    ("version_ihl", "B"), ("tos", "B"), ("total_length", "H"), ("ident", "H"),
    ("fragment", "H"), ("ttl", "B"), ("protocol", "B"), ("checksum", "H"),
    ("src", "4s"), ("dst", "4s"),
))
#: A TCP header without options (``offset_flags``: data offset in 32-bit words, and
#: the flags).
TCP_HEADER = Layout("!", (
    ("sport", "H"), ("dport", "H"), ("seq", "I"), ("ack", "I"), ("offset_flags", "H"),
    ("window", "H"), ("checksum", "H"), ("urgent", "H"),
))
UDP_HEADER = Layout("!", (("sport", "H"), ("dport", "H"), ("length", "H"), ("checksum", "H")))

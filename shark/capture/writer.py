"""Writing pcapng captures, incrementally, from :class:`~shark.capture.files.Frame` objects.

A live capture has to be saved as it happens: frames are appended one at a time, the
file is valid after every :meth:`PcapngWriter.flush`, and a crash loses at most the
unflushed tail. pcapng (rather than pcap) because one file can then hold frames of
several link types, each with its interface's name, and nanosecond timestamps.

The output is one little-endian section: a Section Header Block naming the
application, one Interface Description Block per (interface name, link type) with
``if_tsresol`` = 9 (nanoseconds) and ``if_name``, and one Enhanced Packet Block per
frame. Blocks are built in a memory buffer and written in large pieces, so a frame costs
one header pack and two buffer appends.

:class:`~shark.capture.files.Frame` carries no original (wire) length, so each packet block
records the captured length as the original length.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from shark.capture.files import EPB_LAYOUT, Frame

__all__ = ["PcapngWriter"]

#: Buffered bytes that trigger a write to the file (frames stay in memory until then
#: or until :meth:`PcapngWriter.flush`).
BUFFER = 1 << 20

_SHB, _IDB, _EPB = 0x0A0D0D0A, 1, 6
_OPT_END, _SHB_USERAPPL, _IF_NAME, _IF_TSRESOL = 0, 4, 2, 9
_NS_RESOLUTION = 9
_EPB_HEAD = EPB_LAYOUT.struct  # type, length, interface, ts high, ts low, caplen, len
_EPB_FIXED = EPB_LAYOUT.size + 4  # the fields, and the trailing length
_LENGTH = struct.Struct("<I")
_PADDING = tuple(b"\0" * (-n % 4) for n in range(4))


class PcapngWriter:
    """Appends frames to a new pcapng file or stream.

    ``target`` is a path (created or truncated, and closed by :meth:`close`) or a
    binary stream (left open). Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, target: str | Path | BinaryIO, application: str = "shark") -> None:
        if isinstance(target, (str, Path)):
            self._stream: BinaryIO = open(target, "wb")  # closed by close()
            self._owned = True
        else:
            self._stream = target
            self._owned = False
        self._buffer = bytearray()
        self._closed = False
        self._interfaces: dict[tuple[str | None, int], int] = {}
        self._by_linktype: dict[int, int] = {}
        #: Frames written so far.
        self.frames = 0
        options = _option(_SHB_USERAPPL, application.encode()) + _option(_OPT_END, b"")
        # byte-order magic, version 1.0, section length unknown (-1)
        self._block(_SHB, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + options)

    def add_interface(self, linktype: int, name: str | None = None, snaplen: int = 0) -> int:
        """Declare an interface (once per name and link type); return its interface id.

        ``snaplen`` 0 means no limit. Frames written with :meth:`write` and no explicit
        interface go to the first interface declared with their link type.
        """
        key = (name, linktype)
        if key in self._interfaces:
            return self._interfaces[key]
        options = _option(_IF_TSRESOL, bytes((_NS_RESOLUTION,)))
        if name is not None:
            options += _option(_IF_NAME, name.encode())
        self._block(_IDB, struct.pack("<HHI", linktype, 0, snaplen) + options
                    + _option(_OPT_END, b""))
        interface = self._interfaces[key] = len(self._interfaces)
        self._by_linktype.setdefault(linktype, interface)
        return interface

    def write(self, frame: Frame, interface: int | None = None) -> None:
        """Append one frame, on ``interface`` (an id from :meth:`add_interface`) or, by
        default, on an interface of the frame's link type (declared unnamed if needed)."""
        if interface is None:
            interface = self._by_linktype.get(frame.linktype)
            if interface is None:
                interface = self.add_interface(frame.linktype)
        elif not 0 <= interface < len(self._interfaces):
            raise ValueError(f"interface {interface} was not declared")
        data = frame.data
        caplen = len(data)
        pad = _PADDING[caplen % 4]
        length = _EPB_FIXED + caplen + len(pad)
        time_ns = frame.time_ns
        buffer = self._buffer
        buffer += _EPB_HEAD.pack(_EPB, length, interface, time_ns >> 32, time_ns & 0xFFFFFFFF,
                                 caplen, caplen)
        buffer += data
        buffer += pad + _LENGTH.pack(length)
        self.frames += 1
        if len(buffer) >= BUFFER:
            self._drain()

    def flush(self) -> None:
        """Write out everything buffered, so that the file holds every frame so far."""
        self._drain()
        self._stream.flush()

    def close(self) -> None:
        """Flush; close the file if this writer opened it."""
        if self._closed:
            return
        self._closed = True
        self.flush()
        if self._owned:
            self._stream.close()

    def __enter__(self) -> PcapngWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _block(self, block_type: int, body: bytes) -> None:
        length = 12 + len(body)
        self._buffer += struct.pack("<II", block_type, length) + body + _LENGTH.pack(length)

    def _drain(self) -> None:
        if self._buffer:
            self._stream.write(self._buffer)
            self._buffer = bytearray()


def _option(code: int, value: bytes) -> bytes:
    """One option: code, length, value padded to 32 bits."""
    return struct.pack("<HH", code, len(value)) + value + _PADDING[len(value) % 4]

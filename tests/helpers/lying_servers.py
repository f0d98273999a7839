"""Channel Access servers that lie or break, for tests of how our peers take them.

:class:`LyingServer` listens on 127.0.0.1 only, on one free port for UDP and TCP, as
a CA server does: it answers every name search with itself, and then, depending on
``behaviour``, either serves every channel with a native type that no DBR type has
(:data:`BAD_NATIVE_TYPE`) or resets every connection it accepts (:data:`RESET`).
:func:`run_shark` runs the ``shark`` command in a child process, bounded in time, so
that all it prints (asyncio's own log lines too) is captured.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import struct
import sys
from pathlib import Path

import peers

from decoder import Role, StreamFramer
from decoder import messages as m
from decoder.framing import split_datagram
from decoder.protocol import ADDRESS_OF_SENDER, MINOR_VERSION

LOOPBACK = peers.LOOPBACK
ROOT = Path(__file__).resolve().parents[2]
BAD_NATIVE_TYPE = "bad native type"
RESET = "reset"
#: The native type the lying server names: no DBR type has it.
NATIVE_TYPE = 0xFFFF


class _Searches(asyncio.DatagramProtocol):
    def __init__(self, port: int) -> None:
        self.port = port
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        replies = [m.SearchResponse(port=self.port, ip=ADDRESS_OF_SENDER, cid=request.cid,
                                    version=MINOR_VERSION)
                   for request in split_datagram(data, Role.CLIENT)
                   if isinstance(request, m.SearchRequest)]
        if replies and self.transport is not None:
            self.transport.sendto(b"".join(r.to_bytes() for r in [m.VersionResponse(),
                                                                    *replies]), addr)


class LyingServer:
    """A server of ``behaviour`` on 127.0.0.1:``port`` (known once started)."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.port = 0
        self.connections = 0
        self._tcp: asyncio.base_events.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None

    async def __aenter__(self) -> LyingServer:
        loop = asyncio.get_running_loop()
        for _ in range(20):  # the free port may be taken between finding and binding it
            port = peers.free_port()
            try:
                self._tcp = await asyncio.start_server(self._serve, LOOPBACK, port)
                self._udp, _ = await loop.create_datagram_endpoint(
                    functools.partial(_Searches, port), local_addr=(LOOPBACK, port))
            except OSError:
                await self.__aexit__()
                continue
            self.port = port
            return self
        raise RuntimeError("no free loopback port")

    async def __aexit__(self, *exc_info: object) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        self._tcp = self._udp = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.behaviour == RESET:
            sock = writer.get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # with a zero linger: a reset
            return
        framer = StreamFramer(Role.CLIENT)
        writer.write(m.VersionResponse().to_bytes())
        sids = iter(range(1, 1 << 30))
        with contextlib.suppress(OSError):
            while data := await reader.read(1 << 16):
                for request in framer.feed(data):
                    if isinstance(request, m.CreateChanRequest):
                        writer.write(m.CreateChanResponse(
                            data_type=NATIVE_TYPE, data_count=1, cid=request.cid,
                            sid=next(sids)).to_bytes())
        writer.transport.abort()


async def run_shark(*argv: str, timeout: float = 60.0) -> tuple[int, str, str]:
    """``python -m shark ARGV`` in a child process: exit status, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shark", *argv, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")

"""A hand-driven client circuit to a server on 127.0.0.1, for what our client would never
send: bare requests, garbage, a flood of subscriptions and a reset.

:class:`RawCircuit` keeps what it reads, framed, in :attr:`RawCircuit.received`, so that a
test can wait for one kind of message and look at the others after.
:func:`subscribe_many_and_reset` is the client that leaves abruptly with its updates on
the way, which a server must survive quietly.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Any

import peers

from decoder import EventMask, Role, StreamFramer
from decoder import messages as m
from decoder.dbr import DBRType

LOOPBACK = peers.LOOPBACK


class RawCircuit:
    """A bare circuit to the server: what we send, what comes back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = StreamFramer(Role.SERVER)
        self.received: list[m.Message] = []

    @classmethod
    async def open(cls, port: int) -> RawCircuit:
        return cls(*await asyncio.open_connection(LOOPBACK, port))

    def send(self, *messages: m.Message | bytes) -> None:
        self.writer.write(b"".join(x if isinstance(x, bytes) else x.to_bytes()
                                   for x in messages))

    async def expect(self, kind: type[m.Message], timeout: float = 3.0) -> m.Message:
        """The next message of ``kind`` (others stay in :attr:`received`)."""
        async def wait() -> m.Message:
            while True:
                for i, msg in enumerate(self.received):
                    if type(msg) is kind:
                        return self.received.pop(i)
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError(f"closed before a {kind.__name__}")
                self.received += self.framer.feed(data)
        return await asyncio.wait_for(wait(), timeout)

    async def closed_by_server(self, timeout: float = 3.0) -> bool:
        """Read until the server closes; True if it did within ``timeout``."""
        async def drain() -> None:
            while data := await self.reader.read(65536):
                self.received += self.framer.feed(data)
        try:
            await asyncio.wait_for(drain(), timeout)
        except (asyncio.TimeoutError, ConnectionError):
            return False
        return True

    async def connect(self, name: str, cid: int = 1) -> int:
        """Create a channel; its SID."""
        self.send(m.CreateChanRequest(name=name, cid=cid))
        created = await self.expect(m.CreateChanResponse)
        return created.sid

    async def subscribe(self, sid: int, subid: int, data_type: int = DBRType.LONG,
                        mask: int = EventMask.VALUE) -> m.Message:
        """Subscribe; the first update."""
        self.send(m.EventAddRequest(data_type=data_type, data_count=1, sid=sid,
                                    subscriptionid=subid, mask=mask))
        return await self.expect(m.EventAddResponse)

    async def updates_after(self, action: Callable[[], Any]) -> list[m.Message]:
        """The updates that ``action`` (a call) makes, known once an echo comes back."""
        action()
        self.send(m.EchoRequest())
        await self.expect(m.EchoResponse)
        updates = [x for x in self.received if isinstance(x, m.EventAddResponse)]
        self.received = [x for x in self.received if not isinstance(x, m.EventAddResponse)]
        return updates

    def close(self) -> None:
        """Leave at once, without waiting for what is still to be sent."""
        self.writer.transport.abort()

    def reset(self) -> None:
        """Leave at once, with a reset rather than a FIN."""
        self.writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()


async def subscribe_many_and_reset(port: int, name: str, data_type: int, data_count: int,
                                   many: int, pause: float = 0.0) -> None:
    """Connect to the server on ``port``, subscribe ``many`` times to ``name`` and, the
    updates on their way, reset the circuit ``pause`` seconds after the last request."""
    raw = await RawCircuit.open(port)
    raw.send(m.VersionRequest())
    sid = await raw.connect(name)
    raw.send(*(m.EventAddRequest(data_type=data_type, data_count=data_count, sid=sid,
                                 subscriptionid=n, mask=EventMask.VALUE)
               for n in range(many)))
    await raw.writer.drain()
    await asyncio.sleep(pause)
    raw.reset()


async def until_no_circuits(server: Any, tries: int = 100) -> int:
    """Wait (up to ``tries`` times 50 ms) for ``server`` to have no circuit left; the
    circuits it still has then."""
    for _ in range(tries):
        if server.circuit_count == 0:
            break
        await asyncio.sleep(0.05)
    return server.circuit_count

"""An asyncio Channel Access client built on the decoder.

Names are found by UDP search, sent to the addresses given (127.0.0.1:5064
by default: never a broadcast address unless one is given, and the socket is
not allowed to broadcast anyway) and repeated with a doubling interval until a
server answers. One TCP circuit is opened per server and shared by its
channels; each keeps its state in ``Circuit(strict=True, local=Role.CLIENT)``,
fed both directions: what it knows of a channel (SID, native type and count,
access rights) and of the requests in flight is the circuit's, and this module
keeps beside it only futures, queues and sockets. A server that breaks the
protocol (:class:`RemoteProtocolError`) loses its circuit; one that names a native
type no DBR type has fails that channel (:class:`ServerError`); a request of ours
that would break it (:class:`LocalProtocolError`, a bug) is raised to its
caller unsent, and the circuit goes on. When a
circuit is lost its channels are searched for again and, once found, created
again with their subscriptions; reads and writes in flight fail with
:class:`CAError` (ECA_DISCONN).

What a server does wrong is noted in :attr:`Client.misbehaviour`: logged the first
time per server and kind, counted after that (a server that resets every connection
is retried with a back-off, and must not flood the log), and nothing is written to a
connection once it is lost.

It is built for debugging and tests, not speed: every operation takes a
timeout and raises :class:`TimeoutError` past it.

Two hooks let a tool show what happens: ``tap`` is called with a :class:`WireEvent`
for every datagram and TCP segment the client sends or receives, and for each circuit
opened and closed, with the addresses and the time (``shark get --wire`` prints and saves
them); ``on_connection`` is called with a channel and True or False each time it connects
or loses its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import itertools
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from decoder import (
    ECA,
    AccessRights,
    Circuit,
    DecodeError,
    EventMask,
    LocalProtocolError,
    RemoteProtocolError,
    Role,
    StreamFramer,
)
from decoder import messages as m
from decoder.circuit import Channel
from decoder.dbr import DBRType, DBRValue
from decoder.framing import split_datagram
from decoder.protocol import ADDRESS_OF_SENDER, MINOR_VERSION, SERVER_PORT
from decoder.status import eca_name
from shark.errors import SharkError
from shark.peers.convert import from_python
from shark.peers.misbehaviour import Kind, Misbehaviours
from shark.peers.service import Service

__all__ = ["CAError", "Client", "ClientChannel", "ClientSubscription", "ServerError",
           "WireEvent", "WireKind"]

log = logging.getLogger(__name__)

Address = tuple[str, int]
_READ_CHUNK = 1 << 16
#: Search requests per datagram are kept under this size (an Ethernet payload).
_MAX_SEARCH_DATAGRAM = 1400
_FIRST_SEARCH_INTERVAL = 0.03
_END = object()


class WireKind(Enum):
    """What a :class:`WireEvent` is: bytes that went or came, or a circuit's ends."""

    DATA = "data"
    OPEN = "open"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class WireEvent:
    """One thing the client did on the network, as the tap sees it: a datagram or the
    bytes of one TCP send or receive (``transport`` "udp" or "tcp"), or a TCP circuit
    opened or closed; from ``source`` to ``destination`` (for OPEN and CLOSE: from the
    client to the server), at ``time`` (Unix seconds)."""

    kind: WireKind
    transport: str
    source: tuple[str, int]
    destination: tuple[str, int]
    data: bytes
    time: float


class CAError(SharkError):
    """A request the server (or the loss of its circuit) failed, with its ECA code."""

    def __init__(self, status: int, text: str = "") -> None:
        super().__init__(f"{eca_name(status)}: {text}" if text else eca_name(status))
        self.status = status


class ServerError(SharkError):
    """A channel the server described in a way nothing can be made of (a native type
    that is no DBR type): not an answer of the server's, a breach of the protocol."""


class ClientChannel:
    """A channel by name: connected to one server, or being searched for."""

    def __init__(self, client: Client, name: str, cid: int) -> None:
        self.client = client
        self.name = name
        self.cid = cid
        self.circuit: _ClientCircuit | None = None
        self.subscriptions: set[ClientSubscription] = set()
        self.error: CAError | ServerError | None = None
        self._connected = asyncio.Event()

    @property
    def state(self) -> Channel | None:
        """The circuit's record of this channel (None while searching)."""
        return self.circuit.state.channel_for_cid(self.cid) if self.circuit else None

    @property
    def sid(self) -> int | None:
        state = self.state
        return state.sid if state is not None else None

    @property
    def native_type(self) -> DBRType | None:
        state = self.state
        return DBRType(state.native_type) if state and state.native_type is not None else None

    @property
    def native_count(self) -> int | None:
        state = self.state
        return state.native_count if state is not None else None

    @property
    def access_rights(self) -> AccessRights:
        state = self.state
        return state.access_rights or AccessRights.NONE if state else AccessRights.NONE

    @property
    def connected(self) -> bool:
        return self._connected.is_set() and self.error is None

    @property
    def server(self) -> Address | None:
        """The (host, port) of the server the channel is on, when connected."""
        return self.circuit.address if self.connected and self.circuit else None

    async def wait_connected(self) -> None:
        """Return once connected; raise the server's refusal (CREATE_CH_FAIL: CAError) or
        breach (ServerError)."""
        await self._connected.wait()
        if self.error is not None:
            raise self.error

    def __repr__(self) -> str:
        state = "connected" if self.connected else "searching"
        return f"ClientChannel({self.name!r}, {state})"


class ClientSubscription:
    """Updates of one channel: an async iterator of DBRValues, or a callback.

    Made by :meth:`Client.subscribe`; it is (re)added on the server whenever the
    channel (re)connects, until :meth:`cancel`.
    """

    def __init__(self, channel: ClientChannel, subscriptionid: int, data_type: int | None,
                 count: int | None, mask: int, callback: Callable[[DBRValue], Any] | None,
                 ) -> None:
        self.channel = channel
        self.subscriptionid = subscriptionid
        self.data_type = data_type
        self.count = count
        self.mask = mask
        self.callback = callback
        self.active = True
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

    def __aiter__(self) -> ClientSubscription:
        return self

    async def __anext__(self) -> DBRValue:
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)
            raise StopAsyncIteration
        return item

    async def cancel(self, timeout: float | None = None) -> None:
        """Stop the updates (EVENT_CANCEL, waiting for its reply when connected)."""
        if not self.active:
            return
        self.active = False
        self.channel.subscriptions.discard(self)
        circuit = self.channel.circuit
        try:
            if self.channel.connected and circuit is not None:
                timeout = self.channel.client.timeout if timeout is None else timeout
                await asyncio.wait_for(circuit.cancel(self), timeout)
        finally:
            self._queue.put_nowait(_END)

    def _deliver(self, value: DBRValue) -> None:
        if self.callback is not None:
            try:
                self.callback(value)
            except Exception:  # the caller's bug: not the circuit's end
                log.exception("the callback of the subscription to %s failed",
                              self.channel.name)
        else:
            self._queue.put_nowait(value)

    def _end(self) -> None:
        self.active = False
        self._queue.put_nowait(_END)


class Client(Service):
    """A CA client. Use ``async with Client(...) as client`` or start()/stop().

    ``addresses`` are where searches go; ``bind_host`` the local address of
    the search socket; ``timeout`` the default of every operation, in seconds.
    After ``echo_interval`` seconds of silence a circuit is probed with ECHO,
    and dropped if another interval passes without a word from the server.
    ``misbehaviour`` is where what servers do wrong is noted (a new one by default;
    several clients may share one). ``tap`` sees every :class:`WireEvent`;
    ``on_connection(channel, connected)`` every connection and loss of one;
    ``on_error(message)`` each ERROR that answers no request waiting (a WRITE's, which
    has no reply of its own): without it, such errors are noted as misbehaviour.
    """

    def __init__(
        self,
        addresses: Sequence[Address] = (("127.0.0.1", SERVER_PORT),),
        *,
        bind_host: str = "127.0.0.1",
        timeout: float = 2.0,
        max_search_interval: float = 5.0,
        echo_interval: float = 30.0,
        priority: int = 0,
        client_name: str | None = None,
        host_name: str | None = None,
        misbehaviour: Misbehaviours | None = None,
        tap: Callable[[WireEvent], Any] | None = None,
        on_connection: Callable[[ClientChannel, bool], Any] | None = None,
        on_error: Callable[[m.ErrorResponse], Any] | None = None,
    ) -> None:
        self.addresses = list(addresses)
        self.bind_host = bind_host
        self.timeout = timeout
        self.max_search_interval = max_search_interval
        self.echo_interval = echo_interval
        self.priority = priority
        self.client_name = client_name or _user_name()
        self.host_name = host_name or socket.gethostname()
        self.channels: dict[str, ClientChannel] = {}
        self._circuits: dict[Address, _ClientCircuit] = {}
        self._searching: dict[int, ClientChannel] = {}
        self._search_now = asyncio.Event()
        self._search_reset = False
        self._search_task: asyncio.Task | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._ids = itertools.count(1)
        self._stopping = False
        #: Circuits to each server lost in a row through its fault: the back-off's.
        self._failures: dict[Address, int] = {}
        self._retries: set[asyncio.TimerHandle] = set()
        self.misbehaviour = Misbehaviours(log) if misbehaviour is None else misbehaviour
        self.tap = tap
        self.on_connection = on_connection
        self.on_error = on_error

    async def start(self) -> None:
        """Open the search socket; names asked for from now on are searched."""
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _SearchListener(self), local_addr=(self.bind_host, 0)
        )
        self._search_task = asyncio.create_task(self._search_loop())

    async def stop(self) -> None:
        """Close every circuit and the search socket; end every subscription."""
        self._stopping = True
        for retry in self._retries:
            retry.cancel()
        if self._search_task is not None:
            self._search_task.cancel()
            await asyncio.gather(self._search_task, return_exceptions=True)
        circuits = list(self._circuits.values())
        for circuit in circuits:
            circuit.close()
        await asyncio.gather(*(c.task for c in circuits), return_exceptions=True)
        if self._udp is not None:
            self._udp.close()
        for channel in self.channels.values():
            for sub in channel.subscriptions:
                sub._end()
        self.misbehaviour.close()

    # -- the API -------------------------------------------------------------------

    def channel(self, name: str) -> ClientChannel:
        """The channel of ``name``, searched for from the first time it is asked."""
        channel = self.channels.get(name)
        if channel is None:
            channel = self.channels[name] = ClientChannel(self, name, next(self._ids))
            self._search([channel], urgent=True)
        return channel

    async def connect(self, name: str, timeout: float | None = None) -> ClientChannel:
        """The channel of ``name``, once connected."""
        channel = self.channel(name)
        await asyncio.wait_for(channel.wait_connected(), self._timeout(timeout))
        return channel

    async def read(self, name: str, data_type: int | None = None, count: int | None = None,
                   timeout: float | None = None) -> DBRValue:
        """Read with READ_NOTIFY, in ``data_type`` (default: native) and ``count``
        elements (default: all current ones, or the native count before CA 4.13)."""
        return await asyncio.wait_for(self._read(name, data_type, count),
                                      self._timeout(timeout))

    async def write(self, name: str, value: Any, *, notify: bool = True,
                    data_type: int | None = None, timeout: float | None = None) -> None:
        """Write ``value`` (a scalar or a sequence). Text goes as DBR_STRING unless
        ``data_type`` says otherwise, so the server converts it as an IOC would
        (an enum's state name, a number in text). With ``notify`` (WRITE_NOTIFY)
        wait for the server's status and raise CAError on failure; without it
        (WRITE) only the sending is waited for."""
        await asyncio.wait_for(self._write(name, value, notify, data_type),
                               self._timeout(timeout))

    def subscribe(self, name: str, data_type: int | None = None, *,
                  mask: int = EventMask.VALUE | EventMask.ALARM, count: int | None = None,
                  callback: Callable[[DBRValue], Any] | None = None) -> ClientSubscription:
        """Subscribe to ``name`` (EVENT_ADD) in ``data_type`` (default: native).

        Iterate the result (``async for value in sub``) or give ``callback``;
        the first update comes as soon as the channel connects.
        """
        channel = self.channel(name)
        sub = ClientSubscription(channel, next(self._ids), data_type, count, mask, callback)
        if channel.connected and channel.circuit is not None:
            channel.circuit.subscribe(sub)  # LocalProtocolError: not subscribed
        channel.subscriptions.add(sub)
        return sub

    async def clear(self, name: str, timeout: float | None = None) -> None:
        """Forget the channel of ``name``: CLEAR_CHANNEL, waiting for the server's reply
        when connected; its subscriptions end. Asking for ``name`` again makes a new
        channel."""
        channel = self.channels.pop(name, None)
        if channel is None:
            return
        self._searching.pop(channel.cid, None)
        for sub in channel.subscriptions:
            sub._end()
        channel.subscriptions.clear()
        circuit = channel.circuit
        if circuit is not None:
            await asyncio.wait_for(circuit.clear(channel), self._timeout(timeout))

    async def echo(self, timeout: float | None = None) -> None:
        """Send ECHO on every circuit and wait for all the replies."""
        circuits = [c for c in self._circuits.values() if c.ready]
        await asyncio.wait_for(asyncio.gather(*(c.echo() for c in circuits)),
                               self._timeout(timeout))

    # -- inside --------------------------------------------------------------------

    def _timeout(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    async def _connected(self, name: str) -> tuple[ClientChannel, _ClientCircuit]:
        """The channel of ``name`` and its circuit, once connected."""
        channel = self.channel(name)
        while True:
            await channel.wait_connected()
            if channel.circuit is not None:  # not lost again since
                return channel, channel.circuit

    async def _read(self, name: str, data_type: int | None, count: int | None) -> DBRValue:
        channel, circuit = await self._connected(name)
        return await circuit.read(channel, data_type, count)

    async def _write(self, name: str, value: Any, notify: bool, data_type: int | None) -> None:
        channel, circuit = await self._connected(name)
        assert channel.native_type is not None
        if data_type is None:
            data_type = DBRType.STRING if _is_text(value) else channel.native_type
        elif not DBRType.STRING <= data_type <= DBRType.DOUBLE:
            raise ValueError(f"writes take a plain DBR type, not {data_type}")
        values = from_python(value, data_type)
        await circuit.write(channel, data_type, values, notify)

    def _search(self, channels: list[ClientChannel], urgent: bool) -> None:
        """Look ``channels`` up; ``urgent`` restarts the back-off from its shortest interval."""
        for channel in channels:
            self._searching[channel.cid] = channel
        self._search_reset = self._search_reset or urgent
        self._search_now.set()

    async def _search_loop(self) -> None:
        # A timer sets the event rather than wait_for() timing the wait: Python 3.11's
        # wait_for can swallow a cancellation that comes as its timeout expires.
        loop = asyncio.get_running_loop()
        interval = _FIRST_SEARCH_INTERVAL
        while True:
            if self._search_reset:
                interval, self._search_reset = _FIRST_SEARCH_INTERVAL, False
            self._search_now.clear()
            if not self._searching:
                await self._search_now.wait()
                continue
            self._send_searches()
            timer = loop.call_later(interval, self._search_now.set)
            try:
                await self._search_now.wait()
            finally:
                timer.cancel()
            interval = min(interval * 2, self.max_search_interval)

    def _send_searches(self) -> None:
        assert self._udp is not None
        datagrams, current = [], [m.VersionRequest(priority=0).to_bytes()]
        for channel in self._searching.values():
            request = m.SearchRequest(name=channel.name, cid=channel.cid).to_bytes()
            if sum(map(len, current)) + len(request) > _MAX_SEARCH_DATAGRAM and len(current) > 1:
                datagrams.append(b"".join(current))
                current = current[:1]
            current.append(request)
        datagrams.append(b"".join(current))
        local = self._udp.get_extra_info("sockname")
        for address in self.addresses:
            for datagram in datagrams:
                self._udp.sendto(datagram, address)
                self._tapped(WireKind.DATA, "udp", local, address, datagram)

    def _found(self, reply: m.SearchResponse, source: Address) -> None:
        channel = self._searching.pop(reply.cid, None)
        if channel is None or self._stopping:  # another server's answer, or a late one
            return
        host = source[0] if reply.ip == ADDRESS_OF_SENDER else socket.inet_ntoa(
            reply.ip.to_bytes(4, "big"))
        address = (host, reply.port)
        circuit = self._circuits.get(address)
        if circuit is None:
            circuit = self._circuits[address] = _ClientCircuit(self, address)
        circuit.attach(channel)

    def _circuit_lost(self, circuit: _ClientCircuit, urgent: bool) -> None:
        """A circuit ended: search its channels again, at once if ``urgent`` (restarting
        the back-off), else after a delay that doubles with each circuit to that server
        lost in a row, so that one resetting every connection is not hammered."""
        if self._circuits.get(circuit.address) is circuit:
            del self._circuits[circuit.address]
        if self._stopping:
            return
        channels = [ch for ch in circuit.channels.values() if ch.error is None]
        for channel in channels:
            channel.circuit = None
            if channel._connected.is_set():
                channel._connected.clear()
                self._connection(channel, False)
        if not channels:
            return
        if urgent:
            self._search(channels, urgent=True)
            return
        failures = self._failures[circuit.address] = self._failures.get(circuit.address, 0) + 1
        delay = min(_FIRST_SEARCH_INTERVAL * 2 ** min(failures, 16), self.max_search_interval)
        retry: asyncio.TimerHandle | None = None

        def search_again() -> None:
            self._retries.discard(retry)  # type: ignore[arg-type]
            lost = [ch for ch in channels if ch.circuit is None and ch.error is None
                    and self.channels.get(ch.name) is ch]
            if lost and not self._stopping:
                self._search(lost, urgent=False)

        retry = asyncio.get_running_loop().call_later(delay, search_again)
        self._retries.add(retry)

    def _tapped(self, kind: WireKind, transport: str, source: Any, destination: Any,
                data: bytes = b"") -> None:
        """Tell the tap (if any) of a WireEvent, now; the tap's own errors stay its own."""
        if self.tap is None:
            return
        try:
            self.tap(WireEvent(kind, transport, (source[0], source[1]),
                               (destination[0], destination[1]), bytes(data), time.time()))
        except Exception:
            log.exception("the wire tap failed")

    def _connection(self, channel: ClientChannel, connected: bool) -> None:
        if self.on_connection is None:
            return
        try:
            self.on_connection(channel, connected)
        except Exception:
            log.exception("the connection callback failed")


class _SearchListener(asyncio.DatagramProtocol):
    def __init__(self, client: Client) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: Address) -> None:
        client = self.client
        if client.tap is not None and client._udp is not None:
            client._tapped(WireKind.DATA, "udp", addr, client._udp.get_extra_info("sockname"),
                           data)
        try:
            replies = split_datagram(data, Role.SERVER)
        except DecodeError as error:
            replies = error.messages
        for reply in replies:
            if isinstance(reply, m.SearchResponse):
                self.client._found(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("search socket: %s", exc)


class _ClientCircuit:
    """The TCP circuit to one server and the requests waiting on it."""

    def __init__(self, client: Client, address: Address) -> None:
        self.client = client
        self.address = address
        #: How the server is named where its misbehaviour is noted.
        self.peer = f"server {address[0]}:{address[1]}"
        self.state = Circuit(strict=True, local=Role.CLIENT)
        self.framer = StreamFramer(Role.SERVER)
        self.channels: dict[int, ClientChannel] = {}
        self.ready = False
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._subscriptions: dict[int, ClientSubscription] = {}
        self._cancels: dict[int, asyncio.Future] = {}
        self._clears: dict[int, asyncio.Future] = {}
        self._echoes: deque[asyncio.Future | None] = deque()
        self._last_heard = 0.0
        self._probing = False
        self._failed = False
        #: The local (host, port) of the circuit once open (for the tap).
        self.local: Address | None = None
        self.task = asyncio.create_task(self._run())

    def attach(self, channel: ClientChannel) -> None:
        """Create ``channel`` on this circuit (once it is open). On a circuit being lost
        nothing is sent: the channel is searched for again as the circuit ends."""
        self.channels[channel.cid] = channel
        channel.circuit = self
        if self.ready:
            with contextlib.suppress(CAError):
                self._send(m.CreateChanRequest(name=channel.name, cid=channel.cid))

    def close(self) -> None:
        self.task.cancel()

    # -- requests ------------------------------------------------------------------

    def _default_count(self, channel: ClientChannel, count: int | None) -> int:
        if count is not None:
            return count
        dynamic = (self.state.server_version or 0) >= MINOR_VERSION
        return 0 if dynamic else channel.native_count or 1

    async def read(self, channel: ClientChannel, data_type: int | None,
                   count: int | None) -> DBRValue:
        ioid = next(self.client._ids)
        request = m.ReadNotifyRequest(
            data_type=channel.native_type if data_type is None else data_type,
            data_count=self._default_count(channel, count), sid=channel.sid, ioid=ioid)
        return await self._request(request, ioid)

    async def write(self, channel: ClientChannel, data_type: int, values: list[Any],
                    notify: bool) -> None:
        ioid = next(self.client._ids)
        fields = {"data_type": data_type, "data_count": len(values), "sid": channel.sid,
                  "ioid": ioid, "data": values}
        if not notify:
            self._send(m.WriteRequest(**fields))
            await self._drain()
            return
        await self._request(m.WriteNotifyRequest(**fields), ioid)

    def _event_fields(self, sub: ClientSubscription) -> dict[str, Any]:
        channel = sub.channel
        return {"data_type": channel.native_type if sub.data_type is None else sub.data_type,
                "data_count": self._default_count(channel, sub.count), "sid": channel.sid,
                "subscriptionid": sub.subscriptionid}

    def subscribe(self, sub: ClientSubscription) -> None:
        self._send(m.EventAddRequest(**self._event_fields(sub), mask=sub.mask))
        self._subscriptions[sub.subscriptionid] = sub

    async def cancel(self, sub: ClientSubscription) -> None:
        self._send(m.EventCancelRequest(**self._event_fields(sub)))
        future = self._cancels[sub.subscriptionid] = asyncio.get_running_loop().create_future()
        try:
            await future
        finally:
            self._cancels.pop(sub.subscriptionid, None)
            self._subscriptions.pop(sub.subscriptionid, None)

    async def clear(self, channel: ClientChannel) -> None:
        """CLEAR_CHANNEL, and wait for the reply if the channel is connected."""
        sid = channel.sid
        del self.channels[channel.cid]
        channel.circuit = None
        for subid in [s for s, sub in self._subscriptions.items() if sub.channel is channel]:
            del self._subscriptions[subid]
        if sid is None or not self.ready:
            return
        self._send(m.ClearChannelRequest(sid=sid, cid=channel.cid))
        future = self._clears[sid] = asyncio.get_running_loop().create_future()
        try:
            await future
        finally:
            self._clears.pop(sid, None)

    async def echo(self) -> None:
        future = asyncio.get_running_loop().create_future()
        self._echoes.append(future)
        self._send(m.EchoRequest())
        await future

    async def _request(self, request: m.Message, ioid: int) -> Any:
        self._send(request)  # a LocalProtocolError leaves nothing sent, nothing waiting
        future = self._pending[ioid] = asyncio.get_running_loop().create_future()
        try:
            return await future
        finally:
            self._pending.pop(ioid, None)

    def _send(self, message: m.Message) -> None:
        """Send ``message``; one the protocol forbids raises LocalProtocolError unsent.
        Nothing is written once the connection is lost (asyncio would log each write)."""
        if self._writer is None:
            raise CAError(ECA.ECA_DISCONN, f"circuit to {self.address} not connected")
        if self._writer.transport.is_closing():
            raise CAError(ECA.ECA_DISCONN, f"circuit to {self.address} lost")
        self.state.handle(message, Role.CLIENT)
        data = message.to_bytes()
        self._writer.write(data)
        if self.client.tap is not None:
            self.client._tapped(WireKind.DATA, "tcp", self.local, self.address, data)

    async def _drain(self) -> None:
        if self._writer is not None:
            try:
                await self._writer.drain()
            except OSError as error:
                raise CAError(ECA.ECA_DISCONN, f"circuit to {self.address} lost: "
                                               f"{_reason(error)}") from None

    # -- the circuit's life --------------------------------------------------------

    async def _run(self) -> None:
        try:
            try:
                reader, self._writer = await asyncio.wait_for(
                    asyncio.open_connection(*self.address), self.client.timeout)
            except (OSError, asyncio.TimeoutError) as error:
                self._fail(Kind.UNREACHABLE, f"cannot connect: {_reason(error)}")
                return
            sockname = self._writer.get_extra_info("sockname")
            self.local = (sockname[0], sockname[1])
            self.client._tapped(WireKind.OPEN, "tcp", self.local, self.address)
            self._send(m.VersionRequest(priority=self.client.priority))
            self._send(m.HostNameRequest(name=self.client.host_name))
            self._send(m.ClientNameRequest(name=self.client.client_name))
            self.ready = True
            for channel in self.channels.values():
                self._send(m.CreateChanRequest(name=channel.name, cid=channel.cid))
            watchdog = asyncio.create_task(self._watch())
            try:
                await self._receive(reader)
            finally:
                watchdog.cancel()  # and its end retrieved, whatever it was
                await asyncio.gather(watchdog, return_exceptions=True)
        except CAError:  # found lost as we wrote: the reason is the transport's
            self._fail(Kind.CONNECTION_LOST, "connection lost")
        except (OSError, asyncio.TimeoutError) as error:
            self._fail(Kind.CONNECTION_LOST, f"connection lost: {_reason(error)}")
        except (DecodeError, RemoteProtocolError) as error:
            self._fail(Kind.PROTOCOL, f"circuit dropped, the server broke the protocol: {error}")
        except LocalProtocolError as error:  # a bug of ours while opening it
            log.error("circuit to %s closed: we broke the protocol: %s", self.address, error)
            self._failed = True
        except Exception as error:  # a bug of ours: this circuit goes, the client goes on
            self._fail(Kind.INTERNAL, f"circuit dropped: {error!r}")
        finally:
            self._end()

    def _fail(self, kind: Kind, detail: str) -> None:
        """The circuit ends through the server's fault (or the network's): noted once."""
        self._failed = True
        self.client.misbehaviour.note(self.peer, kind, detail)

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        while data := await reader.read(_READ_CHUNK):
            self._last_heard, self._probing = loop.time(), False
            if self.client.tap is not None:
                self.client._tapped(WireKind.DATA, "tcp", self.address, self.local, data)
            for message in self.framer.feed(data):
                self._dispatch(message)

    async def _watch(self) -> None:
        """ECHO after ``echo_interval`` of silence; drop the circuit after another one."""
        loop = asyncio.get_running_loop()
        interval = self.client.echo_interval
        self._last_heard = loop.time()
        while True:
            await asyncio.sleep(interval)
            if loop.time() - self._last_heard < interval:
                continue
            if self._probing:
                self.client.misbehaviour.note(self.peer, Kind.SILENT,
                                              "silent after ECHO: circuit dropped")
                assert self._writer is not None
                self._writer.transport.abort()
                return
            self._probing = True
            self._echoes.append(None)
            self._send(m.EchoRequest())

    def _end(self) -> None:
        # A server that closed a working circuit may be back at once (a restart); one
        # that broke the protocol or could not be reached waits for the back-off.
        urgent, self.ready = self.ready and not self._failed, False
        self.state.close()
        if self.local is not None:
            self.client._tapped(WireKind.CLOSE, "tcp", self.local, self.address)
        if self._writer is not None:
            self._writer.transport.abort()
        lost = CAError(ECA.ECA_DISCONN, f"circuit to {self.address} lost")
        for future in [*self._pending.values(), *self._cancels.values(),
                       *self._clears.values(), *self._echoes]:
            if future is not None and not future.done():
                future.set_exception(lost)
        self.client._circuit_lost(self, urgent)

    # -- what the server says ------------------------------------------------------

    def _dispatch(self, message: m.Message) -> None:
        self.state.handle(message, Role.SERVER)
        kind = type(message)
        if kind is m.CreateChanResponse:
            self._connected(message)
        elif kind in (m.CreateChFailResponse, m.ServerDisconnResponse):
            self._dropped(message)
        elif kind is m.ReadNotifyResponse:
            self._answer(message.ioid, message.status, lambda: message.data)
        elif kind is m.WriteNotifyResponse:
            self._answer(message.ioid, message.status, lambda: None)
        elif kind is m.EventAddResponse:
            self._update(message)
        elif kind is m.EventCancelResponse:
            future = self._cancels.get(message.subscriptionid)
            if future is not None and not future.done():
                future.set_result(None)
        elif kind is m.ClearChannelResponse:
            future = self._clears.get(message.sid)
            if future is not None and not future.done():
                future.set_result(None)
        elif kind is m.EchoResponse:
            future = self._echoes.popleft() if self._echoes else None
            if future is not None and not future.done():
                future.set_result(None)
        elif kind is m.ErrorResponse:
            self._error(message)

    def _connected(self, message: m.CreateChanResponse) -> None:
        channel = self.channels.get(message.cid)
        if channel is None:
            return
        if not DBRType.STRING <= message.data_type <= DBRType.DOUBLE:
            self._bad_native_type(channel, message)
            return
        self.client._failures.pop(self.address, None)  # the server works: no back-off
        channel._connected.set()
        self.client._connection(channel, True)
        for sub in list(channel.subscriptions):
            try:
                self.subscribe(sub)
            except LocalProtocolError as error:  # a bug of ours: this subscription only
                log.error("subscription to %s not renewed: %s", channel.name, error)

    def _bad_native_type(self, channel: ClientChannel, message: m.CreateChanResponse) -> None:
        """A channel whose native type is no DBR value type cannot be read, written or
        subscribed to: it fails (ServerError, its subscriptions end) and is cleared on
        the server, as the rest of the circuit goes on."""
        detail = f"native type {message.data_type} of {channel.name} is not a DBR type"
        self.client.misbehaviour.note(self.peer, Kind.BAD_NATIVE_TYPE, detail)
        del self.channels[channel.cid]
        channel.circuit = None
        channel.error = ServerError(f"{self.peer}: {detail}")
        if self.client.channels.get(channel.name) is channel:
            del self.client.channels[channel.name]
        for sub in channel.subscriptions:
            sub._end()
        channel._connected.set()
        with contextlib.suppress(CAError, LocalProtocolError):
            self._send(m.ClearChannelRequest(sid=message.sid, cid=channel.cid))

    def _dropped(self, message: m.Message) -> None:
        """CREATE_CH_FAIL fails the channel; SERVER_DISCONN sends it searching again."""
        channel = self.channels.pop(message.cid, None)
        if channel is None:
            return
        channel.circuit = None
        if isinstance(message, m.CreateChFailResponse):
            channel.error = CAError(ECA.ECA_UKNCHAN, f"server refused channel {channel.name}")
            del self.client.channels[channel.name]
            channel._connected.set()
        else:
            channel._connected.clear()
            self.client._connection(channel, False)
            self.client._search([channel], urgent=True)

    def _answer(self, ioid: int, status: int, result: Callable[[], Any]) -> None:
        future = self._pending.get(ioid)
        if future is None or future.done():
            return
        if status & 1:  # libca's test of success
            future.set_result(result())
        else:
            future.set_exception(CAError(status))

    def _update(self, message: m.EventAddResponse) -> None:
        sub = self._subscriptions.get(message.subscriptionid)
        if sub is None or not sub.active:
            return
        if message.status & 1:
            sub._deliver(message.data)
        else:
            self.client.misbehaviour.note(
                self.peer, Kind.FAILED_UPDATE,
                f"update of {sub.channel.name}: {eca_name(message.status)}")

    def _error(self, message: m.ErrorResponse) -> None:
        original = message.original_request
        ioid = getattr(original, "ioid", None)
        future = self._pending.get(ioid) if ioid is not None else None
        if future is not None and not future.done():
            future.set_exception(CAError(message.status, message.error_message))
        elif self.client.on_error is not None:
            try:
                self.client.on_error(message)
            except Exception:
                log.exception("the error callback failed")
        else:
            self.client.misbehaviour.note(
                self.peer, Kind.ERROR_MESSAGE, f"{eca_name(message.status)} for "
                f"{original.command_name}: {message.error_message}")


def _reason(error: BaseException) -> str:
    """An exception in words (a timeout's own text is empty)."""
    return str(error) or type(error).__name__


def _is_text(value: Any) -> bool:
    if isinstance(value, (str, bytes)):
        return True
    return isinstance(value, (list, tuple)) and any(isinstance(v, (str, bytes)) for v in value)


def _user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "shark"

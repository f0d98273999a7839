"""The client a CA tool runs: where it searches, how long it waits, what it says when a
channel does not connect.

Searches go to the addresses of ``EPICS_CA_ADDR_LIST`` (``host`` or ``host:port``,
the port by default ``EPICS_CA_SERVER_PORT`` or 5064), and to 127.0.0.1 when none is
set: never anywhere else. ``EPICS_CA_AUTO_ADDR_LIST`` is not honoured: nothing is
broadcast on the interfaces' own accord, so that a tool pointed at a test IOC never
reaches a real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from decoder.status import ECA
from shark.errors import SharkError
from shark.peers.client import CAError, Client, ClientChannel, ServerError, WireEvent
from shark.peers.environment import environment_port, port_number

__all__ = [
    "ConnectError",
    "ca_addresses",
    "ca_message",
    "connect_all",
    "host_text",
    "not_found_message",
    "open_client",
    "run_tool",
]

_SERVER_PORT = 5064

#: libca's ``ca_message`` texts of the codes the tools report.
_MESSAGES = {
    ECA.ECA_NORMAL: "Normal successful completion",
    ECA.ECA_TIMEOUT: "User specified timeout on IO operation expired",
    ECA.ECA_BADTYPE: "The data type specifed is invalid",
    ECA.ECA_GETFAIL: "Could not perform a database value get for that channel",
    ECA.ECA_PUTFAIL: "Could not perform a database value put for that channel",
    ECA.ECA_BADCOUNT: "Invalid element count requested",
    ECA.ECA_BADSTR: "Invalid string",
    ECA.ECA_DISCONN: "Virtual circuit disconnect",
    ECA.ECA_NORDACCESS: "Read access denied",
    ECA.ECA_NOWTACCESS: "Write access denied",
    ECA.ECA_NOCONVERT: "Data conversion between client's type and the server's type failed",
    ECA.ECA_UKNCHAN: "Unknown channel",
    ECA.ECA_BADMASK: "Invalid event selection mask",
}


class ConnectError(SharkError):
    """Channels that did not connect in time (``missing``, in the order asked)."""

    def __init__(self, missing: list[str], total: int) -> None:
        super().__init__(not_found_message(missing, total))
        self.missing = missing


def ca_message(status: int) -> str:
    """What libca says of an ECA code."""
    try:
        return _MESSAGES[ECA(status)]
    except (ValueError, KeyError):
        return f"CA status {status}"


def not_found_message(missing: Sequence[str], total: int) -> str:
    """caget's words for channels that did not connect."""
    if total == 1 and missing:
        return f"Channel connect timed out: '{missing[0]}' not found."
    return "Channel connect timed out: some PV(s) not found."


def ca_addresses(environ: Mapping[str, str] | None = None) -> list[tuple[str, int]]:
    """Where searches go: ``EPICS_CA_ADDR_LIST``, else 127.0.0.1; a bad entry raises
    SharkError."""
    env = os.environ if environ is None else environ
    default_port = environment_port("EPICS_CA_SERVER_PORT", _SERVER_PORT, env)
    entries = (env.get("EPICS_CA_ADDR_LIST") or "").split()
    if not entries:
        return [("127.0.0.1", default_port)]
    found = []
    for entry in entries:
        host, _, port = entry.partition(":")
        try:
            address = socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            try:
                address = socket.gethostbyname(host)
            except OSError:
                raise SharkError(f"EPICS_CA_ADDR_LIST: unknown host {host!r}") from None
        found.append((address, port_number(port, f"EPICS_CA_ADDR_LIST entry {entry!r}")
                      if port else default_port))
    return found


def open_client(timeout: float, priority: int = 0,
                tap: Callable[[WireEvent], Any] | None = None, **hooks: Any) -> Client:
    """A client searching only the addresses of :func:`ca_addresses`; its search socket
    is bound to loopback when they all are."""
    addresses = ca_addresses()
    loopback = all(host.startswith("127.") for host, _ in addresses)
    return Client(addresses, bind_host="127.0.0.1" if loopback else "0.0.0.0",
                  timeout=timeout, priority=priority, tap=tap, **hooks)


async def connect_all(client: Client, names: Sequence[str], timeout: float,
                      fail: bool = True) -> dict[str, ClientChannel]:
    """The channels of ``names`` that connect within ``timeout`` (all searched at once).
    With ``fail``, any that does not raises :class:`ConnectError`."""
    channels = {name: client.channel(name) for name in names}

    async def wait(channel: ClientChannel) -> None:
        with contextlib.suppress(CAError, ServerError):
            await channel.wait_connected()

    waits = [asyncio.ensure_future(wait(channel)) for channel in channels.values()]
    _, pending = await asyncio.wait(waits, timeout=timeout)
    for task in pending:
        task.cancel()
    connected = {name: ch for name, ch in channels.items() if ch.connected}
    missing = [name for name in names if name not in connected]
    if missing and fail:
        raise ConnectError(missing, len(names))
    return connected


def host_text(address: tuple[str, int]) -> str:
    """``host:port`` as libca names a server: the name /etc/hosts gives its address
    (never a DNS query: nothing may leave for another address), else the address."""
    host, port = address
    return f"{_hosts_name(host) or host}:{port}"


def _hosts_name(address: str) -> str | None:
    try:
        with open("/etc/hosts", encoding="utf-8", errors="replace") as hosts:
            for line in hosts:
                fields = line.split("#", 1)[0].split()
                if len(fields) > 1 and fields[0] == address:
                    return fields[1]
    except OSError:
        return None
    return None


def run_tool(args: Any, command: str, body: Callable[[Client], Any], jsonl: bool = False,
             **hooks: Any) -> int:
    """Run ``body(client)`` (a coroutine function returning the exit status) with a
    client of :func:`open_client` (``hooks``: its ``on_connection``, ``on_error``) and,
    with ``--wire`` or ``--write``, its wire tap (``watch``, a tap of the command's
    own, sees the same events);
    channels that do not connect are said as caget says it (status 1), other errors in
    one line (status 1)."""
    from shark.catools.wire import WireTap  # (the tables load only when asked for)

    tap = None
    try:
        if args.wire or args.write:
            tap = WireTap(show=args.wire, write=args.write, jsonl=jsonl)
    except OSError as exc:
        print(f"shark {command}: error: {args.write}: {exc.strerror or exc}", file=sys.stderr)
        return 1

    watch = hooks.pop("watch", None)
    both = tap if watch is None else watch if tap is None else _both(tap, watch)

    async def main() -> int:
        client = open_client(args.timeout, args.priority, tap=both, **hooks)
        async with client:
            return await body(client)

    try:
        return asyncio.run(main())
    except ConnectError as exc:
        sys.stdout.flush()
        print(exc, file=sys.stderr)
        return 1
    except SharkError as exc:
        sys.stdout.flush()
        print(f"shark {command}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        if tap is not None:
            tap.close()


def _both(*taps: Callable[[WireEvent], Any]) -> Callable[[WireEvent], None]:
    def tap(event: WireEvent) -> None:
        for each in taps:
            each(event)
    return tap

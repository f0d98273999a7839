"""``shark info``: cainfo, line for line; with ``--wire``, what only the wire tells.

For each PV: its state, the server it is on (named as /etc/hosts names it, never by
DNS), the access rights, the native type, the request type and the element count, as
cainfo prints them. ``--wire`` (``-v``) adds the server that answered the search, the
search round trip and how many searches went, the server's protocol version, how long
connecting took, and prints every message exchanged as ``shark read`` does.
``-f jsonl`` gives all of it as one JSON object per PV.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from decoder import AccessRights, DecodeError, Role
from decoder import messages as m
from decoder.dbr import Family, promote
from decoder.framing import split_datagram
from shark.catools import flags
from shark.catools.format import dbf_name
from shark.catools.jsonl import dumps
from shark.catools.session import connect_all, host_text, run_tool
from shark.peers.client import Client, ClientChannel, WireEvent

NAME = "info"
HELP = "describe PVs as cainfo does (and what the wire tells)"
DESCRIPTION = (
    "Print the state, server, access rights, native type and element count of each PV, as "
    "cainfo does. --wire adds the search round trip, the server's protocol version and "
    "the connection time, and prints every CA message exchanged; --write FILE.pcapng saves "
    "them (-w is cainfo's timeout).")


def configure(parser: argparse.ArgumentParser) -> None:
    flags.add_common(parser)
    parser.add_argument("names", nargs="+", metavar="PV", help="PV names")


class _Searches:
    """What the wire says of each channel's search: when each request went, when and
    from where the reply came, with the server's minor version."""

    def __init__(self) -> None:
        self.sent: dict[int, list[float]] = {}
        self.replies: dict[int, tuple[float, tuple[str, int], int | None]] = {}

    def round_trip(self, cid: int) -> tuple[float | None, int, tuple[str, int] | None,
                                           int | None]:
        """(seconds from the last search sent before the reply to the reply, searches
        sent, the address the reply came from, the server's minor version)."""
        reply = self.replies.get(cid)
        sent = self.sent.get(cid, [])
        if reply is None:
            return None, len(sent), None, None
        before = [t for t in sent if t <= reply[0]]
        return (reply[0] - before[-1] if before else None), len(before), reply[1], reply[2]


def _access(rights: AccessRights) -> str:
    return (f"{'' if rights & AccessRights.READ else 'no '}read, "
            f"{'' if rights & AccessRights.WRITE else 'no '}write")


def run(args: argparse.Namespace) -> int:
    output = flags.output_format(args)
    searches = _Searches()
    connected_at: dict[str, float] = {}

    def on_connection(channel: ClientChannel, connected: bool) -> None:
        if connected:
            connected_at.setdefault(channel.name, time.time())

    async def body(client: Client) -> int:
        started = time.time()
        channels = await connect_all(client, args.names, args.timeout)
        out = []
        for name in args.names:
            channel = channels[name]
            out.append(_describe(name, channel, searches, connected_at.get(name, started)
                                 - started, output, args.wire))
        sys.stdout.write("".join(out))
        return 0

    return run_tool(args, "info", body, jsonl=output == "jsonl", watch=_udp_tap(searches),
                    on_connection=on_connection)


def _udp_tap(searches: _Searches) -> Any:
    """Searches decoded as what they are: requests from the client's socket (the one
    the OPEN of no circuit uses), replies to it."""
    def tap(event: WireEvent) -> None:
        if event.transport != "udp":
            return
        client_side = event.source == tap.local or tap.local is None  # type: ignore[attr-defined]
        if tap.local is None:  # type: ignore[attr-defined]
            tap.local = event.source  # type: ignore[attr-defined]  (the first is a search)
        try:
            messages = split_datagram(event.data, Role.CLIENT if client_side else Role.SERVER)
        except DecodeError as error:
            messages = error.messages
        for message in messages:
            if isinstance(message, m.SearchRequest):
                searches.sent.setdefault(message.cid, []).append(event.time)
            elif isinstance(message, m.SearchResponse) and message.cid not in searches.replies:
                searches.replies[message.cid] = (event.time, event.source, message.version)
    tap.local = None  # type: ignore[attr-defined]
    return tap


def _describe(name: str, channel: ClientChannel, searches: _Searches, connect_time: float,
              output: str, wire: bool) -> str:
    native = int(channel.native_type or 0)
    server = channel.server
    host = host_text(server) if server else ""
    rtt, sent, replier, minor = searches.round_trip(channel.cid)
    circuit = channel.circuit
    version = circuit.state.server_version if circuit is not None else None
    if output == "jsonl":
        return dumps({
            "pv": name, "state": "connected", "host": host,
            "server": f"{server[0]}:{server[1]}" if server else None,
            "access": _access(channel.access_rights), "native_type": dbf_name(native),
            "request_type": promote(native, Family.PLAIN).dbr_name,
            "native_count": channel.native_count, "search_round_trip": rtt,
            "searches_sent": sent,
            "search_reply_from": f"{replier[0]}:{replier[1]}" if replier else None,
            "server_version": f"4.{version}" if version is not None else None,
            "connect_seconds": round(connect_time, 6)}) + "\n"
    lines = [name,
             "    State:            connected",
             f"    Host:             {host}",
             f"    Access:           {_access(channel.access_rights)}",
             f"    Native data type: {dbf_name(native)}",
             f"    Request type:     {promote(native, Family.PLAIN).dbr_name}",
             f"    Element count:    {channel.native_count}"]
    if wire:
        if server:
            lines.append(f"    Server:           {server[0]}:{server[1]}")
        if replier is not None:
            trip = f"{rtt * 1e3:.3f} ms" if rtt is not None else "?"
            lines.append(f"    Search reply:     from {replier[0]}:{replier[1]} in {trip} "
                         f"({sent} search{'es' if sent != 1 else ''} sent)")
        if version is not None:
            lines.append(f"    CA version:       4.{version}")
        lines.append(f"    Connected in:     {connect_time * 1e3:.3f} ms")
    return "".join(line + "\n" for line in lines)

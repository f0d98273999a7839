"""UDP state: name searches and their replies, beacons, repeater registrations.

Addresses are whatever hashable the caller uses for an endpoint (an
``(ip, port)`` tuple in shark); the decoder only compares them.

A client retries a search with the same search id (its CID for the channel),
so (client address, search id) identifies one name being looked up; the
replies to it name the server and TCP port to connect to. Beacons are kept per
server with their id sequence: a beacon id that goes back or skips ahead is
the sign of a restarted server or lost beacons.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from . import messages as m
from .protocol import ADDRESS_OF_SENDER


class Search:
    """One name looked up by one client."""

    __slots__ = ("name", "client", "cid", "tries", "first", "last", "replies")

    def __init__(self, name: str, client: Hashable, cid: int, context: Any) -> None:
        self.name = name
        self.client = client
        self.cid = cid
        self.tries = 0
        self.first = context
        self.last = context
        #: (server ip as an int or the reply's source address, TCP port, context) per reply.
        self.replies: list[tuple[Any, int, Any]] = []

    @property
    def answered(self) -> bool:
        return bool(self.replies)

    def __repr__(self) -> str:
        return f"Search({self.name!r}, tries={self.tries}, replies={len(self.replies)})"


class BeaconTrack:
    """The beacons of one server (address and TCP port)."""

    __slots__ = ("server", "last_id", "count", "last", "resets", "skips")

    def __init__(self, server: Hashable) -> None:
        self.server = server
        self.last_id: int | None = None
        self.count = 0
        self.last: Any = None
        #: Beacon ids that went back (the server restarted), and that jumped.
        self.resets = 0
        self.skips = 0


class UdpEvent:
    """What a UDP message meant: the search it belongs to, a beacon irregularity."""

    __slots__ = ("search", "reply_to", "beacon", "beacon_anomaly")

    def __init__(self, search: Search | None = None, reply_to: Any = None,
                 beacon: BeaconTrack | None = None, beacon_anomaly: str | None = None) -> None:
        self.search = search
        #: For a search reply: the context of the latest request it can answer.
        self.reply_to = reply_to
        self.beacon = beacon
        self.beacon_anomaly = beacon_anomaly

    @property
    def name(self) -> str | None:
        return self.search.name if self.search is not None else None


NOTHING = UdpEvent()


class Discovery:
    """State of the UDP side of CA in one capture or one network.

    ``max_searches`` bounds memory: beyond it, the oldest searches are forgotten.
    """

    def __init__(self, max_searches: int = 1_000_000) -> None:
        self.searches: dict[tuple[Hashable, int], Search] = {}
        self.beacons: dict[Hashable, BeaconTrack] = {}
        self.registered_clients: set[Any] = set()
        self.max_searches = max_searches

    def handle(self, message: m.Message, src: Hashable, dst: Hashable,
               context: Any = None) -> UdpEvent:
        """Account for one UDP message from ``src`` to ``dst``."""
        kind = type(message)
        if kind is m.SearchRequest:
            return self._search(message, src, context)
        if kind is m.SearchResponse:
            return self._reply(message, src, dst, context)
        if kind is m.NotFoundResponse:
            search = self.searches.get((dst, message.cid))
            return UdpEvent(search, search.last if search else None)
        if kind is m.Beacon:
            return self._beacon(message, src, context)
        if kind is m.RepeaterRegisterRequest:
            self.registered_clients.add(src)
        return NOTHING

    def search_for(self, client: Hashable, cid: int) -> Search | None:
        """The search a client made with search id ``cid``, if seen."""
        return self.searches.get((client, cid))

    def _search(self, message: m.SearchRequest, src: Hashable, context: Any) -> UdpEvent:
        key = (src, message.cid)
        search = self.searches.get(key)
        name = message.name
        if search is None or search.name != name:
            search = Search(name, src, message.cid, context)
            self.searches.pop(key, None)
            self.searches[key] = search
            if len(self.searches) > self.max_searches:
                del self.searches[next(iter(self.searches))]
        search.tries += 1
        search.last = context
        return UdpEvent(search)

    def _reply(self, message: m.SearchResponse, src: Hashable, dst: Hashable,
               context: Any) -> UdpEvent:
        search = self.searches.get((dst, message.cid))
        if search is None:
            return NOTHING
        server = src if message.ip == ADDRESS_OF_SENDER else message.ip
        search.replies.append((server, message.port, context))
        return UdpEvent(search, search.last)

    def _beacon(self, message: m.Beacon, src: Hashable, context: Any) -> UdpEvent:
        server = (message.address or src, message.server_port)
        track = self.beacons.get(server)
        if track is None:
            track = self.beacons[server] = BeaconTrack(server)
        anomaly = None
        beaconid = message.beaconid
        if track.last_id is not None:
            if beaconid < track.last_id:
                track.resets += 1
                anomaly = f"beacon id went back from {track.last_id} to {beaconid}"
            elif beaconid > track.last_id + 1:
                track.skips += 1
                anomaly = f"beacon id jumped from {track.last_id} to {beaconid}"
        track.last_id = beaconid
        track.count += 1
        track.last = context
        return UdpEvent(beacon=track, beacon_anomaly=anomaly)

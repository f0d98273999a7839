"""UDP state: name searches and their replies, beacons, repeater registrations.

Addresses are whatever hashable the caller uses for an endpoint (an
``(ip, port)`` tuple in shark); the decoder only compares them.

A client retries a search with the same search id (its CID for the channel),
so (client address, search id) identifies one name being looked up; the
replies to it name the server and TCP port to connect to. Beacons are judged by
:class:`decoder.beacons.BeaconJudge` (libca's rules, one name per server): a
restarted server, lost beacons, a new server are its *beacon anomalies*.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Any

from . import messages as m
from .beacons import BeaconAnomaly, BeaconJudge, BeaconServer
from .protocol import ADDRESS_OF_SENDER, Role

#: Beacon anomalies :class:`Discovery` keeps (the newest), for screens to list.
MAX_BEACON_ANOMALIES = 10_000


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


class UdpEvent:
    """What a UDP message meant: the search it belongs to, a beacon irregularity."""

    __slots__ = ("search", "reply_to", "beacon", "beacon_anomalies")

    def __init__(self, search: Search | None = None, reply_to: Any = None,
                 beacon: BeaconServer | None = None,
                 beacon_anomalies: list[BeaconAnomaly] | tuple = ()) -> None:
        self.search = search
        #: For a search reply: the context of the latest request it can answer.
        self.reply_to = reply_to
        #: For a beacon: its server, and the anomalies it showed (usually none).
        self.beacon = beacon
        self.beacon_anomalies = beacon_anomalies

    @property
    def name(self) -> str | None:
        return self.search.name if self.search is not None else None


NOTHING = UdpEvent()


class Discovery:
    """State of the UDP side of CA in one capture or one network.

    ``max_searches`` bounds memory: beyond it, the oldest searches are forgotten.
    Beacons are judged by :attr:`beacon_judge`, whose ``begin`` the caller sets to the
    start of the capture (else the first beacon's time is taken); the judge needs the
    sender's ip, taken from ``src``: an ``(ip, port)`` tuple or an ``"ip:port"`` string.
    """

    def __init__(self, max_searches: int = 1_000_000) -> None:
        self.searches: dict[tuple[Hashable, int], Search] = {}
        self.beacon_judge = BeaconJudge()
        #: The newest beacon anomalies, oldest first.
        self.beacon_anomalies: deque[BeaconAnomaly] = deque(maxlen=MAX_BEACON_ANOMALIES)
        self.registered_clients: set[Any] = set()
        self.max_searches = max_searches

    def start(self, time: float) -> None:
        """Say when watching began (a capture's first record), unless said already: libca's
        program start, for the ``new server`` beacon rule."""
        if self.beacon_judge.begin is None:
            self.beacon_judge.begin = time

    @property
    def beacons(self) -> dict[str, BeaconServer]:
        """The servers that beaconed, by name (:func:`decoder.beacons.server_name`)."""
        return self.beacon_judge.servers

    def handle(self, message: m.Message, src: Hashable, dst: Hashable,
               context: Any = None, time: float | None = None,
               sender: Role | None = None) -> UdpEvent:
        """Account for one UDP message from ``src`` to ``dst``, seen at ``time`` (seconds;
        beacon periods are judged only with times) from ``sender`` (a beacon from
        :attr:`Role.REPEATER` is a forwarded copy)."""
        kind = type(message)
        if kind is m.SearchRequest:
            return self._search(message, src, context)
        if kind is m.SearchResponse:
            return self._reply(message, src, dst, context)
        if kind is m.NotFoundResponse:
            search = self.searches.get((dst, message.cid))
            return UdpEvent(search, search.last if search else None)
        if kind is m.Beacon:
            return self._beacon(message, src, time, sender)
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

    def _beacon(self, message: m.Beacon, src: Hashable, time: float | None,
                sender: Role | None) -> UdpEvent:
        server, anomalies = self.beacon_judge.see(
            message.address, message.server_port, message.beaconid, message.version,
            _host(src), time, sender is Role.REPEATER)
        if anomalies:
            self.beacon_anomalies.extend(anomalies)
        return UdpEvent(beacon=server, beacon_anomalies=anomalies)


def _host(address: Hashable) -> str:
    """The ip of an ``(ip, port)`` tuple or of an ``"ip:port"`` string."""
    if isinstance(address, tuple):
        return str(address[0])
    return str(address).rpartition(":")[0]

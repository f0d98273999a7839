"""The UDP side: ``searches`` (a row per name a client looked up) and ``beacons`` (a row per
server, its anomalies in ``beacon_anomalies``)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from decoder import Role
from decoder import messages as m
from decoder.protocol import ADDRESS_OF_SENDER, SERVER_PORT
from shark.analysis.beacons import BeaconWatch
from shark.extract.record import Record
from shark.network.packets import format_address
from shark.tables.aggregate import Aggregate, Finished
from shark.tables.chunk import Chunk, Vocabularies, form_mask
from shark.tables.schema import BOOL, CATEGORY, FLOAT, INT64, TIME, Column, TableSchema

__all__ = ["BEACONS", "BEACON_ANOMALIES", "SEARCHES", "Beacons", "Searches"]

SEARCHES = TableSchema("searches", "one row per PV name a client searched for over UDP", [
    Column("client", CATEGORY, "client's UDP ip:port"),
    Column("pv", CATEGORY, "PV name searched for"),
    Column("first_search", TIME, "first SEARCH request"),
    Column("last_search", TIME, "last SEARCH request"),
    Column("tries", INT64, "SEARCH requests (libca repeats them with back-off)"),
    Column("answered", BOOL, "whether a server answered"),
    Column("server", CATEGORY, "ip:port (TCP) of the first server that answered"),
    Column("servers", INT64, "distinct servers that answered (more than one: the name "
                             "is served twice)"),
    Column("first_reply", TIME, "first reply"),
    Column("reply_latency", FLOAT, "seconds from the try it answered to the first reply"),
    Column("time_to_answer", FLOAT, "seconds from the first search to the first reply"),
    Column("not_found", INT64, "NOT_FOUND replies"),
])

BEACONS = TableSchema("beacons", "one row per server that sent beacons (RSRV_IS_UP)", [
    Column("server", CATEGORY, "server's ip:port (TCP), as the beacons announce it"),
    Column("first", TIME, "first beacon"),
    Column("last", TIME, "last beacon"),
    Column("beacons", INT64, "beacons from the server (copies forwarded by a repeater "
                             "are counted apart)"),
    Column("first_id", INT64, "first beacon id"),
    Column("last_id", INT64, "last beacon id"),
    Column("lost", INT64, "beacon ids skipped"),
    Column("ignored", INT64, "beacons libca's rules ignore (duplicates, ids a little "
                             "ahead or behind)"),
    Column("copies", INT64, "copies forwarded by a CA repeater"),
    Column("late", INT64, "periods 1.25 to 3.25 times the estimate (one beacon missed)"),
    Column("last_period", FLOAT, "seconds between the last two beacons that counted"),
    Column("estimate", FLOAT, "libca's running estimate of the period, in seconds"),
    Column("anomalies", INT64, "beacon anomalies (see shark.analysis.beacons)"),
    Column("restarts", INT64, "times the beacon id went back: server restarts"),
])

BEACON_ANOMALIES = TableSchema("beacon_anomalies", "one row per beacon anomaly", [
    Column("time", TIME, "the beacon that showed it"),
    Column("server", CATEGORY, "server's ip:port"),
    Column("kind", CATEGORY, "restart, ids jumped, new server, period long, period short"),
    Column("beacon_id", INT64, "id of that beacon"),
    Column("period", FLOAT, "seconds since the last beacon that counted"),
    Column("estimate", FLOAT, "the period estimate it was judged against"),
])

_SEARCH = form_mask(lambda f: f in (m.SearchRequest, m.SearchResponse, m.NotFoundResponse))
_BEACON = form_mask(lambda f: f is m.Beacon)


def _host(endpoint: str) -> str:
    return endpoint.rpartition(":")[0]


class _Search:
    __slots__ = ("client", "pv", "first", "last", "tries", "server", "servers", "reply",
                 "latency", "not_found")

    def __init__(self, client: str, pv: str, time: float) -> None:
        self.client, self.pv = client, pv
        self.first = self.last = time
        self.tries = self.not_found = 0
        self.server = self.reply = self.latency = None
        self.servers: set[str] = set()

    def row(self) -> tuple:
        answered = self.reply is not None
        return (self.client, self.pv, self.first, self.last, self.tries, answered,
                self.server, len(self.servers), self.reply, self.latency,
                self.reply - self.first if answered else None, self.not_found)


class Searches(Aggregate):
    """Searches by (client, name), at most ``max_rows`` of them: the oldest are forgotten
    first."""

    schemas = (SEARCHES,)

    def __init__(self, vocabularies: Vocabularies, max_rows: int) -> None:
        super().__init__(vocabularies, max_rows)
        self._searches: OrderedDict[tuple[str, str], _Search] = OrderedDict()
        self.dropped = 0

    def update(self, chunk: Chunk) -> None:
        records = chunk.records
        for row in chunk.rows(_SEARCH):
            record = records[row]
            if record.circuit is None and record.pv is not None:
                self._see(record)

    def _see(self, record: Record) -> None:
        message = record.message
        if type(message) is m.SearchRequest:
            key = (record.src, record.pv)
            search = self._searches.get(key)
            if search is None:
                search = self._searches[key] = _Search(record.src, record.pv, record.time)
                if len(self._searches) > self.max_rows:
                    self._searches.popitem(last=False)
                    self.dropped += 1
            search.tries += 1
            search.last = record.time
            return
        search = self._searches.get((record.dst, record.pv))
        if search is None:
            return
        if type(message) is m.NotFoundResponse:
            search.not_found += 1
            return
        host = _host(record.src) if message.ip == ADDRESS_OF_SENDER else format_address(
            message.ip.to_bytes(4, "big"))
        server = f"{host}:{message.port}"
        search.servers.add(server)
        if search.reply is None:
            search.server, search.reply, search.latency = server, record.time, record.latency

    def rows(self, name: str) -> Iterable[tuple]:
        return (search.row() for search in self._searches.values())


class _Server:
    __slots__ = ("name", "watch", "direct", "copies")

    def __init__(self, name: str, watch: BeaconWatch, direct: bool) -> None:
        self.name = name
        self.watch = watch
        self.direct = direct
        self.copies = 0

    def row(self) -> tuple:
        w = self.watch
        return (self.name, w.first, w.last, w.beacons, w.first_id, w.last_id, w.lost,
                w.ignored, self.copies, w.late, w.last_period, w.estimate, w.anomalies,
                w.restarts)


class Beacons(Aggregate):
    """Beacons per server, judged by :class:`shark.analysis.beacons.BeaconWatch`.

    A server is its address and TCP port as the beacon announces them (the address
    field, else the sender's). A beacon a CA repeater forwards is a copy of one the
    server sent: copies count only for servers whose own beacons the capture does not
    show.
    """

    schemas = (BEACONS, BEACON_ANOMALIES)

    def __init__(self, vocabularies: Vocabularies, max_rows: int) -> None:
        super().__init__(vocabularies, max_rows)
        self._servers: dict[str, _Server] = {}
        self._anomalies = Finished(max_rows)
        #: The capture's first record: libca's "program start".
        self._begin: float | None = None

    def update(self, chunk: Chunk) -> None:
        if self._begin is None and chunk.size:
            self._begin = float(chunk.time[0])
        records = chunk.records
        for row in chunk.rows(_BEACON):
            self._see(records[row])

    def _see(self, record: Record) -> None:
        beacon = record.message
        host = format_address(beacon.address.to_bytes(4, "big")) if beacon.address \
            else _host(record.src)
        name = f"{host}:{beacon.server_port or SERVER_PORT}"
        copy = record.sender is Role.REPEATER
        server = self._servers.get(name)
        if server is None:
            watch = BeaconWatch(record.time, beacon.beaconid, self._begin)
            self._servers[name] = _Server(name, watch, not copy)
            return
        if copy and server.direct:
            server.copies += 1
            return
        server.direct = server.direct or not copy
        for anomaly in server.watch.see(record.time, beacon.beaconid, beacon.version):
            self._anomalies.add((anomaly.time, name, anomaly.kind, anomaly.beacon_id,
                                 anomaly.period, anomaly.estimate))

    def rows(self, name: str) -> Iterable[tuple]:
        if name == BEACONS.name:
            return (server.row() for server in self._servers.values())
        return self._anomalies.rows

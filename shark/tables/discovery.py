"""The UDP side: ``searches`` (a row per name a client looked up) and ``beacons`` (a row per
server, its anomalies in ``beacon_anomalies``)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from decoder import Role
from decoder import messages as m
from decoder.beacons import BeaconJudge, BeaconServer
from decoder.protocol import ADDRESS_OF_SENDER
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
    Column("server", CATEGORY, "server's ip:port (TCP), as the beacons announce it and "
                               "libca names it (see decoder.beacons.server_name)"),
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
    Column("anomalies", INT64, "beacon anomalies (see decoder.beacons)"),
    Column("restarts", INT64, "times the beacon id went back: server restarts"),
])

BEACON_ANOMALIES = TableSchema("beacon_anomalies", "one row per beacon anomaly", [
    Column("time", TIME, "the beacon that showed it"),
    Column("server", CATEGORY, "server's ip:port, as in beacons"),
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


def _beacon_row(server: BeaconServer) -> tuple:
    w = server.watch
    return (server.name, w.first, w.last, w.beacons, w.first_id, w.last_id, w.lost,
            w.ignored, server.copies, w.late, w.last_period, w.estimate, w.anomalies,
            w.restarts)


class Beacons(Aggregate):
    """Beacons per server, judged by :class:`decoder.beacons.BeaconJudge` (libca's rules
    and names, copies forwarded by a repeater told apart), as :class:`decoder.Discovery`
    judges them for the other views."""

    schemas = (BEACONS, BEACON_ANOMALIES)

    def __init__(self, vocabularies: Vocabularies, max_rows: int) -> None:
        super().__init__(vocabularies, max_rows)
        self._judge = BeaconJudge()
        self._anomalies = Finished(max_rows)

    def update(self, chunk: Chunk) -> None:
        if self._judge.begin is None and chunk.size:
            self._judge.begin = float(chunk.time[0])  # the capture's first record
        records = chunk.records
        for row in chunk.rows(_BEACON):
            self._see(records[row])

    def _see(self, record: Record) -> None:
        beacon = record.message
        _server, anomalies = self._judge.see(
            beacon.address, beacon.server_port, beacon.beaconid, beacon.version,
            _host(record.src), record.time, record.sender is Role.REPEATER)
        for anomaly in anomalies:
            self._anomalies.add((anomaly.time, anomaly.server, anomaly.kind.value,
                                 anomaly.beacon_id, anomaly.period, anomaly.estimate))

    def rows(self, name: str) -> Iterable[tuple]:
        if name == BEACONS.name:
            return (_beacon_row(server) for server in self._judge.servers.values())
        return self._anomalies.rows

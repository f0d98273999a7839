"""UDP state: searches and their replies, beacons, repeater registrations."""

from decoder import Discovery, Role
from decoder import messages as m

CLIENT = ("127.0.0.1", 40000)
SERVER = ("127.0.0.1", 5064)


def test_search_retries_and_reply():
    discovery = Discovery()
    for t in (1, 2, 3):
        event = discovery.handle(m.SearchRequest(name="PV:A", cid=4), CLIENT, SERVER, t)
    assert event.search.tries == 3 and event.search.first == 1 and event.search.last == 3
    reply = discovery.handle(
        m.SearchResponse(port=5070, ip=0xFFFFFFFF, cid=4, version=13), SERVER, CLIENT, 4
    )
    assert reply.name == "PV:A" and reply.reply_to == 3
    assert reply.search.replies == [(SERVER, 5070, 4)]
    assert discovery.search_for(CLIENT, 4).answered


def test_unanswered_search_and_unknown_reply():
    discovery = Discovery()
    discovery.handle(m.SearchRequest(name="NOPE", cid=1), CLIENT, SERVER)
    assert not discovery.search_for(CLIENT, 1).answered
    stray = discovery.handle(m.SearchResponse(port=5064, ip=1, cid=77, version=13), SERVER, CLIENT)
    assert stray.search is None


def test_beacon_ids_reset_and_skip():
    """Beacons are judged by libca's rules (decoder.beacons): a duplicate id is ignored,
    ids 4 ahead were lost, an id that goes back is a restart."""
    discovery = Discovery()
    discovery.start(0.0)
    anomalies = [
        [a.kind for a in discovery.handle(
            m.Beacon(server_port=5064, beaconid=i, address=0x7F000001), SERVER,
            ("127.0.0.1", 5065), time=15.0 * n).beacon_anomalies]
        for n, i in enumerate((0, 1, 2, 2, 6, 0))
    ]
    assert anomalies == [[], [], [], [], ["ids jumped"], ["restart"]]
    [server] = discovery.beacons.values()
    assert server.name == "127.0.0.1:5064"
    watch = server.watch
    assert (watch.beacons, watch.restarts, watch.lost, watch.ignored) == (6, 1, 3, 2)
    assert [(a.server, a.kind) for a in discovery.beacon_anomalies] == [
        ("127.0.0.1:5064", "ids jumped"), ("127.0.0.1:5064", "restart")]


def test_beacon_server_names_and_copies():
    """A server is named as libca names it: the beacon's address, else the sender's; its
    port, else 5064. A repeater's copy of a beacon the capture shows is only counted."""
    discovery = Discovery()
    discovery.handle(m.Beacon(server_port=0, beaconid=0, address=0), ("10.0.0.9", 5065),
                     CLIENT, time=1.0)
    discovery.handle(m.Beacon(server_port=5070, beaconid=0, address=0), "10.0.0.8:5065",
                     CLIENT, time=1.0)
    assert set(discovery.beacons) == {"10.0.0.9:5064", "10.0.0.8:5070"}
    copy = discovery.handle(m.Beacon(server_port=5070, beaconid=1, address=0x0A000008),
                            ("127.0.0.1", 5065), CLIENT, time=2.0, sender=Role.REPEATER)
    assert copy.beacon.name == "10.0.0.8:5070" and copy.beacon.copies == 1


def test_searches_are_bounded():
    discovery = Discovery(max_searches=5)
    for cid in range(10):
        discovery.handle(m.SearchRequest(name=f"PV:{cid}", cid=cid), CLIENT, SERVER)
    assert len(discovery.searches) == 5
    assert discovery.search_for(CLIENT, 9).name == "PV:9"


def test_repeater_registration():
    discovery = Discovery()
    discovery.handle(m.RepeaterRegisterRequest(client_address=0x7F000001), CLIENT,
                     ("127.0.0.1", 5065))
    assert CLIENT in discovery.registered_clients

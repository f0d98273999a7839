"""UDP state: searches and their replies, beacons, repeater registrations."""

from decoder import Discovery
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
    discovery = Discovery()
    anomalies = [
        discovery.handle(m.Beacon(server_port=5064, beaconid=i, address=0x7F000001),
                         SERVER, ("127.0.0.1", 5065)).beacon_anomaly
        for i in (0, 1, 2, 2, 5, 0)
    ]
    assert anomalies[:4] == [None, None, None, None]
    assert "jumped" in anomalies[4] and "went back" in anomalies[5]
    track = next(iter(discovery.beacons.values()))
    assert (track.count, track.resets, track.skips) == (6, 1, 1)


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

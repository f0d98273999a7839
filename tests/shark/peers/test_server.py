"""The server keeps one account of a subscription: the decoder circuit's. Beside it
only a watch (which PV, which circuit), made by EVENT_ADD and dropped by the
cancel, the clear of its channel, the PV's removal or the end of the circuit."""

from __future__ import annotations

from engine_peers import engine_pvs, run
from raw_circuits import RawCircuit, until_no_circuits

from decoder import ECA, EventMask, Role
from decoder import messages as m
from decoder.dbr import DBRType
from decoder.messages import make_message
from decoder.protocol import Command
from shark.peers.server import Server


async def _with_server(body) -> None:
    async with Server(engine_pvs(), port=0, beacon_address=None) as server:
        raw = await RawCircuit.open(server.tcp_port)
        try:
            raw.send(m.VersionRequest())
            await raw.expect(m.VersionResponse)
            (served,) = server._circuits
            await body(server, served, raw)
        finally:
            raw.close()


def _watched(server: Server, name: str) -> dict:
    """The watches of PV ``name``, by the decoder's subscription."""
    return server._watches.get(name, {})


def test_a_watch_takes_type_count_and_mask_from_the_decoder_subscription():
    async def body(server: Server, served, raw: RawCircuit) -> None:
        sid = await raw.connect("ENG:LO", 1)
        first = await raw.subscribe(sid, 9, DBRType.STS_LONG, EventMask.VALUE | EventMask.ALARM)
        assert first.data_type == DBRType.STS_LONG and first.value == 70000
        sub = served.state.subscriptions[9]
        (watch,) = _watched(server, "ENG:LO").values()
        assert watch.subscription is sub
        assert watch.circuit is served and watch.pv is server.pvs["ENG:LO"]
        assert (sub.data_type, sub.data_count, sub.mask) == (
            DBRType.STS_LONG, 1, EventMask.VALUE | EventMask.ALARM)
        assert sub.channel is served.state.channels_by_sid[sid]
        assert sub.channel.subscriptions == {9: sub}
        assert not hasattr(served, "subscriptions")  # no second account of them
        # Updates are made from the decoder's subscription, nothing copied beside it.
        sub.mask = EventMask.ALARM
        assert await raw.updates_after(lambda: server.set("ENG:LO", 1)) == []
        (alarm,) = await raw.updates_after(lambda: server.set("ENG:LO", severity=1, status=3))
        assert (alarm.data_type, alarm.data.severity, alarm.subscriptionid) == (
            DBRType.STS_LONG, 1, 9)
        sub.data_type = DBRType.STRING
        (update,) = await raw.updates_after(lambda: server.set("ENG:LO", 2, force=True))
        assert update.data_type == DBRType.STRING and update.value == "2"

    run(_with_server(body))


def test_cancel_drops_the_watch_before_the_decoder_forgets_the_subscription():
    async def body(server: Server, served, raw: RawCircuit) -> None:
        sid = await raw.connect("ENG:LO", 1)
        await raw.subscribe(sid, 9)
        await raw.subscribe(sid, 10)
        kept = served.state.subscriptions[10]
        raw.send(m.EventCancelRequest(data_type=DBRType.LONG, data_count=1, sid=sid,
                                      subscriptionid=9))
        assert (await raw.expect(m.EventCancelResponse)).subscriptionid == 9
        assert 9 not in served.state.subscriptions
        assert list(_watched(server, "ENG:LO")) == [kept]
        (update,) = await raw.updates_after(lambda: server.set("ENG:LO", 5))
        assert update.subscriptionid == 10
        raw.send(m.EventCancelRequest(data_type=DBRType.LONG, data_count=1, sid=sid,
                                      subscriptionid=10))
        await raw.expect(m.EventCancelResponse)
        assert "ENG:LO" not in server._watches
        assert await raw.updates_after(lambda: server.set("ENG:LO", 6)) == []
        # The id is free again: a new subscription, a new watch.
        assert (await raw.subscribe(sid, 9)).value == 6
        (watch,) = _watched(server, "ENG:LO").values()
        assert watch.subscription is served.state.subscriptions[9]

    run(_with_server(body))


def test_clear_channel_drops_the_watches_of_that_channel_only():
    async def body(server: Server, served, raw: RawCircuit) -> None:
        sid = await raw.connect("ENG:LO", 1)
        other = await raw.connect("ENG:LO", 2)
        await raw.subscribe(sid, 1)
        await raw.subscribe(sid, 2, mask=EventMask.ALARM)
        await raw.subscribe(other, 3)
        assert len(_watched(server, "ENG:LO")) == 3
        raw.send(m.ClearChannelRequest(sid=sid, cid=1))
        assert (await raw.expect(m.ClearChannelResponse)).sid == sid
        assert list(served.state.subscriptions) == [3]
        (watch,) = _watched(server, "ENG:LO").values()
        assert watch.subscription is served.state.subscriptions[3]
        updates = await raw.updates_after(lambda: server.set("ENG:LO", 7, force=True))
        assert [u.subscriptionid for u in updates] == [3]

    run(_with_server(body))


def test_removal_and_the_end_of_the_circuit_drop_the_watches():
    async def body(server: Server, served, raw: RawCircuit) -> None:
        lo = await raw.connect("ENG:LO", 1)
        ao = await raw.connect("ENG:AO", 2)
        await raw.subscribe(lo, 1)
        await raw.subscribe(ao, 2, DBRType.DOUBLE)
        server.remove("ENG:LO")
        assert (await raw.expect(m.ServerDisconnResponse)).cid == 1
        assert "ENG:LO" not in server._watches and list(served.state.subscriptions) == [2]
        assert len(_watched(server, "ENG:AO")) == 1
        raw.close()
        assert await until_no_circuits(server, tries=60) == 0 and server._watches == {}

    run(_with_server(body))


def test_a_refused_subscription_is_the_decoders_alone_and_cancels_as_before():
    async def body(server: Server, served, raw: RawCircuit) -> None:
        sid = await raw.connect("ENG:LO", 1)
        raw.send(m.EventAddRequest(data_type=DBRType.LONG, data_count=5, sid=sid,
                                   subscriptionid=4, mask=EventMask.VALUE))
        assert (await raw.expect(m.ErrorResponse)).status == ECA.ECA_BADCOUNT
        assert 4 in served.state.subscriptions and server._watches == {}
        raw.send(m.EventCancelRequest(data_type=DBRType.LONG, data_count=5, sid=sid,
                                      subscriptionid=4))
        assert (await raw.expect(m.EventCancelResponse)).subscriptionid == 4
        assert served.state.subscriptions == {}

    run(_with_server(body))


def test_an_event_add_without_a_mask_is_refused_with_why():
    async def body(server: Server, served, raw: RawCircuit) -> None:
        sid = await raw.connect("ENG:LO", 1)
        short = make_message(Command.EVENT_ADD, Role.CLIENT, DBRType.LONG, 1, sid, 4, b"",
                             False)
        raw.send(short)
        error = await raw.expect(m.ErrorResponse)
        assert error.status == ECA.ECA_INTERNAL
        assert error.error_message == "EVENT_ADD request payload of 0 bytes"
        assert server._watches == {}

    run(_with_server(body))

"""Circuit state: attribution of every message to its channel and request."""

import gc

import pytest

from decoder import (
    ChannelState,
    Circuit,
    DBRType,
    ProtocolError,
    Role,
)
from decoder import messages as m
from decoder.protocol import AccessRights

CLIENT, SERVER = Role.CLIENT, Role.SERVER


def connect(circuit: Circuit, name: str = "PV:A", cid: int = 1, sid: int = 100):
    circuit.handle(m.CreateChanRequest(name=name, cid=cid), CLIENT, "t-create")
    circuit.handle(m.AccessRightsResponse(cid=cid, access_rights=3), SERVER)
    return circuit.handle(
        m.CreateChanResponse(data_type=DBRType.DOUBLE, data_count=1, cid=cid, sid=sid),
        SERVER,
        "t-connect",
    )


def test_create_chan_reply_names_channel_and_pairs_request():
    circuit = Circuit()
    attribution = connect(circuit)
    channel = attribution.channel
    assert channel.name == "PV:A"
    assert (channel.cid, channel.sid) == (1, 100)
    assert channel.native_type == DBRType.DOUBLE and channel.native_count == 1
    assert channel.access_rights == AccessRights.READ | AccessRights.WRITE
    assert channel.state is ChannelState.CONNECTED
    assert attribution.request.context == "t-create"
    assert isinstance(attribution.request.message, m.CreateChanRequest)


def test_read_notify_response_pairs_by_ioid():
    circuit = Circuit()
    connect(circuit)
    connect(circuit, "PV:B", cid=2, sid=200)
    req_a = circuit.handle(
        m.ReadNotifyRequest(data_type=DBRType.DOUBLE, data_count=1, sid=100, ioid=7),
        CLIENT, "ra",
    )
    circuit.handle(
        m.ReadNotifyRequest(data_type=DBRType.TIME_DOUBLE, data_count=1, sid=200, ioid=8),
        CLIENT, "rb",
    )
    assert req_a.name == "PV:A"
    reply_b = circuit.handle(
        m.ReadNotifyResponse(data_type=DBRType.TIME_DOUBLE, status=1, ioid=8, data=[2.5]),
        SERVER,
    )
    assert reply_b.name == "PV:B"
    assert reply_b.request.context == "rb"
    assert circuit.handle(
        m.ReadNotifyResponse(data_type=DBRType.DOUBLE, status=1, ioid=7, data=[1.0]), SERVER
    ).request.context == "ra"
    assert not circuit.pending_io


def test_write_notify_and_write():
    circuit = Circuit()
    connect(circuit)
    assert circuit.handle(
        m.WriteRequest(data_type=DBRType.DOUBLE, sid=100, ioid=1, data=[3.0]), CLIENT
    ).name == "PV:A"
    circuit.handle(
        m.WriteNotifyRequest(data_type=DBRType.DOUBLE, sid=100, ioid=2, data=[4.0]), CLIENT, "w"
    )
    reply = circuit.handle(m.WriteNotifyResponse(data_type=6, data_count=1, status=1, ioid=2),
                           SERVER)
    assert reply.name == "PV:A" and reply.request.context == "w"


def test_subscription_lifecycle():
    circuit = Circuit()
    connect(circuit)
    add = circuit.handle(
        m.EventAddRequest(data_type=DBRType.TIME_DOUBLE, data_count=1, sid=100,
                          subscriptionid=5, mask=5),
        CLIENT, "sub",
    )
    sub = add.subscription
    assert sub.mask == 5 and sub.channel.name == "PV:A"
    first = circuit.handle(
        m.EventAddResponse(data_type=DBRType.TIME_DOUBLE, status=1, subscriptionid=5, data=[1.0]),
        SERVER,
    )
    second = circuit.handle(
        m.EventAddResponse(data_type=DBRType.TIME_DOUBLE, status=1, subscriptionid=5, data=[2.0]),
        SERVER,
    )
    assert first.request.context == "sub" and second.request is None
    assert second.name == "PV:A" and sub.updates == 2
    circuit.handle(
        m.EventCancelRequest(data_type=DBRType.TIME_DOUBLE, data_count=1, sid=100,
                             subscriptionid=5),
        CLIENT, "cancel",
    )
    end = circuit.handle(
        m.EventCancelResponse(data_type=DBRType.TIME_DOUBLE, data_count=1, sid=100,
                              subscriptionid=5),
        SERVER,
    )
    assert end.request.context == "cancel" and not sub.active
    assert 5 not in circuit.subscriptions


def test_clear_channel_and_id_reuse():
    circuit = Circuit()
    connect(circuit)
    circuit.handle(m.ClearChannelRequest(sid=100, cid=1), CLIENT, "clear")
    done = circuit.handle(m.ClearChannelResponse(sid=100, cid=1), SERVER)
    assert done.channel.state is ChannelState.CLEARED and done.request.context == "clear"
    # The CID may be used again for another channel: no anomaly.
    again = connect(circuit, "PV:C", cid=1, sid=101)
    assert again.channel.name == "PV:C" and not circuit.anomalies


def _channels_named(prefix: str) -> list:
    return [o for o in gc.get_objects() if type(o).__name__ == "Channel"
            and isinstance(o.name, str) and o.name.startswith(prefix)]


@pytest.mark.parametrize("end", ["clear", "disconnect"])
def test_a_forgotten_channel_goes_without_the_collector(end: str) -> None:
    # Nothing of a channel its circuit forgot refers back to it (the attributions made
    # once, its creation request, its latest write, its subscriptions'): it goes by
    # reference counting alone, however long the capture, not when (if ever) the cycle
    # collector looks at it.
    circuit = Circuit()
    gc.disable()
    try:
        for n in range(20):
            cid, sid, name = n, 1000 + n, f"GONE:{end}:{n}"
            attributions = [connect(circuit, name, cid, sid)]
            handled = [
                (m.EventAddRequest(data_type=DBRType.DOUBLE, data_count=1, sid=sid,
                                   subscriptionid=n, mask=1), CLIENT),
                (m.EventAddResponse(data_type=DBRType.DOUBLE, status=1, subscriptionid=n,
                                    data=[1.0]), SERVER),
                (m.EventAddResponse(data_type=DBRType.DOUBLE, status=1, subscriptionid=n,
                                    data=[2.0]), SERVER),
                (m.WriteRequest(data_type=DBRType.DOUBLE, sid=sid, ioid=n, data=[3.0]), CLIENT),
            ]
            if n % 2:  # half of them cancel their subscription first
                handled += [
                    (m.EventCancelRequest(data_type=DBRType.DOUBLE, data_count=1, sid=sid,
                                          subscriptionid=n), CLIENT),
                    (m.EventCancelResponse(data_type=DBRType.DOUBLE, data_count=1, sid=sid,
                                           subscriptionid=n), SERVER)]
            if end == "clear":
                handled += [(m.ClearChannelRequest(sid=sid, cid=cid), CLIENT),
                            (m.ClearChannelResponse(sid=sid, cid=cid), SERVER)]
            else:
                handled += [(m.ServerDisconnResponse(cid=cid), SERVER)]
            attributions += [circuit.handle(message, sender, (name, k))
                             for k, (message, sender) in enumerate(handled)]
            assert all(a.name == name for a in attributions)
            assert not circuit.anomalies
        del attributions
        assert not circuit.channels_by_cid and not circuit.subscriptions
        assert _channels_named(f"GONE:{end}:") == []
    finally:
        gc.enable()


def test_server_disconn_and_create_fail():
    circuit = Circuit()
    connect(circuit)
    gone = circuit.handle(m.ServerDisconnResponse(cid=1), SERVER)
    assert gone.channel.state is ChannelState.DISCONNECTED
    circuit.handle(m.CreateChanRequest(name="NOPE", cid=9), CLIENT, "c9")
    fail = circuit.handle(m.CreateChFailResponse(cid=9), SERVER)
    assert fail.channel.state is ChannelState.FAILED and fail.request.context == "c9"


def test_error_response_pairs_with_the_quoted_request():
    circuit = Circuit()
    connect(circuit)
    request = m.WriteNotifyRequest(data_type=DBRType.STRING, sid=100, ioid=3, data=["x"])
    circuit.handle(request, CLIENT, "bad write")
    error = m.ErrorResponse(cid=1, status=160, original_request=request,
                            error_message="put failed")
    attribution = circuit.handle(error, SERVER)
    assert attribution.name == "PV:A"
    assert attribution.request.context == "bad write"
    assert not circuit.pending_io


def test_echo_pairs_in_order():
    circuit = Circuit()
    circuit.handle(m.EchoRequest(), CLIENT, "e1")
    assert circuit.handle(m.EchoResponse(), SERVER).request.context == "e1"


def test_observer_records_anomalies_and_recovers_mid_stream():
    circuit = Circuit()
    read = circuit.handle(
        m.ReadNotifyRequest(data_type=DBRType.DOUBLE, data_count=1, sid=55, ioid=1), CLIENT
    )
    assert read.anomaly.kind == "unknown SID"
    assert read.channel.sid == 55 and read.channel.name is None
    update = circuit.handle(
        m.EventAddResponse(data_type=DBRType.DOUBLE, status=1, subscriptionid=9, data=[1.0]),
        SERVER,
    )
    assert update.anomaly.kind == "unknown subscription"
    orphan = circuit.handle(
        m.ReadNotifyResponse(data_type=DBRType.DOUBLE, status=1, ioid=99, data=[1.0]), SERVER
    )
    assert orphan.anomaly.kind == "response without request"
    # A later CREATE_CHAN with a known name for the same cid names the channel.
    connect(circuit, "PV:LATE", cid=4, sid=56)
    assert circuit.channel_for_sid(56).name == "PV:LATE"
    assert circuit.anomaly_count == 3


def test_duplicate_cid_is_an_anomaly():
    circuit = Circuit()
    connect(circuit)
    dup = circuit.handle(m.CreateChanRequest(name="PV:B", cid=1), CLIENT)
    assert dup.anomaly.kind == "duplicate CID"


def test_wrong_direction_is_an_anomaly():
    circuit = Circuit()
    att = circuit.handle(m.CreateChanRequest(name="X", cid=1), SERVER)
    assert att.anomaly.kind == "wrong direction"


def test_strict_mode_raises():
    circuit = Circuit(strict=True)
    with pytest.raises(ProtocolError, match="unknown SID"):
        circuit.handle(
            m.ReadNotifyRequest(data_type=DBRType.DOUBLE, data_count=1, sid=55, ioid=1), CLIENT
        )
    with pytest.raises(ProtocolError, match="response without request"):
        circuit.handle(
            m.WriteNotifyResponse(data_type=6, data_count=1, status=1, ioid=3), SERVER
        )


def test_pending_requests_are_bounded(monkeypatch):
    import decoder.circuit as circuit_module

    monkeypatch.setattr(circuit_module, "MAX_PENDING", 10)
    circuit = Circuit()
    connect(circuit)
    for ioid in range(20):
        circuit.handle(
            m.ReadNotifyRequest(data_type=DBRType.DOUBLE, data_count=1, sid=100, ioid=ioid),
            CLIENT,
        )
    assert len(circuit.pending_io) == 10
    assert any(a.kind == "too many outstanding requests" for a in circuit.anomalies)


def test_close_disconnects_open_channels():
    circuit = Circuit()
    connect(circuit)
    closed = circuit.close("end")
    assert [c.name for c in closed] == ["PV:A"]
    assert closed[0].state is ChannelState.DISCONNECTED and closed[0].closed == "end"


def empty_reply_to_subscription(data_type: int, data_count: int, reply_sid: int):
    """Subscription 5 (``data_type`` x ``data_count``) on the channel of SID 100, then an
    EVENT_ADD reply to it with no payload (an EVENT_CANCEL reply's form, ``reply_sid`` in
    its SID field), no cancel in flight: the circuit and what it made of the reply."""
    circuit = Circuit()
    connect(circuit)
    circuit.handle(
        m.EventAddRequest(data_type=data_type, data_count=data_count, sid=100,
                          subscriptionid=5, mask=1),
        CLIENT,
    )
    empty = circuit.handle(
        m.EventCancelResponse(data_type=data_type, data_count=data_count, sid=reply_sid,
                              subscriptionid=5),
        SERVER,
    )
    return circuit, empty


def test_empty_plain_update_does_not_end_a_subscription():
    """A zero-element update of a plain type has no payload, like the reply to
    EVENT_CANCEL; without a cancel in flight it leaves the subscription alone."""
    circuit, empty = empty_reply_to_subscription(DBRType.DOUBLE, 0, reply_sid=100)
    assert empty.anomaly is None and empty.subscription.active
    assert 5 in circuit.subscriptions


def test_create_chan_reply_for_a_connected_channel_is_a_response_without_request():
    """A CREATE_CHAN reply answers the channel's outstanding CREATE_CHAN request: one
    for a channel already connected (a WRITE_NOTIFY reply with one bit flipped in its
    command reads as one) answers nothing."""
    circuit = Circuit()
    assert connect(circuit).anomaly is None
    again = circuit.handle(
        m.CreateChanResponse(data_type=DBRType.LONG, data_count=1, cid=1, sid=7), SERVER)
    assert again.anomaly is not None and again.anomaly.kind == "response without request"
    fail = circuit.handle(m.CreateChFailResponse(cid=1), SERVER)
    assert fail.anomaly is not None and fail.anomaly.kind == "response without request"
    strict = Circuit(strict=True)
    connect(strict)
    with pytest.raises(ProtocolError):
        strict.handle(m.CreateChanResponse(data_type=DBRType.LONG, data_count=1, cid=1, sid=7),
                      SERVER)


def test_empty_update_that_no_type_allows_is_a_cancel_reply_without_request():
    """Without a cancel in flight an empty EVENT_ADD reply passes as an empty update only
    when its type and count make no payload; a count of 1 is a reply to a cancel never
    sent (an update whose size lost a bit)."""
    circuit, empty = empty_reply_to_subscription(DBRType.LONG, 1, reply_sid=1)
    assert empty.anomaly is not None and empty.anomaly.kind == "response without request"
    assert 5 in circuit.subscriptions


def test_tcp_searches_left_unanswered_are_forgotten_and_bounded(monkeypatch):
    """A server may leave a search over TCP unanswered (an unknown name, no reply asked
    for): it says so, and a client sending ever new ids costs bounded memory."""
    import decoder.circuit as circuit_module

    monkeypatch.setattr(circuit_module, "MAX_PENDING", 4)
    circuit = Circuit(strict=True, local=Role.SERVER)
    for cid in range(10):
        circuit.handle(m.SearchRequest(name=f"N{cid}", cid=cid), Role.CLIENT)
    assert list(circuit._pending_search) == [6, 7, 8, 9]
    circuit.forget_search(7)
    circuit.handle(m.SearchResponse(port=5064, cid=9), Role.SERVER)
    with pytest.raises(ProtocolError, match="search reply for unknown id 7"):
        circuit.handle(m.SearchResponse(port=5064, cid=7), Role.SERVER)

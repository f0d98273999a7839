"""The channel and subscription lifecycles: the tables, the circuit that follows
them, and whose fault a strict circuit says a breach is."""

import pytest

from decoder import (
    ChannelState,
    Circuit,
    DBRType,
    DecodeError,
    DecoderError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    Role,
    SubscriptionState,
    lifecycle,
)
from decoder import messages as m

CLIENT, SERVER = Role.CLIENT, Role.SERVER


def connect(circuit: Circuit, cid: int = 1, sid: int = 100) -> None:
    circuit.handle(m.CreateChanRequest(name="PV:A", cid=cid), CLIENT)
    circuit.handle(
        m.CreateChanResponse(data_type=DBRType.DOUBLE, data_count=1, cid=cid, sid=sid), SERVER)


def read(sid: int = 100, ioid: int = 1) -> m.Message:
    return m.ReadNotifyRequest(data_type=DBRType.DOUBLE, data_count=1, sid=sid, ioid=ioid)


def subscribe(subid: int = 5) -> m.Message:
    return m.EventAddRequest(data_type=DBRType.DOUBLE, data_count=1, sid=100,
                             subscriptionid=subid, mask=1)


def update(subid: int = 5) -> m.Message:
    return m.EventAddResponse(data_type=DBRType.DOUBLE, status=1, subscriptionid=subid,
                              data=[1.0])


def test_tables_name_states_and_events_the_circuit_handles():
    for table, states in ((lifecycle.CHANNEL, ChannelState),
                          (lifecycle.SUBSCRIPTION, SubscriptionState)):
        for (state, event), after in table.items():
            assert state is None or isinstance(state, states)
            assert isinstance(after, states)
            if not isinstance(event, lifecycle.Event):
                assert hasattr(Circuit, "_on_" + event.__name__), event
                assert event.sender in (CLIENT, SERVER)
    for event in lifecycle.CHANNEL_RECOVERY:
        assert hasattr(Circuit, "_on_" + event.__name__)


def test_channel_goes_through_its_states():
    circuit = Circuit()
    created = circuit.handle(m.CreateChanRequest(name="PV:A", cid=1), CLIENT).channel
    assert created.state is ChannelState.CREATING
    circuit.handle(
        m.CreateChanResponse(data_type=DBRType.DOUBLE, data_count=1, cid=1, sid=100), SERVER)
    assert created.state is ChannelState.CONNECTED
    circuit.handle(m.ClearChannelRequest(sid=100, cid=1), CLIENT)
    assert created.state is ChannelState.CLEARING
    circuit.handle(m.ClearChannelResponse(sid=100, cid=1), SERVER)
    assert created.state is ChannelState.CLEARED
    assert circuit.anomaly_count == 0


def test_subscription_goes_through_its_states():
    circuit = Circuit()
    connect(circuit)
    sub = circuit.handle(subscribe(), CLIENT).subscription
    assert sub.state is SubscriptionState.REQUESTED and sub.active
    circuit.handle(update(), SERVER)
    assert sub.state is SubscriptionState.ACTIVE
    circuit.handle(m.EventCancelRequest(data_type=DBRType.DOUBLE, data_count=1, sid=100,
                                        subscriptionid=5), CLIENT)
    assert sub.state is SubscriptionState.CANCELLING and sub.active
    circuit.handle(update(), SERVER)  # updates in flight still come
    assert sub.state is SubscriptionState.CANCELLING
    circuit.handle(m.EventCancelResponse(data_type=DBRType.DOUBLE, data_count=0, sid=100,
                                         subscriptionid=5), SERVER)
    assert sub.state is SubscriptionState.CANCELLED and not sub.active
    assert circuit.anomaly_count == 0


def test_subscriptions_end_with_their_channel_or_circuit():
    circuit = Circuit()
    connect(circuit)
    gone = circuit.handle(subscribe(5), CLIENT).subscription
    circuit.handle(m.ServerDisconnResponse(cid=1), SERVER)
    assert gone.state is SubscriptionState.ENDED and not gone.active
    connect(circuit, cid=2)
    closed = circuit.handle(subscribe(6), CLIENT).subscription
    channels = circuit.close()
    assert closed.state is SubscriptionState.ENDED
    assert [c.state for c in channels] == [ChannelState.DISCONNECTED]


def test_circuit_consults_the_channel_table(monkeypatch):
    """Take a transition out of the table: the circuit calls it a breach."""
    monkeypatch.delitem(lifecycle.CHANNEL, (ChannelState.CONNECTED, m.ReadNotifyRequest))
    observer = Circuit()
    connect(observer)
    anomaly = observer.handle(read(), CLIENT).anomaly
    assert anomaly.kind == "unexpected"
    assert anomaly.detail == "READ_NOTIFY on a connected channel"
    client = Circuit(strict=True, local=CLIENT)
    connect(client)
    with pytest.raises(LocalProtocolError, match="READ_NOTIFY on a connected channel"):
        client.handle(read(), CLIENT)


def test_circuit_consults_the_subscription_table(monkeypatch):
    monkeypatch.delitem(lifecycle.SUBSCRIPTION,
                        (SubscriptionState.REQUESTED, m.EventAddResponse))
    circuit = Circuit()
    connect(circuit)
    circuit.handle(subscribe(), CLIENT)
    assert circuit.handle(update(), SERVER).anomaly.kind == "unexpected"
    client = Circuit(strict=True, local=CLIENT)
    connect(client)
    client.handle(subscribe(), CLIENT)
    with pytest.raises(RemoteProtocolError, match="EVENT_ADD on a requested subscription"):
        client.handle(update(), SERVER)


@pytest.mark.parametrize("local", [CLIENT, SERVER])
def test_strict_circuit_blames_the_sender(local):
    """The same breaches, on a client's and on a server's circuit: the sender's fault."""
    by_client = LocalProtocolError if local is CLIENT else RemoteProtocolError
    by_server = RemoteProtocolError if local is CLIENT else LocalProtocolError
    circuit = Circuit(strict=True, local=local)
    with pytest.raises(by_client, match="unknown SID"):
        circuit.handle(read(sid=55), CLIENT)
    with pytest.raises(by_server, match="response without request"):
        circuit.handle(m.WriteNotifyResponse(data_type=6, data_count=1, status=1, ioid=3),
                       SERVER)
    with pytest.raises(by_server, match="ECHO"):
        circuit.handle(m.EchoResponse(), SERVER)
    # A message sent the wrong way is the fault of whoever sent it.
    with pytest.raises(by_server, match="wrong direction"):
        circuit.handle(m.CreateChanRequest(name="X", cid=1), SERVER)
    with pytest.raises(by_client, match="wrong direction"):
        circuit.handle(m.EchoResponse(), CLIENT)
    connect(circuit)
    with pytest.raises(by_client, match="duplicate CID"):
        circuit.handle(m.CreateChanRequest(name="PV:B", cid=1), CLIENT)


def test_strict_circuit_without_a_side_raises_the_plain_error():
    circuit = Circuit(strict=True)
    with pytest.raises(ProtocolError) as raised:
        circuit.handle(read(sid=55), CLIENT)
    assert type(raised.value) is ProtocolError


def test_decoder_errors_have_one_root():
    for error in (DecodeError, ProtocolError, LocalProtocolError, RemoteProtocolError):
        assert issubclass(error, DecoderError)
    assert issubclass(DecodeError, ValueError)  # as before

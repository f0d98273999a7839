"""The lifecycles of a channel and of a subscription, as transition tables.

One place to read what a channel or a subscription may receive in each state
and where each message takes it. :class:`decoder.circuit.Circuit` consults these
tables for every message that concerns a channel or a subscription: a pair
``(state, event)`` that is in a table is allowed and gives the next state; one
that is not is a breach of the protocol, which an observer records as an
anomaly (and then moves the thing to :data:`CHANNEL_RECOVERY` /
:data:`SUBSCRIPTION_RECOVERY`, making the best of it) and a strict circuit
raises.

An event is a message class (its direction is the class's ``sender``) or an
:class:`Event` that is no message (the circuit closed, the channel went). The
state ``None`` stands for "nothing by that id on this circuit": a CREATE_CHAN
or EVENT_ADD makes a new one; anything else naming an unknown id is a breach
(or, to an observer, a circuit joined mid-stream).

The tables say what circuits really do, not only what the protocol means:
servers answer a CLEAR_CHANNEL with updates still in flight, a channel may be
read while being cleared, and an EVENT_CANCEL reply has the same header as
an empty update (the circuit tells them apart by the cancel in flight).
"""

from __future__ import annotations

from enum import Enum

from . import messages as m


class ChannelState(Enum):
    """Where a channel is in its life (by CID once created, by SID once connected)."""

    CREATING = "creating"  # CREATE_CHAN sent, no reply yet
    CONNECTED = "connected"  # CREATE_CHAN answered: it has a SID, type and count
    FAILED = "failed"  # CREATE_CH_FAIL
    CLEARING = "clearing"  # CLEAR_CHANNEL sent, no reply yet
    CLEARED = "cleared"  # CLEAR_CHANNEL answered
    DISCONNECTED = "disconnected"  # SERVER_DISCONN or the circuit closed

    #: Members are singletons: hashed by identity, the tables are looked up per message
    #: (Enum's own hash is a Python call).
    __hash__ = object.__hash__


class SubscriptionState(Enum):
    """Where a subscription is in its life."""

    REQUESTED = "requested"  # EVENT_ADD sent, no update yet
    ACTIVE = "active"  # updates coming
    CANCELLING = "cancelling"  # EVENT_CANCEL sent, no reply yet
    CANCELLED = "cancelled"  # EVENT_CANCEL answered
    ENDED = "ended"  # its channel went away, or the circuit closed

    #: Members are singletons: hashed by identity, the tables are looked up per message
    #: (Enum's own hash is a Python call).
    __hash__ = object.__hash__


class Event(Enum):
    """What changes a channel or subscription without a message of its own."""

    CIRCUIT_CLOSED = "circuit closed"
    CHANNEL_GONE = "channel gone"  # the subscription's channel failed, cleared or went


_C = ChannelState
_S = SubscriptionState
#: Channel states found by CID: until it ends (and after the circuit closed).
_BY_CID = (_C.CREATING, _C.CONNECTED, _C.CLEARING, _C.DISCONNECTED)
#: A request naming a channel by SID is judged by the SID alone: one the server
#: handed out stays the channel's even after the server gave it another (a second
#: CREATE_CHAN reply for its CID) and the channel ended under the new one. A
#: request naming an unknown SID makes a nameless channel, already connected.
_BY_SID = tuple(ChannelState)

#: (state of the channel, event) -> its next state. For CREATE_CHAN the state is
#: that of the channel holding the CID before (``None``: no channel has it); the
#: request makes a new channel.
CHANNEL: dict[tuple[ChannelState | None, type[m.Message] | Event], ChannelState] = {
    # client: create, on a free CID or one whose channel is being cleared
    (None, m.CreateChanRequest): _C.CREATING,
    (_C.CLEARING, m.CreateChanRequest): _C.CREATING,
    (_C.DISCONNECTED, m.CreateChanRequest): _C.CREATING,
    # server: the reply to CREATE_CHAN (or its refusal) while the request is
    # outstanding, the access rights, a disconnection
    (_C.CREATING, m.CreateChanResponse): _C.CONNECTED,
    (_C.CREATING, m.CreateChFailResponse): _C.FAILED,
    **{(state, m.AccessRightsResponse): state for state in _BY_CID},
    **{(state, m.ServerDisconnResponse): _C.DISCONNECTED for state in _BY_CID},
    # client: requests naming the channel by SID
    **{(state, request): state for state in _BY_SID
       for request in (m.ReadNotifyRequest, m.ReadRequest, m.WriteNotifyRequest,
                       m.WriteRequest, m.EventAddRequest)},
    **{(state, m.ClearChannelRequest): _C.CLEARING for state in _BY_SID},
    # server: the reply to CLEAR_CHANNEL, while the request is outstanding (the
    # channel may have been disconnected or failed since: it ends all the same)
    (_C.CLEARING, m.ClearChannelResponse): _C.CLEARED,
    # the circuit ends: what was not over is disconnected
    **{(state, Event.CIRCUIT_CLOSED): _C.DISCONNECTED for state in _BY_CID},
}

#: Where an event the table does not allow takes a channel all the same (the
#: observer makes the best of it: a circuit joined mid-stream).
CHANNEL_RECOVERY: dict[type[m.Message], ChannelState] = {
    m.CreateChanRequest: _C.CREATING,
    m.CreateChanResponse: _C.CONNECTED,
    m.CreateChFailResponse: _C.FAILED,
    m.ServerDisconnResponse: _C.DISCONNECTED,
    m.ClearChannelRequest: _C.CLEARING,
    m.ClearChannelResponse: _C.CLEARED,
}

#: What an observer calls an event the channel table does not allow, by event
#: (the unknown-id kinds are the circuit's, by which id the message names).
CHANNEL_BREACH: dict[type[m.Message], str] = {
    m.CreateChanRequest: "duplicate CID",
    m.CreateChanResponse: "response without request",
    m.CreateChFailResponse: "response without request",
    m.ClearChannelResponse: "response without request",
}

_LIVE = (_S.REQUESTED, _S.ACTIVE, _S.CANCELLING)

#: (state of the subscription, event) -> its next state. For EVENT_ADD the state
#: is that of the subscription holding the id before (``None``: none has it).
SUBSCRIPTION: dict[tuple[SubscriptionState | None, type[m.Message] | Event],
                   SubscriptionState] = {
    # client: subscribe, on a free id or one whose subscription ended
    (None, m.EventAddRequest): _S.REQUESTED,
    (_S.ENDED, m.EventAddRequest): _S.REQUESTED,
    # server: updates (the first answers the EVENT_ADD); they go on until the
    # EVENT_CANCEL reply
    (_S.REQUESTED, m.EventAddResponse): _S.ACTIVE,
    (_S.ACTIVE, m.EventAddResponse): _S.ACTIVE,
    (_S.CANCELLING, m.EventAddResponse): _S.CANCELLING,
    (_S.ENDED, m.EventAddResponse): _S.ENDED,
    # client: cancel
    **{(state, m.EventCancelRequest): _S.CANCELLING for state in _LIVE},
    (_S.ENDED, m.EventCancelRequest): _S.ENDED,
    # server: the EVENT_CANCEL reply; without a cancel in flight the same header
    # is an empty update (a plain type, zero elements), which changes nothing
    (_S.REQUESTED, m.EventCancelResponse): _S.REQUESTED,
    (_S.ACTIVE, m.EventCancelResponse): _S.ACTIVE,
    (_S.CANCELLING, m.EventCancelResponse): _S.CANCELLED,
    (_S.ENDED, m.EventCancelResponse): _S.ENDED,
    # its channel or the circuit ends
    **{(state, Event.CHANNEL_GONE): _S.ENDED for state in (*_LIVE, _S.ENDED)},
    **{(state, Event.CIRCUIT_CLOSED): _S.ENDED for state in (*_LIVE, _S.ENDED)},
}

#: Where an event the table does not allow takes a subscription all the same.
SUBSCRIPTION_RECOVERY: dict[type[m.Message], SubscriptionState] = {
    m.EventAddRequest: _S.REQUESTED,
    m.EventAddResponse: _S.ACTIVE,
    m.EventCancelRequest: _S.CANCELLING,
}

#: What an observer calls an event the subscription table does not allow.
SUBSCRIPTION_BREACH: dict[type[m.Message], str] = {
    m.EventAddRequest: "duplicate subscription id",
}

#: States in which a subscription may still get updates it asked for.
LIVE_SUBSCRIPTION = frozenset(_LIVE)

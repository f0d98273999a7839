"""The state of one TCP circuit: channels, subscriptions and outstanding requests.

Feed :meth:`Circuit.handle` every message of a circuit, in order, both
directions, each with the role of its sender. It keeps what a CA client and
server both know: channels by client id (CID) and server id (SID) with name,
native type and count and access rights; subscriptions by subscription id;
outstanding READ_NOTIFY / WRITE_NOTIFY requests by IOID; echoes and clears in
flight. For each message it returns an :class:`Attribution`: the channel and
subscription it concerns and, for a response, the request it answers.

Two modes. An observer (``strict=False``, for captures) never raises: what the
rules forbid is recorded as an :class:`Anomaly` and the state makes the best of
it (a circuit seen mid-stream has channels whose names are unknown). A strict
circuit (for the client and server built on this) raises on the same
conditions: :class:`LocalProtocolError` when the breach is by the side it was
told is ``local`` (its own), :class:`RemoteProtocolError` when by the peer.

What a channel or subscription may receive in each state, and where that takes
it, is in the transition tables of :mod:`decoder.lifecycle`; the handlers here
consult them.

Time is not the decoder's business: a caller may pass any ``context`` object
with a message (a frame number, a timestamp) and gets the request's context
back with the response, to compute latencies.
"""

from __future__ import annotations

import functools
from collections import OrderedDict, deque
from typing import Any

from . import messages as m
from .display import (
    ENUM_TYPES,
    PRECISION_TYPES,
    TEACHING_TYPES,
    Reading,
    enum_strings_of,
    precision_of,
)
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .lifecycle import (
    CHANNEL,
    CHANNEL_BREACH,
    CHANNEL_RECOVERY,
    LIVE_SUBSCRIPTION,
    SUBSCRIPTION,
    SUBSCRIPTION_BREACH,
    SUBSCRIPTION_RECOVERY,
    ChannelState,
    Event,
    SubscriptionState,
)
from .protocol import AccessRights, Role
from .sizes import dbr_bounds

#: Outstanding requests kept per circuit before the oldest are dropped (and
#: reported): a client that never gets answers must not grow memory forever.
MAX_PENDING = 65536
#: Anomalies kept per circuit (the count goes on).
MAX_ANOMALIES = 1000

#: Updates to active subscriptions are most of what a circuit carries, and the table
#: keeps an active subscription active on an update: that one move is taken without
#: a lookup (checked here, so the table stays the one place that says so).
_ACTIVE = SubscriptionState.ACTIVE
#: States and events met per message, as constants: reading an Enum member off its
#: class is a slow attribute lookup (some 60 ns), and channels come and go by the thousand.
_CREATING, _CLEARING = ChannelState.CREATING, ChannelState.CLEARING
_REQUESTED, _CHANNEL_GONE = SubscriptionState.REQUESTED, Event.CHANNEL_GONE
if SUBSCRIPTION.get((_ACTIVE, m.EventAddResponse)) is not _ACTIVE:
    raise ImportError("decoder.lifecycle: an update must keep a subscription active")

#: The access rights a reply's two bits grant, made once: calling an ``IntFlag`` costs
#: more than the rest of the reply's handling.
_ACCESS_RIGHTS = tuple(AccessRights(bits) for bits in range(4))


#: How many times a channel's reading changed, in this process: the clock of
#: :attr:`Channel.readings`.
_LEARNED = [0]


def learned() -> int:
    """The count of reading changes so far: what a batch of values attributed now
    keeps, to read each with its channel's reading as of then."""
    return _LEARNED[0]


class Channel:
    """One channel of a circuit. ``name`` is None when the circuit was joined
    after the CREATE_CHAN (only the SID or CID is known)."""

    __slots__ = (
        "name", "cid", "sid", "native_type", "native_count", "access_rights", "state",
        "request", "connected", "closed", "access_changes", "last_write", "subscriptions",
        "precision", "enum_strings", "reading", "readings", "attribution",
    )

    def __init__(self, name: str | None, cid: int | None, sid: int | None = None) -> None:
        self.name = name
        self.cid = cid
        self.sid = sid
        self.native_type: int | None = None
        self.native_count: int | None = None
        self.access_rights: AccessRights | None = None
        self.state = _CREATING
        #: The CREATE_CHAN request (a :class:`Pending`), None if not seen.
        self.request: Pending | None = None
        #: Contexts of the messages that connected and closed it.
        self.connected: Any = None
        self.closed: Any = None
        #: How many times the access rights changed after the first grant.
        self.access_changes = 0
        #: The latest WRITE request (a :class:`Pending`): a WRITE has no reply, but
        #: when it fails the server's ERROR answers it.
        self.last_write: Pending | None = None
        #: Its subscriptions by id (those of the circuit's that name it), so that
        #: forgetting a channel costs its own subscriptions, not all the circuit's.
        self.subscriptions: dict[int, Subscription] = {}
        #: How its values read (:mod:`decoder.display`): the display precision (PREC)
        #: and the enum state strings of the latest GR/CTRL reply that carried them,
        #: None until one did.
        self.precision: int | None = None
        self.enum_strings: tuple[str, ...] | None = None
        #: Both as one :class:`decoder.display.Reading`, None while neither is known:
        #: what a value arriving now is shown with (records and batches keep it).
        self.reading: Reading | None = None
        #: Every reading it had, with the :func:`learned` count at which it began (a
        #: value attributed at count n reads with the last one begun at n or before).
        self.readings: list[tuple[int, Reading]] = []
        #: What a message that concerns it alone concerns, made once: its creation,
        #: access rights and clearing each say so. None once its circuit forgot it
        #: (it refers back to the channel: see :meth:`Circuit._forget_channel`); a
        #: message that still finds it gets one of its own.
        self.attribution: Attribution | None = Attribution(self)

    def learn(self, data_type: int, payload: bytes | memoryview) -> None:
        """Take what a reply's payload of ``data_type`` tells of how the channel's values
        read: the precision of a DBR_GR_/CTRL_FLOAT or DOUBLE, the state strings of a
        DBR_GR_/CTRL_ENUM; nothing from other types or payloads too short to say."""
        if data_type in PRECISION_TYPES:
            precision = precision_of(payload)
            if precision is not None and precision != self.precision:
                self.precision = precision
                self._read_as(Reading(precision, self.enum_strings))
        elif data_type in ENUM_TYPES:
            strings = enum_strings_of(payload)
            if strings is not None and strings != self.enum_strings:
                self.enum_strings = strings
                self._read_as(Reading(self.precision, strings))

    def _read_as(self, reading: Reading) -> None:
        _LEARNED[0] += 1
        self.reading = reading
        self.readings.append((_LEARNED[0], reading))

    def reading_at(self, count: int) -> Reading | None:
        """The reading a value attributed at :func:`learned` count ``count`` has."""
        found = None
        for began, reading in self.readings:
            if began > count:
                break
            found = reading
        return found

    def __repr__(self) -> str:
        return (
            f"Channel({self.name!r}, cid={self.cid}, sid={self.sid}, "
            f"type={self.native_type}, count={self.native_count}, {self.state.value})"
        )


class Subscription:
    __slots__ = (
        "subscriptionid", "channel", "data_type", "data_count", "mask", "updates",
        "state", "request", "cancel", "attribution",
    )

    def __init__(self, subscriptionid: int, channel: Channel | None, data_type: int,
                 data_count: int, mask: int | None) -> None:
        self.subscriptionid = subscriptionid
        self.channel = channel
        self.data_type = data_type
        self.data_count = data_count
        self.mask = mask
        self.updates = 0
        self.state = _REQUESTED
        #: The EVENT_ADD request (a :class:`Pending`), None if not seen.
        self.request: Pending | None = None
        #: The EVENT_CANCEL request once sent.
        self.cancel: Pending | None = None
        #: What each update concerns, made once: an update is the commonest message.
        #: None once its circuit forgot it, as a channel's.
        self.attribution: Attribution | None = Attribution(channel, self)

    @property
    def active(self) -> bool:
        """Whether updates may still come (not cancelled, its channel not gone)."""
        return self.state in LIVE_SUBSCRIPTION

    def __repr__(self) -> str:
        name = self.channel.name if self.channel else None
        return f"Subscription({self.subscriptionid}, {name!r}, updates={self.updates})"


class Pending:
    """A request waiting for its response, with the caller's context."""

    __slots__ = ("message", "context", "channel")

    def __init__(self, message: m.Message, context: Any, channel: Channel | None) -> None:
        self.message = message
        self.context = context
        self.channel = channel

    def __repr__(self) -> str:
        return f"Pending({type(self.message).__name__}, {self.context!r})"


class Anomaly:
    """Something the protocol does not allow, seen by an observer."""

    __slots__ = ("kind", "detail", "message", "context")

    def __init__(self, kind: str, detail: str, message: m.Message, context: Any) -> None:
        self.kind = kind
        self.detail = detail
        self.message = message
        self.context = context

    def __repr__(self) -> str:
        return f"Anomaly({self.kind}: {self.detail})"


class Attribution:
    """What a message concerns: its channel, subscription, and the request it answers.

    Read-only: the same object may be returned for many messages (every update of a
    subscription after the first)."""

    __slots__ = ("channel", "subscription", "request", "anomaly")

    def __init__(
        self,
        channel: Channel | None = None,
        subscription: Subscription | None = None,
        request: Pending | None = None,
        anomaly: Anomaly | None = None,
    ) -> None:
        self.channel = channel
        self.subscription = subscription
        self.request = request
        self.anomaly = anomaly

    @property
    def name(self) -> str | None:
        return self.channel.name if self.channel is not None else None

    def __repr__(self) -> str:
        return (
            f"Attribution(channel={self.channel!r}, subscription={self.subscription!r}, "
            f"request={self.request!r}, anomaly={self.anomaly!r})"
        )


NOTHING = Attribution()


@functools.cache
def _handlers(circuit_class: type) -> tuple[tuple[type, Any], ...]:
    """(message class, handler function) for each message class a circuit class handles,
    looked up once per class rather than once per circuit."""
    return tuple(
        (cls, getattr(circuit_class, "_on_" + cls.__name__))
        for cls in m.ALL_MESSAGE_CLASSES
        if hasattr(circuit_class, "_on_" + cls.__name__)
    )


class Circuit:
    """State of one circuit. See the module docstring."""

    def __init__(self, strict: bool = False, local: Role | None = None) -> None:
        self.strict = strict
        #: Which side of the circuit is "us" (a strict circuit blames breaches by it
        #: on us: :class:`LocalProtocolError`); None for an observer of both.
        self.local = local
        self.channels_by_cid: dict[int, Channel] = {}
        self.channels_by_sid: dict[int, Channel] = {}
        self.subscriptions: dict[int, Subscription] = {}
        #: How many times a subscription was added to :attr:`subscriptions` or taken
        #: out: a caller that worked something out from the subscriptions of some ids
        #: (the bulk attribution of updates) can tell it still holds when this is as it was.
        self.subscriptions_changed = 0
        self.pending_io: OrderedDict[int, Pending] = OrderedDict()
        self._pending_clear: dict[int, Pending] = {}
        self._pending_echo: deque[Pending] = deque(maxlen=MAX_PENDING)
        self._pending_search: dict[int, Pending] = {}
        self.client_version: int | None = None
        self.server_version: int | None = None
        self.priority: int | None = None
        self.client_name: str | None = None
        self.host_name: str | None = None
        self.events_on = True
        self.closed = False
        self.anomalies: deque[Anomaly] = deque(maxlen=MAX_ANOMALIES)
        self.anomaly_count = 0
        # message class -> bound handler (a dict per circuit: strict users may patch it)
        self._handlers = {cls: handler.__get__(self) for cls, handler in _handlers(type(self))}

    # -- public ----------------------------------------------------------------------

    def handle(self, message: m.Message, sender: Role, context: Any = None) -> Attribution:
        """Account for one message of this circuit; say what it concerns."""
        expected = message.sender
        if expected is not None and expected is not sender and expected != sender:
            return self._anomaly(
                "wrong direction",
                f"{type(message).__name__} sent by the {sender.name.lower()}",
                message, context, sender=sender,
            )
        handler = self._handlers.get(type(message))
        if handler is None:
            return NOTHING
        return handler(message, context)

    def close(self, context: Any = None) -> list[Channel]:
        """The circuit ended: every open channel is disconnected; return them."""
        self.closed = True
        open_channels = [
            ch for ch in self.channels_by_cid.values()
            if (ch.state, Event.CIRCUIT_CLOSED) in CHANNEL
        ]
        for channel in open_channels:
            channel.state = CHANNEL[channel.state, Event.CIRCUIT_CLOSED]
            channel.closed = context
        for sub in self.subscriptions.values():
            sub.state = SUBSCRIPTION.get((sub.state, Event.CIRCUIT_CLOSED), sub.state)
        return open_channels

    def forget_search(self, cid: int) -> None:
        """A search over TCP that will not be answered (a server keeps silent about a
        name it has not, unless asked to reply): no longer outstanding."""
        self._pending_search.pop(cid, None)

    def channel_for_sid(self, sid: int) -> Channel | None:
        return self.channels_by_sid.get(sid)

    def channel_for_cid(self, cid: int) -> Channel | None:
        return self.channels_by_cid.get(cid)

    # -- helpers ---------------------------------------------------------------------

    def _anomaly(
        self, kind: str, detail: str, message: m.Message, context: Any,
        channel: Channel | None = None, subscription: Subscription | None = None,
        request: Pending | None = None, sender: Role | None = None,
    ) -> Attribution:
        if self.strict:
            raise self._breach(f"{kind}: {detail}",
                              message.sender if sender is None else sender)
        anomaly = Anomaly(kind, detail, message, context)
        self.anomalies.append(anomaly)
        self.anomaly_count += 1
        return Attribution(channel, subscription, request, anomaly)

    def _breach(self, text: str, sender: Role | None) -> ProtocolError:
        """The error of a strict circuit for a breach by ``sender``: ours or the peer's."""
        if self.local is None or sender is None:
            return ProtocolError(text)
        if sender is self.local:
            return LocalProtocolError(text)
        return RemoteProtocolError(text)

    def _move(self, channel: Channel, message: m.Message, context: Any,
              state: ChannelState | None = None) -> Attribution | None:
        """Move ``channel`` by the table for ``message``, from ``state`` (default: its
        own); a move the table does not allow is an anomaly (its attribution)."""
        kind = type(message)
        before = channel.state if state is None else state
        after = CHANNEL.get((before, kind))
        if after is not None:
            channel.state = after
            return None
        channel.state = CHANNEL_RECOVERY.get(kind, channel.state)
        return self._anomaly(
            CHANNEL_BREACH.get(kind, "unexpected"),
            f"{message.command_name} on a {before.value} channel", message, context, channel,
        )

    def _by_sid(self, message: m.Message, context: Any) -> tuple[Channel, Attribution | None]:
        """The channel a request names by SID; an unknown SID makes a nameless one."""
        channel = self.channels_by_sid.get(message.sid)
        if channel is not None:
            return channel, None
        if self.strict:  # refused before the state changes: the circuit goes on as it was
            raise self._breach(f"unknown SID: SID {message.sid} was never created on this "
                               "circuit", message.sender)
        channel = Channel(None, None, message.sid)
        channel.state = ChannelState.CONNECTED
        self.channels_by_sid[message.sid] = channel
        return channel, self._anomaly(
            "unknown SID", f"SID {message.sid} was never created on this circuit",
            message, context, channel,
        )

    def _by_cid(self, message: m.Message, context: Any) -> tuple[Channel, Attribution | None]:
        channel = self.channels_by_cid.get(message.cid)
        if channel is not None:
            return channel, None
        if self.strict:
            raise self._breach(f"unknown CID: CID {message.cid} was never created on this "
                               "circuit", message.sender)
        channel = Channel(None, message.cid)
        self.channels_by_cid[message.cid] = channel
        return channel, self._anomaly(
            "unknown CID", f"CID {message.cid} was never created on this circuit",
            message, context, channel,
        )

    def _join(self, channel: Channel) -> None:
        """``channel``, known by SID, has just told its CID. If a channel was known by
        that CID alone (its CREATE_CHAN request seen, not the reply), they are one: the
        SID's channel takes over what the other knew, its name first."""
        known = self.channels_by_cid.get(channel.cid)
        if known is None or known is channel:
            self.channels_by_cid[channel.cid] = channel
            return
        if known.sid is not None and known.sid != channel.sid:
            return  # a different channel: the CID was reused, keep the first
        for name in ("name", "native_type", "native_count", "access_rights", "request",
                     "connected", "precision", "enum_strings"):
            if getattr(channel, name) is None:
                setattr(channel, name, getattr(known, name))
        if known.reading is not None and channel.reading is None:
            channel._read_as(Reading(channel.precision, channel.enum_strings))
        self.channels_by_cid[channel.cid] = channel

    def _add_pending(self, message: m.Message, context: Any, channel: Channel) -> Attribution:
        ioid = message.ioid
        pending = Pending(message, context, channel)
        anomaly = None
        if ioid in self.pending_io:
            anomaly = self._anomaly(
                "duplicate IOID", f"IOID {ioid} reused while outstanding", message, context,
                channel,
            ).anomaly
            del self.pending_io[ioid]
        self.pending_io[ioid] = pending
        if len(self.pending_io) > MAX_PENDING:
            _, dropped = self.pending_io.popitem(last=False)
            anomaly = self._anomaly(
                "too many outstanding requests",
                f"IOID {dropped.message.ioid} forgotten unanswered", dropped.message,
                dropped.context, dropped.channel,
            ).anomaly
        return Attribution(channel, None, None, anomaly)

    def _answer_io(self, message: m.Message, context: Any) -> Attribution:
        pending = self.pending_io.pop(message.ioid, None)
        if pending is None:
            return self._anomaly(
                "response without request",
                f"{type(message).__name__} for IOID {message.ioid} that is not outstanding",
                message, context,
            )
        if message.data_type in TEACHING_TYPES and isinstance(message, m._DataPayload):
            pending.channel.learn(message.data_type, message.payload)
        return Attribution(pending.channel, None, pending)

    def _forget_channel(self, channel: Channel) -> None:
        """The channel is gone: out of the circuit's maps, its subscriptions with it.

        What it and they keep that refers back to them goes too (the attributions made
        once, the latest WRITE), so that nothing of it is in a reference cycle: it
        goes as soon as nothing else uses it, where a cycle would wait for Python's
        collector, which looks at long-lived objects seldom (a capture that creates
        and clears channels for hours would pile them up) and at every object it
        keeps on each look."""
        if self.channels_by_cid.get(channel.cid) is channel:
            del self.channels_by_cid[channel.cid]
        if self.channels_by_sid.get(channel.sid) is channel:
            del self.channels_by_sid[channel.sid]
        for subid, sub in channel.subscriptions.items():
            sub.state = SUBSCRIPTION.get((sub.state, _CHANNEL_GONE), sub.state)
            if self.subscriptions.get(subid) is sub:
                del self.subscriptions[subid]
                self.subscriptions_changed += 1
            sub.attribution = None
        channel.subscriptions = {}
        channel.attribution = None
        channel.last_write = None

    # -- handlers, one per message class -----------------------------------------------

    def _on_VersionRequest(self, message: m.VersionRequest, context: Any) -> Attribution:
        self.client_version = message.version
        self.priority = message.priority
        return NOTHING

    def _on_VersionResponse(self, message: m.VersionResponse, context: Any) -> Attribution:
        self.server_version = message.version
        return NOTHING

    def _on_ClientNameRequest(self, message: m.ClientNameRequest, context: Any) -> Attribution:
        self.client_name = message.name
        return NOTHING

    def _on_HostNameRequest(self, message: m.HostNameRequest, context: Any) -> Attribution:
        self.host_name = message.name
        return NOTHING

    def _on_EventsOffRequest(self, message: m.Message, context: Any) -> Attribution:
        self.events_on = False
        return NOTHING

    def _on_EventsOnRequest(self, message: m.Message, context: Any) -> Attribution:
        self.events_on = True
        return NOTHING

    def _on_SearchRequest(self, message: m.SearchRequest, context: Any) -> Attribution:
        """A search over TCP (CA v4.12): answered on the same circuit by cid, or not at
        all (an unknown name, no reply asked for): the oldest beyond
        :data:`MAX_PENDING` are forgotten."""
        self._pending_search.pop(message.cid, None)
        self._pending_search[message.cid] = Pending(message, context, None)
        if len(self._pending_search) > MAX_PENDING:
            del self._pending_search[next(iter(self._pending_search))]
        return NOTHING

    def _on_SearchResponse(self, message: m.SearchResponse, context: Any) -> Attribution:
        pending = self._pending_search.pop(message.cid, None)
        if pending is None:
            return self._anomaly(
                "response without request", f"search reply for unknown id {message.cid}",
                message, context,
            )
        return Attribution(None, None, pending)

    _on_NotFoundResponse = _on_SearchResponse

    def _on_CreateChanRequest(self, message: m.CreateChanRequest, context: Any) -> Attribution:
        old = self.channels_by_cid.get(message.cid)
        if self.strict and (old and old.state, m.CreateChanRequest) not in CHANNEL:
            raise self._breach(f"duplicate CID: CID {message.cid} ({old.name}) reused for "
                               f"{message.name}", message.sender)
        channel = Channel(message.name, message.cid)
        channel.request = Pending(message, context, None)  # (the channel is its own: no cycle)
        self.channels_by_cid[message.cid] = channel
        if (old and old.state, m.CreateChanRequest) not in CHANNEL:
            return self._anomaly(
                "duplicate CID", f"CID {message.cid} ({old.name}) reused for {message.name}",
                message, context, channel,
            )
        return channel.attribution

    def _on_CreateChanResponse(self, message: m.CreateChanResponse, context: Any) -> Attribution:
        channel, problem = self._by_cid(message, context)
        channel.sid = message.sid
        channel.native_type = message.data_type
        channel.native_count = message.data_count
        problem = self._move(channel, message, context) or problem
        channel.connected = context
        self.channels_by_sid[message.sid] = channel
        if problem is not None:
            return problem
        return Attribution(channel, None, channel.request)

    def _on_AccessRightsResponse(
        self, message: m.AccessRightsResponse, context: Any
    ) -> Attribution:
        channel, problem = self._by_cid(message, context)
        problem = self._move(channel, message, context) or problem
        if channel.access_rights is not None and channel.access_rights != message.access_rights:
            channel.access_changes += 1
        channel.access_rights = _ACCESS_RIGHTS[message.access_rights & 3]
        return problem or channel.attribution or Attribution(channel)

    def _on_CreateChFailResponse(self, message: m.Message, context: Any) -> Attribution:
        channel, problem = self._by_cid(message, context)
        problem = self._move(channel, message, context) or problem
        channel.closed = context
        self._forget_channel(channel)
        return problem or Attribution(channel, None, channel.request)

    def _on_ServerDisconnResponse(self, message: m.Message, context: Any) -> Attribution:
        channel, problem = self._by_cid(message, context)
        problem = self._move(channel, message, context) or problem
        channel.closed = context
        self._forget_channel(channel)
        return problem or Attribution(channel)

    def _on_ClearChannelRequest(self, message: m.ClearChannelRequest, context: Any) -> Attribution:
        channel, problem = self._by_sid(message, context)
        if channel.cid is None:  # joined mid-stream: the request tells the CID too
            channel.cid = message.cid
            self._join(channel)
        problem = self._move(channel, message, context) or problem
        self._pending_clear[message.sid] = Pending(message, context, channel)
        return problem or channel.attribution or Attribution(channel)

    def _on_ClearChannelResponse(
        self, message: m.ClearChannelResponse, context: Any
    ) -> Attribution:
        pending = self._pending_clear.pop(message.sid, None)
        channel = self.channels_by_sid.get(message.sid) or (pending and pending.channel)
        if channel is None:
            return self._anomaly(
                "response without request", f"CLEAR_CHANNEL reply for unknown SID {message.sid}",
                message, context,
            )
        # The request outstanding is what put the channel in CLEARING: a channel
        # found through it may have been disconnected or failed since. Without one
        # the reply answers nothing, whatever the channel's state.
        after = None
        if pending is not None:
            after = CHANNEL.get((_CLEARING, m.ClearChannelResponse))
        channel.state = after or CHANNEL_RECOVERY[m.ClearChannelResponse]
        channel.closed = context
        self._forget_channel(channel)
        if after is None:
            return self._anomaly(
                CHANNEL_BREACH[m.ClearChannelResponse],
                f"CLEAR_CHANNEL reply for SID {message.sid}", message, context, channel,
            )
        return Attribution(channel, None, pending)

    def _on_ReadNotifyRequest(self, message: m.Message, context: Any) -> Attribution:
        channel, problem = self._by_sid(message, context)
        problem = self._move(channel, message, context) or problem
        attribution = self._add_pending(message, context, channel)
        return problem or attribution

    _on_ReadRequest = _on_ReadNotifyRequest
    _on_WriteNotifyRequest = _on_ReadNotifyRequest

    def _on_ReadNotifyResponse(self, message: m.Message, context: Any) -> Attribution:
        return self._answer_io(message, context)

    _on_ReadResponse = _on_ReadNotifyResponse
    _on_WriteNotifyResponse = _on_ReadNotifyResponse

    def _on_WriteRequest(self, message: m.WriteRequest, context: Any) -> Attribution:
        channel, problem = self._by_sid(message, context)
        problem = self._move(channel, message, context) or problem
        channel.last_write = Pending(message, context, channel)
        return problem or channel.attribution or Attribution(channel)

    def _on_EventAddRequest(self, message: m.EventAddRequest, context: Any) -> Attribution:
        channel, problem = self._by_sid(message, context)
        problem = self._move(channel, message, context) or problem
        old = self.subscriptions.get(message.subscriptionid)
        if self.strict and (old and old.state, m.EventAddRequest) not in SUBSCRIPTION:
            raise self._breach(f"duplicate subscription id: subscription "
                               f"{message.subscriptionid} reused while active", message.sender)
        mask = message.mask if len(message.payload) >= 16 else None
        sub = Subscription(
            message.subscriptionid, channel, message.data_type, message.data_count, mask
        )
        sub.request = Pending(message, context, channel)
        self.subscriptions[message.subscriptionid] = sub
        self.subscriptions_changed += 1
        channel.subscriptions[message.subscriptionid] = sub
        if problem is not None:
            return problem
        if (old and old.state, m.EventAddRequest) not in SUBSCRIPTION:
            return self._anomaly(
                SUBSCRIPTION_BREACH[m.EventAddRequest],
                f"subscription {message.subscriptionid} reused while active",
                message, context, channel, sub,
            )
        return sub.attribution

    def _subscription(
        self, message: m.Message, context: Any
    ) -> tuple[Subscription, Attribution | None]:
        sub = self.subscriptions.get(message.subscriptionid)
        if sub is not None:
            return sub, None
        if self.strict:
            raise self._breach(
                f"unknown subscription: subscription {message.subscriptionid} was never added "
                "on this circuit", message.sender)
        sub = Subscription(message.subscriptionid, None, message.data_type,
                           message.data_count, None)
        sub.state = SUBSCRIPTION_RECOVERY[type(message)]
        self.subscriptions[message.subscriptionid] = sub
        self.subscriptions_changed += 1
        return sub, self._anomaly(
            "unknown subscription",
            f"subscription {message.subscriptionid} was never added on this circuit",
            message, context, None, sub,
        )

    def _unexpected(self, sub: Subscription, message: m.Message, context: Any) -> Attribution:
        """A message the subscription table does not allow in ``sub``'s state."""
        return self._anomaly(
            "unexpected", f"{message.command_name} on a {sub.state.value} subscription",
            message, context, sub.channel, sub,
        )

    def _on_EventAddResponse(self, message: m.EventAddResponse, context: Any) -> Attribution:
        sub = self.subscriptions.get(message.parameter2)  # the subscription id
        if sub is not None:
            if message.data_type in TEACHING_TYPES and sub.channel is not None:
                sub.channel.learn(message.data_type, message.payload)
            sub.updates += 1
            if sub.state is not _ACTIVE:  # else the table keeps it active: no lookup
                after = SUBSCRIPTION.get((sub.state, m.EventAddResponse))
                if after is None:
                    return self._unexpected(sub, message, context)
                sub.state = after
            if sub.updates > 1:
                return sub.attribution or Attribution(sub.channel, sub)
            # The first update answers the EVENT_ADD request (for its latency).
            return Attribution(sub.channel, sub, sub.request)
        sub, problem = self._subscription(message, context)
        sub.updates += 1
        return problem

    def _on_EventCancelRequest(self, message: m.EventCancelRequest, context: Any) -> Attribution:
        sub, problem = self._subscription(message, context)
        if problem is None:
            after = SUBSCRIPTION.get((sub.state, m.EventCancelRequest))
            if after is None:
                return self._unexpected(sub, message, context)
            sub.state = after
        sub.cancel = Pending(message, context, sub.channel)
        return problem or sub.attribution or Attribution(sub.channel, sub)

    def _on_EventCancelResponse(self, message: m.EventCancelResponse, context: Any) -> Attribution:
        sub = self.subscriptions.get(message.subscriptionid)
        if sub is None:
            return self._anomaly(
                "response without request",
                f"EVENT_CANCEL reply for unknown subscription {message.subscriptionid}",
                message, context,
            )
        after = SUBSCRIPTION.get((sub.state, m.EventCancelResponse))
        if after is None:
            return self._unexpected(sub, message, context)
        if sub.cancel is None:
            # Not cancelled: an update of a plain type with zero elements (an
            # empty dynamic array) has no payload either. libca drops it; so
            # does the update count, but the subscription goes on. With any other
            # type or count it is a reply to a cancel never sent.
            if dbr_bounds(message.data_type, message.data_count)[0] == 0:
                return sub.attribution or Attribution(sub.channel, sub)
            return self._anomaly(
                "response without request",
                f"EVENT_CANCEL reply for subscription {message.subscriptionid}, never "
                "cancelled", message, context, sub.channel, sub,
            )
        del self.subscriptions[message.subscriptionid]
        self.subscriptions_changed += 1
        if sub.channel is not None and sub.channel.subscriptions.get(sub.subscriptionid) is sub:
            del sub.channel.subscriptions[sub.subscriptionid]
        sub.state = after
        sub.attribution = None  # (forgotten: no cycle, as in _forget_channel)
        return Attribution(sub.channel, sub, sub.cancel)

    def _on_EchoRequest(self, message: m.Message, context: Any) -> Attribution:
        self._pending_echo.append(Pending(message, context, None))
        return NOTHING

    def _on_EchoResponse(self, message: m.Message, context: Any) -> Attribution:
        if not self._pending_echo:
            # Servers of CA < 4.3 clients, and rsrv answering a client's ECHO
            # before the capture began: not a protocol breach worth raising.
            if self.strict:
                raise self._breach("ECHO response without request", message.sender)
            return NOTHING
        return Attribution(None, None, self._pending_echo.popleft())

    def _on_ErrorResponse(self, message: m.ErrorResponse, context: Any) -> Attribution:
        """Attribute an ERROR through the header of the request it quotes."""
        try:
            original = message.original_request
        except Exception:  # noqa: BLE001 - a bad copy still leaves the cid
            original = None
        channel = self.channels_by_cid.get(message.cid)
        if original is None:
            return Attribution(channel)
        request = None
        sub = None
        if isinstance(original, (m.ReadNotifyRequest, m.WriteNotifyRequest, m.ReadRequest)):
            request = self.pending_io.pop(original.ioid, None)
            channel = channel or self.channels_by_sid.get(original.sid)
        elif isinstance(original, (m.EventAddRequest, m.EventCancelRequest)):
            sub = self.subscriptions.get(original.subscriptionid)
            channel = channel or self.channels_by_sid.get(original.sid)
            if sub is not None:
                request = sub.request
        elif isinstance(original, m.WriteRequest):
            channel = channel or self.channels_by_sid.get(original.sid)
            # Only a WRITE's ERROR tells which one failed: the latest with that header
            # (a server answers in order, and a failure comes back before long).
            last = channel.last_write if channel is not None else None
            if last is not None and last.message.header_bytes()[2:] == (
                    original.header_bytes(message.original_payload_size)[2:]):
                request = last
        elif isinstance(original, m.ClearChannelRequest):
            channel = channel or self.channels_by_sid.get(original.sid)
        elif isinstance(original, m.CreateChanRequest):
            channel = channel or self.channels_by_cid.get(original.cid)
        if request is None and channel is not None:
            request = Pending(original, None, channel)
        return Attribution(channel, sub, request)


"""The sans-I/O Channel Access codec: bytes in, message objects out, and back.

No sockets, files, threads or asyncio here, and no third-party imports (numpy is
used for arrays when installed). Layers above feed it bytes and say who sent
them; it frames, decodes lazily, encodes, and tracks circuit and UDP state.
"""

from . import dbr, messages
from .beacons import BeaconAnomaly, BeaconAnomalyKind, BeaconJudge, BeaconServer
from .circuit import Anomaly, Attribution, Channel, Circuit, Subscription
from .dbr import DBRType, DBRValue
from .discovery import Discovery, Search
from .errors import (
    DecodeError,
    DecoderError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from .framing import StreamFramer, split_datagram
from .lifecycle import ChannelState, SubscriptionState
from .messages import *  # noqa: F403 - the message classes are the public API
from .messages import ALL_MESSAGE_CLASSES, Message, make_message, message_class
from .protocol import AccessRights, Command, EventMask, Role, SearchReply
from .status import ECA, AlarmSeverity, AlarmStatus

__version__ = "0.1.0"

__all__ = [
    "ALL_MESSAGE_CLASSES", "ECA", "AccessRights", "AlarmSeverity", "AlarmStatus", "Anomaly",
    "Attribution", "BeaconAnomaly", "BeaconAnomalyKind", "BeaconJudge", "BeaconServer",
    "Channel", "ChannelState", "Circuit", "Command",
    "DBRType", "DBRValue", "DecodeError", "DecoderError", "Discovery", "EventMask",
    "LocalProtocolError", "Message", "ProtocolError", "RemoteProtocolError", "Role", "Search",
    "SearchReply", "StreamFramer", "Subscription", "SubscriptionState", "dbr", "make_message",
    "message_class", "messages", "split_datagram",
]
__all__ += messages.__all__

"""Numbers of the Channel Access protocol (v4.13): commands, ports, flags.

The values come from EPICS base's ``caProto.h`` and ``caeventmask.h``.
"""

from enum import IntEnum, IntFlag

from .layout import Layout

#: The protocol minor version this decoder speaks (CA v4.13).
MINOR_VERSION = 13
SERVER_PORT = 5064
REPEATER_PORT = 5065

#: The message header, big-endian. The generic names of the fields; each message
#: form names them as the specification does for its command (:mod:`decoder.messages`).
HEADER_LAYOUT = Layout(">", (
    ("command", "H"), ("payload_size", "H"), ("data_type", "H"), ("data_count", "H"),
    ("parameter1", "I"), ("parameter2", "I"),
))
#: What follows the header when its payload_size is :data:`EXTENDED_MARKER` and its
#: data_count 0: the real payload size and data count, 32 bits each.
EXTENSION_LAYOUT = Layout(">", (("payload_size", "I"), ("data_count", "I")))

HEADER_SIZE = HEADER_LAYOUT.size  # 16
EXTENDED_HEADER_SIZE = HEADER_SIZE + EXTENSION_LAYOUT.size  # 24
#: payload_size value that, with data_count 0, announces the extended header.
EXTENDED_MARKER = 0xFFFF
#: The largest payload a 16-byte header can announce; larger ones are extended.
MAX_STANDARD_PAYLOAD = 0xFFFF - 1

#: Server address in a UDP search reply meaning "the address the reply came from".
ADDRESS_OF_SENDER = 0xFFFFFFFF


class Command(IntEnum):
    """CA command ids, named as the protocol specification names them."""

    VERSION = 0
    EVENT_ADD = 1
    EVENT_CANCEL = 2
    READ = 3
    WRITE = 4
    SNAPSHOT = 5
    SEARCH = 6
    BUILD = 7
    EVENTS_OFF = 8
    EVENTS_ON = 9
    READ_SYNC = 10
    ERROR = 11
    CLEAR_CHANNEL = 12
    RSRV_IS_UP = 13
    NOT_FOUND = 14
    READ_NOTIFY = 15
    READ_BUILD = 16
    REPEATER_CONFIRM = 17
    CREATE_CHAN = 18
    WRITE_NOTIFY = 19
    CLIENT_NAME = 20
    HOST_NAME = 21
    ACCESS_RIGHTS = 22
    ECHO = 23
    REPEATER_REGISTER = 24
    SIGNAL = 25
    CREATE_CH_FAIL = 26
    SERVER_DISCONN = 27


class Role(IntEnum):
    """Who sent a message. Decoding a command needs it: requests and responses
    share command ids but not their layout."""

    CLIENT = 0
    SERVER = 1
    #: The CA repeater (on UDP, it forwards beacons and confirms registrations).
    REPEATER = 2


class SearchReply(IntEnum):
    """The data_type field of a SEARCH request: should a server that does not
    have the name answer with NOT_FOUND?"""

    DO_REPLY = 10
    DONT_REPLY = 5


class AccessRights(IntFlag):
    NONE = 0
    READ = 1
    WRITE = 2


class EventMask(IntFlag):
    """Which changes a subscription asks for (``caeventmask.h``)."""

    NONE = 0
    VALUE = 1
    LOG = 2
    ALARM = 4
    PROPERTY = 8

"""Status codes carried by CA messages: ECA codes, alarm status and severity.

ECA codes are the values libca's ``caerr.h`` builds with ``DEFMSG(severity,
number)``: the message number shifted left by three bits, or-ed with a severity
level. They travel in the header of READ_NOTIFY, WRITE_NOTIFY and EVENT_ADD
responses and in ERROR messages.
"""

from enum import IntEnum


class ECA(IntEnum):
    """Channel Access status codes, as libca defines them."""

    ECA_NORMAL = 1
    ECA_MAXIOC = 10
    ECA_UKNHOST = 18
    ECA_UKNSERV = 26
    ECA_SOCK = 34
    ECA_CONN = 40
    ECA_ALLOCMEM = 48
    ECA_UKNCHAN = 56
    ECA_UKNFIELD = 64
    ECA_TOLARGE = 72
    ECA_TIMEOUT = 80
    ECA_NOSUPPORT = 88
    ECA_STRTOBIG = 96
    ECA_DISCONNCHID = 106
    ECA_BADTYPE = 114
    ECA_CHIDNOTFND = 123
    ECA_CHIDRETRY = 131
    ECA_INTERNAL = 142
    ECA_DBLCLFAIL = 144
    ECA_GETFAIL = 152
    ECA_PUTFAIL = 160
    ECA_ADDFAIL = 168
    ECA_BADCOUNT = 176
    ECA_BADSTR = 186
    ECA_DISCONN = 192
    ECA_DBLCHNL = 200
    ECA_EVDISALLOW = 210
    ECA_BUILDGET = 216
    ECA_NEEDSFP = 224
    ECA_OVEVFAIL = 232
    ECA_BADMONID = 242
    ECA_NEWADDR = 248
    ECA_NEWCONN = 259
    ECA_NOCACTX = 264
    ECA_DEFUNCT = 278
    ECA_EMPTYSTR = 280
    ECA_NOREPEATER = 288
    ECA_NOCHANMSG = 296
    ECA_DLCKREST = 304
    ECA_SERVBEHIND = 312
    ECA_NOCAST = 320
    ECA_BADMASK = 330
    ECA_IODONE = 339
    ECA_IOINPROGRESS = 347
    ECA_BADSYNCGRP = 354
    ECA_PUTCBINPROG = 362
    ECA_NORDACCESS = 368
    ECA_NOWTACCESS = 376
    ECA_ANACHRONISM = 386
    ECA_NOSEARCHADDR = 392
    ECA_NOCONVERT = 400
    ECA_BADCHID = 410
    ECA_BADFUNCPTR = 418
    ECA_ISATTACHED = 424
    ECA_UNAVAILINSERV = 432
    ECA_CHANDESTROY = 440
    ECA_BADPRIORITY = 450
    ECA_NOTTHREADED = 458
    ECA_16KARRAYCLIENT = 464
    ECA_CONNSEQTMO = 472
    ECA_UNRESPTMO = 480

    @property
    def message_number(self) -> int:
        return self >> 3

    @property
    def is_success(self) -> bool:
        """True for the codes libca counts as success (the low bit set)."""
        return bool(self & 1)


def eca_name(code: int) -> str:
    """The ECA name of ``code``, or ``ECA_UNKNOWN_<code>`` for codes libca does not define."""
    try:
        return ECA(code).name
    except ValueError:
        return f"ECA_UNKNOWN_{code}"


class AlarmStatus(IntEnum):
    """Alarm status of a value (EPICS base's ``menuAlarmStat``)."""

    NO_ALARM = 0
    READ = 1
    WRITE = 2
    HIHI = 3
    HIGH = 4
    LOLO = 5
    LOW = 6
    STATE = 7
    COS = 8
    COMM = 9
    TIMEOUT = 10
    HWLIMIT = 11
    CALC = 12
    SCAN = 13
    LINK = 14
    SOFT = 15
    BAD_SUB = 16
    UDF = 17
    DISABLE = 18
    SIMM = 19
    READ_ACCESS = 20
    WRITE_ACCESS = 21


class AlarmSeverity(IntEnum):
    """Alarm severity of a value (EPICS base's ``menuAlarmSevr``)."""

    NO_ALARM = 0
    MINOR = 1
    MAJOR = 2
    INVALID = 3


def alarm_status_name(code: int) -> str:
    try:
        return AlarmStatus(code).name
    except ValueError:
        return f"UNKNOWN_STATUS_{code}"


def alarm_severity_name(code: int) -> str:
    try:
        return AlarmSeverity(code).name
    except ValueError:
        return f"UNKNOWN_SEVERITY_{code}"

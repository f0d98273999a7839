"""What the CA tools ask the server for, as caget, caput and camonitor ask it, and what
they say when a read fails."""

from __future__ import annotations

import asyncio

from decoder.dbr import DBRType, promote
from decoder.dbr import Family as _Family
from decoder.status import ECA
from shark.catools.format import Format
from shark.catools.session import ca_message
from shark.peers.client import CAError, ClientChannel

__all__ = ["failure_text", "request_count", "request_type"]


def request_type(channel: ClientChannel, fmt: Format, family: _Family = _Family.TIME
                 ) -> DBRType:
    """What caget asks for when no ``-d`` is given: the native type in ``family``,
    enums as strings (``-n``: as numbers), floats as strings with ``-s``."""
    native = channel.native_type
    if native is None:  # (not connected: never asked)
        native = DBRType.DOUBLE
    if native == DBRType.ENUM:
        native = DBRType.SHORT if fmt.enum_as_number else DBRType.STRING
    elif native in (DBRType.FLOAT, DBRType.DOUBLE) and fmt.float_as_string:
        native = DBRType.STRING
    return promote(native, family)


def request_count(channel: ClientChannel, fmt: Format) -> int:
    """The native count, or ``-#`` when that is fewer."""
    native = channel.native_count or 1
    return native if not fmt.count or native < fmt.count else fmt.count


def failure_text(error: BaseException) -> str:
    """caget's words for a read that failed."""
    if isinstance(error, CAError):
        if error.status == ECA.ECA_NORDACCESS:
            return "*** no read access"
        if error.status == ECA.ECA_DISCONN:
            return "*** not connected"
        return f"*** CA error {ca_message(error.status)}"
    if isinstance(error, (asyncio.TimeoutError, TimeoutError)):
        return "*** no data available (timeout)"
    return f"*** error {error}"

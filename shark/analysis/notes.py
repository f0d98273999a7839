"""Messages that are not what they look like, named once for every view.

libca stops its UDP receive thread by sending one VERSION datagram to its own socket:
in a capture it shows as ``VERSION a -> a``, which reads as a client talking to itself
or as a broken search unless it is named. It is harmless, and not a problem.
"""

from __future__ import annotations

__all__ = ["WAKEUP", "note"]

#: What libca's own wake-up datagram is, in words.
WAKEUP = "libca wake-up: a client's datagram to its own socket, ending its receive thread"


def note(command: str | None, transport: str | None, src: str | None, dst: str | None
         ) -> str | None:
    """What a message with these fields is, when its fields alone would mislead (None:
    it is what it looks like)."""
    if command == "VERSION" and transport == "udp" and src is not None and src == dst:
        return WAKEUP
    return None

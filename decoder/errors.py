"""Exceptions raised by the decoder, all under one root: :class:`DecoderError`.

Decoding never raises anything but :class:`DecodeError` on bad bytes; the strict
circuit state raises :class:`ProtocolError` on a well-formed message that breaks
the rules of a circuit (the observer state records those as anomalies instead).
A strict circuit that knows which side is its own says whose fault the breach
is, as h11 does: :class:`LocalProtocolError` when we sent (or were asked to
send) what the protocol forbids, :class:`RemoteProtocolError` when the peer did.
A client or server answers the two differently: the peer's breach ends the
circuit, its own is a bug to report without ending the peer's.
"""


class DecoderError(Exception):
    """The root of every exception the decoder raises."""


class DecodeError(DecoderError, ValueError):
    """Bytes that cannot be a Channel Access message.

    ``offset`` is where in the input the bad message starts, when known.
    ``messages`` holds the good messages decoded from the same input before the
    bad bytes (by :func:`split_datagram` and :meth:`StreamFramer.feed`), so
    that an error never drops them.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.messages: list = []


class ProtocolError(DecoderError):
    """A well-formed message that the state of a circuit does not allow."""


class LocalProtocolError(ProtocolError):
    """A breach by our own side: a message we sent, or were asked to send."""


class RemoteProtocolError(ProtocolError):
    """A breach by the peer: a message it sent."""

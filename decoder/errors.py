"""Exceptions raised by the decoder.

Decoding never raises anything but :class:`DecodeError` on bad bytes; the strict
circuit state raises :class:`ProtocolError` on a well-formed message that breaks
the rules of a circuit (the observer state records those as anomalies instead).
"""


class DecodeError(ValueError):
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


class ProtocolError(Exception):
    """A well-formed message that the state of a circuit does not allow."""

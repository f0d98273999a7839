"""The root of every exception shark raises on purpose: :class:`SharkError`.

Each error keeps its own name where it is defined (a capture error in
``shark.capture``, a client's in ``shark.peers`` ...) and, where it had one, its
built-in base too (a live capture error is an ``OSError``, a value that does not
convert a ``ValueError``), so that ``except SharkError`` catches what shark
refuses and nothing else. The decoder's errors have their own root,
:class:`decoder.DecoderError`: the decoder does not know shark.
"""

__all__ = ["SharkError"]


class SharkError(Exception):
    """Something shark refuses or cannot do: a bad capture, filter, value or peer."""

"""The text form of names and strings from the wire, whatever their bytes.

PV names, user and host names and DBR_STRING values are decoded as UTF-8 with
``surrogateescape`` (:mod:`decoder.dbr`), so that bytes that are not UTF-8 survive as
lone surrogates and encoding gives the very bytes back. Such a string has no UTF-8 form:
a JSON line, a terminal or an Arrow column cannot hold it. :func:`text_form` decides,
once for every output (jsonl, text lines, the tables), what is shown instead: each byte
that is not UTF-8 as ``\\xNN`` (``b"\\xff\\xfeAB"`` gives ``"\\\\xff\\\\xfeAB"``).
"""

from __future__ import annotations

__all__ = ["shown_text", "text_form"]


def text_form(text: str) -> str:
    """``text`` as it can be written out: itself when it is valid Unicode (the usual
    case, decided without a copy for ASCII), else its bytes that were not UTF-8 as
    ``\\xNN`` (and any other lone surrogate as ``\\udNNN``)."""
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a surrogate that no undecodable byte left
            return text.encode("utf-8", "backslashreplace").decode()
        return raw.decode("utf-8", "backslashreplace")
    return text


#: Control characters (C0 and DEL), which a line of text shows escaped.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}


def shown_text(text: str) -> str:
    """A string from the wire as a person reads it in a line: its text form, and its
    control characters (a newline, an escape sequence ...) as ``\\xNN``, so that a
    value can neither break a line nor steer the terminal."""
    text = text_form(text)
    if text.isprintable():  # (as good as always)
        return text
    return text.translate(_CONTROL)

"""The text form of names and strings from the wire: :func:`decoder.text.text_form`,
where it is decided once for the decoder and every view of shark."""

from __future__ import annotations

from decoder.text import text_form

__all__ = ["text_form"]

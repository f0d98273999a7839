"""How a channel's value reads: with the PREC and enum state strings its channel carried.

A value alone does not say how to show it. A DBR_DOUBLE of ``61.225299458304725`` from
a record with PREC 2 is ``61.23`` to an operator, a DBR_ENUM of 1 is ``Running`` when
the channel's state strings are known. Both facts travel only in the GR/CTRL replies
(DBR_GR_/CTRL_FLOAT and DOUBLE carry the precision, DBR_GR_/CTRL_ENUM the strings), so
a channel learns them once (:meth:`decoder.Channel.learn`) and every value of it is
shown with them. This module is the one judge of that: the text lines, the TUI, jsonl's
``display`` and the tables' ``display`` column all show what :func:`shown_value` and
:func:`shown_data` say (the tables compute the same over whole columns, and a test
holds them to it).

The rules, for one element:

* a string: its text form, control characters escaped (:func:`decoder.text.shown_text`);
* an ENUM value whose channel's state strings are known and name it: the string;
* a FLOAT or DOUBLE value whose channel's precision is known (0 to 17): that many
  fixed decimals (``f"{value:.{p}f}"``); PREC is a floating-point field: integer values
  are shown as integers whatever a precision says;
* any other number: Python's ``repr`` (ints as ints, floats in their shortest form).

Arrays show their first :data:`ELEMENTS_SHOWN` elements so, then ``...`` when there
are more, then the count: ``[1.00, 2.00, ...] (10)``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

from .dbr import LAYOUTS, MAX_ENUM_STATES, MAX_ENUM_STRING_SIZE, DBRType, DBRValue
from .text import shown_text

__all__ = [
    "ELEMENTS_SHOWN", "ENUM_TYPES", "MAX_PRECISION", "PRECISION_OFFSET", "PRECISION_TYPES",
    "TEACHING_TYPES", "enum_strings_of", "precision_of", "shown_data", "shown_value",
    "shown_with", "usable_precision",
]

#: Array elements shown before "...".
ELEMENTS_SHOWN = 4
#: The most decimals shown: a double has 17 significant digits; a PREC beyond is a
#: mistake in the record (or a damaged capture), not a wish.
MAX_PRECISION = 17
#: DBR types whose payload carries the channel's display precision, and where: an int16
#: after the status and severity (``dbr_gr_double.precision`` ...).
PRECISION_TYPES = frozenset(int(t) for t in (
    DBRType.GR_FLOAT, DBRType.GR_DOUBLE, DBRType.CTRL_FLOAT, DBRType.CTRL_DOUBLE))
PRECISION_OFFSET = 4
#: DBR types whose payload carries the channel's enum state strings: their number (an
#: int16) after the status and severity, then 16 strings of 26 bytes.
ENUM_TYPES = frozenset((int(DBRType.GR_ENUM), int(DBRType.CTRL_ENUM)))
#: What a channel learns from: either of the above.
TEACHING_TYPES = PRECISION_TYPES | ENUM_TYPES
_STRINGS_AT = PRECISION_OFFSET + 2
_STRINGS_END = _STRINGS_AT + MAX_ENUM_STATES * MAX_ENUM_STRING_SIZE
_INT16 = struct.Struct(">h")
#: Native types whose values a precision applies to.
_FLOATING = frozenset({DBRType.FLOAT, DBRType.DOUBLE})
_ENUM = DBRType.ENUM
#: The native type of each DBR type.
_NATIVE = {lay.dbr_type: DBRType(lay.native_type) for lay in LAYOUTS}


def precision_of(payload: bytes | memoryview) -> int | None:
    """The precision a DBR_GR_/CTRL_FLOAT or DOUBLE payload carries; None when the
    payload is too short to hold it."""
    if len(payload) < PRECISION_OFFSET + 2:
        return None
    return _INT16.unpack_from(payload, PRECISION_OFFSET)[0]


def enum_strings_of(payload: bytes | memoryview) -> tuple[str, ...] | None:
    """The state strings a DBR_GR_/CTRL_ENUM payload carries (as many as its ``no_str``
    says, at most 16, as :func:`decoder.dbr.decode` reads them); None when the payload
    is too short to hold them."""
    if len(payload) < _STRINGS_END:
        return None
    count = max(0, min(_INT16.unpack_from(payload, PRECISION_OFFSET)[0], MAX_ENUM_STATES))
    raw = bytes(payload[_STRINGS_AT : _STRINGS_AT + count * MAX_ENUM_STRING_SIZE])
    return tuple(
        raw[i : i + MAX_ENUM_STRING_SIZE].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        for i in range(0, len(raw), MAX_ENUM_STRING_SIZE))


def usable_precision(precision: int | None) -> int | None:
    """``precision`` when it is one to show values with (0 to :data:`MAX_PRECISION`)."""
    if precision is None or not 0 <= precision <= MAX_PRECISION:
        return None
    return precision


def shown_value(value: Any, native: int, precision: int | None = None,
                enum_strings: Sequence[str] | None = None) -> str:
    """One element of a value of native type ``native`` (a :class:`decoder.dbr.DBRType`
    from STRING to DOUBLE), as the channel's ``precision`` and ``enum_strings`` have it
    read (see the module documentation)."""
    if isinstance(value, str):
        return shown_text(value)
    if native == _ENUM:
        if enum_strings is not None and 0 <= value < len(enum_strings):
            return shown_text(enum_strings[value])
    elif native in _FLOATING and precision is not None and 0 <= precision <= MAX_PRECISION:
        return f"{value:.{precision}f}"
    return repr(value)


def shown_data(data: DBRValue, precision: int | None = None,
               enum_strings: Sequence[str] | None = None) -> str:
    """A decoded payload's value: its one element, or the first elements of an array and
    the count (:func:`shown_value` for each)."""
    values = data.values
    if len(values) == 1:
        value = values[0]
        if type(value) is float:  # one FLOAT or DOUBLE, the commonest: the rule inlined
            if precision is not None and 0 <= precision <= MAX_PRECISION:
                return f"{value:.{precision}f}"
            return repr(value)
        return shown_value(_plain(value), _NATIVE[data.dbr_type], precision, enum_strings)
    native = _NATIVE[data.dbr_type]
    head = [shown_value(_plain(v), native, precision, enum_strings)
            for v in values[:ELEMENTS_SHOWN]]
    more = ", ..." if len(values) > ELEMENTS_SHOWN else ""
    return f"[{', '.join(head)}{more}] ({len(values)})"


class Reading(NamedTuple):
    """What a channel knew of how its values read at one moment (a value is shown
    with what its channel knew when the value arrived, whatever it learns later, so
    that every view of it, written at once or later, in batches of any size, is the
    same): the display precision and the enum state strings, None where unknown."""

    precision: int | None
    enum_strings: tuple[str, ...] | None


def shown_with(data: DBRValue, channel: Any) -> str:
    """:func:`shown_data` with what ``channel`` (a :class:`decoder.Channel`, a
    :class:`Reading`, or None) knows of how its values read; a GR/CTRL value with the
    precision or state strings it carries itself."""
    precision = None if channel is None else channel.precision
    strings = None if channel is None else channel.enum_strings
    # A GR/CTRL value carries its own (the channel learns them from it as it comes).
    if data.dbr_type in PRECISION_TYPES:
        precision = getattr(data, "precision", precision)
    elif data.dbr_type in ENUM_TYPES:
        strings = getattr(data, "enum_strings", None) or strings
    return shown_data(data, precision, strings)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds."""
    return value.item() if hasattr(value, "item") else value


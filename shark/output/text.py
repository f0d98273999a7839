"""Records as one line of text each, for people: the fields that matter, names for numbers."""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Iterable, Iterator

from decoder import Channel, DBRValue, Message, dbr
from decoder.describe import HIDDEN_FIELDS, field_text
from decoder.display import shown_with
from decoder.text import shown_text
from shark.extract.record import CLOSE, OPEN, Record

__all__ = [
    "TIME_BASES", "Clock", "describe", "details", "format_record", "format_value", "shown",
    "subject",
]



#: How the time column of a text line can count (``--time``).
TIME_BASES = ("relative", "absolute", "delta")


#: Seconds a nanosecond count holds (int64: from 1677 to 2262).
_NS_RANGE = 9.2e9


def seconds_ns(seconds: float) -> int | None:
    """Unix seconds to nanoseconds exactly as the tables convert them
    (:func:`shark.tables.schema.seconds_to_ns`: whole seconds exact, the fraction
    rounded half to even); None outside what an int64 of nanoseconds holds."""
    if not -_NS_RANGE < seconds < _NS_RANGE:  # (NaN too)
        return None
    whole = math.floor(seconds)
    return int(whole) * 1_000_000_000 + round((seconds - whole) * 1e9)


def micro(ns: int) -> int:
    """Nanoseconds to microseconds, rounded half away from zero (as every time column
    of the text lines rounds)."""
    return -((-ns + 500) // 1000) if ns < 0 else (ns + 500) // 1000


def _fixed6(microseconds: int) -> str:
    sign = "-" if microseconds < 0 else ""
    whole, fraction = divmod(abs(microseconds), 1_000_000)
    return f"{sign}{whole}.{fraction:06d}".rjust(11)


def local_time(ns: int) -> str:
    """The local date and time of ``ns`` with microseconds (``2026-12-06 18:30:00.123457``)."""
    whole, fraction = divmod(micro(ns), 1_000_000)
    moment = datetime.datetime.fromtimestamp(whole)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{fraction:06d}"


class Clock:
    """The time column of the text lines, on the capture's time base whatever is shown:
    seconds since the capture's first record (``relative``), the local date and time
    (``absolute``), or seconds since the line shown before (``delta``). :meth:`see`
    every record, shown or not, so that ``relative`` counts from the first of all.

    Counted in nanoseconds as the tables hold the times, and rounded to microseconds
    half away from zero, so that the lines made column by column
    (:mod:`shark.output.lines`) are the same to the last digit; a time no nanosecond
    count holds (a damaged capture's) is counted in float seconds."""

    def __init__(self, base: str = "relative") -> None:
        if base not in TIME_BASES:
            raise ValueError(f"time base {base!r}: one of {', '.join(TIME_BASES)}")
        self.base = base
        self.start: float | None = None
        #: The time of the line before (``delta``), and in nanoseconds when it has them.
        self.previous: float | None = None
        self.previous_ns: int | None = None

    def see(self, time: float) -> None:
        if self.start is None:
            self.start = time

    def seeing(self, records: Iterable[Record]) -> Iterator[Record]:
        """``records`` as they are, each seen on the way (to filter after this)."""
        for record in records:
            if self.start is None:
                self.start = record.time
            yield record

    def __call__(self, time: float) -> str:
        if self.start is None:
            self.start = time
        ns = seconds_ns(time)
        if self.base == "relative":
            start_ns = seconds_ns(self.start)
            if ns is None or start_ns is None:
                return f"{time - self.start:11.6f}"
            return _fixed6(micro(ns - start_ns))
        if self.base == "delta":
            previous, previous_ns = self.previous, self.previous_ns
            self.previous, self.previous_ns = time, ns
            if previous is None:
                previous, previous_ns = time, ns
            if ns is None or previous_ns is None:
                return f"{time - previous:11.6f}"
            return _fixed6(micro(ns - previous_ns))
        try:
            if ns is None:
                raise ValueError
            return local_time(ns)
        except (OverflowError, OSError, ValueError):  # a damaged capture's time: as it is
            return f"{time:.6f}"


def format_record(record: Record, start: float = 0.0, clock: Clock | None = None) -> str:
    """``frame time src -> dst transport sender COMMAND fields``; time is counted from
    ``start``, or written by ``clock``."""
    where = record.transport if record.circuit is None else f"{record.transport}#{record.circuit}"
    sender = "?" if record.sender is None else record.sender.name
    message = record.message
    if message is not None:
        what = " ".join(filter(None, (message.command_name, subject(record), details(record))))
    else:
        what = f"{record.command_name} {details(record)}"
    when = f"{record.time - start:11.6f}" if clock is None else clock(record.time)
    return (f"{record.frame:6d} {when} {record.src:>21} -> "
            f"{record.dst:<21} {where:<6} {sender:<8} {what}").rstrip()


def details(record: Record, fields: Callable[[Message], str] | None = None) -> str:
    """What a record says besides its command and PV: a message's ``fields`` and the
    latency of a response; why a circuit opened or closed; how many bytes were lost or
    could not be decoded, and why. The text line and the TUI's log both show this.
    ``fields`` describes a message (default :func:`describe`, its value read as the
    channel knew to when it came: ``record.reading``)."""
    message = record.message
    if message is not None:
        text = describe(message, record.reading) if fields is None else fields(message)
        if record.latency is None:
            return text
        latency = f"[{record.latency * 1e3:.3f} ms]"
        return f"{text} {latency}" if text else latency
    if record.kind is OPEN or record.kind is CLOSE:
        return f"({record.reason})"
    return f"{record.size} bytes: {record.reason}"


def subject(record: Record) -> str:
    """The PV, or what names the channel when the capture does not tell its name (its
    SID, or its subscription id); empty for messages about no channel."""
    if record.pv is not None:
        return shown_text(record.pv)
    channel = record.channel
    if channel is not None and channel.sid is not None:
        return f"<sid={channel.sid}>"
    if record.subscription is not None:
        return f"<subscription {record.subscription.subscriptionid}>"
    return ""


def describe(message: Message, channel: Channel | None = None) -> str:
    """The named fields of a message as ``name=value`` pairs, payload decoded
    (:func:`decoder.describe.field_text`); its value as ``channel`` (the message's) has
    values read (:func:`format_value`)."""
    parts = []
    if "data_type" in type(message).FIELDS:
        parts.append(f"{dbr.dbr_name(message.data_type)}[{message.data_count}]")
    parts.append(field_text(message, HIDDEN_FIELDS, lambda value: format_value(value, channel)))
    return " ".join(filter(None, parts))


def format_value(value: DBRValue, channel: Channel | None = None) -> str:
    """A DBR value in a few words: the value (or the first elements) as its ``channel``
    has them read (:func:`shown`), and the alarm."""
    text = shown_with(value, channel)
    if value.severity:
        text += f" {value.severity_name}/{value.status_name}"
    return text


def shown(value: DBRValue, channel: Channel | None = None) -> str:
    """The value alone, as every view shows it (:mod:`decoder.display` judges): numbers
    with the channel's precision, enums by their state strings when the channel knows
    them, strings in their text form, arrays by their first elements and count. The
    ``display`` column of the tables holds the same."""
    return shown_with(value, channel)

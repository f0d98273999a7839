"""The options several subcommands share, declared once so that they read and fail alike.

Not a subcommand itself (it has no ``NAME``): :func:`shark.cli.main` skips it. The TUI's
``shark tui`` uses it too, which is why it is public.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from shark.analysis.filters import Filter, FilterError, compile_filter
from shark.extract.record import Record
from shark.output.text import TIME_BASES

__all__ = [
    "add_capture_argument",
    "add_filter_option",
    "add_port_option",
    "add_time_option",
    "message_filter",
    "port",
    "record_filter",
    "speed",
    "UsageError",
]


class UsageError(Exception):
    """Arguments that parse but do not make sense: :func:`shark.cli.main` prints it and
    exits with status 2, as argparse does for arguments that do not parse."""


def add_capture_argument(parser: argparse.ArgumentParser) -> None:
    """The positional ``CAPTURE``: a pcap or pcapng file, or ``-`` for stdin."""
    parser.add_argument("capture", metavar="CAPTURE", help="capture file, or - for stdin")


def add_port_option(parser: argparse.ArgumentParser) -> None:
    """``--port P``: CA server ports besides 5064 and those a capture announces."""
    parser.add_argument("--port", "-p", type=port, action="append", default=[], metavar="P",
                        help="also decode CA servers on port P (repeatable); 5064 and "
                             "ports announced in the capture are always decoded")


def add_time_option(parser: argparse.ArgumentParser) -> None:
    """``--time``: how the text lines' time column counts (:class:`shark.output.text.Clock`)."""
    parser.add_argument("--time", choices=TIME_BASES, default="relative",
                        help="time column of text lines: seconds since the capture's first "
                             "message (relative, the default), local date and time "
                             "(absolute), or seconds since the line before (delta)")


def add_filter_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--filter EXPR`` (repeatable; :mod:`shark.analysis.filters`), read by
    :func:`record_filter`."""
    parser.add_argument("--filter", action="append", default=[], metavar="EXPR", help=help)


def record_filter(expressions: Sequence[str]) -> Callable[[Record], bool] | None:
    """The predicate the ``--filter`` expressions give, or None when there are none.

    Raises :class:`UsageError` when an expression does not parse."""
    compiled = message_filter(expressions)
    return None if compiled is None else compiled.predicate()


def message_filter(expressions: Sequence[str]) -> Filter | None:
    """The compiled filter of the ``--filter`` expressions (all must match), or None
    when there are none.

    Raises :class:`UsageError` when an expression does not parse."""
    if not expressions:
        return None
    try:
        return compile_filter(expressions)
    except FilterError as exc:
        raise UsageError(f"--filter: {exc}") from None


def port(text: str, lowest: int = 1) -> int:
    """A port number from 1 (or ``lowest``) to 65535, for argparse's ``type``."""
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not lowest <= number < 65536:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return number


def speed(text: str, zero: bool = False) -> float:
    """A playing speed: a positive factor (or 0 too, with ``zero``), for argparse."""
    try:
        factor = float(text)
    except ValueError:
        factor = -1.0
    if not (factor >= 0 if zero else factor > 0):
        kind = "speed" if zero else "positive speed"
        raise argparse.ArgumentTypeError(f"not a {kind}: {text!r}")
    return factor

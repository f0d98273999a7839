"""The ``shark`` command line.

``shark read CAPTURE`` prints one line per CA message (``-`` reads standard input);
``--summary`` prints message counts per command and direction instead. A damaged or
truncated capture is read as far as it goes, then reported on stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence

from decoder import Command, Role

from . import __version__
from .capture import CaptureError
from .record import Record
from .stream import read_records
from .text import format_record

__all__ = ["main"]

#: Columns of the summary: (heading, transport, sender).
_COLUMNS = (
    ("tcp c->s", "tcp", Role.CLIENT),
    ("tcp s->c", "tcp", Role.SERVER),
    ("tcp ?", "tcp", None),
    ("udp", "udp", "any"),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return _read(args)
    except BrokenPipeError:  # the reader of our output went away (e.g. `| head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shark", description="Packet analysis for EPICS Channel Access captures."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    read = commands.add_parser(
        "read", help="decode the CA messages of a capture",
        description="Decode the CA messages of a pcap or pcapng capture (gzip allowed).",
    )
    read.add_argument("capture", metavar="CAPTURE", help="capture file, or - for stdin")
    read.add_argument("--summary", action="store_true",
                      help="print message counts per command and direction")
    read.add_argument("--port", "-p", type=_port, action="append", default=[], metavar="P",
                      help="also decode CA servers on port P (repeatable); 5064 and "
                           "ports announced in the capture are always decoded")
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return port


def _read(args: argparse.Namespace) -> int:
    records = read_records(args.capture, args.port)
    try:
        if args.summary:
            counts = Counter()
            try:
                _count(records, counts)
            finally:  # a damaged capture still gets the summary of what was read
                sys.stdout.write(_summary(counts))
        else:
            _print(records)
    except BrokenPipeError:
        raise
    except (CaptureError, OSError) as exc:
        sys.stdout.flush()
        print(f"shark: error: {args.capture}: {_reason(exc)}", file=sys.stderr)
        return 1
    return 0


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _print(records: Iterable[Record]) -> None:
    write = sys.stdout.write
    start = None
    for record in records:
        if start is None:
            start = record.time
        write(format_record(record, start))
        write("\n")


def _count(records: Iterable[Record], counts: Counter) -> None:
    """Count records by (row, transport, sender); rows are command names, GAP and
    UNDECODED. UDP senders are not told apart."""
    for record in records:
        sender = "any" if record.transport == "udp" else record.sender
        counts[record.command_name, record.transport, sender] += 1


def _summary(counts: Counter) -> str:
    """The count table: a row per command, then the gap and undecoded rows (not part of
    the message totals), a column per direction (``tcp ?`` only when needed)."""
    columns = [c for c in _COLUMNS if c[2] is not None or (
        any(key[1:] == (c[1], None) for key in counts))]
    names = {key[0] for key in counts}
    markers = [name for name in ("GAP", "UNDECODED") if name in names]
    messages = sorted(names - set(markers), key=_command_order)
    width = max([len(name) for name in names] + [len("messages")])

    def line(label: str, cells: list[int]) -> str:
        return f"{label:<{width}}" + "".join(f"{n:>10}" for n in cells) + f"{sum(cells):>10}"

    header = f"{'command':<{width}}" + "".join(f"{c[0]:>10}" for c in columns) + f"{'total':>10}"
    table = {name: [counts[name, c[1], c[2]] for c in columns] for name in messages + markers}
    totals = [sum(table[name][i] for name in messages) for i in range(len(columns))]
    lines = [header, *(line(name, table[name]) for name in messages), line("messages", totals),
             *(line(name, table[name]) for name in markers)]
    return "\n".join(lines) + "\n"


def _command_order(name: str) -> tuple[int, str]:
    """Command names in command id order, unknown ones last."""
    try:
        return Command[name].value, name
    except KeyError:
        return 1 << 16, name

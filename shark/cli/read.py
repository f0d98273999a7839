"""``shark read``: every CA message of a capture, attributed to its PV.

One readable line per message (``-`` reads standard input), with the PV it concerns
and, for a response, the latency since its request; ``--format jsonl`` prints one
JSON object per message instead (see :mod:`shark.output.jsonl`), ``--filter`` selects
messages (see :mod:`shark.output.filters`), and ``--summary`` prints message counts per
command and direction. A damaged or truncated capture is read as far as it goes,
then reported on stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable

from decoder import Command, Role
from shark.analysis.attribution import read
from shark.capture.files import CaptureError
from shark.cli.options import (
    add_capture_argument,
    add_filter_option,
    add_port_option,
    add_time_option,
    record_filter,
)
from shark.extract.record import Record
from shark.output.jsonl import record_json
from shark.output.text import Clock, format_record

NAME = "read"
HELP = "decode the CA messages of a capture"
DESCRIPTION = "Decode the CA messages of a pcap or pcapng capture (gzip allowed)."

#: Columns of the summary: (heading, transport, sender).
_COLUMNS = (
    ("tcp c->s", "tcp", Role.CLIENT),
    ("tcp s->c", "tcp", Role.SERVER),
    ("tcp ?", "tcp", None),
    ("udp", "udp", "any"),
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_capture_argument(parser)
    parser.add_argument("--format", "-f", choices=("text", "jsonl"), default="text",
                        help="one readable line per message (text, the default) or one "
                             "JSON object per message (jsonl)")
    add_time_option(parser)
    add_filter_option(parser, "only messages matching EXPR: terms like pv=GLOB, "
                              "command=NAME[,NAME], host=IP[:PORT], port=P, circuit=N, "
                              "transport=udp, sender=client (all must match; repeatable)")
    parser.add_argument("--summary", action="store_true",
                        help="print message counts per command and direction")
    add_port_option(parser)


def run(args: argparse.Namespace) -> int:
    wanted = record_filter(args.filter)
    records: Iterable[Record] = read(args.capture, args.port,
                                     lifecycle=not args.summary and args.format == "text")
    clock = Clock(args.time)
    if wanted is not None:
        # Times count from the capture's first record, shown or not, so that filtered
        # and unfiltered output line up.
        records = filter(wanted, clock.seeing(records))
    try:
        if args.summary:
            counts = Counter()
            try:
                _count(records, counts)
            finally:  # a damaged capture still gets the summary of what was read
                sys.stdout.write(_summary(counts))
        elif args.format == "jsonl":
            _print_jsonl(records)
        else:
            _print(records, clock)
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


def _print(records: Iterable[Record], clock: Clock) -> None:
    write = sys.stdout.write
    for record in records:
        write(format_record(record, clock=clock))
        write("\n")


def _print_jsonl(records: Iterable[Record]) -> None:
    write = sys.stdout.write
    for record in records:
        write(record_json(record))
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

"""``shark read``: every CA message of a capture, attributed to its PV.

One readable line per message (``-`` reads standard input), with the PV it concerns
and, for a response, the latency since its request; ``--format jsonl`` prints one
JSON object per message instead (see :mod:`shark.output.jsonl`), ``--format csv`` the
``messages`` table's columns; ``--filter`` selects messages (see
:mod:`shark.analysis.filters`), and ``--summary`` prints message counts per command and
direction, and ``--write FILE`` saves the frames of the messages shown, with those of
their channels' set-ups (:mod:`shark.tables.selection`), as a pcapng slice
(:mod:`shark.capture.slice`) instead of printing them. A damaged or truncated
capture is read as far as it goes, then reported on stderr with exit status 1.

Every format is made from the batches of the ``messages`` table
(:class:`shark.tables.stream.MessageStream`), filtered by one vectorized mask per batch
and written column by column (:mod:`shark.output.lines`): the same rows, attribution
and latencies as the tables, at the speed of the tables.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv

from decoder import Command
from shark.capture.files import CaptureError
from shark.capture.slice import write_slice
from shark.cli.options import (
    UsageError,
    add_capture_argument,
    add_filter_option,
    add_port_option,
    add_time_option,
    message_filter,
)
from shark.output.lines import JsonLines, TextLines
from shark.tables.files import csv_batch
from shark.tables.selection import FrameSelection
from shark.tables.stream import MessageStream, shown_rows

NAME = "read"
#: It makes no pandas object: its process never loads pandas (:func:`shark.cli.console`).
PANDAS = False
HELP = "decode the CA messages of a capture"
DESCRIPTION = "Decode the CA messages of a pcap or pcapng capture (gzip allowed)."

#: Columns of the summary: (heading, transport, sender).
_COLUMNS = (
    ("tcp c->s", "tcp", "client"),
    ("tcp s->c", "tcp", "server"),
    ("tcp ?", "tcp", None),
    ("udp", "udp", "any"),
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_capture_argument(parser)
    parser.add_argument("--format", "-f", choices=("text", "jsonl", "csv"), default="text",
                        help="one readable line per message (text, the default), one JSON "
                             "object per message (jsonl), or the columns of the messages "
                             "table as CSV with a header line (csv)")
    add_time_option(parser)
    add_filter_option(parser, "only messages matching EXPR (see the README's Filters): "
                              "key=value terms such as pv=GLOB, command=NAME, status=failed, "
                              "severity>=MINOR, latency>10ms, combined with spaces (and), "
                              "or, not and parentheses; a bare word is part of a PV name; "
                              "repeatable (all must match)")
    parser.add_argument("--summary", action="store_true",
                        help="print message counts per command and direction")
    parser.add_argument("--write", "-w", metavar="FILE",
                        help="save the frames holding the messages shown (all, or those "
                             "--filter keeps), and those that created their channels and "
                             "subscriptions, to FILE as pcapng, instead of printing them")
    add_port_option(parser)


def run(args: argparse.Namespace) -> int:
    wanted = message_filter(args.filter)
    if args.write is not None and args.capture == "-":
        raise UsageError("--write copies frames from the capture file: it cannot be stdin")
    text = args.format == "text" and not args.summary and args.write is None
    try:  # (before reading: a path that cannot be written fails now, not after)
        target = None if args.write is None else open(args.write, "wb")  # noqa: SIM115
    except OSError as exc:
        print(f"shark: error: {args.write}: {_reason(exc)}", file=sys.stderr)
        return 1
    # Circuit ends are read whatever the format: the filter learns from them which
    # circuits the capture joined mid-stream (``error``); only text shows them.
    stream = MessageStream.of_capture(args.capture, args.port, lifecycle=True)
    select = None if wanted is None or wanted.matches_all else wanted.selector()
    out = sys.stdout.buffer
    sys.stdout.flush()
    write = _writer(args, stream, out)
    counts: Counter = Counter()
    frames = FrameSelection()
    messages = shown = 0
    try:
        try:
            for whole in stream:
                batch, count = shown_rows(whole, select, stream.first_time, ends=text)
                messages += count
                shown += batch.num_rows
                if args.write is not None:
                    frames.add(whole, batch)
                if args.summary:
                    _count(batch, counts)
                elif batch.num_rows and args.write is None:
                    write(batch)
        finally:  # a damaged capture still gets the summary of what was read
            if args.summary:
                out.write(_summary(counts).encode())
            elif not shown and args.format == "csv" and args.write is None:  # header alone
                write(pa.RecordBatch.from_pylist([], schema=stream.schema))
    except BrokenPipeError:
        raise
    except (CaptureError, OSError) as exc:
        out.flush()
        print(f"shark: error: {args.capture}: {_reason(exc)}", file=sys.stderr)
        if target is not None:  # the slice of what could be read, still
            with target:
                _write_slice(args, frames, shown, target)
        return 1
    out.flush()
    if wanted is not None and not shown:
        print(f"shark: 0 of {messages} messages matched", file=sys.stderr)
    if target is not None:
        with target:
            return _write_slice(args, frames, shown, target)
    return 0


def _write_slice(args: argparse.Namespace, frames: FrameSelection, shown: int,
                 target: BinaryIO) -> int:
    """Copy the frames of the messages shown, and of their channels' set-ups, into
    ``args.write``; say how many."""
    try:
        written = write_slice(args.capture, frames.frames(), target)
    except CaptureError:  # damage past the frames read (said already): the slice is whole
        written = None
    except OSError as exc:
        print(f"shark: error: {args.write}: {_reason(exc)}", file=sys.stderr)
        return 1
    frames_written = "the" if written is None else str(written)
    print(f"shark: wrote {frames_written} frames holding {shown} messages to {args.write}",
          file=sys.stderr)
    return 0


def _writer(args: argparse.Namespace, stream: MessageStream, out: BinaryIO
            ) -> Callable[[pa.RecordBatch], None]:
    """What writes a batch's rows in the format asked for."""
    if args.format == "csv":
        header = True  # (once, before the first rows; alone when there are none)

        def write_csv(batch: pa.RecordBatch) -> None:
            nonlocal header
            if not header and not batch.num_rows:
                return
            options = pacsv.WriteOptions(include_header=header)
            header = False
            pacsv.write_csv(csv_batch(batch), out, options)
        return write_csv
    lines = JsonLines() if args.format == "jsonl" else None

    def write(batch: pa.RecordBatch) -> None:
        nonlocal lines
        if lines is None:  # (times count from the first record, known once one is read)
            lines = TextLines(args.time, stream.first_time)
        out.write(lines(batch))
    return write


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _count(batch: pa.RecordBatch, counts: Counter) -> None:
    """Count rows by (command, transport, sender); commands include GAP and UNDECODED.
    UDP senders are not told apart."""
    table = pa.Table.from_batches([batch.select(["command", "transport", "sender"])])
    grouped = table.group_by(["command", "transport", "sender"], use_threads=False).aggregate(
        [([], "count_all")])
    for command, transport, sender, n in zip(*(grouped.column(i).to_pylist()
                                               for i in range(4)), strict=True):
        counts[command, transport, "any" if transport == "udp" else sender] += n


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

"""``shark live``: the messages of ``shark read``, as they cross a network interface.

The same lines (or JSON objects) and the same attribution as ``shark read``, from a
:class:`shark.capture.live.LiveCapture` instead of a file, optionally saved as they arrive to
a pcapng file (``-w``; every captured frame, whatever ``--filter`` shows). Frames are
decoded as the kernel hands them over, a ring block at a time, monitor updates framed
and attributed in bulk (:mod:`shark.extract.bulk`) as ``shark read`` does a file's; output
is flushed once those are decoded, so a pipe sees messages within the ring's block
timeout (50 ms).

Frames the kernel had to drop (its ring was full) are reported where they happened,
as a line in the output (``DROPPED``: in jsonl an object with ``dropped`` and
``total_dropped``, the other keys null), and in a summary on stderr at the end.

It stops on Ctrl-C, SIGTERM, after ``--count`` messages or ``--duration`` seconds,
always gracefully: the capture file is complete and the summary printed.

The kernel filter passes the standard CA ports and the ``--port`` ones only, so a
server on another TCP port (which ``shark read`` learns from search replies) needs
``--port``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from shark.analysis.attribution import Session
from shark.analysis.filters import Filter
from shark.capture.live import LiveCapture, LiveCaptureError, default_interface
from shark.capture.pump import FramePump
from shark.capture.writer import PcapngWriter
from shark.cli.options import (
    add_filter_option,
    add_port_option,
    add_time_option,
    message_filter,
)
from shark.extract.bulk import UpdateBatch
from shark.extract.reader import CaReader
from shark.extract.record import UPDATES, Record
from shark.output.lines import JSON_KEYS, JsonLines, TextLines
from shark.tables.stream import MessageStream, shown_rows

NAME = "live"
#: It makes no pandas object: its process never loads pandas (:func:`shark.cli.console`).
PANDAS = False
HELP = "decode CA traffic live from a network interface"
DESCRIPTION = (
    "Capture and decode CA traffic live (needs root or CAP_NET_RAW). Stop with Ctrl-C. "
    "The kernel passes only the standard CA ports (5064, 5065) and those given with "
    "--port: a server on another TCP port needs --port.")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interface", "-i", metavar="IFACE",
                        help="interface to capture on (default: 'any', all interfaces, when "
                             "permitted, else 'lo')")
    parser.add_argument("--format", "-f", choices=("text", "jsonl"), default="text",
                        help="one readable line per message (text, the default) or one "
                             "JSON object per message (jsonl)")
    parser.add_argument("--write", "-w", metavar="FILE.pcapng",
                        help="also save every captured frame to this pcapng file")
    add_time_option(parser)
    add_filter_option(parser, "only show messages matching EXPR (same syntax as shark read; "
                              "the capture file gets everything)")
    parser.add_argument("--count", "-c", type=int, metavar="N",
                        help="stop after N messages have been shown")
    parser.add_argument("--duration", type=float, metavar="SECONDS",
                        help="stop after this many seconds")
    add_port_option(parser)


def run(args: argparse.Namespace) -> int:
    wanted = message_filter(args.filter)
    interface = args.interface or default_interface()
    try:
        capture = LiveCapture(interface, args.port)
    except LiveCaptureError as exc:  # CapturePermissionError says how to get the privilege
        print(f"shark: error: {exc}", file=sys.stderr)
        return 1
    writer = None
    try:
        if args.write:
            writer = PcapngWriter(args.write)
            writer.add_interface(capture.linktype, interface, capture.snaplen)
    except OSError as exc:
        capture.close()
        print(f"shark: error: {args.write}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"shark: capturing on {interface} ({capture.filter})", file=sys.stderr, flush=True)
    printer = _Printer(sys.stdout, args.format, wanted, args.count, args.time)
    pump = FramePump(capture, writer, on_idle=printer.flush, on_drops=printer.drops)
    printer.on_done = pump.stop
    previous = _stop_on_signals(pump.stop)
    timer = None
    if args.duration is not None:
        timer = threading.Timer(args.duration, pump.stop)
        timer.daemon = True
        timer.start()
    reader = CaReader(args.port, lifecycle=True, bulk=True)
    status = 0
    try:
        printer.print(Session().batches(reader.batches(pump.blocks()),
                                        lifecycle=args.format == "text"))
    except LiveCaptureError as exc:
        sys.stdout.flush()
        print(f"shark: error: {exc}", file=sys.stderr)
        status = 1
    finally:
        if timer is not None:
            timer.cancel()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        capture.close()
        if writer is not None:
            writer.close()
        pump.check_drops(force=True)
        printer.flush()
        received, dropped = capture.stats()
        saved = f"; {writer.frames} frames saved to {args.write}" if writer is not None else ""
        print(f"shark: {received} frames captured, {dropped} dropped by the kernel; "
              f"{printer.shown} messages shown{saved}", file=sys.stderr)
    return status


def _stop_on_signals(stop_capture: Callable[[], None]) -> dict[int, Any]:
    """SIGINT and SIGTERM stop the capture gracefully (a second Ctrl-C interrupts)."""
    previous = {}

    def stop(signum: int, _frame: object) -> None:
        stop_capture()
        signal.signal(signum, previous[signum])

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, stop)
    return previous


class _Printer:
    """Writes records as ``shark read`` does (through the same batches of the
    ``messages`` table, filter and formats), and drop notices where they happened.
    Records (and a bulk reader's update batches) wait in a batch until the capture is
    idle (each time the frames the kernel handed over are all decoded) or the batch is
    full."""

    #: Rows that make a batch without waiting for the capture to be idle.
    BATCH = 4096

    def __init__(self, out: TextIO, fmt: str, wanted: Filter | None,
                 count: int | None, time_base: str = "relative") -> None:
        self.out = out
        self.jsonl = fmt == "jsonl"
        self.wanted = wanted
        self.count = count
        self.shown = 0
        self.time_base = time_base
        self._stream = MessageStream((), lifecycle=True)
        self._select = None if wanted is None or wanted.matches_all else wanted.selector()
        self._lines: TextLines | JsonLines | None = JsonLines() if self.jsonl else None
        self._pending: list[Record | UpdateBatch] = []
        self._rows = 0
        #: Called once ``count`` messages have been shown.
        self.on_done: Callable[[], None] = lambda: None

    def print(self, records: Iterable[Record | UpdateBatch]) -> None:
        pending, batch = self._pending, self.BATCH
        for record in records:
            pending.append(record)
            self._rows += len(record) if record.kind is UPDATES else 1
            if self._rows >= batch:
                self._write()
        self._write()

    def _write(self) -> None:
        """Print the records waiting (the time base is the capture's, filter or not)."""
        if not self._pending:
            return
        stream = self._stream
        batches = stream.take(self._pending)
        self._pending.clear()  # (in place: print() holds it)
        self._rows = 0
        for batch in batches:
            batch, _ = shown_rows(batch, self._select, stream.first_time, ends=not self.jsonl)
            if self.count is not None:  # stopping: the reader is flushing what is left
                batch = batch.slice(0, max(0, self.count - self.shown))
            if not batch.num_rows:
                continue
            if self._lines is None:
                self._lines = TextLines(self.time_base, stream.first_time)
            text = self._lines(batch)
            binary = getattr(self.out, "buffer", None)
            if binary is None:  # (a text stream only: a test's)
                self.out.write(bytes(text).decode())
            else:
                self.out.flush()
                binary.write(text)
            self.shown += batch.num_rows
            if self.count is not None and self.shown >= self.count:
                self.on_done()

    def drops(self, new: int, total: int) -> None:
        if self.jsonl:
            notice = {key: None for key in JSON_KEYS}
            notice.update(time=time.time(), command="DROPPED", dropped=new,
                          total_dropped=total)
            self.out.write(json.dumps(notice, separators=(",", ":")) + "\n")
        else:
            self.out.write(f"------ the kernel dropped {new} frames (capture buffer full; "
                           f"{total} in all) ------\n")
        self.out.flush()

    def flush(self) -> None:
        try:
            self._write()
            self.out.flush()
        except ValueError:  # closed at exit
            pass

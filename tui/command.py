"""``shark tui``: the terminal interface, on a capture file or a live interface.

Registered with shark's command line through the ``shark.commands`` entry point
group, so that the shark package never imports the TUI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shark.analysis.filters import FilterError, compile_filter
from shark.capture.live import default_interface
from shark.cli.options import add_port_option
from shark.cli.options import speed as positive_speed

NAME = "tui"
HELP = "watch CA traffic in a terminal interface (a capture file, or live)"
DESCRIPTION = (
    "Watch CA traffic: a message log with every message's details, and panes for "
    "channels, circuits, searches, servers and errors. Press ? inside for the keys.")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("capture", nargs="?", metavar="CAPTURE",
                        help="a pcap or pcapng file; without it, capture live")
    parser.add_argument("--interface", "-i", metavar="IFACE",
                        help="capture live on IFACE (default: 'any' when permitted, "
                             "else 'lo'; needs root or CAP_NET_RAW)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--pace", action="store_true",
                      help="play the file at the pace it was recorded (default: full speed)")
    pace.add_argument("--speed", type=positive_speed, metavar="X",
                      help="play the file X times faster than it was recorded")
    parser.add_argument("--filter", default="", metavar="EXPR",
                        help="start with this log filter (shark read's --filter language: "
                             "pv=GLOB command=NAME latency>10ms status=failed error, "
                             "or/not/(...); see the README's Filters)")
    parser.add_argument("--write", "-w", metavar="FILE.pcapng",
                        help="live: also save every captured frame to this pcapng file")
    parser.add_argument("--ring", type=int, default=100_000, metavar="N",
                        help="live: messages kept for the log (default 100000; memory "
                             "stays bounded, the panes keep aggregates of everything). A "
                             "capture file's log holds every message")
    parser.add_argument("--export-dir", default=".", metavar="DIR",
                        help="where x (export) writes Parquet files (default: here)")
    add_port_option(parser)


def run(args: argparse.Namespace) -> int:
    from .memory import use_system_pool
    from .model import Model
    from .source import FileSource, LiveSource, Source

    if args.capture and args.interface:
        print("shark: error: give a capture file or --interface, not both", file=sys.stderr)
        return 2
    if args.capture and args.write:
        print("shark: error: --write saves a live capture; the file is already one",
              file=sys.stderr)
        return 2
    if not args.capture and (args.pace or args.speed):
        print("shark: error: --pace and --speed are for capture files", file=sys.stderr)
        return 2
    if args.filter:
        try:
            compile_filter([args.filter])
        except FilterError as exc:
            print(f"shark: error: --filter: {exc}", file=sys.stderr)
            return 2
    if args.ring < 1:
        print("shark: error: --ring must be positive", file=sys.stderr)
        return 2
    use_system_pool()  # (before anything is loaded: see tui.memory)
    model = Model(ring_size=args.ring)
    source: Source
    if args.capture:
        if not Path(args.capture).is_file():
            print(f"shark: error: {args.capture}: no such file", file=sys.stderr)
            return 1
        speed = 1.0 if args.pace else args.speed
        source = FileSource(model, args.capture, args.port, speed)
    else:
        interface = args.interface or default_interface()
        try:
            source = LiveSource(model, interface, args.port, args.write)
        except OSError as exc:  # LiveCaptureError (no privilege, no such interface) too
            print(f"shark: error: {exc}", file=sys.stderr)
            return 1
    from .app import SharkApp  # Textual: imported once the source is open

    app = SharkApp(model, source, args.filter, args.export_dir)
    try:
        app.run()
    finally:
        source.stop()
        source.join(timeout=5)
    stats = source.stats()
    print(f"shark: {model.messages} messages from {stats.frames} frames; "
          f"{stats.dropped} dropped by the kernel", file=sys.stderr)
    if source.error:
        print(f"shark: error: {source.error}", file=sys.stderr)
        return 1
    return 0

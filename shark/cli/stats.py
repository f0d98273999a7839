"""``shark stats``: the analysis report of a capture (see :mod:`shark.tables.report`)."""

from __future__ import annotations

import argparse
import json
import sys

from shark.capture.files import CaptureError
from shark.cli.options import add_capture_argument, add_port_option

NAME = "stats"
HELP = "report on a capture: talkers, searches, latency, subscriptions, beacons, errors"
DESCRIPTION = (
    "Report on a capture: top talkers, messages per command, unanswered searches, "
    "slowest servers and PVs, busiest subscriptions, beacon anomalies and restarts, "
    "errors.")


def configure(parser: argparse.ArgumentParser) -> None:
    add_capture_argument(parser)
    parser.add_argument("--format", "-f", choices=("text", "json"), default="text",
                        help="readable text (the default) or JSON")
    parser.add_argument("--top", type=int, default=10, metavar="N",
                        help="entries per leaderboard (default 10)")
    add_port_option(parser)


def run(args: argparse.Namespace) -> int:
    # pandas and pyarrow load when the command runs, not with every shark command.
    from shark.tables import TableBuilder
    from shark.tables.report import REPORT_TABLES, build_report, format_report

    builder = TableBuilder(REPORT_TABLES)
    status = 0
    try:
        builder.read(args.capture, args.port)
    except (CaptureError, OSError) as exc:  # report what was read, then the error
        print(f"shark: error: {args.capture}: {exc}", file=sys.stderr)
        status = 1
    builder.finish()
    report = build_report(builder, args.top)
    if args.format == "json":
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_report(report))
    return status

"""``shark export``: the tables of a capture as Parquet, CSV or Feather files.

One table goes to the file named; several (all of them by default) to a directory,
one file per table (:mod:`shark.tables.files`). The per-message tables (``messages``,
``updates``) are written a row group at a time while the capture is decoded, so memory
stays bounded however big the capture; the others are written at the end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shark.capture.files import CaptureError
from shark.cli.options import add_capture_argument, add_port_option
from shark.tables import PER_MESSAGE, TABLES

NAME = "export"
#: It makes no pandas object: its process never loads pandas (:func:`shark.cli.console`).
PANDAS = False
HELP = "write the tables of a capture as Parquet, CSV or Feather"
DESCRIPTION = (
    "Write the tables of a capture (" + ", ".join(TABLES) + ") as Parquet, CSV or "
    "Feather files: one table to the file OUT, several to the directory OUT.")

#: Rows per row group of the per-message tables, by default.
ROW_GROUP = 1 << 18
_FORMATS = ("parquet", "csv", "feather")


def configure(parser: argparse.ArgumentParser) -> None:
    add_capture_argument(parser)
    parser.add_argument("--output", "-o", required=True, metavar="OUT",
                        help="file (one table) or directory (several tables)")
    parser.add_argument("--table", "-t", action="append", choices=TABLES, metavar="NAME",
                        help="a table to write (repeatable; default: all of them to a "
                             "directory, the messages table to a file)")
    parser.add_argument("--format", "-f", choices=_FORMATS,
                        help="file format (default: by OUT's extension, else parquet)")
    parser.add_argument("--row-group", type=int, default=ROW_GROUP, metavar="ROWS",
                        help="rows per row group of the per-message tables (default "
                             f"{ROW_GROUP}): what is held in memory while writing")
    add_port_option(parser)


def run(args: argparse.Namespace) -> int:
    # pandas and pyarrow load when the command runs, not with every shark command.
    from shark.tables import TableBuilder
    from shark.tables.files import EXTENSIONS, TableFiles, file_format

    out = Path(args.output)
    named = file_format(out)
    to_file = named is not None and not out.is_dir()
    # One file holds one table: the messages, unless another is named.
    names = tuple(dict.fromkeys(args.table or (("messages",) if to_file else TABLES)))
    if len(names) == 1 and not out.is_dir():
        paths, chosen = {names[0]: out}, args.format or named or "parquet"
    elif to_file:
        print(f"shark: error: {out} names a file: several tables go to a directory",
              file=sys.stderr)
        return 2
    else:
        chosen = args.format or "parquet"
        out.mkdir(parents=True, exist_ok=True)
        paths = {name: out / (name + EXTENSIONS[chosen]) for name in names}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        files = TableFiles(paths, chosen)
    except OSError as exc:
        print(f"shark: error: {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    builder = TableBuilder(names, sink=files.write, row_group_rows=args.row_group)
    status = 0
    try:
        try:
            builder.read(args.capture, args.port)
        except (CaptureError, OSError) as exc:  # write what was read, then say why not more
            print(f"shark: error: {args.capture}: {exc}", file=sys.stderr)
            status = 1
        builder.finish()
        if builder.times_outside:  # not to be read back as 1969 without a word
            print(f"shark: warning: {args.capture}: {builder.times_outside} records have a "
                  "capture time outside 1677..2262: null in the time columns, kept in "
                  "seconds in raw_time", file=sys.stderr)
        for name in names:
            if name not in PER_MESSAGE:
                files.write(name, builder.arrow(name))
    finally:
        files.close()
    return status

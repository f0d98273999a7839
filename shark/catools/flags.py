"""The flags of caget, caput, camonitor and cainfo, declared once, and shark's own.

caget's ``-w`` is its timeout, so the capture file is ``--write FILE.pcapng`` (as in
``shark read`` and ``shark live``); caget's ``-f N`` is a float format, so ``-f`` also
takes ``jsonl`` or ``text`` (any other word is an error) and ``--format`` says the same.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from shark.catools.format import Base, Format, parse_dbr_type

__all__ = ["add_common", "add_value_flags", "output_format", "value_format"]

OUTPUTS = ("text", "jsonl")


def seconds(text: str) -> float:
    """A positive number of seconds, for argparse: caget's ``-w``, casw's, the
    repeater's periods."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return seconds


def _digits(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"not a number of digits: {text!r}")
    return number


def _f_option(text: str) -> tuple[str, Any]:
    """``-f N`` (caget's %f with N digits) or ``-f jsonl`` / ``-f text``."""
    if text in OUTPUTS:
        return ("format", text)
    return ("f", _digits(text))


def _priority(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 99:
        raise argparse.ArgumentTypeError(f"not a CA priority (0-99): {text!r}")
    return number


def separator(text: str) -> str:
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"the separator is one character: {text!r}")
    return text


def _count(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"not an element count: {text!r}")
    return number


def add_common(parser: argparse.ArgumentParser, float_formats: bool = False) -> None:
    """``-w``, ``-p``, ``--wire``, ``--write``, ``--format`` (and ``-f`` for text or
    jsonl, unless ``float_formats`` gives it to :func:`add_value_flags`)."""
    parser.add_argument("-w", dest="timeout", type=seconds, default=1.0, metavar="SEC",
                        help="wait time, the CA timeout (default: 1 second)")
    parser.add_argument("-p", dest="priority", type=_priority, default=0, metavar="PRIO",
                        help="CA priority (0-99, default 0)")
    parser.add_argument("--wire", "-v", action="store_true",
                        help="print every CA message exchanged (search, version, create, "
                             "reads, writes, subscriptions) on stderr, decoded as shark read "
                             "prints it, with latencies")
    parser.add_argument("--write", metavar="FILE.pcapng",
                        help="save the messages exchanged as a pcapng capture that shark read "
                             "and Wireshark open (not -w: that is caget's timeout)")
    parser.add_argument("--format", dest="output", choices=OUTPUTS,
                        help="text as the EPICS tools print it (the default), or one JSON "
                             "object a line (jsonl)")
    if not float_formats:
        parser.add_argument("-f", dest="output", choices=OUTPUTS,
                            help="the same as --format")


def add_value_flags(parser: argparse.ArgumentParser) -> None:
    """How values print: caget's and camonitor's format flags."""
    parser.add_argument("-n", dest="enum_as_number", action="store_true",
                        help="print DBF_ENUM values as numbers (default: the state string)")
    parser.add_argument("-#", dest="count", type=_count, default=0, metavar="COUNT",
                        help="print only the first COUNT elements of an array")
    parser.add_argument("-S", dest="char_as_string", action="store_true",
                        help="print an array of char as a string (long string)")
    parser.add_argument("-e", dest="e_digits", type=_digits, metavar="N",
                        help="print floats with %%e and N digits")
    parser.add_argument("-f", dest="f_option", type=_f_option, metavar="N|jsonl",
                        help="print floats with %%f and N digits; or -f jsonl: one JSON "
                             "object a line (as --format jsonl)")
    parser.add_argument("-g", dest="g_digits", type=_digits, metavar="N",
                        help="print floats with %%g and N digits")
    parser.add_argument("-s", dest="float_as_string", action="store_true",
                        help="get floats as strings (the server's PREC applies)")
    parser.add_argument("-l", dest="float_base", choices=("x", "o", "b"),
                        help="-lx, -lo, -lb: round floats to an integer, print it in hex, "
                             "octal or binary")
    for base, name in ((Base.HEX, "hex"), (Base.OCT, "octal"), (Base.BIN, "binary")):
        parser.add_argument(f"-0{base.value}", dest="int_base", action="store_const",
                            const=base, help=f"print integers as {name} numbers")
    parser.add_argument("-F", dest="ofs", type=separator, default=" ", metavar="OFS",
                        help="output field separator (default: a space)")


def output_format(args: argparse.Namespace) -> str:
    """``text`` or ``jsonl``, from ``--format`` or ``-f``."""
    option = getattr(args, "f_option", None)
    if option is not None and option[0] == "format":
        return option[1]
    return args.output or "text"


def value_format(args: argparse.Namespace) -> Format:
    """The :class:`Format` of the flags of :func:`add_value_flags`."""
    fmt = Format(ofs=args.ofs, enum_as_number=args.enum_as_number,
                 float_as_string=args.float_as_string, count=args.count,
                 char_as_string=args.char_as_string)
    option = getattr(args, "f_option", None)
    for letter, digits in (("e", args.e_digits), ("f", option[1] if option and option[0] == "f"
                                                   else None), ("g", args.g_digits)):
        if digits is not None:
            fmt.float_format = f"%-.{digits}{letter}"
    if args.float_base:
        fmt.float_base = Base(args.float_base)
    if args.int_base is not None:
        fmt.int_base = args.int_base
    return fmt


def request_type_flag(text: str | None, command: str) -> Any:
    """The DBR type of ``-d TEXT``; a bad one is said on stderr as caget says it, and
    ignored (None)."""
    if text is None:
        return None
    found = parse_dbr_type(text)
    if found is None:
        print(f"Requested dbr type out of range or invalid - ignored. ('{command} -h' for "
              f"help.)", file=sys.stderr)
    return found

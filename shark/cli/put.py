"""``shark put``: caput, flag for flag and line for line, and able to show the wire.

The PV is read (``Old :``), written, and read again (``New :``), in caget's line format
(``-l`` wide, ``-t`` only the new value). The value is the rest of the command line
joined with spaces, sent as DBR_STRING so that the server converts it as caput's
does; an enum takes its state string (or, failing that, an index), ``-n`` a number
only, ``-s`` a state string only; ``-a COUNT V1 V2 ...`` writes an array; ``-S`` a
char array from a string. Without ``-c`` the write is WRITE (no reply: a rejection is
said on stderr, status 0, as caput does); with ``-c`` it is WRITE_NOTIFY, and a
rejection is status 1. A PV the client may not write, an enum state that does not exist,
a PV that does not connect: a message and status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from decoder import AccessRights
from decoder import messages as m
from decoder.dbr import DBRType
from shark.catools import flags
from shark.catools.format import Format, plain_line, wide_line
from shark.catools.jsonl import channel_fields, dumps, value_fields
from shark.catools.requests import failure_text, request_count, request_type
from shark.catools.session import ca_message, connect_all, run_tool
from shark.errors import SharkError
from shark.peers.client import CAError, Client, ClientChannel

NAME = "put"
HELP = "write a PV as caput does (and show the wire)"
DESCRIPTION = (
    "Write a value to a PV, printing its old and new value, with caput's flags and output. "
    "Searches go to EPICS_CA_ADDR_LIST, else to 127.0.0.1 only. --wire prints every CA "
    "message exchanged as shark read does; --write FILE.pcapng saves them (-w is caput's "
    "timeout).")


class PutError(SharkError):
    """A value that cannot be written as given: said as caput says it, status 1."""


def configure(parser: argparse.ArgumentParser) -> None:
    flags.add_common(parser)
    parser.add_argument("-c", dest="callback", action="store_true",
                        help="put with callback (WRITE_NOTIFY), waiting for completion")
    parser.add_argument("-t", dest="terse", action="store_true",
                        help="terse: print only the value written, without the name")
    parser.add_argument("-l", dest="wide", action="store_true",
                        help='long: "name timestamp value stat sevr" (reads DBR_TIME_xxx)')
    parser.add_argument("-S", dest="char_as_string", action="store_true",
                        help="put a string as an array of chars (long string)")
    parser.add_argument("-n", dest="enum_as_number", action="store_true",
                        help="enums: take the value as an index only (and print indices)")
    parser.add_argument("-s", dest="as_string", action="store_true",
                        help="enums: take the value as a state string only")
    parser.add_argument("-a", dest="array", action="store_true",
                        help="put an array: the values are COUNT V1 V2 ...")
    parser.add_argument("-F", dest="ofs", type=flags.separator, default=" ", metavar="OFS",
                        help="output field separator (default: a space)")
    parser.add_argument("name", metavar="PV", help="PV name")
    parser.add_argument("values", nargs="*", metavar="VALUE",
                        help="the value (words are joined with spaces); with -a: COUNT "
                             "then the values")


def run(args: argparse.Namespace) -> int:
    fmt = Format(ofs=args.ofs, enum_as_number=args.enum_as_number,
                 char_as_string=args.char_as_string)
    output = flags.output_format(args)
    if not args.values:
        print("shark put: no value given: shark put [options] PV VALUE", file=sys.stderr)
        return 1
    rejected: list[str] = []

    def on_error(message: m.ErrorResponse) -> None:
        if isinstance(message.original_request, (m.WriteRequest, m.WriteNotifyRequest)):
            sys.stdout.flush()
            text = f"Warning: the write to '{args.name}' was rejected: " \
                   f"{ca_message(message.status)}"
            if message.error_message:
                text += f" ({message.error_message})"
            rejected.append(text)
            print(text, file=sys.stderr, flush=True)

    async def body(client: Client) -> int:
        channel = (await connect_all(client, [args.name], args.timeout))[args.name]
        data_type = request_type(channel, fmt)
        count = request_count(channel, fmt)

        async def read() -> Any:
            try:
                return await client.read(args.name, data_type, count, timeout=args.timeout)
            except (CAError, asyncio.TimeoutError) as error:
                return error

        try:
            write_type, payload = await _payload(client, channel, args)
        except PutError as exc:
            sys.stdout.flush()
            print(exc, file=sys.stderr)
            return 1
        old = await read()
        if not args.terse and output == "text":
            sys.stdout.write("Old : " + _line(args, channel, old, fmt) + "\n")
            sys.stdout.flush()
        if not channel.access_rights & AccessRights.WRITE:
            print(f"Error: no write access to '{args.name}' (the server allows reading "
                  "only).", file=sys.stderr)
            return 1
        try:
            await client.write(args.name, payload, notify=args.callback, data_type=write_type,
                               timeout=args.timeout)
        except CAError as error:
            print(f"Error occurred writing data to '{args.name}': {ca_message(error.status)}",
                  file=sys.stderr)
            return 1
        except asyncio.TimeoutError:
            print(f"Write operation timed out: the server did not confirm the write to "
                  f"'{args.name}' within {args.timeout:g} s.", file=sys.stderr)
            return 1
        new = await read()
        if output == "jsonl":
            record = {"pv": args.name, **channel_fields(channel.native_type,
                                                        channel.native_count)}
            for key, value in (("old", old), ("new", new)):
                record[key] = (value_fields(value) if not isinstance(value, BaseException)
                               else {"error": failure_text(value)[4:]})
            if rejected:
                record["rejected"] = rejected[-1]
            sys.stdout.write(dumps(record) + "\n")
        elif args.terse:
            sys.stdout.write(_line(args, channel, new, fmt, terse=True) + "\n")
        else:
            sys.stdout.write("New : " + _line(args, channel, new, fmt) + "\n")
        return 0 if not isinstance(new, BaseException) else 1

    return run_tool(args, "put", body, jsonl=output == "jsonl", on_error=on_error)


def _line(args: argparse.Namespace, channel: ClientChannel, value: Any, fmt: Format,
          terse: bool = False) -> str:
    if isinstance(value, BaseException):
        text = failure_text(value)
        return text if terse else f"{args.name:<30}{fmt.ofs}{text}"
    if args.wide and not terse:
        return wide_line(args.name, value, fmt)
    return plain_line(args.name, value, fmt, terse=terse)


async def _payload(client: Client, channel: ClientChannel, args: argparse.Namespace
                   ) -> tuple[int, Any]:
    """The DBR type and values to write, as caput makes them of the command line."""
    native = channel.native_type
    values: list[str] = list(args.values)
    if args.array:
        try:
            count = int(values[0])
        except ValueError:
            raise PutError(f"Array count '{values[0]}' is not a number.") from None
        items = values[1:1 + count]
        if count < 1 or len(items) < count:
            raise PutError(f"Array of {count} values asked for, {len(items)} given.")
        return DBRType.STRING, items
    text = " ".join(values)
    if args.char_as_string and native == DBRType.CHAR:
        raw = text.encode("utf-8", "surrogateescape")[:max(0, (channel.native_count or 1) - 1)]
        return DBRType.CHAR, [*raw, 0]
    if native != DBRType.ENUM:
        return DBRType.STRING, text
    if args.enum_as_number:
        try:
            return DBRType.ENUM, int(text, 0)
        except ValueError:
            raise PutError(f"Enum index value '{text}' is not a number.") from None
    states = (await client.read(args.name, DBRType.GR_ENUM, 1, timeout=args.timeout)
              ).enum_strings or []
    if text in states:
        return DBRType.ENUM, states.index(text)
    if not args.as_string:
        try:
            index = int(text, 10)
        except ValueError:
            index = -1
        if 0 <= index < max(len(states), 1):
            return DBRType.ENUM, index
    raise PutError(f"Enum string value '{text}' invalid.")

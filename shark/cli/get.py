"""``shark get``: caget, flag for flag and column for column, and able to show the wire.

Each PV is read once (READ_NOTIFY) as caget reads it: in DBR_TIME of its native type
(enums as their state string, or numbers with ``-n``; floats as the server's string
with ``-s``), or in the type ``-d`` names, with the native element count (``-#``: fewer).
Lines, padding, timestamps and exit codes are caget's (:mod:`shark.catools.format`):
a PV that does not connect within ``-w`` seconds is ``Channel connect timed out``,
status 1. ``--wire`` prints every message exchanged as ``shark read`` does, ``--write``
saves them as pcapng, ``-f jsonl`` prints one JSON object per PV.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from decoder.dbr import DBRValue
from shark.catools import flags
from shark.catools.format import Format, block, plain_line, wide_line
from shark.catools.jsonl import channel_fields, dumps, value_fields
from shark.catools.requests import failure_text, request_count, request_type
from shark.catools.session import connect_all, run_tool
from shark.peers.client import Client, ClientChannel

NAME = "get"
HELP = "read PVs as caget does (and show the wire)"
DESCRIPTION = (
    "Read the value of each PV, with caget's flags and output. Searches go to "
    "EPICS_CA_ADDR_LIST, else to 127.0.0.1 only. --wire prints every CA message exchanged "
    "as shark read does; --write FILE.pcapng saves them (-w is caget's timeout).")


def configure(parser: argparse.ArgumentParser) -> None:
    flags.add_common(parser, float_formats=True)
    parser.add_argument("-c", dest="callback", action="store_true",
                        help="asynchronous get (ca_get_callback); reads are always "
                             "READ_NOTIFY, so this changes nothing but is accepted")
    parser.add_argument("-t", dest="terse", action="store_true",
                        help="terse: print only the value, without the name")
    parser.add_argument("-a", dest="wide", action="store_true",
                        help='wide: "name timestamp value stat sevr" (reads DBR_TIME_xxx)')
    parser.add_argument("-d", dest="dbr_type", metavar="TYPE",
                        help="read this DBR type (a number, or a name such as "
                             "DBR_TIME_DOUBLE, DBR_ optional) and print every field")
    flags.add_value_flags(parser)
    parser.add_argument("names", nargs="+", metavar="PV", help="PV names")


async def read_values(client: Client, channels: dict[str, ClientChannel], names: list[str],
                      types: dict[str, int], fmt: Format, timeout: float
                      ) -> dict[str, DBRValue | BaseException]:
    """Every PV read at once: its value, or the error that came instead."""
    async def one(name: str) -> DBRValue:
        return await client.read(name, types[name], request_count(channels[name], fmt),
                                 timeout=timeout)

    results = await asyncio.gather(*(one(name) for name in names), return_exceptions=True)
    return dict(zip(names, results, strict=True))


def run(args: argparse.Namespace) -> int:
    fmt = flags.value_format(args)
    output = flags.output_format(args)
    dbr = flags.request_type_flag(args.dbr_type, "shark get")
    names = list(args.names)

    async def body(client: Client) -> int:
        channels = await connect_all(client, names, args.timeout)
        types = {}
        for name, channel in channels.items():
            if dbr is not None:
                types[name] = dbr
            else:
                types[name] = request_type(channel, fmt)
        results = await read_values(client, channels, names, types, fmt, args.timeout)
        status = 0
        out = []
        for name in names:
            result = results[name]
            channel = channels[name]
            if isinstance(result, BaseException):
                status = 1
                if output == "jsonl":
                    out.append(dumps({"pv": name, "error": failure_text(result)[4:]}))
                elif args.terse:
                    out.append(failure_text(result))
                else:
                    elements = channel.native_count or 1
                    pad = elements <= 1 and fmt.ofs == " "
                    out.append(f"{name:<30}{fmt.ofs}{failure_text(result)}" if pad
                               else f"{name}{fmt.ofs}{failure_text(result)}")
                continue
            out.append(_line(name, channel, result, fmt, args, dbr, output))
        sys.stdout.write("".join(line + "\n" for line in out))
        return status

    return run_tool(args, "get", body, jsonl=output == "jsonl")


def _line(name: str, channel: ClientChannel, value: DBRValue, fmt: Format,
          args: argparse.Namespace, dbr: Any, output: str) -> str:
    if output == "jsonl":
        return dumps({"pv": name, **channel_fields(channel.native_type, channel.native_count),
                      **value_fields(value)})
    if dbr is not None:
        return block(name, int(channel.native_type or 0), value, fmt)
    if args.wide:
        return wide_line(name, value, fmt)
    return plain_line(name, value, fmt, terse=args.terse)

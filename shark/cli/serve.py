"""``shark serve FILE``: an IOC from a declarative TOML file (:mod:`shark.ioc.spec`).

Serves the PVs the file declares until SIGINT or SIGTERM (status 0), with their alarms,
control limits and periodic updates; one line on stdout says where it listens. It binds
where the EPICS server variables say (``EPICS_CAS_INTF_ADDR_LIST``,
``EPICS_CAS_SERVER_PORT``), loopback and 5064 when they say nothing; ``--host`` and
``--port`` win over both. ``--list`` prints the PVs and serves nothing. A file that does
not check out is one error line naming the PV and key, status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from shark.cli import options
from shark.ioc import Ioc, IocSpec, PVSpec, ServeError, SpecError, load, serve

NAME = "serve"
HELP = "serve the PVs a TOML file declares (a soft IOC without code)"
DESCRIPTION = (
    "Serve the PVs FILE declares ([[pv]] tables: type, count, value, units, precision, "
    "display, control and alarm limits, enum states, writable, a periodic scan) as a "
    "Channel Access server, until interrupted. The README's 'Serving PVs' has a complete "
    "example.")
#: Elements of an array --list shows.
_SHOWN = 6


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="IOC file (TOML)")
    parser.add_argument("--list", action="store_true",
                        help="print the PVs the files declare and exit")
    parser.add_argument("--host", metavar="ADDRESS",
                        help="address to listen on (default: the first of "
                             "EPICS_CAS_INTF_ADDR_LIST, else 127.0.0.1)")
    parser.add_argument("--port", type=_bindable_port, metavar="P",
                        help="UDP and TCP port (default: EPICS_CAS_SERVER_PORT, else 5064; "
                             "0 for any free one)")
    parser.add_argument("--no-beacons", action="store_true",
                        help="send no beacons (default: to EPICS_CAS_BEACON_ADDR_LIST, "
                             "else 127.0.0.1)")


def _bindable_port(text: str) -> int:
    return options.port(text, lowest=0)


def run(args: argparse.Namespace) -> int:
    try:
        specs = [load(path) for path in args.files]
        if args.list:
            _list(specs)
            return 0
        ioc = Ioc(*specs, host=args.host, port=args.port, beacons=not args.no_beacons)
    except (SpecError, ServeError) as exc:
        print(f"shark serve: error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(ioc, lambda ioc: print(ioc.describe(), flush=True)))
    except OSError as exc:
        print(f"shark serve: error: cannot serve: {exc}", file=sys.stderr)
        return 2
    return 0


def _list(specs: list[IocSpec]) -> None:
    for spec in specs:
        for pv in spec.pvs:
            shape = pv.type_name if pv.count == 1 else f"{pv.type_name}[{pv.count}]"
            details = [shape, "rw" if pv.writable else "ro", f"= {_shown(pv)}"]
            if pv.units:
                details.append(pv.units)
            if pv.scan is not None:
                details.append(f"({pv.scan.describe()})")
            print(f"{spec.prefix}{pv.name}  {' '.join(details)}")


def _shown(pv: PVSpec) -> str:
    """The initial value as the file would give it: a state by name, text in a char array
    as text, a long array cut short."""
    values = pv.value
    if pv.enum_strings and pv.count == 1:
        return repr(pv.enum_strings[values[0]])
    if pv.count == 1:
        return repr(values[0])
    text = bytes(values).rstrip(b"\0") if pv.type_name == "char" else b""
    if text and all(32 <= c < 127 for c in text):
        return repr(text.decode())
    shown = ", ".join(map(repr, values[:_SHOWN]))
    return f"[{shown}{', ...' if len(values) > _SHOWN else ''}]"

"""``shark monitor``: camonitor, line for line, with ``--stats`` and the wire on top.

Each PV is subscribed to (EVENT_ADD, ``-m`` mask, default value and alarm) in DBR_TIME
of its native type, as camonitor does; every update prints caget's wide line, the time
as ``-t`` says (server, client, relative, incremental). A PV that has not connected
after ``-w`` seconds prints ``*** Not connected (PV not found)`` and is waited for still;
a lost connection prints ``*** disconnected``, and the subscription comes back with the
server. It runs until SIGINT (status 130) or SIGTERM (143), as camonitor is stopped, or
for ``--duration`` seconds (status 0). ``--stats`` then prints, per PV, the update rate,
the gaps between updates (max, p99) and the updates that repeated the value before.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from typing import Any

from decoder import EventMask
from shark.catools import flags
from shark.catools.format import Format, TimeKeys, Times, status_line, unix_time_text, wide_line
from shark.catools.jsonl import dumps, value_fields
from shark.catools.requests import request_count, request_type
from shark.catools.session import run_tool
from shark.catools.stats import UpdateStats
from shark.peers.client import Client, ClientChannel

NAME = "monitor"
HELP = "print PV updates as camonitor does (with --stats, and the wire)"
DESCRIPTION = (
    "Subscribe to each PV and print every update, with camonitor's flags and output, until "
    "interrupted. --stats prints the update rate, gaps and repeats per PV at the end; "
    "--wire prints every CA message exchanged as shark read does; --write FILE.pcapng "
    "saves them (-w is camonitor's timeout).")

_MASKS = {"v": EventMask.VALUE, "a": EventMask.ALARM, "l": EventMask.LOG,
          "p": EventMask.PROPERTY}


def _mask(text: str) -> int:
    if not text or set(text) - set(_MASKS):
        raise argparse.ArgumentTypeError(
            f"invalid event mask {text!r}: letters of v (value), a (alarm), l (log), "
            "p (property)")
    mask = 0
    for letter in text:
        mask |= _MASKS[letter]
    return mask


def _keys(text: str) -> TimeKeys:
    try:
        return TimeKeys.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _duration(text: str) -> float:
    return flags.seconds(text)


def configure(parser: argparse.ArgumentParser) -> None:
    flags.add_common(parser, float_formats=True)
    parser.add_argument("-m", dest="mask", type=_mask, default=_mask("va"), metavar="MASK",
                        help="event mask: letters of v (value), a (alarm), l (log), "
                             "p (property); default va")
    parser.add_argument("-t", dest="time_keys", type=_keys, default=TimeKeys(),
                        metavar="KEYS",
                        help="timestamps: s server, c client (in parentheses), n none; r "
                             "relative to the start, i incremental, I incremental per "
                             "channel (r, i, I need s or c)")
    flags.add_value_flags(parser)
    parser.add_argument("--stats", action="store_true",
                        help="at the end, print per PV the update rate, the gaps between "
                             "updates (max, p99) and the value repeats")
    parser.add_argument("--duration", type=_duration, metavar="SECONDS",
                        help="stop after SECONDS (status 0) instead of at SIGINT/SIGTERM")
    parser.add_argument("names", nargs="+", metavar="PV", help="PV names")


class _Monitor:
    """Prints updates and connection changes as they come; counts them for --stats."""

    def __init__(self, args: argparse.Namespace, fmt: Format, jsonl: bool) -> None:
        self.args = args
        self.fmt = fmt
        self.jsonl = jsonl
        self.times = Times(args.time_keys)
        self.stats = UpdateStats() if args.stats else None
        self.connected_once: set[str] = set()
        self.out = sys.stdout

    def _write(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def update(self, name: str, value: Any) -> None:
        now = time.time()
        if self.stats is not None:
            self.stats.add(name, value, now)
        if self.jsonl:
            self._write(dumps({"pv": name, "client_time": now, **value_fields(value)}))
            return
        keys = self.times.keys
        time_text = (self.times.text(name, value.timestamp, now)
                     if keys.server or keys.client else "")
        self._write(wide_line(name, value, self.fmt, time_text))

    def connection(self, channel: ClientChannel, connected: bool) -> None:
        if connected:
            self.connected_once.add(channel.name)
            return
        if self.jsonl:
            self._write(dumps({"pv": channel.name, "event": "disconnected",
                               "client_time": time.time()}))
            return
        self._write(status_line(channel.name, channel.native_count or 1, self.fmt,
                                f"{unix_time_text(time.time())} *** disconnected"))

    def not_found(self, name: str) -> None:
        if self.jsonl:
            self._write(dumps({"pv": name, "event": "not connected (PV not found)"}))
        else:
            self._write(status_line(name, 1, self.fmt, "*** Not connected (PV not found)"))


def run(args: argparse.Namespace) -> int:
    fmt = flags.value_format(args)
    output = flags.output_format(args)
    monitor = _Monitor(args, fmt, output == "jsonl")
    ended = {"status": 0}

    async def body(client: Client) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, _ender(stop, ended, status))
        if args.duration is not None:
            loop.call_later(args.duration, stop.set)

        def subscribe(name: str, channel: ClientChannel) -> None:
            client.subscribe(name, request_type(channel, fmt), mask=args.mask,
                             count=request_count(channel, fmt),
                             callback=lambda value, name=name: monitor.update(name, value))

        # Each PV is subscribed to as soon as it connects; those that have not after the
        # timeout are said to be missing, and still waited for.
        waits = {name: asyncio.ensure_future(_when_connected(client, name, subscribe))
                 for name in args.names}
        await asyncio.wait(list(waits.values()), timeout=args.timeout)
        for name in args.names:
            if not waits[name].done():
                monitor.not_found(name)
        late = list(waits.values())
        await stop.wait()
        for task in late:
            task.cancel()
        return ended["status"]

    status = run_tool(args, "monitor", body, jsonl=output == "jsonl",
                      on_connection=monitor.connection)
    if monitor.stats is not None:
        if output == "jsonl":
            sys.stdout.write("".join(dumps({"stats": monitor.stats.summary(name)}) + "\n"
                                     for name in args.names))
        else:
            sys.stdout.write(monitor.stats.table(args.names))
        sys.stdout.flush()
    return status


def _ender(stop: asyncio.Event, ended: dict[str, int], status: int) -> Any:
    def end() -> None:
        ended["status"] = status
        stop.set()
    return end


async def _when_connected(client: Client, name: str, subscribe: Any) -> None:
    """Subscribe to a PV that was not found in time, once it connects."""
    channel = client.channel(name)
    with contextlib.suppress(Exception):
        await channel.wait_connected()
        subscribe(name, channel)

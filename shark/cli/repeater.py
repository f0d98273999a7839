"""``shark repeater``: a CA repeater, in place of EPICS base's ``caRepeater``.

Binds UDP ``EPICS_CA_REPEATER_PORT`` (5065 when unset) on every address, or where
``--port`` and ``--host`` say; libca clients of this host register with it and it
forwards them the beacons servers send there (:mod:`shark.peers.repeater`). One line on
stdout says where it listens; registrations and departures are logged on stderr, with a
line of counts every ``--every`` seconds while beacons flow (``-v``: every datagram).
SIGINT or SIGTERM ends it (status 0) with the totals and a line per client still
registered on stdout. A port already taken (another repeater runs) is one error line,
status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from shark.catools.flags import seconds
from shark.cli import options
from shark.peers.repeater import Repeater, RepeaterError, Stats

NAME = "repeater"
HELP = "a CA repeater: forward the beacons servers send to the CA clients of this host"
DESCRIPTION = (
    "Listen on the CA repeater port as caRepeater does: libca clients of this host "
    "register (REPEATER_REGISTER, or an empty datagram), are confirmed, and are sent "
    "every beacon and other datagram that arrives, until interrupted.")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=_bindable_port, metavar="P",
                        help="UDP port (default: EPICS_CA_REPEATER_PORT, else 5065; 0 for "
                             "any free one)")
    parser.add_argument("--host", default="0.0.0.0", metavar="ADDRESS",
                        help="address to listen on (default: all, 0.0.0.0)")
    parser.add_argument("--every", type=seconds, default=60.0, metavar="S",
                        help="log the counts of forwarded beacons every S seconds while "
                             "there are some (default: 60)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every datagram forwarded")


def _bindable_port(text: str) -> int:
    return options.port(text, lowest=0)


def run(args: argparse.Namespace) -> int:
    logger = logging.getLogger("shark.peers.repeater")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        repeater = Repeater(args.host, args.port)
        asyncio.run(_serve(repeater, args.every))
    except RepeaterError as exc:
        print(f"shark repeater: error: {exc}", file=sys.stderr)
        return 2
    finally:
        logger.removeHandler(handler)
    _summary(repeater)
    return 0


async def _serve(repeater: Repeater, every: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows: Ctrl-C still ends it
            loop.add_signal_handler(signum, stop.set)
    async with repeater:
        host, port = repeater.address
        print(f"CA repeater on {host}:{port}", flush=True)
        told = Stats()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), every)
            except asyncio.TimeoutError:
                told = _counts(repeater, told, every)


def _counts(repeater: Repeater, told: Stats, every: float) -> Stats:
    """Log what was forwarded since the last line, if anything; the totals now."""
    now = Stats(**vars(repeater.stats))
    if now.datagrams > told.datagrams:
        logging.getLogger("shark.peers.repeater").info(
            "in the last %g s: %d beacons in %d datagrams, %d copies sent to %d clients",
            every, now.beacons - told.beacons, now.datagrams - told.datagrams,
            now.sent - told.sent, len(repeater.core.clients))
    return now


def _summary(repeater: Repeater) -> None:
    stats = repeater.stats
    print(f"forwarded {stats.beacons} beacons in {stats.datagrams} datagrams "
          f"({stats.sent} sent); {stats.registrations} registrations, {stats.refused} "
          f"refused, {stats.dropped} clients gone, {stats.undecodable} not CA")
    for client in repeater.core.clients:
        print(f"client {client}: {client.beacons} beacons in {client.datagrams} datagrams")

"""``shark casw``: beacon anomalies as they happen, in place of EPICS base's ``casw``.

Registers with the CA repeater of this host (``EPICS_CA_REPEATER_PORT``, 5065 when
unset; ``--repeater`` elsewhere) and prints, as ``casw`` does, a line per beacon
anomaly: a new server, a restart, connectivity restored (:mod:`shark.peers.casw`, judged
as ``shark stats`` and the TUI judge them). ``-i 1`` adds the period estimate and the
current period under each, ``-i 2`` prints every beacon. ``--listen`` binds the beacon
port instead, where no repeater runs. Runs until interrupted (status 0), or for ``-w``
seconds; a port it cannot bind is one error line, status 2.
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
from shark.peers.casw import BeaconWatcher, Sighting, WatchError, lines
from shark.peers.repeater import RepeaterError, port_from_environment

NAME = "casw"
HELP = "watch CA beacons live and print the anomalies (new server, restart, ...)"
DESCRIPTION = (
    "Print beacon anomalies as EPICS base's casw does: a line, marked '*', for each "
    "beacon that shows a server new, restarted or back after beacons were missing, "
    "judged as shark stats judges a capture's. Beacons come through the CA repeater "
    "(start `shark repeater` where none runs), or with --listen straight from the port.")
#: Seconds to wait for the repeater's confirmation before saying none answers.
_PATIENCE = 2.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--interest", type=int, choices=(0, 1, 2), default=0,
                        metavar="LEVEL",
                        help="0: anomalies (default); 1: with the period estimate and "
                             "current period; 2: every beacon, anomalies marked '*'")
    parser.add_argument("-w", "--wait", type=seconds, metavar="S",
                        help="stop after S seconds (default: run until interrupted)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--repeater", type=_address, metavar="[HOST:]PORT",
                       help="the CA repeater to register with (default: 127.0.0.1 and "
                            "EPICS_CA_REPEATER_PORT, else 5065)")
    where.add_argument("--listen", type=_address, metavar="[HOST:]PORT",
                       help="bind this UDP port (host default 0.0.0.0) and hear beacons "
                            "there directly, without a repeater")


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, options.port(port, lowest=0)


def run(args: argparse.Namespace) -> int:
    try:
        if args.listen is not None:
            watcher_options = {"repeater": None, "listen": (args.listen[0] or "0.0.0.0",
                                                            args.listen[1])}
        else:
            host, port = args.repeater or ("", port_from_environment())
            watcher_options = {"repeater": (host or "127.0.0.1", port)}
        asyncio.run(_watch(args, watcher_options))
    except (WatchError, RepeaterError) as exc:
        print(f"shark casw: error: {exc}", file=sys.stderr)
        return 2
    return 0


async def _watch(args: argparse.Namespace, watcher_options: dict) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not on Windows, nor off the main thread: Ctrl-C still ends it there.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)

    def seen(sighting: Sighting) -> None:
        for line in lines(sighting, args.interest):
            print(line)
        sys.stdout.flush()

    logging.getLogger("shark.peers.casw").setLevel(logging.WARNING)
    async with BeaconWatcher(seen, **watcher_options) as watcher:
        if watcher.repeater is not None:
            loop.call_later(_PATIENCE, _unconfirmed, watcher)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), args.wait)


def _unconfirmed(watcher: BeaconWatcher) -> None:
    if watcher.confirmed is None and watcher.repeater is not None:
        host, port = watcher.repeater
        print(f"shark casw: no CA repeater answers on {host}:{port} yet (start `shark "
              "repeater`, or hear beacons directly with --listen); still trying",
              file=sys.stderr, flush=True)

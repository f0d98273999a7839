"""``shark replay``: a capture's server side as a stand-in IOC, or its client side as
a regression check of a live server.

``--as-server`` serves every PV the capture shows, each captured server on a port
of its own, and plays the captured values at the captured pace until interrupted
(SIGINT or SIGTERM end it with status 0); a client's request the capture shows moves
its PV to where the captured one found it. One line per server on stdout says where
it listens; notes about what the capture lacks go to stderr, and with ``-v`` (or
``--log-level info``) each client connecting, with ``-vv`` (``debug``) each request.

``--as-client --to HOST:PORT`` re-issues the captured clients' requests to a live
server and prints, per operation, whether the answer is the captured one (``same``),
differs only in what depends on timing (``timing``: update counts, latency, values of
a PV the capture shows changing on its own), or differs (``DIFFERS``), and what
differs. Exit status: 0 nothing differs but timing (with ``--timing strict``, nothing
at all), 1 something differs, 2 a usage error, an unreadable capture, or a server
that answered nothing: then one error line per cause the server gave (per kind of
misbehaviour, with a count), not per request.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from decoder.protocol import SERVER_PORT
from shark.capture.files import CaptureError
from shark.cli import options
from shark.peers.misbehaviour import Misbehaviours
from shark.replay import Outcome, Recording, load, replay_clients, serve
from shark.replay.compare import Tolerance, Verdict

NAME = "replay"
HELP = "replay a capture as a server (a stand-in IOC) or as a client (a regression check)"
DESCRIPTION = (
    "Replay the server side of a capture (--as-server: serve its PVs with the captured "
    "types, metadata and values, at the captured pace) or its client side (--as-client: "
    "send the captured requests to a live server and report what differs).")


def configure(parser: argparse.ArgumentParser) -> None:
    options.add_capture_argument(parser)
    side = parser.add_mutually_exclusive_group(required=True)
    side.add_argument("--as-server", action="store_true", help="act as the captured servers")
    side.add_argument("--as-client", action="store_true", help="act as the captured clients")
    parser.add_argument("--speed", type=_speed_or_zero, default=1.0, metavar="X",
                        help="play X times as fast as captured (default 1; for --as-client, "
                             "0 sends each request as soon as the previous one is answered)")
    server = parser.add_argument_group("--as-server")
    server.add_argument("--port", type=_bindable_port, action="append", default=[], metavar="P",
                        help="UDP and TCP port of the first captured server (default 5064); "
                             "repeat for the next ones, the rest get free ports")
    server.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                        help="address to listen on (default 127.0.0.1)")
    server.add_argument("--loop", action="store_true",
                        help="start the captured values over when they run out")
    server.add_argument("-v", "--verbose", action="count", default=0,
                        help="log each client connecting (-v) and each request (-vv) "
                             "to stderr")
    server.add_argument("--log-level", choices=LOG_LEVELS, default=None,
                        help="what to log instead of -v: warning (the default), info "
                             "(clients connecting), debug (each request)")
    client = parser.add_argument_group("--as-client")
    client.add_argument("--to", type=_address, action="append", default=[],
                        metavar="HOST[:PORT]", help="where to search for the PVs (port "
                        "default 5064; repeatable)")
    client.add_argument("--dry-run", action="store_true",
                        help="list the requests that would be sent, send nothing")
    client.add_argument("--timeout", type=float, default=2.0, metavar="S",
                        help="seconds to wait for each answer (default 2)")
    client.add_argument("--latency-slack", type=float, default=0.1, metavar="S",
                        help="report a latency only when it exceeds the captured one by "
                             "more than S seconds (default 0.1)")
    client.add_argument("--tolerance", type=_tolerance, action="append", default=[],
                        metavar="X[%]", help="numbers within X (absolute) or X%% "
                        "(relative) of the captured ones are the same; repeat to give both")
    client.add_argument("--timing", choices=("lenient", "strict"), default="lenient",
                        help="lenient (the default): differences that depend on timing are "
                             "reported apart and do not fail the check; strict: they do")


def _bindable_port(text: str) -> int:
    return options.port(text, lowest=0)


def _speed_or_zero(text: str) -> float:
    return options.speed(text, zero=True)


def _tolerance(text: str) -> Tolerance:
    relative = text.endswith("%")
    try:
        number = float(text[:-1] if relative else text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number (or a percentage): {text!r}") from None
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"a tolerance is a finite number >= 0: {text!r}")
    return Tolerance(relative=number / 100) if relative else Tolerance(absolute=number)


def _address(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon:
        return text, SERVER_PORT
    return host, options.port(port, lowest=0)


def run(args: argparse.Namespace) -> int:
    problem = _usage_problem(args)
    if problem:
        print(f"shark replay: error: {problem}", file=sys.stderr)
        return 2
    try:
        recording = load(args.capture)
    except (CaptureError, OSError) as exc:
        print(f"shark replay: error: {args.capture}: {exc}", file=sys.stderr)
        return 2
    for note in recording.notes:
        print(f"shark replay: note: {note}", file=sys.stderr)
    if args.as_server:
        return asyncio.run(_serve(recording, args))
    if args.dry_run:
        _list(recording, args.speed)
        return 0
    return asyncio.run(_check(recording, args))


def _usage_problem(args: argparse.Namespace) -> str:
    if args.as_server and (args.to or args.dry_run or args.tolerance
                           or args.timing != "lenient"):
        return "--to, --dry-run, --tolerance and --timing go with --as-client"
    if args.as_client and (args.verbose or args.log_level):
        return "-v and --log-level go with --as-server"
    if args.as_server and args.speed == 0:
        return "--as-server needs a speed above 0"
    if args.as_client and (args.port or args.loop):
        return "--port and --loop go with --as-server"
    if args.as_client and not args.to and not args.dry_run:
        return "--as-client needs --to HOST:PORT (or --dry-run)"
    return ""


# -- as a server ---------------------------------------------------------------------


LOG_LEVELS = ("warning", "info", "debug")


def _log_to_stderr(args: argparse.Namespace) -> None:
    """The replay server's log (``shark.replay.serve``) on stderr, at the level asked for."""
    level = args.log_level or LOG_LEVELS[min(args.verbose, len(LOG_LEVELS) - 1)]
    logger = logging.getLogger("shark.replay.serve")
    logger.setLevel(level.upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("shark replay: %(asctime)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False


async def _serve(recording: Recording, args: argparse.Namespace) -> int:
    _log_to_stderr(args)
    ports = args.port or [SERVER_PORT]
    servers = serve(recording, ports, host=args.host, speed=args.speed, loop=args.loop)
    if not servers:
        print(f"shark replay: error: {args.capture}: no PV with a captured value to serve",
              file=sys.stderr)
        return 2
    for server in servers:
        for pv in server.recorded.pvs.values():
            if pv.note:
                print(f"shark replay: note: {pv.name} ({server.recorded.address}): {pv.note}",
                      file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    started = []
    try:
        for server in servers:
            await server.start()
            started.append(server)
            engine = server.server
            print(f"serving {len(engine.pvs)} PVs of {server.recorded.address} on "
                  f"{engine.host}:{engine.tcp_port} (searches on UDP port {engine.udp_port})",
                  flush=True)
        await stop.wait()
    except OSError as exc:
        print(f"shark replay: error: cannot serve: {exc}", file=sys.stderr)
        return 2
    finally:
        for server in started:
            await server.stop()
    return 0


# -- as a client ---------------------------------------------------------------------


def _list(recording: Recording, speed: float) -> None:
    """What a replay would send, and when (seconds after it starts)."""
    clients = [client for client in recording.clients if client.operations]
    origin = min((client.operations[0].time for client in clients), default=0.0)
    for client in clients:
        print(f"client {client.address} -> {client.server} (circuit {client.circuit}): "
              f"{len(client.operations)} requests")
        for op in client.operations:
            when = f"{(op.time - origin) / speed:+9.3f} s" if speed else "   asap"
            print(f"  {when}  {op.describe()}")


async def _check(recording: Recording, args: argparse.Namespace) -> int:
    # Told at the end, once per cause: not logged as it happens.
    quiet = logging.getLogger("shark.replay.misbehaviour")
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    misbehaviour = Misbehaviours(quiet)
    tolerance = Tolerance(max((t.absolute for t in args.tolerance), default=0.0),
                          max((t.relative for t in args.tolerance), default=0.0))
    outcomes = await replay_clients(recording, args.to, speed=args.speed,
                                    timeout=args.timeout, latency_slack=args.latency_slack,
                                    tolerance=tolerance, strict=args.timing == "strict",
                                    misbehaviour=misbehaviour)
    if not outcomes:
        print(f"shark replay: error: {args.capture}: no client request to replay",
              file=sys.stderr)
        return 2
    _report(outcomes)
    where = ", ".join(f"{host}:{port}" for host, port in args.to)
    expected = [o for o in outcomes if o.operation.answer is not None]
    if expected and all(o.answer is None for o in expected):
        for cause in misbehaviour.causes() or [f"no answer from {where}"]:
            print(f"shark replay: error: {cause}", file=sys.stderr)
        return 2
    verdicts = [outcome.verdict for outcome in outcomes]
    timing, differing = verdicts.count(Verdict.TIMING), verdicts.count(Verdict.DIFFERENT)
    print(f"{len(outcomes)} requests replayed to {where}: "
          f"{len(outcomes) - timing - differing} same, {timing} timing-dependent, "
          f"{differing} differ")
    pvs = sorted({o.operation.pv for o in outcomes if o.verdict is Verdict.DIFFERENT})
    if pvs:
        print(f"{len(pvs)} PV{'s' if len(pvs) > 1 else ''} differ{'' if len(pvs) > 1 else 's'}: "
              f"{', '.join(pvs)}")
    return 1 if differing else 0


def _report(outcomes: Sequence[Outcome]) -> None:
    client = None
    for outcome in outcomes:
        if outcome.client is not client:
            client = outcome.client
            print(f"client {client.address} -> {client.server} (circuit {client.circuit})")
        op = outcome.operation
        if op.answer is not None or outcome.differs:
            verdict = outcome.verdict.value
        else:  # nothing captured to compare with (a WRITE)
            verdict = "not sent" if outcome.error else "sent"
        print(f"  {op.time:9.3f}  {op.describe()}  {verdict}")
        if outcome.error:
            print(f"             {outcome.error}")
        for difference in outcome.differences:
            print(f"             {difference}")

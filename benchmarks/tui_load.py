"""Can the TUI keep up with 100k CA messages a second, live on loopback?

In a private network namespace (root needed; nothing leaves it), a real IOC
(pythonSoftIOC, EPICS base's rsrv) serves ``--records`` calc records scanning at 10 Hz,
and ``--clients`` client processes each subscribe to every one of them (DBR_DOUBLE):
records x 10 x clients subscription updates a second, each a 24-byte EVENT_ADD
response, all on TCP port 5064 of 127.0.0.1. The clients are minimal (they speak CA
with shark's decoder to set up, then only count the bytes they receive), so that the
IOC and the capture get the CPU.

Two consumers capture and decode ``lo`` meanwhile, one after the other, under the same
load for ``--seconds`` each:

* ``decode``: the TUI's pipeline without the screen: :class:`tui.source.LiveSource`
  (TPACKET_V3 ring, kernel BPF filter, reassembly, decoding, attribution) into a
  :class:`tui.model.Model`;
* ``tui``: the same, with the Textual app running headless (``App.run_test``) and
  redrawing 10 times a second; its event-loop lag and frames per second are measured.

``--capture FILE`` measures the same two consumers on a capture file played at full
speed instead: the pipeline's capacity when the CPU is all its own.

``--load FILE`` times the TUI (headless) loading a capture file whole, as a person
opening it would wait: the first rows on screen, every row reachable (the source done,
the log holding them all, Home on frame 1), the error filter over all of them, peak
RSS, the spill to disk; against ``shark export -t messages`` of the same file.

At the end of each run the IOC is stopped, so that the clients read every byte sent
before counting; the report gives, per consumer, the subscription updates sent (as the
clients received them), those decoded, the kernel's drops, and the rates.

Run on demand: ``.venv/bin/python benchmarks/tui_load.py [--seconds 60] [--records 5000]
[--clients 2] [--consumers decode,tui]``. It asserts nothing. (Fewer clients with more
records each reach 100k/s on two cores: every client costs the IOC a thread, and the
kernel its own TCP work.)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "helpers"))

import peers  # noqa: E402  (tests/helpers/peers.py: the IOC runner and the EPICS environment)

from decoder import Role, StreamFramer  # noqa: E402
from decoder import messages as m  # noqa: E402

PORT = 5064
EVENT_SIZE = 24  # EVENT_ADD response header + one DBR_DOUBLE padded to 8 bytes
DBR_DOUBLE = 6
MASK = 1 | 4  # DBE_VALUE | DBE_ALARM


# -- a client: set up over CA, then count bytes --------------------------------------------


def client(names: list[str], result_path: str) -> None:
    """Subscribe to every name, then count what arrives until the server closes."""
    sock = socket.create_connection(("127.0.0.1", PORT))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    setup = [m.VersionRequest(priority=0, version=13), m.ClientNameRequest(name="bench"),
             m.HostNameRequest(name="localhost")]
    setup += [m.CreateChanRequest(name=name, cid=cid, version=13)
              for cid, name in enumerate(names)]
    sock.sendall(b"".join(message.to_bytes() for message in setup))
    framer = StreamFramer(Role.SERVER)
    sids: dict[int, int] = {}
    while len(sids) < len(names):
        data = sock.recv(1 << 16)
        if not data:
            raise SystemExit("server closed during setup")
        for message in framer.feed(data):
            if type(message) is m.CreateChanResponse:
                sids[message.cid] = message.sid
    assert framer.pending == 0
    sock.sendall(b"".join(
        m.EventAddRequest(data_type=DBR_DOUBLE, data_count=1, sid=sids[cid],
                          subscriptionid=cid, mask=MASK).to_bytes() for cid in range(len(names))))
    Path(result_path + ".ready").touch()
    received = 0
    buffer = bytearray(1 << 20)
    while True:
        count = sock.recv_into(buffer)
        if not count:
            break
        received += count
    Path(result_path).write_text(json.dumps({"bytes": received,
                                             "events": received / EVENT_SIZE}))


# -- consumers -------------------------------------------------------------------------------


class Consumer:
    """One of the two ways of decoding the load."""

    def __init__(self, kind: str) -> None:
        from tui.model import Model
        from tui.source import LiveSource

        self.kind = kind
        self.model = Model()
        self.source = LiveSource(self.model, "lo")
        self.ui: dict[str, Any] = {}
        #: The thread the screen runs in (tui only), for its CPU time.
        self.ui_thread: int | None = None

    def updates(self) -> int:
        """Subscription updates decoded so far."""
        return sum(row.updates for row in list(self.model.channels.values()))


def run_load(kind: str, records: list[str], clients: int, seconds: float,
             work: Path) -> dict[str, Any]:
    """Start the IOC and the consumer, then the clients; measure; stop everything."""
    env = dict(os.environ, **peers.epics_env(PORT, PORT + 1))
    config = work / f"ioc-{kind}.json"
    config.write_text(json.dumps({
        "records": [{"name": name, "type": "calc",
                     "fields": {"SCAN": ".1 second", "CALC": "VAL+1"}} for name in records],
        "log_path": str(work / f"ioc-{kind}-log.json"),
    }))
    ioc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "helpers" / "peers.py"), "ioc",
                            str(config)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in ioc.stdout:  # type: ignore[union-attr]
            if peers.IOC_READY in line:
                break
        else:
            raise SystemExit("the IOC did not start")
        consumer = Consumer(kind)
        if kind == "tui":
            return asyncio.run(_with_tui(consumer, ioc, records, clients, seconds, work))
        consumer.source.start()
        return _measure(consumer, ioc, records, clients, seconds, work)
    finally:
        if ioc.poll() is None:
            ioc.kill()
        ioc.wait()


def _measure(consumer: Consumer, ioc: subprocess.Popen, records: list[str], clients: int,
             seconds: float, work: Path) -> dict[str, Any]:
    results = [str(work / f"client-{consumer.kind}-{n}.json") for n in range(clients)]
    procs = [subprocess.Popen([sys.executable, __file__, "--client", path, *records])
             for path in results]
    deadline = time.monotonic() + 120
    while not all(Path(p + ".ready").exists() for p in results):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise SystemExit("clients did not subscribe")
        time.sleep(0.05)
    source = consumer.source
    start, updates0 = time.monotonic(), consumer.updates()
    cpu0 = _thread_cpu(source.ident), _thread_cpu(consumer.ui_thread)
    samples = []
    while (elapsed := time.monotonic() - start) < seconds:
        time.sleep(min(5.0, seconds - elapsed))
        samples.append((round(time.monotonic() - start, 1), consumer.updates() - updates0,
                        source.stats().dropped))
        print(f"  {consumer.kind:>6} {samples[-1][0]:6.1f} s: {samples[-1][1]:>10,} updates "
              f"decoded, {samples[-1][2]:,} frames dropped", flush=True)
    cpu = [round((_thread_cpu(ident) - before) / seconds * 100)
           for ident, before in zip((source.ident, consumer.ui_thread), cpu0, strict=True)]
    ioc.send_signal(signal.SIGTERM)  # the clients read to the end, then count
    for proc in procs:
        proc.wait(60)
    sent = sum(json.loads(Path(p).read_text())["events"] for p in results)
    # let the decoder finish what the kernel handed over: until it has everything, or
    # nothing new came for two seconds
    settle, last, still = time.monotonic() + 60, -1, 0.0
    while time.monotonic() < settle and consumer.updates() < sent and still < 2.0:
        now = consumer.updates()
        still = still + 0.25 if now == last else 0.0
        last = now
        time.sleep(0.25)
    source.stop()
    source.join(10)
    stats = source.stats()
    decoded = consumer.updates()
    gaps = collections.Counter(e.record.reason.rsplit("(", 1)[-1].rstrip(")")
                               for e in consumer.model.errors if e.record.kind == "gap")
    return {"consumer": consumer.kind, "seconds": seconds, "records": len(records),
            "gaps": dict(gaps), "gap_bytes": consumer.model.gap_bytes,
            "clients": clients, "sent": int(sent), "decoded": decoded,
            "decoded_pct": round(100 * decoded / sent, 2) if sent else None,
            "frames": stats.frames, "dropped_frames": stats.dropped,
            "sent_per_s": round(sent / seconds), "decoded_per_s": round(decoded / seconds),
            "decoder_cpu_pct": cpu[0], "ui_cpu_pct": cpu[1] if consumer.ui_thread else None,
            "samples": samples, "ui": consumer.ui}


def _thread_cpu(ident: int | None) -> float:
    """CPU seconds a thread of this process has used (0 for None)."""
    if ident is None:
        return 0.0
    return time.clock_gettime(time.pthread_getcpuclockid(ident))


async def _with_tui(consumer: Consumer, ioc: subprocess.Popen, records: list[str],
                    clients: int, seconds: float, work: Path) -> dict[str, Any]:
    """The same measurement with the app running (headless) on the consumer's source."""
    from textual.screen import Screen

    from tui.app import SharkApp

    frames = [0]
    refresh = Screen._compositor_refresh

    def counted(screen: Screen) -> None:
        frames[0] += 1
        refresh(screen)

    Screen._compositor_refresh = counted  # type: ignore[method-assign]
    app = SharkApp(consumer.model, consumer.source)
    consumer.ui_thread = threading.get_ident()
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause(0.5)
        lags: list[float] = []
        stop = asyncio.Event()

        async def probe() -> None:
            while not stop.is_set():
                before = time.perf_counter()
                await asyncio.sleep(0.05)
                lags.append(time.perf_counter() - before - 0.05)

        task = asyncio.create_task(probe())
        frames0, started = frames[0], time.monotonic()
        result = await asyncio.to_thread(_measure, consumer, ioc, records, clients, seconds,
                                         work)
        stop.set()
        await task
        lags.sort()
        result["ui"] = {
            "frames_per_s": round((frames[0] - frames0) / (time.monotonic() - started), 1),
            "loop_lag_ms_p50": round(lags[len(lags) // 2] * 1e3, 1),
            "loop_lag_ms_p95": round(lags[int(len(lags) * 0.95)] * 1e3, 1),
            "loop_lag_ms_max": round(lags[-1] * 1e3, 1),
            "log_rows": len(app.log_table.rows),
        }
        await pilot.press("q")
    return result


# -- a capture file at full speed --------------------------------------------------------------


def replay(path: Path, kinds: list[str], seconds: float) -> int:
    """The same two consumers on a capture file played at full speed (at most
    ``seconds`` each): how many messages a second the pipeline decodes when the CPU is
    all its own, with no IOC and no kernel capture beside it."""
    from tui.model import Model
    from tui.source import FileSource

    print(f"replay of {path} at full speed, at most {seconds:g} s per consumer")
    print(f"{'consumer':>8} {'messages':>12} {'seconds':>8} {'msg/s':>10}  ui")
    for kind in kinds:
        model = Model()
        source = FileSource(model, path)
        started = time.monotonic()
        ui: dict[str, Any] = {}
        if kind == "tui":
            ui = asyncio.run(_replay_tui(model, source, seconds))
        else:
            source.start()
            source.join(seconds)
            source.stop()
            source.join()
        elapsed = time.monotonic() - started
        ui_text = f"loop lag p50 {ui['lag_p50']} ms p95 {ui['lag_p95']} ms" if ui else ""
        print(f"{kind:>8} {model.messages:>12,} {elapsed:>8.1f} "
              f"{model.messages / elapsed:>10,.0f}  {ui_text}", flush=True)
    return 0


async def _replay_tui(model: Any, source: Any, seconds: float) -> dict[str, Any]:
    from tui.app import SharkApp

    app = SharkApp(model, source)
    lags: list[float] = []
    async with app.run_test(size=(200, 50)) as pilot:
        deadline = time.monotonic() + seconds
        while not source.finished and time.monotonic() < deadline:
            before = time.perf_counter()
            await asyncio.sleep(0.05)
            lags.append(time.perf_counter() - before - 0.05)
        source.stop()
        await pilot.press("q")
    lags.sort()
    return {"lag_p50": round(lags[len(lags) // 2] * 1e3, 1),
            "lag_p95": round(lags[int(len(lags) * 0.95)] * 1e3, 1)}


# -- a capture file loaded whole -------------------------------------------------------------


def load(path: Path, budget: int | None) -> int:
    """The TUI (headless, 200x50) on a capture file at full speed: seconds until the
    first rows are on screen, until every row is reachable (the source finished and the
    log holds them all), peak RSS; against ``shark export -t messages`` of the same
    file (which decodes the same table to Parquet)."""
    from shark.tables.store import DEFAULT_BUDGET
    from tui.app import SharkApp
    from tui.memory import use_system_pool
    from tui.model import Model
    from tui.source import FileSource

    with tempfile.TemporaryDirectory() as work:
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "shark", "export", str(path), "-t", "messages",
                        "-o", str(Path(work) / "x.parquet")], check=True)
        export = time.monotonic() - started

    async def run() -> dict[str, Any]:
        use_system_pool()  # (as shark tui does)
        model = Model(budget=DEFAULT_BUDGET if budget is None else budget)
        source = FileSource(model, path)
        app = SharkApp(model, source)
        out: dict[str, Any] = {}
        started = time.monotonic()
        async with app.run_test(size=(200, 50)) as pilot:
            ui_cpu = time.thread_time()
            while not source.finished:
                if "first_screen_s" not in out and len(app.log_table.rows):
                    out["first_screen_s"] = round(time.monotonic() - started, 2)
                if source.ident is not None:
                    decoder_cpu = _thread_cpu(source.ident)
                await pilot.pause(0.05)
            out["ui_cpu_s"] = round(time.thread_time() - ui_cpu, 2)
            out["decoder_cpu_s"] = round(decoder_cpu, 2)
            app.refresh_view()
            await pilot.pause()
            out["loaded_s"] = round(time.monotonic() - started, 2)
            out["rows"] = len(app.log_table.rows)
            out["peak_rss_loaded_MB"] = _peak_rss()
            await pilot.press("home")
            await pilot.pause()
            out["first_row_frame"] = app.log_table.cursor_row.frame
            out["home_s"] = round(time.monotonic() - started - out["loaded_s"], 2)
            before = time.monotonic()
            app._apply_filter("error")
            while app.filtering:  # (on a thread, the screen going on)
                await pilot.pause(0.02)
            out["filter_error_s"] = round(time.monotonic() - before, 2)
            out["filter_error_rows"] = len(app.model.log_rows())
            store = model.store
            out["spilled_MB"] = round(store.spilled_bytes / 1e6)
            out["held_MB"] = round(store.held_bytes / 1e6)
            await pilot.press("q")
        return out

    result = asyncio.run(run())
    result["export_s"] = round(export, 2)
    result["peak_rss_MB"] = _peak_rss()
    result["messages"] = result.pop("rows")
    print(json.dumps(result, indent=1))
    return 0


def _peak_rss() -> int:
    """This process's peak resident memory so far, in MB."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3)


# -- entry points ----------------------------------------------------------------------------


def inside(args: argparse.Namespace) -> int:
    """The benchmark proper, inside the namespace."""
    records = [f"LOAD:{n:05d}" for n in range(args.records)]
    target = args.records * 10 * args.clients
    print(f"load: {args.records} records at 10 Hz x {args.clients} subscribers = "
          f"{target:,} updates/s expected, {args.seconds:g} s per consumer", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as work:
        for kind in args.consumers.split(","):
            results.append(run_load(kind, records, args.clients, args.seconds, Path(work)))
            time.sleep(1)
    print()
    print(f"{'consumer':>8} {'sent':>12} {'decoded':>12} {'%':>7} {'sent/s':>9} "
          f"{'decoded/s':>10} {'frames':>10} {'dropped':>9}  ui")
    for r in results:
        ui = r["ui"]
        ui_text = f"decoder thread {r['decoder_cpu_pct']}% CPU"
        if ui:
            ui_text += (f", screen thread {r['ui_cpu_pct']}%; {ui['frames_per_s']} frames/s, "
                        f"loop lag p50 {ui['loop_lag_ms_p50']} ms p95 "
                        f"{ui['loop_lag_ms_p95']} ms max {ui['loop_lag_ms_max']} ms")
        print(f"{r['consumer']:>8} {r['sent']:>12,} {r['decoded']:>12,} {r['decoded_pct']:>7} "
              f"{r['sent_per_s']:>9,} {r['decoded_per_s']:>10,} {r['frames']:>10,} "
              f"{r['dropped_frames']:>9,}  {ui_text}")
        if r["gaps"]:
            print(f"{'':>8} gaps in the TCP streams (kernel drops): {r['gaps']}, "
                  f"{r['gap_bytes']:,} bytes")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="measurement time per consumer (default 60)")
    parser.add_argument("--records", type=int, default=5000,
                        help="calc records scanning at 10 Hz (default 5000)")
    parser.add_argument("--clients", type=int, default=2,
                        help="client processes subscribing to every record (default 2)")
    parser.add_argument("--consumers", default="decode,tui",
                        help="which to measure, in order: decode, tui (default both)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--capture", type=Path, metavar="FILE",
                        help="instead of live load: play this capture at full speed "
                             "(e.g. benchmarks/data/big_monitors.pcap from "
                             "make_big_capture.py)")
    parser.add_argument("--load", type=Path, metavar="FILE",
                        help="instead: time the TUI loading this capture whole (first "
                             "screen, every row reachable, peak RSS) against shark export")
    parser.add_argument("--budget", type=int, metavar="BYTES",
                        help="with --load: the store's memory budget (default the TUI's)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args.client[1:], args.client[0])
        return 0
    if args.inside:
        return inside(args)
    if args.load:
        return load(args.load, args.budget)
    if args.capture:
        return replay(args.capture, args.consumers.split(","), args.seconds)
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        print("needs root, unshare and ip: it runs in a private network namespace",
              file=sys.stderr)
        return 1
    script = 'ip link set lo up && exec "$0" "$@"'
    return subprocess.run(["unshare", "--net", "--pid", "--fork", "--kill-child",
                           "--mount-proc", "sh", "-c", script, sys.executable, __file__,
                           "--inside", *sys.argv[1:]]).returncode


if __name__ == "__main__":
    sys.exit(main())

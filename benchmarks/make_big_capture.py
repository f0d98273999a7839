"""Make a large capture of real Channel Access monitor traffic, for benchmarks/read_rate.py.

A pythonSoftIOC serves thousands of fast-scanning records (plain ``calc`` DB records
computing ``RNDM`` at 10 Hz: EPICS scan threads process them, no Python is involved),
and several monitoring clients, each its own process with its own libca context and so
its own TCP circuit, subscribe to every record for a while: one with DBR_TIME_DOUBLE,
one with DBR_CTRL_DOUBLE, one with plain DBR_DOUBLE, and so on in turn. tcpdump
captures ``lo`` (started by the client, with a kernel ring large enough for these rates).
Everything runs through ``tests/helpers/peers.py`` (``run_scenario``) in a private network
namespace (so as root), every EPICS address pinned to 127.0.0.1: no packet leaves
loopback.

The clients count updates in a ctypes callback on libca's own event (no conversion of
the value to Python), so that they keep up with the server; where they do not, the
server's event queues coalesce updates and TCP flow control slows it down, as at a real
site. Each client's counts go in the manifest next to the capture.

The capture is made on demand, never by the tests: ``benchmarks/data/`` is gitignored.

Usage (as root, with softioc, pyepics and tcpdump installed)::

    python benchmarks/make_big_capture.py                     # ~160 MB, under a minute
    python benchmarks/make_big_capture.py --records 2000 --clients 4 --seconds 45

With ``churn_batch`` set (``benchmarks/make_storm_capture.py`` does), one more client
keeps creating and clearing channels throughout: every ``churn_period`` seconds it
connects to the next batch of records in turn, reads each once and clears them all.

Internally the same file is the client (``client PARAMS``), its workers (``worker PARAMS
INDEX``) and the churning client (``churn PARAMS``), run inside the namespace.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "helpers"))

import peers  # noqa: E402  (tests/helpers/peers.py: the real-peer machinery)

DATA = HERE / "data"
DEFAULT_OUTPUT = DATA / "big_monitors.pcap"
PREFIX = "BENCH:MON:"
#: DBR types the clients subscribe with, in turn: DBR_TIME_DOUBLE, DBR_CTRL_DOUBLE,
#: DBR_DOUBLE, DBR_STS_DOUBLE.
CLIENT_TYPES = (20, 34, 6, 13)
DBE_VALUE_ALARM = 5
#: tcpdump's kernel ring (-B, KiB), and its snaplen: a loopback frame is at most 65550
#: bytes (MTU 65536), and in immediate mode every slot of the ring is snaplen-sized, so
#: the default (256 KiB) would leave a quarter of the slots.
RING_KIB = 256 * 1024
SNAPLEN = 65600
#: How long the churning client waits for a batch of channels to connect.
CHURN_CONNECT_S = 5.0


def records(count: int, period: str) -> list[dict[str, Any]]:
    """``count`` calc records whose value changes at every scan (so each scan posts an
    update), with display and alarm fields so that the CTRL types carry them."""
    return [
        {"name": f"{PREFIX}R{i:05d}", "type": "calc",
         "fields": {"SCAN": period, "CALC": "RNDM*100", "PREC": 3, "EGU": "mm",
                    "HOPR": 100, "LOPR": 0, "HIGH": 90, "HSV": "MINOR"}}
        for i in range(count)
    ]


# ------------------------------------------------------------------ inside the namespace


def client_main() -> int:
    """Capture ``lo``, start one worker process per client, wait for them, save what
    they counted and what tcpdump said.

    tcpdump is run here rather than by the scenario runner: at these rates it needs a
    kernel ring far larger than the default, or the kernel drops most packets."""
    params = peers.load_client_params()
    params_path = sys.argv[-1]
    work = Path(params["result_path"]).parent
    log = work / "tcpdump.log"
    with open(log, "w") as stderr:
        # Raised priority: on a small machine the IOC and the clients would otherwise
        # starve it, and the kernel drops what its ring cannot hold.
        tcpdump = subprocess.Popen(
            ["nice", "-n", "-15", "tcpdump", "-Z", "root", "-i", "lo", "-n", "-s", str(SNAPLEN),
             "--immediate-mode", "-B", str(params["ring_kib"]), "-w", params["pcap"],
             "tcp or udp"],
            stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 10
    while "listening on" not in log.read_text():
        if time.monotonic() > deadline or tcpdump.poll() is not None:
            tcpdump.kill()
            sys.exit(f"tcpdump did not start: {log.read_text()}")
        time.sleep(0.05)
    workers = [
        subprocess.Popen([sys.executable, __file__, "worker", params_path, str(index)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for index in range(params["clients"])
    ]
    churn = None
    if params.get("churn_batch"):
        churn = subprocess.Popen([sys.executable, __file__, "churn", params_path],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    results, errors = [], []
    for index, worker in enumerate(workers):
        _, err = worker.communicate(timeout=params["seconds"] + 120)
        path = work / f"worker_{index}.json"
        if worker.returncode or not path.exists():
            errors.append(f"worker {index} exit {worker.returncode}: {err[-1000:]}")
        else:
            results.append(json.loads(path.read_text()))
    churned = None
    if churn is not None:
        _, err = churn.communicate(timeout=params["seconds"] + 120)
        path = work / "churn.json"
        if churn.returncode or not path.exists():
            errors.append(f"churn exit {churn.returncode}: {err[-1000:]}")
        else:
            churned = json.loads(path.read_text())
    time.sleep(0.5)
    tcpdump.send_signal(signal.SIGINT)  # it flushes the file and reports its counts
    tcpdump.wait(timeout=30)
    report = [line for line in log.read_text().splitlines() if line.strip()]
    peers.save_client_result(params, {"workers": results, "churn": churned, "errors": errors,
                                      "tcpdump_report": report})
    return 1 if errors else 0


def worker_main(params_path: str, index: int) -> int:
    """Subscribe to every record with this worker's DBR type for the given time."""
    from epics import ca, dbr

    params = json.loads(Path(params_path).read_text())
    dbr_type = CLIENT_TYPES[index % len(CLIENT_TYPES)]
    libca = ca.initialize_libca()
    t0 = time.time()
    names = params["names"]
    chids = [ca.create_channel(name, connect=False) for name in names]
    connected = sum(bool(ca.connect_channel(chid, timeout=30)) for chid in chids)
    t_connected = time.time()

    counts = [[0] for _ in names]

    def on_event(args: Any) -> None:
        args.usr[0] += 1

    callback = ctypes.CFUNCTYPE(None, dbr.event_handler_args)(on_event)
    keep = []
    for chid, count in zip(chids, counts, strict=True):
        user, evid = ctypes.py_object(count), ctypes.c_void_p()
        libca.ca_create_subscription(dbr_type, 0, chid, DBE_VALUE_ALARM, callback, user,
                                     ctypes.byref(evid))
        keep.append((user, evid))
    ca.flush_io()
    time.sleep(params["seconds"])
    for _user, evid in keep:
        libca.ca_clear_subscription(evid)
    ca.flush_io()
    t_cancelled = time.time()
    for chid in chids:
        ca.clear_channel(chid)
    ca.finalize_libca()
    updates = [c[0] for c in counts]
    result = {
        "index": index, "dbr_type": dbr_type, "channels": len(names), "connected": connected,
        "t0_unix": t0, "t_subscribed_unix": t_connected, "t_cancelled_unix": t_cancelled,
        "updates_received": sum(updates), "updates_per_pv_min": min(updates),
        "updates_per_pv_max": max(updates),
    }
    Path(params["result_path"]).with_name(f"worker_{index}.json").write_text(
        json.dumps(result, indent=1))
    return 0


def churn_main(params_path: str) -> int:
    """Every ``churn_period`` seconds, for the given time: create channels to the next
    ``churn_batch`` records (wrapping around), read each once, clear them all. So the
    capture holds searches, CREATE_CHAN, READ_NOTIFY and CLEAR_CHANNEL throughout, on a
    circuit of its own, beside the monitors.

    The last record stays connected throughout, out of the rotation: libca closes a
    circuit once its last channel is cleared, and a batch created while the old circuit
    is still going down can wait seconds to connect. So the churn is of channels on one
    long-lived circuit (their ids reused and renumbered), not of circuits."""
    from epics import ca

    params = json.loads(Path(params_path).read_text())
    names, batch, period = params["names"][:-1], params["churn_batch"], params["churn_period"]
    ca.initialize_libca()
    anchor = ca.create_channel(params["names"][-1], connect=False)
    ca.connect_channel(anchor, timeout=30)
    start = time.monotonic()
    end = start + params["seconds"]
    offset = created = connected = reads = 0
    durations: list[float] = []
    while time.monotonic() < end:
        tick = time.monotonic()
        chunk = [names[(offset + i) % len(names)] for i in range(batch)]
        offset = (offset + batch) % len(names)
        chids = [ca.create_channel(name, connect=False) for name in chunk]
        created += len(chids)
        # One deadline for the whole batch, not one per channel: a search lost on a
        # loaded machine costs one wait, not one per channel it holds up.
        deadline = tick + CHURN_CONNECT_S
        while not all(map(ca.isConnected, chids)) and time.monotonic() < deadline:
            ca.poll(evt=0.01)
        live = [chid for chid in chids if ca.isConnected(chid)]
        connected += len(live)
        for chid in live:
            ca.get(chid, wait=False)
        ca.poll()
        reads += sum(ca.get_complete(chid, timeout=CHURN_CONNECT_S) is not None
                     for chid in live)
        for chid in chids:
            ca.clear_channel(chid)
        ca.flush_io()
        durations.append(time.monotonic() - tick)
        time.sleep(max(0.0, period - durations[-1]))
    ca.clear_channel(anchor)
    ca.finalize_libca()
    # A round longer than the period (a loaded machine) delays the next one: the
    # durations say how far the churn fell behind its period.
    result = {"batch": batch, "period_s": period, "rounds": len(durations),
              "round_s_min": min(durations, default=0.0),
              "round_s_max": max(durations, default=0.0),
              "channels_created": created, "channels_connected": connected,
              "reads_completed": reads, "elapsed_s": time.monotonic() - start}
    Path(params["result_path"]).with_name("churn.json").write_text(
        json.dumps(result, indent=1))
    return 0


# ------------------------------------------------------------------------- host side


def make(output: Path, count: int, clients: int, seconds: float, period: str, *,
         churn_batch: int = 0, churn_period: float = 1.0,
         generated_by: str = "benchmarks/make_big_capture.py") -> dict:
    """Run the scenario; write ``output`` and its manifest ``output.json``. With
    ``churn_batch``, one more client creates, reads and clears that many channels every
    ``churn_period`` seconds throughout."""
    reason = peers.peers_missing() or peers.capture_missing()
    if reason:
        sys.exit(f"cannot make the capture: {reason}")
    if peers.namespace_command() is None:
        sys.exit("cannot make the capture: needs root for a private network namespace")
    output.parent.mkdir(parents=True, exist_ok=True)
    recs = records(count, period)
    workdir = output.parent / (output.stem + ".work")
    started = time.time()
    result = peers.run_scenario(
        recs, [sys.executable, str(Path(__file__).resolve()), "client"], workdir,
        client_timeout=seconds + 180, settle=1.0,
        client_params={"names": [r["name"] for r in recs], "clients": clients,
                       "seconds": seconds, "pcap": str(output.resolve()),
                       "ring_kib": RING_KIB, "churn_batch": churn_batch,
                       "churn_period": churn_period},
    )
    client = result.get("client_result", {})
    description = (f"{count} calc records scanning at {period}, {clients} monitoring "
                   f"clients (one circuit each) subscribed to all for {seconds} s")
    if churn_batch:
        description += (f", one more client creating, reading and clearing {churn_batch} "
                        f"channels every {churn_period} s throughout")
    manifest = {
        "description": description,
        "generated_by": generated_by,
        "generated_at_unix": started,
        "records": count, "scan_period": period, "clients": clients, "seconds": seconds,
        "churn_batch": churn_batch, "churn_period": churn_period,
        "client_dbr_types": [CLIENT_TYPES[i % len(CLIENT_TYPES)] for i in range(clients)],
        "file": output.name,
        "file_size_bytes": output.stat().st_size if output.exists() else 0,
        "ok": result.get("ok"), "errors": result.get("errors"),
        "namespace": result.get("namespace"),
        "capture": {"tool": "tcpdump", "interface": "lo", "bpf_filter": "tcp or udp",
                    "ring_kib": RING_KIB, "tcpdump_report": client.get("tcpdump_report")},
        "workers": client.get("workers"),
        "churn": client.get("churn"),
        "monitor_updates_received": sum(w["updates_received"]
                                        for w in client.get("workers", [])),
        "duration_s": result.get("duration_s"),
    }
    output.with_suffix(".json").write_text(json.dumps(peers.jsonable(manifest), indent=1))
    return manifest


def print_manifest(manifest: dict) -> None:
    """What was made, in short, and what tcpdump said of it (its drops, if any)."""
    print(json.dumps({k: manifest[k] for k in (
        "file", "file_size_bytes", "ok", "errors", "monitor_updates_received", "churn")},
        indent=1))
    report = (manifest.get("capture") or {}).get("tcpdump_report")
    if report:
        print("tcpdump:", " | ".join(report))


def main() -> int:
    if sys.argv[1:2] == ["client"]:
        return client_main()
    if sys.argv[1:2] == ["worker"]:
        return worker_main(sys.argv[2], int(sys.argv[3]))
    if sys.argv[1:2] == ["churn"]:
        return churn_main(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="how long the clients stay subscribed (30 s: ~160 MB)")
    parser.add_argument("--period", default=".1 second",
                        help="the records' SCAN (an EPICS scan period)")
    args = parser.parse_args()
    manifest = make(args.output, args.records, args.clients, args.seconds, args.period)
    print_manifest(manifest)
    return 0 if manifest["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Make a storm-like capture from real peers, for benchmarks/read_rate.py (issue 15).

One softioc serves thousands of scalars updating at 10 Hz, several libca clients (each
its own process, context and circuit) monitor all of them, and one more client keeps
creating and clearing channels throughout: every second it connects to the next batch
of records in turn, reads each once and clears them. The machinery is
``benchmarks/make_big_capture.py``'s (its ``make`` with ``churn_batch``): a private
network namespace through ``tests/helpers/peers.py``, every EPICS address pinned to
127.0.0.1, tcpdump on ``lo``; no packet leaves loopback.

It writes ``benchmarks/data/storm.pcap`` (gitignored) and its manifest ``storm.json``, then
prints what it made: size, the span of the capture's timestamps, and the message counts
per command of ``shark read --summary``.

Usage (as root, with softioc, pyepics and tcpdump installed)::

    python benchmarks/make_storm_capture.py                     # 3000 PVs, 4 clients, 20 s
    python benchmarks/make_storm_capture.py --records 1000 --seconds 8
    python benchmarks/read_rate.py benchmarks/data/storm.pcap   # or: make bench-storm
"""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
from pathlib import Path

import make_big_capture as big

DEFAULT_OUTPUT = big.DATA / "storm.pcap"
#: Classic pcap magics, as read little-endian: microsecond and nanosecond timestamps.
PCAP_MAGICS = {0xA1B2C3D4: ("<", 1e-6), 0xD4C3B2A1: (">", 1e-6),
               0xA1B23C4D: ("<", 1e-9), 0x4D3CB2A1: (">", 1e-9)}


def capture_span(path: Path) -> tuple[int, float]:
    """(packets, seconds from the first packet's timestamp to the last's) of a classic
    pcap file; only the record headers are read."""
    with open(path, "rb") as handle:
        head = handle.read(24)
        if len(head) < 24 or struct.unpack("<I", head[:4])[0] not in PCAP_MAGICS:
            raise ValueError(f"{path} is not a classic pcap file")
        order, unit = PCAP_MAGICS[struct.unpack("<I", head[:4])[0]]
        record = struct.Struct(order + "IIII")
        packets, first, last = 0, None, None
        while len(raw := handle.read(16)) == 16:
            sec, frac, incl, _ = record.unpack(raw)
            last = sec + frac * unit
            first = last if first is None else first
            packets += 1
            handle.seek(incl, 1)
    return packets, (last - first) if packets else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--records", type=int, default=3000, help="scalars on the IOC")
    parser.add_argument("--clients", type=int, default=4,
                        help="monitoring clients, each subscribed to every scalar")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="how long the clients monitor and churn")
    parser.add_argument("--period", default=".1 second",
                        help="the records' SCAN (an EPICS scan period)")
    parser.add_argument("--churn-batch", type=int, default=200,
                        help="channels the churning client creates, reads and clears each round")
    parser.add_argument("--churn-period", type=float, default=1.0,
                        help="seconds from the start of one churn round to the next")
    args = parser.parse_args()
    manifest = big.make(args.output, args.records, args.clients, args.seconds, args.period,
                        churn_batch=args.churn_batch, churn_period=args.churn_period,
                        generated_by="benchmarks/make_storm_capture.py")
    big.print_manifest(manifest)
    if not args.output.exists():
        return 1
    packets, span = capture_span(args.output)
    size = args.output.stat().st_size
    print(f"{args.output.name}: {size / 1e6:.1f} MB, {packets} packets over {span:.1f} s")
    summary = subprocess.run([sys.executable, "-m", "shark", "read", "--summary",
                              str(args.output)], check=False)
    return 0 if manifest["ok"] and summary.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

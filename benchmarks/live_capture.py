"""Live capture throughput: can :class:`shark.capture.live.LiveCapture` keep up with CA traffic?

In a private network namespace (root needed), sender processes blast CA-shaped UDP
datagrams (a version and a search message, 48 bytes of CA) at 127.0.0.1:5064 for a
few seconds while one reader captures on ``lo``; every second it prints frames
captured and kernel drops, and at the end captured + dropped against sent. Two readers
are measured one after the other, in the same conditions:

* ``ring``: LiveCapture itself (TPACKET_V3 ring, whole blocks per poll);
* ``recvmsg``: the obvious alternative, one ``recvmsg`` per packet with
  ``SO_TIMESTAMPNS`` and a 64 MiB ``SO_RCVBUFFORCE`` buffer, same kernel filter, same
  Frame objects: the baseline that justified the ring.

Run on demand: ``.venv/bin/python benchmarks/live_capture.py [--seconds 5]
[--senders 2] [--rate PPS]``. Nothing leaves the namespace; it asserts nothing.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from decoder import messages  # noqa: E402
from shark.capture.files import Frame, LinkType  # noqa: E402
from shark.capture.live import LiveCapture, _ca_program, _loopback_guard  # noqa: E402

PORT = 5064
SO_RCVBUFFORCE, SO_TIMESTAMPNS, SO_ATTACH_FILTER = 33, 35, 26
SOL_PACKET, PACKET_STATISTICS = 263, 6
SNAPLEN = 262144


def datagram(number: int) -> bytes:
    """What a CA client's search datagram looks like."""
    return (messages.VersionRequest(priority=0, version=13).to_bytes()
            + messages.SearchRequest(name="BENCH:PV:1", reply=10, version=13,
                                     cid=number).to_bytes())


def send(seconds: float, rate: float) -> int:
    """Send datagrams for ``seconds`` (at ``rate`` per second, 0: flat out); the count."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", PORT))
    payload, burst, sent = datagram(1), 100, 0
    start = time.monotonic()
    end = start + seconds
    while (now := time.monotonic()) < end:
        if rate and sent > (now - start) * rate:
            time.sleep(burst / rate)
            continue
        for _ in range(burst):
            sock.send(payload)
        sent += burst
    return sent


class RecvmsgReader:
    """The baseline: one recvmsg per packet, kernel timestamps in ancillary data."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        program = _loopback_guard() + _ca_program((), False, SNAPLEN)  # LiveCapture's filter
        code = b"".join(struct.pack("HBBI", *insn) for insn in program)
        buffer = ctypes.create_string_buffer(code)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                             struct.pack("HP", len(program), ctypes.addressof(buffer)))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind(("lo", 0x0003))
        self.sock.setblocking(False)
        self.number = 0
        self.dropped = 0

    def read_batch(self, timeout: float) -> list[Frame]:
        select.select([self.sock], [], [], timeout)
        frames, recvmsg = [], self.sock.recvmsg
        cmsg_space = socket.CMSG_SPACE(16)
        while len(frames) < 10000:  # return now and then, like the ring's blocks
            try:
                data, ancillary, _flags, _address = recvmsg(SNAPLEN, cmsg_space)
            except BlockingIOError:
                return frames
            sec, nsec = struct.unpack("qq", ancillary[0][2])
            self.number += 1
            time_ns = sec * 1_000_000_000 + nsec
            frames.append(Frame(self.number, time_ns / 1e9, time_ns, LinkType.EN10MB,
                                memoryview(data)))
        return frames

    def stats(self) -> tuple[int, int]:
        _packets, drops = struct.unpack("II", self.sock.getsockopt(SOL_PACKET,
                                                                   PACKET_STATISTICS, 8))
        self.dropped += drops
        return self.number, self.dropped

    def close(self) -> None:
        self.sock.close()


class RingReader:
    """LiveCapture, with the baseline's interface."""

    def __init__(self) -> None:
        self.capture = LiveCapture("lo")
        self.read_batch = self.capture.read_batch
        self.close = self.capture.close

    def stats(self) -> tuple[int, int]:
        return tuple(self.capture.stats())


def measure(name: str, reader, args: argparse.Namespace) -> None:
    """Capture while the senders run; print per-second and total figures."""
    argv = [sys.executable, __file__, "--send", str(args.seconds), str(args.rate / args.senders)]
    senders = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
               for _ in range(args.senders)]
    print(f"\n{name}: {args.senders} sender(s), {args.seconds:g} s, "
          f"rate {'unlimited' if not args.rate else f'{args.rate:,.0f}/s'}")
    start = last = time.monotonic()
    cpu = time.process_time()
    seen = last_seen = last_dropped = 0
    while True:
        batch = len(reader.read_batch(0.05))
        seen += batch
        now = time.monotonic()
        if now - last >= 1.0:
            _received, dropped = reader.stats()
            print(f"  t={now - start:4.1f}s  captured {(seen - last_seen) / (now - last):>9,.0f}/s"
                  f"  kernel drops {(dropped - last_dropped) / (now - last):>9,.0f}/s")
            last, last_seen, last_dropped = now, seen, dropped
        if not batch and all(sender.poll() is not None for sender in senders):
            break  # the senders are done and everything sent was read
    elapsed, cpu = time.monotonic() - start, time.process_time() - cpu
    sent = sum(int(sender.communicate()[0]) for sender in senders)
    _received, dropped = reader.stats()
    reader.close()
    print(f"  sent {sent:,} ({sent / elapsed:,.0f}/s); captured {seen:,} "
          f"({seen / elapsed:,.0f}/s); kernel drops {dropped:,}; "
          f"captured + dropped = {(seen + dropped) / sent:.1%} of sent; "
          f"reader CPU {cpu / elapsed:.0%}, {cpu / max(seen, 1) * 1e6:.2f} us per frame")


def inside(args: argparse.Namespace) -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # no ICMP "port unreachable"
    sink.bind(("127.0.0.1", PORT))
    for name, reader in (("ring (LiveCapture)", RingReader), ("recvmsg baseline", RecvmsgReader)):
        measure(name, reader(), args)
    sink.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="sending time per reader")
    parser.add_argument("--senders", type=int, default=1, help="sender processes")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="total datagrams per second (0: as fast as the senders can)")
    parser.add_argument("--send", nargs=2, type=float, help=argparse.SUPPRESS)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.send:
        print(send(*args.send))
        return 0
    if args.inside:
        inside(args)
        return 0
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        print("needs root, unshare and ip: it runs in a private network namespace",
              file=sys.stderr)
        return 1
    script = "ip link set lo up && exec \"$0\" \"$@\""
    return subprocess.run(["unshare", "--net", "sh", "-c", script, sys.executable, __file__,
                           "--inside", *sys.argv[1:]], timeout=120).returncode


if __name__ == "__main__":
    sys.exit(main())

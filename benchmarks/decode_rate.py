"""Decoder throughput on real capture bytes, beside caproto and dpkt in the same run.

For each capture it extracts the TCP byte streams once (with dpkt: this is a
benchmark, not the product), then measures on the same bytes:

* shark framing: StreamFramer.feed over the stream (headers only, lazy payloads);
* shark full decode: framing, plus every named field and every DBR payload;
* caproto: caproto's read_from_bytestream over the same stream (it decodes
  eagerly, so it is compared with both of ours);
* dpkt: raw pcap packet iteration of the file, the floor any reader pays.

Run on demand: ``make bench`` or ``.venv/bin/python benchmarks/decode_rate.py
[CAPTURE ...]``. It prints messages/s and ratios; it asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import dpkt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from decoder import Role, StreamFramer  # noqa: E402
from decoder.messages import _DataPayload  # noqa: E402

SHARED = ROOT.parent / "shared" / "captures"
DEFAULT_CAPTURES = [
    SHARED / "ca_monitors_100hz.pcap",
    SHARED / "ca_many_channels_500.pcap",
    SHARED / "ca_big_arrays.pcap",
]
#: Repeat small streams until at least this many bytes are measured.
MIN_BYTES = 20_000_000


def _reader(handle):
    head = handle.read(4)
    handle.seek(0)
    if head == b"\x0a\x0d\x0d\x0a":
        return dpkt.pcapng.Reader(handle)
    return dpkt.pcap.Reader(handle)


def _ip_of(linktype: int, frame: bytes):
    if linktype == dpkt.pcap.DLT_EN10MB:
        return dpkt.ethernet.Ethernet(frame).data
    if linktype == dpkt.pcap.DLT_LINUX_SLL:
        return dpkt.sll.SLL(frame).data
    if linktype == 276:
        return dpkt.sll2.SLL2(frame).data
    return None


def tcp_streams(path: Path) -> list[tuple[Role, bytes]]:
    """Each TCP direction's bytes in sequence order, with the role of its sender."""
    segments = collections.defaultdict(dict)
    clients = set()
    with open(path, "rb") as handle:
        reader = _reader(handle)
        linktype = reader.datalink()
        for _, frame in reader:
            ip = _ip_of(linktype, frame)
            if not isinstance(ip, dpkt.ip.IP) or not isinstance(ip.data, dpkt.tcp.TCP):
                continue
            tcp = ip.data
            key = (ip.src, tcp.sport, ip.dst, tcp.dport)
            if tcp.flags & dpkt.tcp.TH_SYN and not tcp.flags & dpkt.tcp.TH_ACK:
                clients.add(key)
            if tcp.data:
                segments[key].setdefault(tcp.seq, bytes(tcp.data))
    streams = []
    for key, by_seq in segments.items():
        data = bytearray()
        expected = None
        for seq in sorted(by_seq):
            chunk = by_seq[seq]
            if expected is None:
                expected = seq
            if seq + len(chunk) <= expected:
                continue
            data += chunk[expected - seq :]
            expected = seq + len(chunk)
        streams.append((Role.CLIENT if key in clients else Role.SERVER, bytes(data)))
    return streams


def _timed(func, streams, repeat):
    start = time.perf_counter()
    count = 0
    for _ in range(repeat):
        for role, data in streams:
            count += func(role, data)
    return count, time.perf_counter() - start


def shark_frame(role: Role, data: bytes) -> int:
    return len(StreamFramer(role).feed(data))


def shark_decode(role: Role, data: bytes) -> int:
    messages = StreamFramer(role).feed(data)
    for msg in messages:
        msg.fields()
        if isinstance(msg, _DataPayload):
            msg.data.values  # noqa: B018 - force the payload decode
    return len(messages)


def caproto_decode(role: Role, data: bytes) -> int:
    import caproto
    from caproto._commands import read_from_bytestream

    sender_role = caproto.CLIENT if role == Role.CLIENT else caproto.SERVER
    count = 0
    buffer = bytearray(data)
    while buffer:
        buffer, command, _ = read_from_bytestream(buffer, sender_role)
        if command is caproto.NEED_DATA:
            break
        count += 1
    return count


def dpkt_iterate(path: Path, repeat: int) -> tuple[int, float]:
    start = time.perf_counter()
    count = 0
    for _ in range(repeat):
        with open(path, "rb") as handle:
            for _ts, _frame in _reader(handle):
                count += 1
    return count, time.perf_counter() - start


def bench(path: Path) -> None:
    streams = tcp_streams(path)
    total = sum(len(d) for _, d in streams)
    repeat = max(1, MIN_BYTES // max(total, 1))
    print(f"\n{path.name}: {total / 1e6:.2f} MB of TCP payload, measured x{repeat}")
    rows = {}
    for label, func in (
        ("shark framing", shark_frame),
        ("shark full decode", shark_decode),
        ("caproto decode", caproto_decode),
    ):
        try:
            rows[label] = _timed(func, streams, repeat)
        except ImportError as exc:
            print(f"  {label:<20} skipped: {exc}")
    packets, seconds = dpkt_iterate(path, repeat)
    base = rows.get("caproto decode")
    for label, (count, seconds_) in rows.items():
        rate = count / seconds_
        ratio = f"  x{rate / (base[0] / base[1]):.1f} caproto" if base else ""
        print(f"  {label:<20} {rate:>12,.0f} msg/s  {total * repeat / seconds_ / 1e6:>8.1f} MB/s"
              f"{ratio}")
    print(f"  {'dpkt pcap iteration':<20} {packets / seconds:>12,.0f} pkt/s  "
          f"(the file's packets, for scale)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("captures", nargs="*", type=Path)
    args = parser.parse_args()
    captures = args.captures or [p for p in DEFAULT_CAPTURES if p.exists()]
    if not captures:
        sys.exit("no capture given and ../shared/captures is absent")
    for path in captures:
        bench(path)


if __name__ == "__main__":
    main()

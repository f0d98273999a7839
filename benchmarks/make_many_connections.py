"""Make a synthetic capture of many short CA circuits, for measuring per-connection memory.

Each connection is a whole short CA circuit on its own client address and port: the
handshake (SYN, SYN-ACK, ACK), the client's VERSION and CREATE_CHAN, the server's
VERSION and CREATE_CHAN reply, then FIN and ACK from each side. Connections follow one
another in capture time, a few overlapping, as a scanning client or a restart storm
would give. With ``--no-close`` the FINs are left out, so that only an idle timeout can
end a connection's state.

No peer is needed: the frames are built here (Ethernet, IPv4, TCP), the CA messages by
:mod:`decoder.messages`. The file is written as it is built, so N is not bounded by
memory. Then measure the peak memory of reading it, for instance::

    python benchmarks/make_many_connections.py -n 100000 -o /some/dir/many.pcap
    /usr/bin/time -v shark read -f jsonl /some/dir/many.pcap > /dev/null
    /usr/bin/time -v shark stats /some/dir/many.pcap > /dev/null

``--measure`` does that itself for ``shark read -f jsonl``, the iterator and ``shark stats``,
each in a fresh process, and prints each peak resident set size.
"""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from decoder import messages as m

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "data" / "many_connections.pcap"
SERVER = bytes((10, 0, 0, 1))
SERVER_PORT = 5064
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
#: Microseconds between frames, and between the starts of two connections.
FRAME_GAP_US = 50
CONNECTION_GAP_US = 200
#: A pcap record header and the Ethernet/IPv4/TCP headers.
_RECORD = struct.Struct("<IIII")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIHHHH")
_ETHERNET = bytes(12) + b"\x08\x00"


def client_address(index: int) -> tuple[bytes, int]:
    """A distinct (address, port) for the ``index``-th connection's client."""
    host, port = divmod(index, 50000)
    return bytes((10, 1 + (host >> 16) % 250, (host >> 8) & 0xFF, 1 + host % 250)), 10000 + port


def frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
          payload: bytes = b"") -> bytes:
    ip = _IPV4.pack(0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    tcp = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, (5 << 12) | flags,
                    65535, 0, 0)
    return _ETHERNET + ip + tcp + payload


def connection_frames(index: int, close: bool = True) -> list[bytes]:
    """The frames of one short circuit, in order."""
    client, port = client_address(index)
    name = f"MANY:PV{index % 1000}"
    request = (m.VersionRequest(priority=0).to_bytes()
               + m.CreateChanRequest(cid=1, name=name).to_bytes())
    reply = (m.VersionResponse().to_bytes()
             + m.CreateChanResponse(cid=1, sid=index + 1, data_type=6,
                                    data_count=1).to_bytes())
    c, s = 1000 + index, 5_000_000 + index  # the ISNs
    frames = [
        frame(client, SERVER, port, SERVER_PORT, c, 0, SYN),
        frame(SERVER, client, SERVER_PORT, port, s, c + 1, SYN | ACK),
        frame(client, SERVER, port, SERVER_PORT, c + 1, s + 1, ACK),
        frame(client, SERVER, port, SERVER_PORT, c + 1, s + 1, PSH | ACK, request),
        frame(SERVER, client, SERVER_PORT, port, s + 1, c + 1 + len(request), PSH | ACK, reply),
    ]
    c_end, s_end = c + 1 + len(request), s + 1 + len(reply)
    if close:
        frames += [
            frame(client, SERVER, port, SERVER_PORT, c_end, s_end, FIN | ACK),
            frame(SERVER, client, SERVER_PORT, port, s_end, c_end + 1, FIN | ACK),
            frame(client, SERVER, port, SERVER_PORT, c_end + 1, s_end + 1, ACK),
        ]
    else:
        frames.append(frame(client, SERVER, port, SERVER_PORT, c_end, s_end, ACK))
    return frames


def timed_frames(count: int, close: bool = True) -> Iterator[tuple[int, bytes]]:
    """(time in microseconds, frame) of ``count`` connections, in capture order: each
    starts CONNECTION_GAP_US after the previous one, so a few overlap."""
    pending: list[tuple[int, int, bytes]] = []  # (time, order, frame), sorted by time
    order = 0
    for index in range(count):
        start = index * CONNECTION_GAP_US
        while pending and pending[0][0] <= start:
            yield pending[0][0], pending.pop(0)[2]
        for k, data in enumerate(connection_frames(index, close)):
            pending.append((start + k * FRAME_GAP_US, order, data))
            order += 1
        pending.sort()
    for time, _order, data in pending:
        yield time, data


def write(path: Path, count: int, close: bool = True) -> int:
    """Write the capture; returns the number of frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = 0
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for time, data in timed_frames(count, close):
            seconds, micros = divmod(1_700_000_000_000_000 + time, 1_000_000)
            out.write(_RECORD.pack(seconds, micros, len(data), len(data)) + data)
            frames += 1
    return frames


_ITERATOR = "import sys, shark; print(sum(1 for _ in shark.read(sys.argv[1])))"


def _peak_alone(command: list[str]) -> int:
    """Peak RSS (KiB) of ``command``, run under a fresh interpreter whose only child it is."""
    wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], "
               "stdout=subprocess.DEVNULL, check=True); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", wrapper, *command], check=True,
                          capture_output=True, text=True)
    return int(done.stdout.split()[-1])


def measure(path: Path) -> dict[str, float]:
    """Peak RSS (MiB) of reading ``path`` three ways, each in a fresh process."""
    shark = str(Path(sys.executable).with_name("shark"))
    commands = {
        "shark read -f jsonl": [shark, "read", "-f", "jsonl", str(path)],
        "iterator": [sys.executable, "-c", _ITERATOR, str(path)],
        "shark stats": [shark, "stats", str(path)],
    }
    return {name: _peak_alone(command) / 1024 for name, command in commands.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--connections", type=int, default=100_000)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--no-close", action="store_true",
                        help="leave out the FINs: only an idle timeout ends each connection")
    parser.add_argument("--measure", action="store_true",
                        help="then print the peak RSS of reading it three ways")
    args = parser.parse_args(argv)
    frames = write(args.output, args.connections, not args.no_close)
    size = args.output.stat().st_size
    print(f"{args.output}: {args.connections} connections, {frames} frames, "
          f"{size / 1e6:.1f} MB")
    if args.measure:
        for name, mib in measure(args.output).items():
            print(f"  {name:22} peak RSS {mib:8.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

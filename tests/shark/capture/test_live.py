"""Live capture (shark.capture.live) and the pcapng writer (shark.capture.writer).

The writer tests run anywhere. The capture tests need root and ``unshare``: the
scenario ``tests/helpers/live_scenario.py`` runs in a private network namespace whose
only interface is ``lo``, captures with :class:`LiveCapture` in several configurations
while it sends CA traffic and traffic the kernel filter must drop, and saves what it
captured as JSON and as pcapng; the tests below check both. One namespace run serves
every capture test (about 3 s).
"""

from __future__ import annotations

import errno
import io
import json
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import live_scenario
import peers
import pytest
from builders import ROOT
from live_scenario import CLIENT_BYTES, CONFIGS, SERVER_BYTES

from decoder import Role, split_datagram
from shark.capture.files import Frame, LinkType, read_frames
from shark.capture.live import (
    CapturePermissionError,
    LiveCapture,
    LiveCaptureError,
    _ca_program,
    _program,
    filter_expression,
)
from shark.capture.writer import PcapngWriter
from shark.network.packets import TCP, UDP, PacketDecoder

# -- the pcapng writer --------------------------------------------------------------------


def _frames() -> list[Frame]:
    """Frames of two link types, odd lengths, nanosecond times, an empty one."""
    frames = []
    for number, (linktype, size) in enumerate(
        [(LinkType.EN10MB, 60), (LinkType.LINUX_SLL, 61), (LinkType.EN10MB, 0),
         (LinkType.LINUX_SLL, 1514), (LinkType.EN10MB, 65535)], start=1
    ):
        time_ns = 1_700_000_000_123_456_789 + number * 1_000_000_007
        data = bytes((number + i) % 256 for i in range(size))
        frames.append(Frame(number, time_ns / 1e9, time_ns, linktype, memoryview(data)))
    return frames


def _same(read: list[Frame], written: list[Frame]) -> None:
    assert [(f.number, f.time_ns, f.linktype, bytes(f.data)) for f in read] == [
        (f.number, f.time_ns, f.linktype, bytes(f.data)) for f in written
    ]
    assert all(abs(r.time - r.time_ns / 1e9) < 1e-6 for r in read)


def test_pcapng_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out.pcapng"
    with PcapngWriter(path) as writer:
        for frame in _frames():
            writer.write(frame)
    assert writer.frames == 5
    _same(list(read_frames(path)), _frames())


def test_pcapng_is_readable_after_each_flush(tmp_path: Path) -> None:
    path = tmp_path / "live.pcapng"
    frames = _frames()
    writer = PcapngWriter(path)
    writer.add_interface(LinkType.EN10MB, "lo", 262144)
    writer.write(frames[0])
    writer.flush()
    _same(list(read_frames(path)), frames[:1])
    for frame in frames[1:]:
        writer.write(frame)
    writer.flush()
    _same(list(read_frames(path)), frames)
    writer.close()
    writer.close()  # idempotent
    _same(list(read_frames(path)), frames)


def test_pcapng_interfaces_and_streams() -> None:
    stream = io.BytesIO()
    writer = PcapngWriter(stream, application="shark-test")
    lo = writer.add_interface(LinkType.EN10MB, "lo", 1500)
    eth = writer.add_interface(LinkType.EN10MB, "eth0")
    assert writer.add_interface(LinkType.EN10MB, "lo") == lo
    frames = _frames()
    writer.write(frames[0], interface=eth)
    writer.write(frames[1])  # its link type gets an unnamed interface of its own
    with pytest.raises(ValueError, match="not declared"):
        writer.write(frames[2], interface=7)
    writer.close()
    assert not stream.closed  # a stream given to the writer stays the caller's
    data = stream.getvalue()
    assert b"shark-test" in data and b"lo\0\0" in data and b"eth0" in data
    _same(list(read_frames(io.BytesIO(data))), frames[:2])


# -- live capture without privileges needed -------------------------------------------------


def test_unknown_interface_is_named() -> None:
    with pytest.raises(LiveCaptureError, match="no interface 'shark-nope0'.*lo"):
        LiveCapture("shark-nope0")


def test_bad_ports_and_expressions_are_refused() -> None:
    with pytest.raises(LiveCaptureError, match="ports"):
        LiveCapture("lo", ports=[70000])
    with pytest.raises(LiveCaptureError, match="snaplen"):
        LiveCapture("lo", snaplen=0)
    with pytest.raises(LiveCaptureError, match="too many ports"):
        LiveCapture("lo", ports=range(6000, 6100), use_libpcap=False)
    with pytest.raises(LiveCaptureError, match="filter expression"):
        LiveCapture("lo", bpf="udp port banana")


def test_filter_expression() -> None:
    assert filter_expression() == "udp port 5064 or udp port 5065 or tcp port 5064"
    assert filter_expression([6000, 6000, 7000]).endswith(" or port 6000 or port 7000")


def test_no_privilege_gives_a_clear_error() -> None:
    """Without CAP_NET_RAW (dropped from the bounding set by setpriv, as root)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or not peers.namespace_command():
        pytest.skip("needs root and setpriv (util-linux) to drop CAP_NET_RAW")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from shark.capture import live\n"
            "print(live.capture_permitted(), live.default_interface())\n"
            "live.LiveCapture('lo')")
    done = subprocess.run([setpriv, "--bounding-set", "-net_raw", sys.executable, "-c", code,
                           str(ROOT)], capture_output=True, text=True, timeout=30)
    assert done.stdout.split() == ["False", "lo"]
    assert "CapturePermissionError: live capture needs root or the CAP_NET_RAW" in done.stderr
    assert "tcpdump -U -w - -i lo port 5064 | shark read -" in done.stderr  # the safe route
    assert "setcap" not in done.stderr
    assert issubclass(CapturePermissionError, PermissionError)


# -- the built-in filter against libpcap's, on a small BPF interpreter ----------------------


def _run_bpf(program: list[tuple[int, int, int, int]], packet: bytes, ethertype: int) -> int:
    """What the kernel would return for ``packet``: the classic BPF subset these programs
    use; ``ethertype`` is what the ancillary load SKF_AD_PROTOCOL gives."""
    a = x = pc = 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        if code == 0x06:  # ret #k
            return k
        if code in (0x20, 0x28, 0x30, 0x48):  # ld / ldh / ldb [k], ldh [x + k]
            if code == 0x20 and k == 0xFFFFF000:
                a = ethertype
                continue
            size = {0x20: 4, 0x28: 2, 0x30: 1, 0x48: 2}[code]
            start = k + (x if code == 0x48 else 0)
            if start + size > len(packet):
                return 0
            a = int.from_bytes(packet[start : start + size], "big")
        elif code == 0x01:  # ldx #k
            x = k
        elif code == 0xB1:  # ldxb 4 * ([k] & 0xf)
            if k >= len(packet):
                return 0
            x = (packet[k] & 0x0F) * 4
        elif code == 0x54:  # and #k
            a &= k
        elif code in (0x15, 0x45):  # jeq #k, jset #k
            pc += jt if (a == k if code == 0x15 else a & k) else jf
        else:
            raise NotImplementedError(f"BPF opcode {code:#x}")


def _ip_packet(version: int, proto: int, sport: int, dport: int, fragment: int = 0,
               extension: bool = False) -> bytes:
    transport = struct.pack("!HH", sport, dport) + bytes(16)
    if version == 4:
        return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(transport), 1, fragment, 64,
                           proto, 0, bytes((127, 0, 0, 1)), bytes((127, 0, 0, 1))) + transport
    options = bytes((proto, 0)) + bytes(6) if extension else b""
    return struct.pack("!IHBB16s16s", 0x6 << 28, len(options) + len(transport),
                       60 if extension else proto, 64, bytes(15) + b"\1", bytes(15) + b"\1"
                       ) + options + transport


def _filter_cases() -> list[tuple[str, int, bytes, bool]]:
    """(description, ethertype, IP packet or other payload, should pass)."""
    cases = []
    for version, ethertype in ((4, 0x0800), (6, 0x86DD)):
        for proto, name in ((socket.IPPROTO_UDP, "udp"), (socket.IPPROTO_TCP, "tcp")):
            for sport, dport in ((40000, 5064), (5064, 40000), (40000, 5065), (5065, 40000),
                                 (40000, 6000), (6000, 40000), (40000, 9999), (5066, 5063)):
                wanted = 6000 in (sport, dport) or 5064 in (sport, dport) or (
                    name == "udp" and 5065 in (sport, dport))
                cases.append((f"ipv{version} {name} {sport}>{dport}", ethertype,
                              _ip_packet(version, proto, sport, dport), wanted))
    cases += [
        ("ipv4 first fragment", 0x0800, _ip_packet(4, 17, 1, 5064, fragment=0x2000), True),
        ("ipv4 later fragment", 0x0800, _ip_packet(4, 17, 1, 5064, fragment=0x0010), False),
        ("ipv6 extension header", 0x86DD, _ip_packet(6, 17, 1, 5064, extension=True), False),
        ("ipv4 icmp", 0x0800, _ip_packet(4, socket.IPPROTO_ICMP, 5064, 5064), False),
        ("arp", 0x0806, bytes.fromhex("0001080006040001") + bytes(20), False),
        ("truncated", 0x0800, _ip_packet(4, 17, 1, 5064)[:21], False),
    ]
    return cases


@pytest.mark.parametrize("cooked", [False, True], ids=["ethernet", "cooked"])
def test_builtin_filter_agrees_with_libpcap(cooked: bool) -> None:
    """Both programs on every case, through the interpreter: same verdicts, the right ones
    (IPv6 too, which the capture scenario does not send)."""
    builtin = _ca_program((6000,), cooked, 1000)
    compiled = _program(None, (6000,), cooked, 1000, True)  # None without libpcap
    for description, ethertype, packet, wanted in _filter_cases():
        if not cooked:
            packet = bytes(12) + ethertype.to_bytes(2, "big") + packet
        assert _run_bpf(builtin, packet, ethertype) == (1000 if wanted else 0), description
        if compiled is not None:
            assert _run_bpf(compiled, packet, ethertype) == (1000 if wanted else 0), description
    if compiled is None:
        pytest.skip("scapy or libpcap is not installed: only the built-in filter was checked")


# -- live capture in a namespace -----------------------------------------------------------


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the scenario script in a private network namespace; its result."""
    prefix = peers.namespace_command()
    if prefix is None:
        pytest.skip("live capture tests need root and a private network namespace (unshare)")
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip is needed to bring lo up in the namespace")
    work = tmp_path_factory.mktemp("live")
    script = 'ip link set lo up && exec "$0" "$@"'
    done = subprocess.run([*prefix, "sh", "-c", script, sys.executable,
                           str(live_scenario.SCRIPT), str(work)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((work / "result.json").read_text())
    result["work"] = work
    return result


def _capture(scenario: dict[str, Any], name: str) -> dict[str, Any]:
    capture = scenario["captures"][name]
    if "error" in capture:  # only a filter expression without scapy or libpcap may fail
        pytest.skip(capture["error"])
    if "libpcap" in name and capture["compiler"] != "libpcap":
        pytest.skip("scapy or libpcap is not installed: the filter was built in")
    return capture


def _packets(capture: dict[str, Any]) -> list:
    frames = [Frame(n, t / 1e9, t, lt, memoryview(bytes.fromhex(d)))
              for n, t, lt, d in capture["frames"]]
    decoder = PacketDecoder()
    return [decoder.decode(frame) for frame in frames]


@pytest.mark.parametrize("name", ["lo-libpcap", "lo-builtin", "any-libpcap", "any-builtin"])
def test_ca_traffic_is_captured_and_the_rest_filtered(scenario: dict[str, Any],
                                                      name: str) -> None:
    capture = _capture(scenario, name)
    linktype = LinkType.LINUX_SLL if name.startswith("any") else LinkType.EN10MB
    assert capture["linktype"] == linktype
    packets = _packets(capture)
    assert None not in packets, "every captured frame is UDP or TCP"
    udp = [p for p in packets if p.transport == UDP]
    # each datagram once (the outgoing copy on lo is dropped), none to 9999
    assert sorted(p.dport for p in udp) == [5064] * 5 + [5065] * 2 + [6000] * 3
    for packet in udp:
        if packet.dport == 5064:
            assert [type(m).__name__ for m in split_datagram(packet.payload, Role.CLIENT)] == [
                "VersionRequest", "SearchRequest"]
    tcp = [p for p in packets if p.transport == TCP]
    assert tcp and all(5064 in (p.sport, p.dport) for p in tcp), "nothing from port 7001"
    to_server = b"".join(bytes(p.payload) for p in tcp if p.dport == 5064)
    from_server = b"".join(bytes(p.payload) for p in tcp if p.sport == 5064)
    assert (to_server, from_server) == (CLIENT_BYTES, SERVER_BYTES)
    flags = [p.flags for p in tcp]
    assert flags[0] & 0x02 and any(f & 0x01 for f in flags), "SYN first, FIN seen"


def test_cooked_header(scenario: dict[str, Any]) -> None:
    """Linux cooked (SLL) header of a packet received on lo: PACKET_HOST, ARPHRD_LOOPBACK,
    6-byte all-zero address, IPv4."""
    frame = bytes.fromhex(_capture(scenario, "any-libpcap")["frames"][0][3])
    assert frame[:16] == bytes.fromhex("0000 0304 0006 000000000000 0000 0800")


def test_filter_expression_in_the_kernel(scenario: dict[str, Any]) -> None:
    packets = _packets(_capture(scenario, "lo-expression"))
    assert [(p.transport, p.dport) for p in packets] == [(UDP, 6000)] * 3


@pytest.mark.parametrize("name", list(CONFIGS))
def test_numbers_timestamps_and_stats(scenario: dict[str, Any], name: str) -> None:
    capture = _capture(scenario, name)
    frames = capture["frames"]
    assert [f[0] for f in frames] == list(range(1, len(frames) + 1))
    times = [f[1] for f in frames]
    assert capture["t_before"] <= times[0] and times[-1] <= capture["t_after"]
    assert times == sorted(times)
    assert capture["stats"] == [len(frames), 0]  # received, dropped


@pytest.mark.parametrize("name", list(CONFIGS))
def test_written_pcapng_reads_back(scenario: dict[str, Any], name: str) -> None:
    capture = _capture(scenario, name)
    read = list(read_frames(scenario["work"] / f"{name}.pcapng"))
    assert [(f.number, f.time_ns, f.linktype, bytes(f.data).hex()) for f in read] == [
        tuple(f) for f in capture["frames"]]


def test_stop_from_another_thread(scenario: dict[str, Any]) -> None:
    assert scenario["stop_seconds"] < 0.5  # stop() was called 0.2 s in
    assert scenario["read_batch_timeout"] == [0, pytest.approx(0.2, abs=0.15)]


def test_interface_going_down_ends_the_capture(scenario: dict[str, Any]) -> None:
    if scenario["interface_down"] is None:
        pytest.skip("no bridge interface could be created in the namespace")
    down = scenario["interface_down"]
    assert (down["linktype"], down["errno"]) == (LinkType.EN10MB, errno.ENETDOWN)
    assert "capture on 'shark0' failed" in down["message"]


def test_interfaces_in_the_namespace(scenario: dict[str, Any]) -> None:
    assert scenario["interfaces"] == ["lo"]
    assert scenario["default_interface"] == "any"

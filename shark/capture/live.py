"""Live capture of Channel Access traffic on Linux, as :class:`~shark.capture.files.Frame` objects.

Why it is built this way:

* **AF_PACKET with a TPACKET_V3 receive ring.** The kernel writes packets into blocks of
  a ring shared with this process (``mmap``) and hands over a whole block at a time, so
  one ``poll`` and one Python loop serve thousands of packets, with no system call per
  packet. The ring *is* the receive buffer (``buffer_size`` bytes; ``SO_RCVBUF`` does
  not apply to it). Timestamps come with each packet in nanoseconds, and the kernel
  counts what it had to drop because the ring was full (``PACKET_STATISTICS``).
  Measured (``benchmarks/live_capture.py``) against one ``recvmsg`` per packet with
  ``SO_TIMESTAMPNS`` and a 64 MiB ``SO_RCVBUFFORCE`` buffer, the ring costs a quarter
  to a half of the CPU per packet, and kept up where ``recvmsg`` dropped 40%.
* **A kernel BPF filter** (``SO_ATTACH_FILTER``) so that only CA traffic is copied to
  userspace: by default ``udp port 5064 or udp port 5065 or tcp port 5064``, plus
  ``port N`` for each extra port. It is compiled by libpcap through scapy when both are
  installed; otherwise the same port filter is built here by hand (classic BPF, IPv4
  without fragments beyond the first and IPv6 without extension headers, as libpcap's
  own ``port`` primitive). An arbitrary filter expression (``bpf=``) needs libpcap.
* **Link types.** A named Ethernet or loopback interface is read with ``SOCK_RAW`` and
  gives Ethernet frames (``lo``'s have zero MAC addresses). ``"any"`` and other
  interfaces are read with ``SOCK_DGRAM``, which strips whatever link header there was,
  and each frame gets a Linux cooked (SLL) header built from the packet's
  ``sockaddr_ll``, as libpcap does. Filters for cooked captures therefore see the
  packet from its IP header on (libpcap compiles them for raw IP).
* **Loopback packets once.** The kernel shows every packet sent on ``lo`` twice, going
  out and coming in; the filter drops the outgoing copy, as libpcap does.
* **Stoppable from another thread.** :meth:`LiveCapture.stop` wakes a blocked reader
  at once (an eventfd polled next to the socket).

VLAN tags the network card removed are not re-inserted: such frames look untagged.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import mmap
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from shark.capture.files import Frame, FrameBlock, LinkType
from shark.errors import SharkError

__all__ = [
    "CA_PORTS",
    "DEFAULT_BUFFER",
    "DEFAULT_SNAPLEN",
    "CapturePermissionError",
    "CaptureStats",
    "LiveCapture",
    "LiveCaptureError",
    "capture_permitted",
    "default_interface",
    "filter_expression",
    "list_interfaces",
]

#: Bytes kept of each packet.
DEFAULT_SNAPLEN = 262144
#: Size of the receive ring: what the kernel can hold while this process is busy.
DEFAULT_BUFFER = 32 << 20
#: A ring block is handed over when full or this many milliseconds after its first
#: packet: the longest a packet waits when traffic is slow.
BLOCK_TIMEOUT_MS = 50
#: The CA ports captured by default: server and repeater (UDP), server (TCP).
CA_PORTS = {"udp": (5064, 5065), "tcp": (5064,)}

_ETH_P_ALL, _ETH_P_IP, _ETH_P_IPV6 = 0x0003, 0x0800, 0x86DD
_SOL_PACKET, _PACKET_RX_RING, _PACKET_STATISTICS, _PACKET_VERSION = 263, 5, 6, 10
_TPACKET_V3 = 2
_PACKET_OUTGOING = 4
_SO_ATTACH_FILTER = 26
_TP_STATUS_USER = 1
_ARPHRD_ETHER, _ARPHRD_LOOPBACK = 1, 772
_SIOCGIFHWADDR = 0x8927
#: A packet in a ring block: its tpacket3 header, and the sockaddr_ll 48 bytes after it.
_TPACKET3_HDR = struct.Struct("<IIIIIIHH")  # next, sec, nsec, snaplen, len, status, mac, net
_SOCKADDR_LL = struct.Struct("<2x2s4xHBB8s")  # protocol (network order), hatype, type, addr
_SOCKADDR_LL_OFFSET = 48
#: tpacket3 header + sockaddr_ll + the 16 bytes the kernel reserves for SOCK_DGRAM.
_FRAME_OVERHEAD = 48 + 20 + 16
#: The start of a block: its status, number of packets, first packet's offset, bytes used.
_BLOCK = struct.Struct("<8xIIII")
_BLOCK_STATUS_OFFSET = 8
_SLL = struct.Struct(">HHH8s2s")  # packet type, hatype, address length, address, protocol
_STATS = struct.Struct("<III")  # tpacket_stats_v3: packets, drops, freeze count

# classic BPF opcodes, and the kernel's ancillary-data load offsets
_LD_W_ABS, _LD_H_ABS, _LD_B_ABS, _LD_H_IND = 0x20, 0x28, 0x30, 0x48
_LDX_IMM, _LDX_B_MSH = 0x01, 0xB1
_JEQ, _JSET, _RET = 0x15, 0x45, 0x06
_SKF_AD_PROTOCOL, _SKF_AD_PKTTYPE, _SKF_AD_IFINDEX = 0xFFFFF000, 0xFFFFF004, 0xFFFFF008

_Insn = tuple[int, int, int, int]
"""One classic BPF instruction: code, jump-if-true, jump-if-false, constant."""


class LiveCaptureError(SharkError, OSError):
    """A live capture could not be set up (unknown interface, bad filter, ...) or broke
    off (its interface went down)."""


class CapturePermissionError(LiveCaptureError, PermissionError):
    """Capturing needs privileges this process lacks (root or CAP_NET_RAW)."""


class CaptureStats(NamedTuple):
    """Counters of a live capture since it was opened."""

    #: Frames read from the kernel (all of them passed the filter).
    received: int
    #: Frames that passed the filter but were dropped by the kernel: the ring was full.
    dropped: int


def list_interfaces() -> list[str]:
    """Names of this machine's network interfaces, in interface index order (``"any"``,
    which captures on all of them, is not listed)."""
    return [name for _index, name in sorted(socket.if_nameindex())]


def capture_permitted() -> bool:
    """Whether this process may open packet sockets (root or CAP_NET_RAW)."""
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except PermissionError:
        return False
    return True


def default_interface() -> str:
    """``"any"`` when this process may capture, else ``"lo"`` (which will then fail with
    :class:`CapturePermissionError` telling the user how to get the privilege)."""
    return "any" if capture_permitted() else "lo"


def filter_expression(ports: Iterable[int] = ()) -> str:
    """The pcap filter expression for CA traffic on the default ports plus ``ports``."""
    terms = [f"{proto} port {port}" for proto, numbers in CA_PORTS.items() for port in numbers]
    terms += [f"port {port}" for port in dict.fromkeys(ports)]
    return " or ".join(terms)


class LiveCapture:
    """Captures packets from a network interface, as :class:`~shark.capture.files.Frame`
    objects numbered from 1: iterate over it, or call :meth:`read_batch` (frames) or
    :meth:`read_blocks` (blocks of them, as the kernel handed them over) to wait with a
    timeout.

    ``interface`` is a name from :func:`list_interfaces` or ``"any"``. The kernel filter
    passes CA traffic on the default ports plus ``ports``, or whatever the pcap filter
    expression ``bpf`` selects; ``use_libpcap=False`` builds the default port filter
    here even when libpcap is available. ``snaplen`` bytes are kept of each packet,
    and the kernel holds up to ``buffer_size`` bytes of packets not yet read.

    Iteration ends after :meth:`stop` (callable from any thread) or :meth:`close`;
    packets the kernel has not handed over by then (at most :data:`BLOCK_TIMEOUT_MS`
    worth) are not read. Raises :class:`CapturePermissionError` without the privilege to
    capture, :class:`LiveCaptureError` for other setup failures and when the interface
    goes down.
    """

    def __init__(
        self,
        interface: str = "any",
        ports: Iterable[int] = (),
        bpf: str | None = None,
        snaplen: int = DEFAULT_SNAPLEN,
        buffer_size: int = DEFAULT_BUFFER,
        use_libpcap: bool = True,
    ) -> None:
        ports = tuple(ports)
        if any(not 0 < port < 65536 for port in ports):
            raise LiveCaptureError(f"ports must be in 1..65535: {ports}")
        if snaplen < 1:
            raise LiveCaptureError(f"snaplen must be positive: {snaplen}")
        #: The interface name, as given.
        self.interface = interface
        #: Bytes kept of each packet at most.
        self.snaplen = snaplen
        hardware = None if interface == "any" else _arphrd(interface)
        cooked = hardware not in (_ARPHRD_ETHER, _ARPHRD_LOOPBACK)
        #: LINKTYPE_* of every frame of this capture.
        self.linktype = LinkType.LINUX_SLL if cooked else LinkType.EN10MB
        #: The filter in force, as a pcap filter expression.
        self.filter = bpf or filter_expression(ports)
        program = _program(bpf, ports, cooked, snaplen, use_libpcap)
        #: Who compiled the filter: ``"libpcap"``, or ``"built-in"`` (this module).
        self.compiler = "libpcap"
        if program is None:
            self.compiler = "built-in"
            program = _ca_program(ports, cooked, snaplen)
        if hardware in (None, _ARPHRD_LOOPBACK):
            program = _loopback_guard() + program
        self._number = 0
        self._received = 0
        self._dropped = 0
        self._stopping = False
        self._closed = False
        self._lock = threading.Lock()  # held while reading the ring, and to close it
        self._state_lock = threading.Lock()  # for the counters, _closed and the eventfd
        self._sock = _packet_socket(cooked, interface == "any")
        try:
            self._ring, self._block_size, self._blocks = _setup(
                self._sock, interface, program, snaplen, buffer_size
            )
        except OSError as exc:
            self._sock.close()
            raise LiveCaptureError(f"cannot capture on {interface!r}: {exc}") from exc
        self._view = memoryview(self._ring)
        self._block_index = 0
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._poller = select.poll()
        self._poller.register(self._sock, select.POLLIN)
        self._poller.register(self._wake, select.POLLIN)

    def read_blocks(self, timeout: float | None = None) -> list[FrameBlock]:
        """The frames available now, or the first ones to arrive within ``timeout``
        seconds (None: until some arrive), as they lie in the kernel's ring blocks: a
        :class:`~shark.capture.files.FrameBlock` per ring block, for a reader that takes
        frames in bulk; ``[]`` on timeout and once stopped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not (self._stopping or self._closed):
                blocks = self._drain()
                if blocks:
                    return blocks
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                for fd, event in self._poller.poll(None if wait is None else wait * 1000):
                    if fd == self._sock.fileno() and event & (select.POLLERR | select.POLLHUP):
                        code = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        raise LiveCaptureError(code, f"capture on {self.interface!r} failed: "
                                                     f"{os.strerror(code)}")
                if wait == 0.0:
                    return self._drain()
            return []

    def read_batch(self, timeout: float | None = None) -> list[Frame]:
        """The frames of :meth:`read_blocks`, one by one."""
        return [frame for block in self.read_blocks(timeout) for frame in block.frames()]

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frames = self.read_batch()
            if not frames:
                return
            yield from frames

    def stop(self) -> None:
        """End iteration and :meth:`read_batch` waits, promptly, from any thread."""
        self._stopping = True
        with self._state_lock:
            if not self._closed:
                os.eventfd_write(self._wake, 1)

    def stats(self) -> CaptureStats:
        """Frames received and dropped by the kernel so far (the kernel's counters reset
        when read, so they are accumulated here)."""
        with self._state_lock:
            if not self._closed:
                _packets, drops, _freezes = _STATS.unpack(
                    self._sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, _STATS.size)
                )
                self._dropped += drops
            return CaptureStats(self._received, self._dropped)

    def close(self) -> None:
        """Stop, and release the socket and ring; :meth:`stats` stays readable."""
        if self._closed:
            return
        self.stop()
        with self._lock:
            self.stats()
            with self._state_lock:
                self._closed = True
            self._view.release()
            self._ring.close()
            self._sock.close()
            os.close(self._wake)

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _drain(self) -> list[FrameBlock]:
        """Copy out the blocks the kernel has handed over, hand them back, and return
        their frames, a :class:`~shark.capture.files.FrameBlock` for each: where each
        frame lies in one copy of its block (cheaper than a copy per frame; a frame kept
        keeps its block's copy alive)."""
        ring, block_size, blocks = self._ring, self._block_size, self._blocks
        cooked = self.linktype == LinkType.LINUX_SLL
        linktype, number = self.linktype, self._number
        unpack_packet, unpack_ll, pack_sll = (
            _TPACKET3_HDR.unpack_from, _SOCKADDR_LL.unpack_from, _SLL.pack_into
        )
        sll = _SLL.size
        drained: list[FrameBlock] = []
        for _ in range(blocks):
            base = self._block_index * block_size
            status, count, offset, used = _BLOCK.unpack_from(ring, base)
            if not status & _TP_STATUS_USER:
                break
            block = bytearray(self._view[base : base + used])
            struct.pack_into("<I", ring, base + _BLOCK_STATUS_OFFSET, 0)  # TP_STATUS_KERNEL
            self._block_index = (self._block_index + 1) % blocks
            if not count:
                continue
            starts: list[int] = []
            ends: list[int] = []
            stamps: list[int] = []
            for _ in range(count):
                following, sec, nsec, caplen, _wire, _status, start, _net = unpack_packet(
                    block, offset
                )
                start += offset
                if cooked:  # the kernel leaves 16 bytes free before the packet: room for it
                    protocol, hatype, pkttype, halen, address = unpack_ll(
                        block, offset + _SOCKADDR_LL_OFFSET
                    )
                    start -= sll
                    pack_sll(block, start, pkttype, hatype, halen, address[:halen], protocol)
                    caplen += sll
                starts.append(start)
                ends.append(start + caplen)
                stamps.append(sec * 1_000_000_000 + nsec)
                offset += following
            drained.append(FrameBlock(number + 1, linktype, memoryview(block).toreadonly(),
                                      starts, ends, stamps))
            number += count
        self._received += number - self._number
        self._number = number
        return drained


def _arphrd(interface: str) -> int:
    """The ARPHRD_* hardware type of an interface (what its link header looks like).

    Asked of the kernel (SIOCGIFHWADDR) rather than read from /sys/class/net, which
    shows the interfaces of the network namespace /sys was mounted in, not ours."""
    try:
        socket.if_nametoindex(interface)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = fcntl.ioctl(sock, _SIOCGIFHWADDR, struct.pack("16s16x", interface.encode()))
    except (OSError, UnicodeError):
        known = ", ".join(["any", *list_interfaces()])
        raise LiveCaptureError(f"no interface {interface!r} (interfaces: {known})") from None
    return struct.unpack_from("H", request, 16)[0]


def _packet_socket(cooked: bool, receive_now: bool) -> socket.socket:
    """A packet socket; protocol 0 receives nothing until bound to an interface, while
    ``"any"`` cannot be bound by name and must receive from the start."""
    kind = socket.SOCK_DGRAM if cooked else socket.SOCK_RAW
    try:
        return socket.socket(socket.AF_PACKET, kind, socket.htons(_ETH_P_ALL) if receive_now
                             else 0)
    except PermissionError:
        # The safe route first: tcpdump is made to hold that privilege, an interpreter is
        # not (setcap on it would let every script it runs capture).
        raise CapturePermissionError(
            "live capture needs root or the CAP_NET_RAW capability. Let tcpdump capture "
            "and shark decode: `sudo tcpdump -U -w - -i lo port 5064 | shark read -`; or "
            "run shark as root. Do not grant the "
            "capability to the Python interpreter: every script it runs would get it"
        ) from None
    except OSError as exc:
        raise LiveCaptureError(f"cannot open a packet socket: {exc}") from exc


def _setup(sock: socket.socket, interface: str, program: list[_Insn], snaplen: int,
           buffer_size: int) -> tuple[mmap.mmap, int, int]:
    """Attach the filter, switch to a TPACKET_V3 ring, start receiving and map the ring:
    (ring, block size, number of blocks). The filter goes first so that the ring only
    ever sees matches."""
    instructions = b"".join(struct.pack("HBBI", *insn) for insn in program)
    code = ctypes.create_string_buffer(instructions)
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER,
                    struct.pack("HP", len(program), ctypes.addressof(code)))
    sock.setsockopt(_SOL_PACKET, _PACKET_VERSION, _TPACKET_V3)
    block_size = 1 << (snaplen + _FRAME_OVERHEAD + 64).bit_length()  # room for one packet
    blocks = max(2, buffer_size // block_size)
    frame_size = 2048  # TPACKET_V3 ignores frames, but the request must be consistent
    sock.setsockopt(_SOL_PACKET, _PACKET_RX_RING, struct.pack(
        "<7I", block_size, blocks, frame_size, block_size // frame_size * blocks,
        BLOCK_TIMEOUT_MS, 0, 0,
    ))
    # (setting the ring emptied the queue of what "any" received before the filter)
    if interface != "any":
        sock.bind((interface, _ETH_P_ALL))
    sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, _STATS.size)  # zero the counters
    return mmap.mmap(sock.fileno(), block_size * blocks), block_size, blocks


# -- filters -----------------------------------------------------------------------------


def _program(bpf: str | None, ports: tuple[int, ...], cooked: bool, snaplen: int,
             use_libpcap: bool) -> list[_Insn] | None:
    """The filter compiled by libpcap, or None when the built-in one should be used."""
    if bpf is None and not use_libpcap:
        return None
    expression = bpf or filter_expression(ports)
    try:
        program = _compile(expression, cooked)
    except ImportError as exc:  # scapy or libpcap not installed
        if bpf is None:
            return None
        raise LiveCaptureError(
            f"filter expressions need scapy and libpcap ({exc}); without them only the "
            "built-in CA port filter is available"
        ) from exc
    # libpcap's "accept" keeps 65535 bytes (scapy compiles for that snaplen): keep ours
    program = [(code, jt, jf, snaplen if code == _RET and k else k)
               for code, jt, jf, k in program]
    if cooked:  # compiled for raw IP: make sure it is IP
        program = [
            (_LD_W_ABS, 0, 0, _SKF_AD_PROTOCOL),
            (_JEQ, 2, 0, _ETH_P_IP),
            (_JEQ, 1, 0, _ETH_P_IPV6),
            (_RET, 0, 0, 0),
        ] + program
    return program


def _compile(expression: str, cooked: bool) -> list[_Insn]:
    """Compile a pcap filter expression with libpcap, through scapy."""
    log = logging.getLogger("scapy")
    if log.level == logging.NOTSET:  # not configured by the user: no import-time warnings
        log.setLevel(logging.ERROR)
    from scapy.arch.common import compile_filter, free_filter
    from scapy.error import Scapy_Exception

    try:
        compiled = compile_filter(expression,
                                  linktype=LinkType.RAW if cooked else LinkType.EN10MB)
    except Scapy_Exception as exc:
        raise LiveCaptureError(f"bad filter expression {expression!r}: {exc}") from None
    try:
        return [(insn.code, insn.jt, insn.jf, insn.k & 0xFFFFFFFF)
                for insn in compiled.bf_insns[: compiled.bf_len]]
    finally:
        free_filter(compiled)


def _loopback_guard() -> list[_Insn]:
    """Instructions rejecting packets going out on ``lo``: each comes back in."""
    try:
        loopback = socket.if_nametoindex("lo")
    except OSError:
        return []
    return [
        (_LD_W_ABS, 0, 0, _SKF_AD_PKTTYPE),
        (_JEQ, 0, 3, _PACKET_OUTGOING),
        (_LD_W_ABS, 0, 0, _SKF_AD_IFINDEX),
        (_JEQ, 0, 1, loopback),
        (_RET, 0, 0, 0),
    ]


def _ca_program(ports: tuple[int, ...], cooked: bool, snaplen: int) -> list[_Insn]:
    """The CA port filter as classic BPF, equivalent to libpcap's compilation of
    :func:`filter_expression`: IPv4 (first fragments only) and IPv6 (no extension
    headers), UDP or TCP, source or destination port in the set."""
    link = 0 if cooked else 14  # where the IP header starts
    udp = sorted(set(CA_PORTS["udp"]) | set(ports))
    tcp = sorted(set(CA_PORTS["tcp"]) | set(ports))
    code: list[tuple[int, int | str, int | str, int] | str] = [
        (_LD_W_ABS, 0, 0, _SKF_AD_PROTOCOL) if cooked else (_LD_H_ABS, 0, 0, 12),
        (_JEQ, "ip4", 0, _ETH_P_IP),
        (_JEQ, "ip6", "reject", _ETH_P_IPV6),
        "ip4",
        (_LD_H_ABS, 0, 0, link + 6),
        (_JSET, "reject", 0, 0x1FFF),  # a fragment offset: no transport header here
        (_LDX_B_MSH, 0, 0, link),  # X = IPv4 header length
        (_LD_B_ABS, 0, 0, link + 9),
        (_JEQ, "udp", 0, socket.IPPROTO_UDP),
        (_JEQ, "tcp", "reject", socket.IPPROTO_TCP),
        "ip6",
        (_LDX_IMM, 0, 0, 40),
        (_LD_B_ABS, 0, 0, link + 6),
        (_JEQ, "udp", 0, socket.IPPROTO_UDP),
        (_JEQ, "tcp", "reject", socket.IPPROTO_TCP),
    ]
    for name, numbers in (("udp", udp), ("tcp", tcp)):
        code.append(name)
        for field in (0, 2):  # source port, then destination port
            code.append((_LD_H_IND, 0, 0, link + field))
            code += [(_JEQ, "accept", 0, port) for port in numbers]
        code.append((_RET, 0, 0, 0))
    code += ["reject", (_RET, 0, 0, 0), "accept", (_RET, 0, 0, snaplen)]
    return _assemble(code)


def _assemble(code: list[tuple[int, int | str, int | str, int] | str]) -> list[_Insn]:
    """Resolve jump labels (strings in the list, and as jump targets) to offsets."""
    labels: dict[str, int] = {}
    instructions: list[tuple[int, int | str, int | str, int]] = []
    for item in code:
        if isinstance(item, str):
            labels[item] = len(instructions)
        else:
            instructions.append(item)
    program = []
    for index, (op, jt, jf, k) in enumerate(instructions):
        jumps = [labels[j] - index - 1 if isinstance(j, str) else j for j in (jt, jf)]
        if max(jumps) > 255:
            raise LiveCaptureError("too many ports for the built-in filter")
        program.append((op, jumps[0], jumps[1], k))
    return program

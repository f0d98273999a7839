"""The live-capture scenario, run inside a private network namespace whose only
interface is ``lo`` (``tests/shark/capture/test_live.py`` starts it, after ``ip link
set lo up``): ``live_scenario.py WORKDIR``.

It captures with :class:`LiveCapture` in each configuration of :data:`CONFIGS` while it
sends CA traffic (UDP to 5064 and 5065, a TCP exchange with a listener on 5064, UDP to
an extra port) and traffic the kernel filter must drop (UDP to 9999, TCP to 7001), all
to 127.0.0.1; it writes what it captured to ``WORKDIR/result.json`` and each capture as
pcapng, for the tests to check. It also times :meth:`LiveCapture.stop` from another
thread and sees what a capture does when its interface goes down.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import peers

from decoder import messages
from shark.capture.files import Frame
from shark.capture.live import LiveCapture, LiveCaptureError, default_interface, list_interfaces
from shark.capture.writer import PcapngWriter

SCRIPT = Path(__file__).resolve()
LOOPBACK = peers.LOOPBACK
#: Capture configurations of the scenario: name -> LiveCapture keyword arguments.
CONFIGS: dict[str, dict[str, Any]] = {
    "lo-libpcap": {"interface": "lo", "ports": [6000]},
    "lo-builtin": {"interface": "lo", "ports": [6000], "use_libpcap": False},
    "any-libpcap": {"interface": "any", "ports": [6000]},
    "any-builtin": {"interface": "any", "ports": [6000], "use_libpcap": False},
    "lo-expression": {"interface": "lo", "bpf": "udp dst port 6000"},
}
#: Datagrams the scenario sends to each UDP port (one of them carries no CA).
UDP_SENT = {5064: 5, 5065: 2, 6000: 3, 9999: 4}
CLIENT_BYTES = (messages.VersionRequest(priority=0, version=13).to_bytes()
                + messages.ClientNameRequest(name="tester").to_bytes())
SERVER_BYTES = messages.VersionResponse(priority=0, version=13).to_bytes()


def _send_traffic() -> None:
    """CA and non-CA traffic on 127.0.0.1, every exchange complete when this returns."""
    sinks = []
    for port in UDP_SENT:  # bound, so that no ICMP "port unreachable" comes back
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind((LOOPBACK, port))
        sinks.append(sink)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        for port, count in UDP_SENT.items():
            for cid in range(count):
                client.sendto(messages.VersionRequest(priority=0, version=13).to_bytes()
                              + messages.SearchRequest(name="LIVE:PV", reply=10, version=13,
                                                       cid=cid).to_bytes(), (LOOPBACK, port))
    for port, request, reply in ((5064, CLIENT_BYTES, SERVER_BYTES), (7001, b"GET", b"OK")):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind((LOOPBACK, port))
            listener.listen()
            client = socket.create_connection((LOOPBACK, port))
            server, _ = listener.accept()
            client.sendall(request)
            assert server.recv(len(request), socket.MSG_WAITALL) == request
            server.sendall(reply)
            assert client.recv(len(reply), socket.MSG_WAITALL) == reply
            client.close()
            server.close()
    for sink in sinks:
        sink.close()


def _run_capture(name: str, work: Path) -> dict[str, Any]:
    try:
        capture = LiveCapture(**CONFIGS[name])
    except LiveCaptureError as exc:
        return {"error": str(exc)}
    with capture:
        t_before = time.time_ns()
        _send_traffic()
        t_after = time.time_ns()
        frames: list[Frame] = []
        while batch := capture.read_batch(timeout=0.3):
            frames += batch
        with PcapngWriter(work / f"{name}.pcapng") as writer:
            interface = writer.add_interface(capture.linktype, capture.interface,
                                             capture.snaplen)
            for frame in frames:
                writer.write(frame, interface)
        return {"linktype": capture.linktype, "compiler": capture.compiler,
                "filter": capture.filter, "t_before": t_before, "t_after": t_after,
                "stats": list(capture.stats()),
                "frames": [[f.number, f.time_ns, f.linktype, bytes(f.data).hex()]
                           for f in frames]}


def _stop_timing() -> tuple[float, list[float]]:
    """How long iteration takes to end after stop() from another thread, and how long an
    idle read_batch(0) and read_batch(0.2) wait."""
    with LiveCapture("lo") as capture:
        waits = []
        for timeout in (0, 0.2):
            start = time.monotonic()
            assert capture.read_batch(timeout) == []
            waits.append(round(time.monotonic() - start, 2))
        threading.Timer(0.2, capture.stop).start()
        start = time.monotonic()
        assert list(capture) == []
        return time.monotonic() - start, waits


def _interface_down() -> dict[str, Any] | None:
    """What reading a capture on an Ethernet interface (a bridge, no traffic) does when
    the interface goes down; None if no bridge can be made here."""
    if subprocess.run(["ip", "link", "add", "shark0", "type", "bridge"],
                      capture_output=True).returncode:
        return None
    subprocess.run(["ip", "link", "set", "shark0", "up"], check=True)
    with LiveCapture("shark0") as capture:
        down = ["ip", "link", "set", "shark0", "down"]
        threading.Timer(0.2, subprocess.run, [down]).start()
        try:
            capture.read_batch(5)
        except LiveCaptureError as exc:
            return {"linktype": capture.linktype, "errno": exc.errno, "message": str(exc)}
    return {"linktype": capture.linktype, "errno": None}


def scenario_main(work: Path) -> None:
    result: dict[str, Any] = {"interfaces": list_interfaces(),
                              "default_interface": default_interface()}
    result["captures"] = {name: _run_capture(name, work) for name in CONFIGS}
    result["stop_seconds"], result["read_batch_timeout"] = _stop_timing()
    result["interface_down"] = _interface_down()
    (work / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    scenario_main(Path(sys.argv[1]))

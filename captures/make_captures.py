"""Regenerate the project's own Channel Access captures from real peers, with manifests.

Each scenario runs a pythonSoftIOC server and a pyepics client (``epics.ca``, libca) in a
private network namespace and captures ``lo`` with tcpdump (machinery: tests/helpers/peers.py).
Next to every capture NAME.pcap a manifest NAME.json records the ground truth: what the
server served, what the client did and saw in order, and per-command CA message counts
obtained from the capture with dpkt and our own TCP reassembly (dpkt is a dev-time tool
here, never a dependency of the product).  Manifest keys follow ../shared/captures.

Usage (as root for the private namespace; see captures/README.md)::

    .venv/bin/python captures/make_captures.py                 # all scenarios
    .venv/bin/python captures/make_captures.py softioc_pyepics_basic

Internally the same file is the client: ``make_captures.py client NAME PARAMS.json``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import importlib.metadata
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "helpers"))

import peers  # noqa: E402  (tests/helpers/peers.py: the real-peer machinery)

COMMAND_NAMES = [
    "VERSION", "EVENT_ADD", "EVENT_CANCEL", "READ", "WRITE", "SNAPSHOT", "SEARCH", "BUILD",
    "EVENTS_OFF", "EVENTS_ON", "READ_SYNC", "ERROR", "CLEAR_CHANNEL", "RSRV_IS_UP",
    "NOT_FOUND", "READ_NOTIFY", "READ_BUILD", "REPEATER_CONFIRM", "CREATE_CHAN",
    "WRITE_NOTIFY", "CLIENT_NAME", "HOST_NAME", "ACCESS_RIGHTS", "ECHO", "REPEATER_REGISTER",
    "SIGNAL", "CREATE_CH_FAIL", "SERVER_DISCONN",
]
CMD = {name: i for i, name in enumerate(COMMAND_NAMES)}
DBR_BASES = ["STRING", "SHORT", "FLOAT", "ENUM", "CHAR", "LONG", "DOUBLE"]
DBR_FAMILIES = ["", "STS_", "TIME_", "GR_", "CTRL_"]
SUMMARY_LIMIT = 20  # arrays longer than this are summarised in manifests


def dbr_name(dbr_type: int) -> str:
    """CA name of a DBR type code, e.g. 20 -> 'DBR_TIME_DOUBLE'."""
    if 0 <= dbr_type < 35:
        family, base = divmod(dbr_type, 7)
        return f"DBR_{DBR_FAMILIES[family]}{DBR_BASES[base]}"
    return {35: "DBR_PUT_ACKT", 36: "DBR_PUT_ACKS", 37: "DBR_STSACK_STRING",
            38: "DBR_CLASS_NAME"}.get(dbr_type, f"DBR_{dbr_type}")


def summarize(value: Any) -> Any:
    """JSON-able value; long arrays become count/first/last/sum so manifests stay small."""
    value = peers.jsonable(value)
    if isinstance(value, list) and len(value) > SUMMARY_LIMIT:
        numeric = all(isinstance(v, (int, float)) for v in value)
        return {"count": len(value), "first": value[:5], "last": value[-1],
                "sum": sum(value) if numeric else None}
    return value


# ============================================================ client side (in the namespace)


class Client:
    """Drives pyepics' libca wrapper ``epics.ca`` and logs each operation with its result.

    The low-level API is used (not ``epics.PV``) so that every logged operation maps to
    exactly one kind of CA request: no hidden auto-monitors or cached reads.
    """

    def __init__(self) -> None:
        from epics import ca

        self.ca = ca
        self.libca_version = ca.version()  # creates the context; no traffic yet
        self.t0 = time.time()
        self.ops: list[dict[str, Any]] = []
        self.chids: dict[str, Any] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self._sub_refs: dict[str, tuple[Any, ...]] = {}

    def _rel(self) -> float:
        return round(time.time() - self.t0, 6)

    def _log(self, op: str, t_start: float, **info: Any) -> dict[str, Any]:
        entry = {"op": op, "t_start": t_start, **info, "t_end": self._rel()}
        self.ops.append(peers.jsonable(entry))
        return entry

    def connect(self, names: Sequence[str], timeout: float) -> None:
        """Create all channels at once (searches batched), then wait for each."""
        t = self._rel()
        for name in names:
            self.chids[name] = self.ca.create_channel(name, connect=False)
        self._log("connect", t, pvs=list(names), timeout=timeout,
                  result={name: self._connection(name, timeout) for name in names})

    def _connection(self, name: str, timeout: float) -> dict[str, Any]:
        chid = self.chids[name]
        if not self.ca.connect_channel(chid, timeout=timeout):
            return {"connected": False}
        native = self.ca.field_type(chid)
        return {"connected": True, "native_dbr_type": native, "native_dbr": dbr_name(native),
                "element_count": self.ca.element_count(chid), "host": self.ca.host_name(chid),
                "read_access": bool(self.ca.read_access(chid)),
                "write_access": bool(self.ca.write_access(chid))}

    def forget(self, name: str) -> None:
        """Clear a channel that never connected (stops libca's search retries)."""
        t = self._rel()
        self.ca.clear_channel(self.chids.pop(name))
        self._log("clear_unconnected", t, pv=name)

    def _dbr(self, name: str, form: str) -> int:
        return self.ca.promote_type(self.chids[name], use_time=form == "time",
                                    use_ctrl=form == "ctrl")

    def get(self, name: str, form: str = "plain", count: int | None = None) -> Any:
        """One READ_NOTIFY: pyepics form 'plain' (native), 'time' or 'ctrl'."""
        t, dbr = self._rel(), self._dbr(name, form)
        data = self.ca.get_with_metadata(self.chids[name], ftype=dbr, count=count, timeout=5)
        data = dict(data or {})
        value = data.pop("value", None)
        self._log("get", t, pv=name, form=form, dbr=dbr_name(dbr), dbr_type=dbr,
                  request_count=count or 0, ok=bool(data) or value is not None,
                  value=summarize(value), meta=peers.jsonable(data))
        return value

    def put(self, name: str, value: Any, wait: bool) -> None:
        """WRITE (wait=False) or WRITE_NOTIFY (wait=True, waits for the completion)."""
        t = self._rel()
        status = self.ca.put(self.chids[name], value, wait=wait, timeout=5)
        self._log("put", t, pv=name, value=summarize(value), wait=wait,
                  request="WRITE_NOTIFY" if wait else "WRITE", status=status)

    def subscribe(self, key: str, name: str, form: str = "plain") -> None:
        """EVENT_ADD with pyepics' default mask (DBE_VALUE|DBE_ALARM) and dynamic count."""
        t, dbr = self._rel(), self._dbr(name, form)
        updates: list[dict[str, Any]] = []

        def on_update(value: Any = None, **kw: Any) -> None:
            updates.append(peers.jsonable({
                "t_rel": self._rel(), "value": summarize(value), "count": kw.get("count"),
                "status": kw.get("status"), "severity": kw.get("severity"),
                "timestamp": kw.get("timestamp")}))

        self._sub_refs[key] = self.ca.create_subscription(
            self.chids[name], use_time=form == "time", use_ctrl=form == "ctrl",
            callback=on_update)
        self.subscriptions[key] = {"pv": name, "form": form, "dbr": dbr_name(dbr),
                                   "dbr_type": dbr, "mask": "DBE_VALUE|DBE_ALARM",
                                   "updates": updates}
        self._log("subscribe", t, subscription=key, pv=name, form=form, dbr=dbr_name(dbr))

    def unsubscribe(self, key: str) -> None:
        t = self._rel()
        self.ca.clear_subscription(self._sub_refs.pop(key)[2])
        self._log("unsubscribe", t, subscription=key,
                  updates_so_far=len(self.subscriptions[key]["updates"]))

    def wait(self, seconds: float) -> None:
        t = self._rel()
        time.sleep(seconds)
        self._log("wait", t, seconds=seconds)

    def disconnect(self) -> None:
        """CLEAR_CHANNEL for every channel, then destroy the context (closes the circuit)."""
        t = self._rel()
        names = list(self.chids)
        for name in names:
            self.ca.clear_channel(self.chids.pop(name))
        self.ca.finalize_libca()
        self._log("disconnect", t, pvs=names)

    def result(self) -> dict[str, Any]:
        libca = str(self.ca.find_libca())
        return {"implementation": f"pyepics {importlib.metadata.version('pyepics')} (epics.ca)",
                "libca": libca, "libca_version": self.libca_version, "pid": os.getpid(),
                "t0_unix": self.t0, "ops": self.ops, "subscriptions": self.subscriptions}


# --------------------------------------------------------------------------- scenarios


def _ai(name: str, value: float, **fields: Any) -> dict[str, Any]:
    return {"name": name, "type": "ai", "value": value, "fields": fields}


def _counter(name: str, period: str = ".1 second") -> dict[str, Any]:
    """A calc record counting up on its own (DB record, no Python involved)."""
    return {"name": name, "type": "calc", "fields": {"SCAN": period, "CALC": "VAL+1"}}


BASIC = "DEMO:BASIC:"
BASIC_RECORDS = [
    _ai(BASIC + "TEMP", 85.5, EGU="degC", PREC=2, LOPR=-50, HOPR=150, LOW=-10, LSV="MINOR",
        LOLO=-30, LLSV="MAJOR", HIGH=80, HSV="MINOR", HIHI=100, HHSV="MAJOR"),
    {"name": BASIC + "MODE", "type": "longout", "value": 3,
     "fields": {"EGU": "step", "DRVL": 0, "DRVH": 100}},
    {"name": BASIC + "STATE", "type": "mbbi", "value": 1,
     "options": ["Idle", "Running", ["Fault", "MAJOR"]]},
    {"name": BASIC + "LABEL", "type": "stringin", "value": "hello shark"},
    {"name": BASIC + "ENABLE", "type": "bo", "value": 0, "fields": {"ZNAM": "Off", "ONAM": "On"}},
    {"name": BASIC + "WAVE", "type": "waveform_out", "ftvl": "DOUBLE", "nelm": 10,
     "value": [0.5 * i for i in range(10)]},
    _counter(BASIC + "COUNTER"),
]
BASIC_MISSING = BASIC + "NO_SUCH_PV"


def basic_client(c: Client) -> None:
    pvs = [r["name"] for r in BASIC_RECORDS]
    c.connect([*pvs, BASIC_MISSING], timeout=1.5)
    c.forget(BASIC_MISSING)
    for name in pvs:
        c.get(name)
    c.get(BASIC + "TEMP", "ctrl")
    c.get(BASIC + "STATE", "ctrl")
    c.get(BASIC + "TEMP", "time")
    c.get(BASIC + "MODE", "time")
    c.put(BASIC + "MODE", 42, wait=False)
    c.put(BASIC + "ENABLE", 1, wait=True)
    c.put(BASIC + "WAVE", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], wait=True)
    c.get(BASIC + "MODE")
    c.subscribe("counter_time", BASIC + "COUNTER", "time")
    c.wait(1.0)
    c.unsubscribe("counter_time")
    c.disconnect()


ARR = "DEMO:ARRAYS:"
BIG_NELM = 100_000
BIG_READ = 10_000  # 80 kB of doubles: needs the extended header, keeps the pcap < 100 kB
ARRAY_RECORDS = [
    {"name": ARR + "BIG", "type": "waveform", "ftvl": "DOUBLE", "nelm": BIG_NELM,
     "value": {"arange": BIG_NELM}},
    {"name": ARR + "EMPTY", "type": "waveform_out", "ftvl": "DOUBLE", "nelm": 16},
]


def arrays_client(c: Client) -> None:
    c.connect([ARR + "BIG", ARR + "EMPTY"], timeout=5)
    c.get(ARR + "BIG", count=BIG_READ)
    c.get(ARR + "BIG", count=10)
    c.get(ARR + "EMPTY")
    c.subscribe("empty_dynamic", ARR + "EMPTY")
    c.wait(0.2)
    c.put(ARR + "EMPTY", [1.5, 2.5, 3.5], wait=True)
    c.wait(0.2)
    c.get(ARR + "EMPTY")
    c.unsubscribe("empty_dynamic")
    c.disconnect()


MON = "DEMO:MON:"
MONITOR_RECORDS = [
    _counter(MON + "TICK"),
    {"name": MON + "SINE", "type": "calc",
     "fields": {"INPA": MON + "TICK CP", "CALC": "10*SIN(A/3)", "PREC": 3, "EGU": "mm",
                "HOPR": 10, "LOPR": -10, "HIGH": 5, "HSV": "MINOR", "HIHI": 9, "HHSV": "MAJOR",
                "LOW": -5, "LSV": "MINOR", "LOLO": -9, "LLSV": "MAJOR"}},
    {"name": MON + "COUNT", "type": "longin", "db": True,
     "fields": {"INP": MON + "TICK CP", "EGU": "cts"}},
]


def monitors_client(c: Client) -> None:
    c.connect([MON + "TICK", MON + "SINE", MON + "COUNT"], timeout=5)
    c.subscribe("sine_time", MON + "SINE", "time")
    c.subscribe("count_plain", MON + "COUNT")
    c.subscribe("tick_ctrl", MON + "TICK", "ctrl")
    c.wait(2.0)
    for key in ("sine_time", "count_plain", "tick_ctrl"):
        c.unsubscribe(key)
    c.disconnect()


@dataclasses.dataclass(frozen=True)
class Scenario:
    file: str
    description: str
    records: list[dict[str, Any]]
    client: Callable[[Client], None]
    missing_pvs: tuple[str, ...] = ()
    max_array_bytes: int | None = None
    notes: Mapping[str, str] = dataclasses.field(default_factory=dict)


SCENARIOS = {
    "softioc_pyepics_basic": Scenario(
        "softioc_pyepics_basic.pcap",
        "Demo capture: pyepics connects to 7 PVs of a softIOC (ai in HIGH/MINOR alarm with "
        "EGU/PREC/limits, longout, mbbi with state strings, stringin, bo, 10-element double "
        "waveform, 10 Hz calc counter) plus one PV nobody serves (its SEARCH goes unanswered, "
        "retried for 1.5 s); plain READ_NOTIFY of each, DBR_CTRL and DBR_TIME reads, WRITE, "
        "two WRITE_NOTIFY, a DBR_TIME_DOUBLE subscription for 1 s, CLEAR_CHANNEL, close.",
        BASIC_RECORDS, basic_client, missing_pvs=(BASIC_MISSING,)),
    "softioc_pyepics_arrays": Scenario(
        "softioc_pyepics_arrays.pcap",
        f"Arrays: a {BIG_NELM}-element DOUBLE waveform (CREATE_CHAN reply count > 0xFFFF) read "
        f"with count {BIG_READ} (80000-byte reply: extended 24-byte header) and count 10; an "
        "empty waveform (NORD=0) read with count 0 (reply of 0 elements), monitored with "
        "dynamic count (first update empty), then written with 3 elements.",
        ARRAY_RECORDS, arrays_client, max_array_bytes=1_000_000,
        notes={"empty_update": "The server's first EVENT_ADD reply for the empty waveform has "
               "data_count 0 and an empty payload; pyepics 3.5.10 does not call the user "
               "callback for it, so the client records 1 update while the capture holds 2 "
               "update replies (+1 for the EVENT_CANCEL); see event_add_reply_counts.",
               "max_array_bytes": "EPICS_CA_MAX_ARRAY_BYTES=1000000 on both sides (the "
               "default 16384 refuses the 80000-byte read)."}),
    "softioc_pyepics_monitors": Scenario(
        "softioc_pyepics_monitors.pcap",
        "Subscriptions on one circuit for 2 s: DBR_TIME_DOUBLE of a 10 Hz sine calc with alarm "
        "limits (status/severity change), plain DBR_LONG of a longin following a 10 Hz "
        "counter, DBR_CTRL_DOUBLE of the counter; then EVENT_CANCEL of each.",
        MONITOR_RECORDS, monitors_client),
}


def client_main(name: str) -> int:
    """Run one scenario's client (inside the namespace) and save what it did and saw."""
    params = peers.load_client_params()
    client = Client()
    SCENARIOS[name].client(client)
    peers.save_client_result(params, client.result())
    return 0


# ===================================================== capture analysis (dpkt, dev-time only)


@dataclasses.dataclass
class Message:
    command: int
    payload_size: int
    data_type: int
    count: int
    p1: int
    p2: int
    extended: bool
    payload: bytes


def split_messages(data: bytes) -> tuple[list[Message], int]:
    """Split a CA byte stream into messages; return them and the trailing byte count.

    Header: 16 bytes; 24 when payload_size == 0xFFFF and data_count == 0 (the real size
    and count follow as two uint32).  payload_size counts the bytes after the header.
    """
    messages, offset = [], 0
    while offset + 16 <= len(data):
        cmd, size, dtype, count, p1, p2 = struct.unpack_from(">HHHHII", data, offset)
        header, extended = 16, size == 0xFFFF and count == 0
        if extended:
            if offset + 24 > len(data):
                break
            size, count = struct.unpack_from(">II", data, offset + 16)
            header = 24
        if offset + header + size > len(data):
            break
        body = data[offset + header: offset + header + size]
        messages.append(Message(cmd, size, dtype, count, p1, p2, extended, body))
        offset += header + size
    return messages, len(data) - offset


def read_ip_packets(path: Path) -> Iterator[tuple[float, Any]]:
    """(timestamp, dpkt IP) for each IPv4 frame of a pcap/pcapng file."""
    import dpkt

    with path.open("rb") as f:
        is_ng = f.read(4) == b"\x0a\x0d\x0d\x0a"
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if is_ng else dpkt.pcap.Reader(f)
        decode = {dpkt.pcap.DLT_EN10MB: dpkt.ethernet.Ethernet,
                  dpkt.pcap.DLT_LINUX_SLL: dpkt.sll.SLL}.get(reader.datalink(), dpkt.ip.IP)
        for ts, buf in reader:
            frame = decode(buf)
            ip = frame if isinstance(frame, dpkt.ip.IP) else frame.data
            if isinstance(ip, dpkt.ip.IP):
                yield float(ts), ip


def _addr(ip: Any, port: int, src: bool) -> str:
    raw = ip.src if src else ip.dst
    return f"{'.'.join(str(b) for b in raw)}:{port}"


@dataclasses.dataclass
class TcpFlow:
    """One direction of a TCP connection: its segments and what we learn on reassembly."""

    isn: int | None = None
    syn_only: bool = False
    segments: list[tuple[int, bytes]] = dataclasses.field(default_factory=list)

    def reassemble(self) -> tuple[bytes, bool]:
        """Payload bytes in sequence order, retransmissions dropped; and whether a gap was seen."""
        if not self.segments:
            return b"", False
        base = (self.isn + 1) if self.isn is not None else min(s for s, _ in self.segments)
        ordered = sorted(((seq - base) % 2**32, data) for seq, data in self.segments)
        out, gap = bytearray(), False
        for rel, data in ordered:
            if rel + len(data) <= len(out):
                continue  # retransmission of bytes we already have
            if rel > len(out):
                gap = True
                continue
            out += data[len(out) - rel:]
        return bytes(out), gap


def collect(path: Path) -> dict[str, Any]:
    """Group the capture into TCP flows and UDP datagrams."""
    import dpkt

    flows: dict[tuple[str, str], TcpFlow] = collections.defaultdict(TcpFlow)
    udp, frames, times = [], 0, []
    for ts, ip in read_ip_packets(path):
        frames += 1
        times.append(ts)
        seg = ip.data
        if isinstance(seg, dpkt.tcp.TCP):
            flow = flows[(_addr(ip, seg.sport, True), _addr(ip, seg.dport, False))]
            if seg.flags & dpkt.tcp.TH_SYN:
                flow.isn = seg.seq
                flow.syn_only = not seg.flags & dpkt.tcp.TH_ACK
            if seg.data:
                flow.segments.append((seg.seq, bytes(seg.data)))
        elif isinstance(seg, dpkt.udp.UDP):
            udp.append((seg.sport, seg.dport, bytes(seg.data)))
    return {"flows": flows, "udp": udp, "frames": frames,
            "duration_s": round(max(times) - min(times), 6) if times else 0.0}


def _udp_role(sport: int, dport: int, ports: Mapping[str, int]) -> str:
    if dport == ports["server"]:
        return "to_server_port"
    if sport == ports["server"]:
        return "from_server_port"
    if dport == ports["repeater"]:
        return "to_repeater_port"
    return "other"


def _count(messages: Sequence[Message]) -> dict[str, int]:
    counts = collections.Counter(m.command for m in messages)
    return {str(k): counts[k] for k in sorted(counts)}


def analyse(path: Path, ports: Mapping[str, int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-command message counts (manifest layout of ../shared) and capture analysis."""
    data = collect(path)
    direction_msgs: dict[str, list[Message]] = {"tcp_client_to_server": [],
                                                "tcp_server_to_client": []}
    streams = []
    for (src, dst), flow in sorted(data["flows"].items()):
        c2s = flow.syn_only if flow.isn is not None else dst.endswith(f":{ports['server']}")
        key = "tcp_client_to_server" if c2s else "tcp_server_to_client"
        stream, gap = flow.reassemble()
        msgs, trailing = split_messages(stream)
        direction_msgs[key] += msgs
        streams.append({"flow": f"{src}->{dst}", "direction": key[4:], "bytes": len(stream),
                        "segments": len(flow.segments), "ca_messages": len(msgs),
                        "trailing_bytes": trailing, "gap": gap})
    udp_msgs, by_role, searches = [], collections.defaultdict(list), collections.Counter()
    udp_trailing = 0
    for sport, dport, payload in data["udp"]:
        msgs, trailing = split_messages(payload)
        udp_trailing += trailing > 0
        udp_msgs += msgs
        by_role[_udp_role(sport, dport, ports)] += msgs
        if dport == ports["server"]:
            searches.update(m.payload.rstrip(b"\0").decode("latin-1")
                            for m in msgs if m.command == CMD["SEARCH"])
    counts = {**{k: _count(v) for k, v in direction_msgs.items()}, "udp": _count(udp_msgs),
              "udp_by_port_role": {k: _count(v) for k, v in sorted(by_role.items())}}
    counts["total_ca_messages"] = sum(map(len, direction_msgs.values())) + len(udp_msgs)
    s2c = direction_msgs["tcp_server_to_client"]
    analysis = {
        "frames": data["frames"], "duration_s": data["duration_s"],
        "udp_datagrams": len(data["udp"]), "udp_datagrams_with_trailing_bytes": udp_trailing,
        "tcp_streams": streams,
        "tcp_streams_with_gaps": sum(s["gap"] for s in streams),
        "extended_header_messages": {k: _count([m for m in v if m.extended])
                                     for k, v in direction_msgs.items()},
        "read_notify_reply_status": _status_histogram(s2c, CMD["READ_NOTIFY"]),
        "read_notify_reply_counts": _count_histogram(s2c, CMD["READ_NOTIFY"]),
        "event_add_reply_counts": _count_histogram(s2c, CMD["EVENT_ADD"]),
        "write_notify_reply_status": _status_histogram(s2c, CMD["WRITE_NOTIFY"]),
        "udp_search_requests_per_pv": dict(sorted(searches.items())),
    }
    return counts, analysis


def _status_histogram(messages: Sequence[Message], command: int) -> dict[str, int]:
    """ECA status (parameter 1) of the replies of one command."""
    hist = collections.Counter(m.p1 for m in messages if m.command == command)
    return {str(k): v for k, v in sorted(hist.items())}


def _count_histogram(messages: Sequence[Message], command: int) -> dict[str, int]:
    """Element counts (data_count, from the extended header when present) of replies."""
    hist = collections.Counter(m.count for m in messages if m.command == command)
    return {str(k): v for k, v in sorted(hist.items())}


# ============================================================= manifest (host side)


def _tool_versions(client: Mapping[str, Any]) -> dict[str, str]:
    versions = {pkg: _pkg_version(pkg) for pkg in
                ("softioc", "epicscorelibs", "pyepics", "dpkt", "numpy")}
    tcpdump = subprocess.run([shutil.which("tcpdump") or "tcpdump", "--version"],
                             capture_output=True, text=True, timeout=10)
    versions.update(
        python=platform.python_version(), kernel=platform.release(),
        tcpdump=" / ".join(tcpdump.stdout.splitlines()[:2]),
        client_libca=f"{client.get('libca')} (ca_version {client.get('libca_version')})")
    return versions


def _pkg_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _pvs(records: Sequence[Mapping[str, Any]], client: Mapping[str, Any]) -> list[dict]:
    """Every PV served, with the native type/count the client saw on connection."""
    seen: dict[str, Any] = {}
    for op in client["ops"]:
        if op["op"] == "connect":
            seen.update(op["result"])
    pvs = []
    for rec in records:
        info = seen.get(rec["name"], {})
        pvs.append({"pv": rec["name"], "record_type": rec["type"],
                    "initial_value": summarize(_initial(rec)),
                    "native_dbr": info.get("native_dbr"),
                    "native_dbr_type": info.get("native_dbr_type"),
                    "element_count": info.get("element_count"),
                    "write_access": info.get("write_access")})
    return pvs


def _initial(rec: Mapping[str, Any]) -> Any:
    value = rec.get("value")
    if isinstance(value, Mapping) and "arange" in value:
        return list(range(value["arange"]))
    return value


def _op_counts(client: Mapping[str, Any]) -> dict[str, int]:
    """How many CA requests of each kind the client's operations imply."""
    ops = client["ops"]
    connected = sum(r["connected"] for op in ops if op["op"] == "connect"
                    for r in op["result"].values())
    return {
        "gets": sum(op["op"] == "get" for op in ops),
        "writes": sum(op["op"] == "put" and not op["wait"] for op in ops),
        "write_notifies": sum(op["op"] == "put" and op["wait"] for op in ops),
        "subscribes": sum(op["op"] == "subscribe" for op in ops),
        "unsubscribes": sum(op["op"] == "unsubscribe" for op in ops),
        "connected": connected,
        "updates": sum(len(s["updates"]) for s in client["subscriptions"].values()),
    }


def _check(check: str, observed: int, relation: str, expected: int) -> dict[str, Any]:
    ok = {"==": observed == expected, ">=": observed >= expected}[relation]
    return {"check": check, "observed": observed, "relation": relation, "expected": expected,
            "ok": ok}


def sanity_checks(counts: Mapping[str, Any], analysis: Mapping[str, Any],
                  client: Mapping[str, Any], scenario: Scenario) -> list[dict[str, Any]]:
    """Relations between the client's ground truth and the counts from the capture."""
    c2s, s2c = counts["tcp_client_to_server"], counts["tcp_server_to_client"]
    n = _op_counts(client)

    def get(side: Mapping[str, int], name: str) -> int:
        return side.get(str(CMD[name]), 0)

    checks = [
        _check("c->s READ_NOTIFY == client get ops", get(c2s, "READ_NOTIFY"), "==", n["gets"]),
        _check("s->c READ_NOTIFY == c->s READ_NOTIFY", get(s2c, "READ_NOTIFY"), "==",
               get(c2s, "READ_NOTIFY")),
        _check("c->s WRITE == puts without wait", get(c2s, "WRITE"), "==", n["writes"]),
        _check("c->s WRITE_NOTIFY == puts with wait", get(c2s, "WRITE_NOTIFY"), "==",
               n["write_notifies"]),
        _check("s->c WRITE_NOTIFY == c->s WRITE_NOTIFY", get(s2c, "WRITE_NOTIFY"), "==",
               get(c2s, "WRITE_NOTIFY")),
        _check("c->s CREATE_CHAN == channels connected", get(c2s, "CREATE_CHAN"), "==",
               n["connected"]),
        _check("s->c CREATE_CHAN == channels connected", get(s2c, "CREATE_CHAN"), "==",
               n["connected"]),
        _check("UDP SEARCH replies from the server == channels connected",
               counts["udp_by_port_role"].get("from_server_port", {}).get(str(CMD["SEARCH"]), 0),
               "==", n["connected"]),
        _check("c->s CLEAR_CHANNEL == channels connected", get(c2s, "CLEAR_CHANNEL"), "==",
               n["connected"]),
        _check("c->s EVENT_ADD == subscribe ops", get(c2s, "EVENT_ADD"), "==", n["subscribes"]),
        _check("c->s EVENT_CANCEL == unsubscribe ops", get(c2s, "EVENT_CANCEL"), "==",
               n["unsubscribes"]),
        _check("s->c EVENT_ADD >= updates received + cancels", get(s2c, "EVENT_ADD"), ">=",
               n["updates"] + n["unsubscribes"]),
        _check("no TCP stream with a gap", analysis["tcp_streams_with_gaps"], "==", 0),
        _check("no TCP stream with trailing bytes",
               sum(s["trailing_bytes"] > 0 for s in analysis["tcp_streams"]), "==", 0),
        _check("no UDP datagram with trailing bytes",
               analysis["udp_datagrams_with_trailing_bytes"], "==", 0),
    ]
    for pv in scenario.missing_pvs:
        checks.append(_check(f"UDP SEARCH requests for {pv} (unanswered)",
                             analysis["udp_search_requests_per_pv"].get(pv, 0), ">=", 1))
    return checks


def build_manifest(name: str, scenario: Scenario, result: Mapping[str, Any],
                   pcap: Path) -> dict[str, Any]:
    """The ground-truth manifest of one capture (key names as in ../shared/captures)."""
    client, ports = result["client_result"], result["ports"]
    counts, analysis = analyse(pcap, ports)
    capture = _capture_info(result["capture"], pcap)
    checks = sanity_checks(counts, analysis, client, scenario)
    checks.append(_check("tcpdump reported no kernel drops", capture["kernel_drops"], "==", 0))
    checks.append(_check("frames in file == packets tcpdump captured", analysis["frames"], "==",
                         capture["packets_captured"]))
    updates = {k: len(s["updates"]) for k, s in client["subscriptions"].items()}
    return {
        "name": name, "set": "project", "file": pcap.name,
        "file_size_bytes": pcap.stat().st_size, "description": scenario.description,
        "generated_by": f"captures/make_captures.py {name}",
        "generated_at_unix": time.time(), "network": result["namespace"],
        "capture": capture,
        "tool_versions": _tool_versions(client),
        "ports": {**ports, "client_tcp_flows": [s["flow"] for s in analysis["tcp_streams"]]},
        "servers": [_server(scenario, result)],
        "pvs": _pvs(scenario.records, client),
        "nonexistent_pvs_searched": [
            {"pv": pv, "udp_search_requests": analysis["udp_search_requests_per_pv"].get(pv, 0)}
            for pv in scenario.missing_pvs],
        "clients": [{"id": "client1", "env": result["epics_env"],
                     "exit_code": result["processes"]["client"]["returncode"], **client}],
        "monitor_updates_received": {"per_client": {"client1": updates},
                                     "total": sum(updates.values())},
        "message_counts_by_command": {"method": COUNT_METHOD,
                                      "command_names": dict(enumerate(COMMAND_NAMES)),
                                      **counts},
        "capture_analysis": analysis,
        "sanity_checks": checks, "all_sanity_checks_ok": all(c["ok"] for c in checks),
        "notes": {**NOTES, **scenario.notes},
    }


def _capture_info(capture: Mapping[str, Any], pcap: Path) -> dict[str, Any]:
    """tcpdump's command and its own packet/drop report (paths made relative)."""
    report = capture.get("tcpdump_report", [])

    def reported(suffix: str) -> int | None:
        found = [int(line.split()[0]) for line in report if line.endswith(suffix)]
        return found[0] if found else None

    return {**capture, "file": pcap.name,
            "argv": [pcap.name if a == str(pcap) else a for a in capture["argv"]],
            "file_format": "pcap", "linktype_name": "EN10MB",
            "timestamp_precision": "microsecond",
            "packets_captured": reported("packets captured"),
            "kernel_drops": reported("packets dropped by kernel")}


def _server(scenario: Scenario, result: Mapping[str, Any]) -> dict[str, Any]:
    ioc, log = result["processes"]["ioc"], result.get("ioc_log", {})
    return {
        "id": "ioc1",
        "implementation": f"pythonSoftIOC {_pkg_version('softioc')} (EPICS base rsrv from "
                          f"epicscorelibs {_pkg_version('epicscorelibs')}, PV Access disabled)",
        "tcp_port": result["ports"]["server"], "udp_search_port": result["ports"]["server"],
        "bound_interface": peers.LOOPBACK,
        "beacon_destination": f"{peers.LOOPBACK}:{result['ports']['repeater']}",
        "env": result["epics_env"], "pid": ioc["pid"], "stopped_by": ioc["stopped_by"],
        "writes_seen_by_server": log.get("writes_seen", []),
        "records_config": [{**r, "value": summarize(_initial(r))} for r in scenario.records],
    }


COUNT_METHOD = (
    "Counted by captures/make_captures.py (dpkt): IPv4 frames; each UDP datagram split into "
    "CA messages (16-byte header, 24 bytes if payload_size==0xFFFF and data_count==0, plus "
    "payload_size bytes); TCP segments grouped per direction, ordered by sequence number "
    "relative to the SYN, retransmissions dropped, concatenated and split the same way. "
    "Client = side that sent the SYN. Keys are CA command ids (decimal strings)."
)
NOTES = {
    "repeater": "No CA repeater runs (none is installed with these packages): libca prints "
                "that caRepeater cannot be started, and the IOC's RSRV_IS_UP beacons go to "
                "the repeater port where nothing listens (ICMP is not captured).",
    "search_replies": "rsrv answers a search datagram with one datagram: a VERSION message "
                      "then one SEARCH reply per PV it has; unknown PVs are not answered.",
    "counts_scope": "UDP counts cover every UDP datagram in the capture, including libca's "
                    "wake-up VERSION sent to its own socket at context destruction.",
    "time_base": "ops t_start/t_end and update t_rel are seconds since the client's t0_unix.",
    "capture_filter": "tcpdump -i lo with BPF filter 'udp or tcp' in a private network "
                      "namespace, so the file only holds this scenario's traffic.",
}


# =================================================================== driver


def generate(name: str, outdir: Path) -> dict[str, Any]:
    """Run one scenario, write its capture and manifest, return the manifest."""
    scenario = SCENARIOS[name]
    pcap = outdir / scenario.file
    with tempfile.TemporaryDirectory(prefix=f"shark-{name}-") as work:
        result = peers.run_scenario(
            scenario.records, [sys.executable, str(Path(__file__).resolve()), "client", name],
            work, pcap=pcap, client_timeout=60, max_array_bytes=scenario.max_array_bytes)
    if not result["ok"]:
        raise SystemExit(f"{name}: scenario failed: {result['errors']}")
    manifest = build_manifest(name, scenario, result, pcap)
    (outdir / f"{name}.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["client"]:
        return client_main(args[1])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"scenarios to run (default: all): {', '.join(SCENARIOS)}")
    parser.add_argument("--outdir", type=Path, default=HERE)
    opts = parser.parse_args(args)
    unknown = set(opts.names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    problem = peers.peers_missing() or peers.capture_missing()
    if problem:
        raise SystemExit(f"cannot capture: {problem}")
    failed = []
    for name in opts.names or SCENARIOS:
        t0 = time.time()
        m = generate(name, opts.outdir)
        failed += [] if m["all_sanity_checks_ok"] else [name]
        print(f"{m['file']}: {m['file_size_bytes']} bytes, "
              f"{m['message_counts_by_command']['total_ca_messages']} CA messages, "
              f"{m['monitor_updates_received']['total']} updates, "
              f"checks {'ok' if name not in failed else 'FAILED'} ({time.time() - t0:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The real-peer machinery itself: loopback pinning and one small softioc/pyepics scenario."""

from __future__ import annotations

import struct
import sys
import textwrap
from pathlib import Path

import peers

CLIENT = textwrap.dedent('''
    """Connect to two PVs, read them, write one with a put callback, read it back."""
    from epics import ca

    import peers

    params = peers.load_client_params()
    chids = {name: ca.create_channel(name, connect=False) for name in params["pvs"]}
    seen = {"connected": {n: ca.connect_channel(c, timeout=5) for n, c in chids.items()}}
    seen["get"] = {n: ca.get(c, timeout=5) for n, c in chids.items()}
    seen["put_status"] = ca.put(chids["PEERS:TEST:LO"], 42, wait=True, timeout=5)
    seen["get_after_put"] = ca.get(chids["PEERS:TEST:LO"], timeout=5)
    ca.finalize_libca()
    peers.save_client_result(params, seen)
''')

RECORDS = [
    {"name": "PEERS:TEST:AI", "type": "ai", "value": 1.5, "fields": {"EGU": "V", "PREC": 2}},
    {"name": "PEERS:TEST:LO", "type": "longout", "value": 7},
]


def test_epics_env_is_loopback_pinned() -> None:
    env = peers.epics_env(port=5999, repeater_port=5998)
    addresses = {k: v for k, v in env.items() if k.endswith("ADDR_LIST") and "AUTO" not in k}
    assert addresses and set(addresses.values()) == {peers.LOOPBACK}
    assert env["EPICS_CA_AUTO_ADDR_LIST"] == env["EPICS_CAS_AUTO_BEACON_ADDR_LIST"] == "NO"
    assert env["EPICS_CA_SERVER_PORT"] == env["EPICS_CAS_SERVER_PORT"] == "5999"
    assert env["EPICS_CA_REPEATER_PORT"] == "5998"


def test_free_port_is_usable_for_tcp_and_udp() -> None:
    port = peers.free_port()
    assert 1024 <= port <= 65535


def test_softioc_pyepics_roundtrip_is_captured(require_capture, scenario, tmp_path) -> None:
    client = tmp_path / "client.py"
    client.write_text(CLIENT)
    pcap = tmp_path / "roundtrip.pcap"
    result = scenario(RECORDS, [sys.executable, str(client)], pcap=pcap,
                      client_params={"pvs": [r["name"] for r in RECORDS]}, client_timeout=20)
    assert result["ok"], result["errors"]
    seen = result["client_result"]
    assert all(seen["connected"].values())
    assert seen["get"] == {"PEERS:TEST:AI": 1.5, "PEERS:TEST:LO": 7}
    assert seen["put_status"] == 1 and seen["get_after_put"] == 42
    assert [w["value"] for w in result["ioc_log"]["writes_seen"]] == [42]
    assert _pcap_packet_count(pcap) > 10


def _pcap_packet_count(path: Path) -> int:
    """Count records of a classic pcap file (no dependency on the code under test)."""
    data = path.read_bytes()
    assert data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"), "not a little-endian pcap"
    offset, count = 24, 0
    while offset + 16 <= len(data):
        incl_len = struct.unpack_from("<I", data, offset + 8)[0]
        offset += 16 + incl_len
        count += 1
    return count

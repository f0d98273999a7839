"""libca's wake-up datagram is named, and nothing else is."""

from __future__ import annotations

import pyarrow.compute as pc
from builders import capture

from shark.analysis.notes import WAKEUP, note
from shark.tables.stream import MessageStream


def test_only_a_version_to_its_own_socket_is_a_wake_up() -> None:
    assert note("VERSION", "udp", "127.0.0.1:49600", "127.0.0.1:49600") == WAKEUP
    assert note("VERSION", "udp", "127.0.0.1:49600", "127.0.0.1:5064") is None
    assert note("VERSION", "tcp", "127.0.0.1:5064", "127.0.0.1:5064") is None
    assert note("SEARCH", "udp", "127.0.0.1:1", "127.0.0.1:1") is None
    assert note(None, None, None, None) is None


def test_the_restart_capture_ends_with_libca_waking_itself() -> None:
    rows = []
    for batch in MessageStream.of_capture(capture("ca_server_restart.pcapng")):
        mine = batch.filter(pc.equal(batch.column("src"), batch.column("dst")))
        rows += mine.select(["command", "transport", "src", "dst"]).to_pylist()
    assert rows, "libca's wake-up datagram is in this capture"
    assert all(note(**row) == WAKEUP for row in rows)

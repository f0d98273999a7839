"""Every capture of the shared corpus: message counts per command and direction equal the
manifest's ground truth, and every message decodes completely."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from builders import corpus_params, manifest

import shark
from decoder import DBRValue, Message, Role

DIRECTIONS = ("tcp_client_to_server", "tcp_server_to_client", "udp")


def direction(record: shark.Record) -> str:
    if record.transport == "udp":
        return "udp"
    return {Role.CLIENT: "tcp_client_to_server", Role.SERVER: "tcp_server_to_client"}[
        record.sender]


def touch(value: Any) -> None:
    """Use a decoded value: DBR values down to every metadata field and element."""
    if isinstance(value, DBRValue):
        value.metadata()
        list(value.values)
        for name in ("value", "timestamp", "status_name", "severity_name"):
            getattr(value, name)
    elif isinstance(value, Message):  # an ERROR's copy of the failed request's header
        for name in type(value).FIELDS:
            getattr(value, name)
        assert value.command_name


def decode_everything(message: Message) -> None:
    for name in type(message).FIELDS:
        touch(getattr(message, name))
    for name in type(message).PAYLOAD_FIELDS:
        touch(getattr(message, name))
    for name in ("command_name", "status_name", "data_type_name", "value"):
        if hasattr(type(message), name):
            touch(getattr(message, name))
    repr(message)


@pytest.mark.parametrize("path", corpus_params())
def test_counts_match_the_manifest(path: Path) -> None:
    expected = manifest(path)["message_counts_by_command"]
    counts = {name: Counter() for name in DIRECTIONS}
    for record in shark.read(path):
        assert record.kind == shark.MESSAGE, record  # the corpus has no gaps or damage
        assert record.sender is not None
        counts[direction(record)][str(record.command)] += 1
        decode_everything(record.message)
    for name in DIRECTIONS:
        assert dict(counts[name]) == expected[name], name
    assert sum(sum(c.values()) for c in counts.values()) == expected["total_ca_messages"]


@pytest.mark.parametrize("path", corpus_params())
def test_records_carry_where_and_when(path: Path) -> None:
    circuits: dict[int, set[str]] = {}
    last_frame = 0
    for record in shark.read(path):
        assert record.frame >= last_frame  # in capture order
        last_frame = record.frame
        assert record.time > 1.5e9 and ":" in record.src and ":" in record.dst
        if record.transport == "tcp":
            circuits.setdefault(record.circuit, set()).add(
                " ".join(sorted((record.src, record.dst))))
        else:
            assert record.circuit is None
    assert sorted(circuits) == list(range(1, len(circuits) + 1))  # numbered from 1
    assert all(len(ends) == 1 for ends in circuits.values())  # one connection each

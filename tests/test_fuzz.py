"""The fuzz target: the bundled captures mutated, every in-process entry point run on them.

Mutations (``tests/helpers/mutations.py``): bit flips, truncations, splices of a file's own
bytes, lying pcap header fields (global and per record: lengths, times, link type), a
rewrite as pcapng with a lying field (block lengths, captured length, interface, time
resolution and offset, block type), lying CA header fields (command, size, data type,
count, parameters). Each case must give a clean result (``tests/helpers/entry_points.py``):
records and marks, or a clear error, never a traceback, every output line valid UTF-8 and
every jsonl line JSON. Mutations that keep the frames' lengths must also lose nothing:
every byte of every CA circuit is in a message or an ERROR record.

``make test`` runs a bounded number of examples, the same ones every time (derandomized).
Run more, random ones, on demand::

    SHARK_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_fuzz.py

The export and the TUI are left to the hostile files (``tests/test_hostile.py``): they
are slow per case and share their decoding with the entry points here.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import entry_points as ep
import mutations
import pytest
from hypothesis import HealthCheck, example, given, settings

import shark

_ON_DEMAND = os.environ.get("SHARK_FUZZ_EXAMPLES")

settings.register_profile(
    "shark-fuzz", deadline=None, derandomize=not _ON_DEMAND, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much])


def fuzz(examples: int) -> settings:
    """``examples`` cases in ``make test`` (the table builds are the slow ones), or
    ``SHARK_FUZZ_EXAMPLES`` random ones."""
    return settings(settings.get_profile("shark-fuzz"),
                    max_examples=int(_ON_DEMAND) if _ON_DEMAND else examples)


def _with_file(case: mutations.Case, check) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = case.write(Path(directory))
        with ep.no_stray_output():
            check(path)


def _read(path: Path) -> None:
    records = ep.iterator(path)
    for record in records:
        assert record.size >= 0, record
    ep.cli_read(path, "text")
    result = ep.run_cli(["read", "-f", "jsonl", str(path)])
    ep.check_clean(result, "read -f jsonl")
    lines = ep.check_jsonl(result.out, "read -f jsonl")
    plain = sum(r.kind not in (shark.OPEN, shark.CLOSE) for r in records)
    assert lines == plain, f"{lines} jsonl lines for {plain} records"


def _tables(path: Path) -> None:
    ep.cli_stats(path, "json")
    ep.table_api(path)


@fuzz(100)
@given(mutations.cases())
# a string flipped out of UTF-8 (found before the fix: jsonl lines that were not UTF-8)
@example(mutations.Case("softioc_pyepics_basic.pcap", (mutations.PayloadBitFlip(4725, 0),)))
def test_fuzz_read(case: mutations.Case) -> None:
    """The iterator, ``read`` as text and as jsonl (one line per record)."""
    _with_file(case, _read)


@fuzz(40)
@given(mutations.cases())
# Cases the fuzzer found before the fixes, kept (each raised in stats and the table API):
# times 10^6 too late, far outside the datetime range (ValueError: year is out of range)
@example(mutations.Case("softioc_pyepics_arrays.pcap", (mutations.ToPcapng("tsresol", 0),)))
# a reply timestamped before its request (IndexError in the traffic table)
@example(mutations.Case("softioc_pyepics_arrays.pcap",
                        (mutations.PcapField("ts_frac", 2, record=13614),)))
# the end of a subscription never created (AttributeError in the lifetimes)
@example(mutations.Case("softioc_pyepics_arrays.pcap",
                        (mutations.CaField(2168, "size", 2168),)))
def test_fuzz_tables(case: mutations.Case) -> None:
    """``stats -f json`` and every table of the table API, with the report."""
    _with_file(case, _tables)


def circuit_bytes(records: list[shark.Record]) -> Counter:
    """Bytes per TCP direction in messages and ERROR records: what reached the decoder.
    (GAP records stand for bytes never captured, so they do not count.)"""
    total: Counter = Counter()
    for record in records:
        if record.transport == "tcp" and record.kind in (shark.MESSAGE, shark.ERROR):
            total[record.src, record.dst] += record.size
    return total


def payload_bytes(layout: mutations.Layout) -> Counter:
    total: Counter = Counter()
    for payload in mutations.circuit_payloads(layout):
        src, dst = (f"{'.'.join(map(str, ip))}:{port}" for ip, port in (payload.src,
                                                                       payload.dst))
        total[src, dst] += payload.length
    return total


@pytest.mark.parametrize("name", mutations.CAPTURES)
def test_every_circuit_byte_is_accounted_for_unmutated(name: str) -> None:
    """The invariant of the next test holds on the captures as bundled."""
    layout = mutations.layout(name)
    records = ep.iterator(Path(mutations.OWN_CAPTURES / name))
    assert circuit_bytes(records) == payload_bytes(layout)


@fuzz(100)
@given(mutations.in_place_cases())
# a size of 0xFFF8 mid-circuit (it used to hide what followed in one ERROR record)
@example(mutations.Case("softioc_pyepics_monitors.pcap",
                        (mutations.CircuitCaField(20, "size", 0xFFF8),)))
def test_fuzz_no_silent_loss(case: mutations.Case) -> None:
    """A bit flipped or a CA header field changed inside a circuit's payload: each byte
    still reaches the decoder, so each is in a message or an ERROR record (a lying size
    may swallow the bytes after it into one message or one ERROR, never make them vanish),
    and the reads stay clean."""
    expected = payload_bytes(mutations.layout(case.capture))

    def check(path: Path) -> None:
        records = ep.iterator(path)
        assert circuit_bytes(records) == expected
        ep.cli_read(path, "jsonl")

    _with_file(case, check)

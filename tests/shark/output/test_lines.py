"""Lines written column by column (:mod:`shark.output.lines`) against the lines of one
record at a time (:func:`shark.output.text.format_record`, :func:`shark.output.jsonl.
record_dict`): the same text, character for character, and the same JSON objects, on
every capture of the corpus, in batches of every size."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from builders import OWN_CAPTURES, corpus_params

import shark
from shark.output import kernels
from shark.output.jsonl import record_dict
from shark.output.kernels import QUOTED, Strings, records
from shark.output.lines import JsonLines, TextLines
from shark.output.text import Clock, format_record
from shark.tables.stream import MessageStream, circuit_ends

OWN = [pytest.param(p, id=p.stem) for p in sorted(OWN_CAPTURES.glob("*.pcap"))]


def _batches(path: Path, rows: int) -> tuple[MessageStream, list[pa.RecordBatch]]:
    stream = MessageStream.of_capture(path, lifecycle=True, rows=rows)
    try:
        batches = list(stream)
    except shark.CaptureError:  # a damaged capture: what was read
        batches = []
    return stream, batches


def _records(path: Path) -> list[shark.Record]:
    records: list[shark.Record] = []
    try:
        records.extend(shark.read(path, lifecycle=True))
    except shark.CaptureError:
        pass
    return records


def _text(path: Path, rows: int, base: str = "relative") -> list[str]:
    stream, batches = _batches(path, rows)
    lines = TextLines(base, stream.first_time)
    return b"".join(bytes(lines(b)) for b in batches).decode().splitlines()


@pytest.mark.parametrize("path", [*OWN, *corpus_params()])
@pytest.mark.parametrize("rows", [7, 1 << 15])
def test_text_lines_are_the_lines_of_each_record(path: Path, rows: int) -> None:
    records = _records(path)
    clock = Clock("relative")
    expected = [format_record(r, clock=clock) for r in records]
    assert _text(path, rows) == expected


@pytest.mark.parametrize("base", ["absolute", "delta"])
def test_every_time_base_as_each_record_has_it(base: str) -> None:
    path = OWN_CAPTURES / "softioc_pyepics_monitors.pcap"
    clock = Clock(base)
    expected = [format_record(r, clock=clock) for r in _records(path)]
    assert _text(path, 5, base) == expected


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) < 1e-6
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("path", [*OWN, *corpus_params()])
def test_json_lines_are_the_objects_of_each_record(path: Path) -> None:
    stream, batches = _batches(path, 1000)
    lines = JsonLines()
    objects = [json.loads(line) for b in batches
               for line in bytes(lines(b.filter(pa.array(~circuit_ends(b))))).splitlines()]
    expected = [json.loads(json.dumps(record_dict(r))) for r in _records(path)
                if r.kind.name not in ("OPEN", "CLOSE")]
    assert len(objects) == len(expected)
    for row, (got, want) in enumerate(zip(objects, expected, strict=True)):
        differ = {key for key in set(got) | set(want)
                  if not _same(got.get(key), want.get(key))}
        assert not differ, (row, {k: (got.get(k), want.get(k)) for k in differ})


def test_fixed_point_numbers_round_as_python_does() -> None:
    lines = TextLines("relative", 0.0)
    ns = np.array([0, 499, 500, 1_499, 999_999_500, -500, -1_500, 12_345_678_901], np.int64)
    batch_times = pa.array(ns, pa.timestamp("ns", "UTC"))
    since, _ = lines._time(batch_times, pa.nulls(len(ns), pa.float64()))
    # (nanoseconds since the start; the loop writes them as microseconds)
    units = [kernels._micro(n) for n in since.tolist()]
    assert units == [0, 0, 1, 1, 1_000_000, -1, -2, 12_345_679]


@pytest.mark.parametrize("text", ['plain', 'a "quote" and a \\ backslash', 'line\nbreak\ttab',
                                  '\x00\x01\x1f control', 'µs and ünïcödé ☃', ''])
def test_json_strings_are_escaped_as_json_dumps_does(text: str) -> None:
    data = np.frombuffer(text.encode(), np.uint8)
    strings = Strings(data, np.array([0, len(data)], np.int64), np.zeros(0, np.int64))
    keys = Strings(np.frombuffer(b'{"s":', np.uint8), np.array([0, 5], np.int64),
                   np.zeros(0, np.int64))
    out, used = records(1, 6 * len(data) + 16, keys, np.array([QUOTED]), np.array([0]),
                        np.array([False]), strings, np.zeros((1, 1), np.int64),
                        np.zeros(1, np.int64), np.zeros((0, 1), np.int64),
                        np.zeros((0, 1), bool), 0)
    line = bytes(out[:used]).decode()
    assert line == json.dumps({"s": text}, ensure_ascii=False, separators=(",", ":")) + "\n"


@pytest.mark.parametrize("compiled", [False, True])
def test_numbers_and_words_are_written_whole(compiled: bool) -> None:
    """Integers at every count of digits (written two at a time, compiled) and words
    of every length, empty and null ones too (copied by ``memcpy``, compiled)."""
    numbers = [0, 5, 9, 10, 42, 99, 100, 101, 999, 1000, 9999, 10000, 12345, 99999,
               100000, 1234567, 99999999, 10**9, 10**18 - 1, 10**18, 2**63 - 1, -1, -10,
               -99, -100, -2**63 + 1]
    words = [b"", b"a", b"quote\"", b"x" * 40, "\u00b5s \u2603".encode()]
    rows = len(numbers)
    data = np.frombuffer(b"".join(words), np.uint8)
    offsets = np.cumsum([0] + [len(w) for w in words]).astype(np.int64)
    strings = Strings(data, offsets, np.zeros(0, np.int64))
    which = np.array([i % (len(words) + 1) - 1 for i in range(rows)], np.int64)  # -1: null
    keys = Strings(np.frombuffer(b'{"n":,"w":', np.uint8), np.array([0, 5, 10], np.int64),
                   np.zeros(0, np.int64))
    kernels.choose(compiled)
    try:
        out, used = records(rows, rows * 200, keys, np.array([1, 0]), np.array([0, 0]),
                            np.array([False, True]), strings, which[None, :],
                            np.zeros(1, np.int64), np.array([numbers], np.int64),
                            np.ones((1, rows), bool), 0)
    finally:
        kernels.choose(None)
    lines = bytes(out[:used]).decode().splitlines()
    expected = [f'{{"n":{n}' + ("" if w < 0 else f',"w":{words[w].decode()}') + "}"
                for n, w in zip(numbers, which.tolist(), strict=True)]
    assert lines == expected


@pytest.mark.parametrize("path", [*OWN, *corpus_params()[:4]])
def test_compiled_and_python_loops_write_the_same_bytes(path: Path) -> None:
    """Small batches are written by the loops as Python, big ones compiled: the same
    functions, so the same bytes (every time base and format)."""
    stream, batches = _batches(path, 500)
    written = {}
    for way in (False, True):
        kernels.choose(way)
        try:
            texts = [TextLines(base, stream.first_time) for base in ("relative", "delta")]
            written[way] = [bytes(lines(b)) for lines in texts for b in batches] + [
                bytes(JsonLines()(b)) for b in batches]
        finally:
            kernels.choose(None)
    assert written[False] == written[True]


def test_a_sliced_batch_writes_the_same_lines() -> None:
    # a slice's string buffers hold bytes before and after the rows it keeps
    from builders import OWN_CAPTURES

    from shark.output.lines import JsonLines, TextLines
    from shark.tables.stream import MessageStream

    stream = MessageStream.of_capture(OWN_CAPTURES / "softioc_pyepics_basic.pcap")
    batch = next(iter(stream))
    middle = batch.slice(5, 20)
    compact = pa.RecordBatch.from_pylist(middle.to_pylist(), schema=middle.schema)
    for make in (lambda: TextLines("relative", stream.first_time), JsonLines):
        assert make()(middle) == make()(compact)

"""Every file of ``../shared/hostile/`` through every entry point: a clean result.

Clean means exit 0, or one clear ``shark: error: ...`` line on stderr with status 1 or 2;
never a traceback; every line of ``read`` valid UTF-8 (and JSON for jsonl); the iterator,
the table API and the replay recording give data or a :class:`CaptureError`; the TUI
loads the file with no exception. ``shark live`` and the TUI's live source read the file's
frames from a stand-in for the kernel ring; ``replay --as-server`` serves on loopback for a
moment and is read back. The checks live in ``tests/helpers/entry_points.py``,
shared with the fuzz target (``tests/test_fuzz.py``).

:data:`KNOWN` lists the (file, entry point) cases that still fail, each with the last line
of its traceback; remove a line as its fix lands (they are ``xfail(strict=False)``, so a
fixed case shows as XPASS until then).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import entry_points as ep
import pytest
from builders import ROOT

import shark

HOSTILE = ROOT.parent / "shared" / "hostile"
FILES = sorted(p.name for p in HOSTILE.iterdir() if p.name != "README.md") \
    if HOSTILE.is_dir() else []

Check = Callable[[Path, Path], None]


def _export_dir(fmt: str, path: Path, tmp: Path) -> None:
    ep.cli_export_dir(path, fmt, tmp / "out")


#: Files whose damage hides messages, so the iterator must mark it (a GAP or ERROR record,
#: or an anomaly); with the largest number of bytes one ERROR record may stand for.
CORRUPTED: dict[str, int] = {
    # a size of 0xFFF8 must not swallow the 64 KB after it: at most the lying message
    "one_lying_size_field_hides_rest_of_circuit.pcap": 4096,
    "bitflip_size_swallows_4_msgs.pcap": 4096,
    "bitflip_writenotify_to_createchan_silent.pcap": 4096,
    "udp_fragment_lost.pcap": 1 << 16,
}


def _marked(path: Path, _tmp: Path) -> None:
    records = ep.iterator(path)
    assert ep.marks(records), "the damage is not marked: no GAP, ERROR or anomaly"
    biggest = max((r.size for r in records if r.kind is shark.ERROR), default=0)
    assert biggest <= CORRUPTED[path.name], f"one ERROR record hides {biggest} bytes"


#: Entry point name -> how to run it on (capture, tmp_path).
ENTRY_POINTS: dict[str, Check] = {
    "read-text": lambda p, _: ep.cli_read(p, "text"),
    "read-jsonl": lambda p, _: ep.cli_read(p, "jsonl"),
    "read-csv": lambda p, _: ep.cli_read(p, "csv"),
    "read-filtered": lambda p, _: ep.cli_read(p, "jsonl", "error or gap or anomaly or "
                                                        "severity>=MINOR or latency>1ms"),
    "read-write-slice": lambda p, tmp: ep.cli_read_write(p, tmp / "slice.pcapng"),
    "read-text-stdin": lambda p, _: ep.cli_read_stdin(p, "text"),
    "read-jsonl-stdin-process": lambda p, _: ep.process_read_stdin(p, "jsonl"),
    "stats-text": lambda p, _: ep.cli_stats(p, "text"),
    "stats-json": lambda p, _: ep.cli_stats(p, "json"),
    **{f"export-dir-{fmt}": functools.partial(_export_dir, fmt) for fmt in ep.EXPORT_FORMATS},
    "export-messages-file": lambda p, tmp: ep.cli_export_file(p, tmp / "messages.parquet"),
    "iterator": lambda p, _: ep.iterator(p),
    "table-api": lambda p, _: ep.table_api(p),
    "live-text": lambda p, _: ep.cli_live(p, "text"),
    "live-jsonl": lambda p, _: ep.cli_live(p, "jsonl"),
    "replay-dry-run": lambda p, _: ep.cli_replay_dry_run(p),
    "replay-load": lambda p, _: ep.replay_load(p),
    "replay-as-server": lambda p, _: ep.cli_replay_server(p),
    "tui": lambda p, _: ep.tui(p),
    "tui-live": lambda p, _: ep.tui_live(p),
    "marks": _marked,  # only for the files in CORRUPTED
}

#: (file, entry point) -> why it fails today: the last line of its traceback.
KNOWN: dict[tuple[str, str], str] = {
}


def _cases() -> list:
    cases = []
    for name in FILES:
        for entry in ENTRY_POINTS:
            if entry == "marks" and name not in CORRUPTED:
                continue
            reason = KNOWN.get((name, entry))
            marks = [pytest.mark.xfail(strict=False, reason=reason)] if reason else []
            cases.append(pytest.param(name, entry, marks=marks, id=f"{name}-{entry}"))
    return cases


@pytest.mark.skipif(not HOSTILE.is_dir(), reason="../shared/hostile is not present")
@pytest.mark.parametrize(("name", "entry"), _cases())
def test_hostile_file_gives_a_clean_result(name: str, entry: str, tmp_path: Path) -> None:
    with ep.no_stray_output():
        ENTRY_POINTS[entry](HOSTILE / name, tmp_path)


def test_known_failures_name_real_cases() -> None:
    """A stale line in KNOWN (a renamed file or entry point) would hide nothing: refuse it."""
    for name, entry in KNOWN:
        assert entry in ENTRY_POINTS, entry
        assert not FILES or name in FILES, name

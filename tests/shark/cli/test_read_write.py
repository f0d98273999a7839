"""``shark read --write``: the frames of the messages a filter keeps, as a capture that
reads back with the same messages, named."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest
from builders import OWN_CAPTURES

from shark.cli import main

BASIC = OWN_CAPTURES / "softioc_pyepics_basic.pcap"


def _lines(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["read", *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_written_slice_reads_back_named(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "writes.pcapng"
    assert main(["read", str(BASIC), "--filter", "command=WRITE_NOTIFY", "-w", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""  # written, not printed
    assert "holding 4 messages" in captured.err
    wanted = [line.split(None, 2)[2] for line in _lines(
        capsys, str(BASIC), "--filter", "command=WRITE_NOTIFY", "--time", "absolute")]
    back = [line.split(None, 2)[2] for line in _lines(
        capsys, str(out), "--filter", "command=WRITE_NOTIFY", "--time", "absolute")]
    assert back == wanted  # same messages, same PV names, same latencies
    assert all("DEMO:BASIC:" in line for line in back)
    with open(out, "rb") as stream:  # a capture another tool opens
        assert len(list(dpkt.pcapng.Reader(stream))) >= 4


def test_nothing_matched_writes_an_empty_capture(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "none.pcapng"
    assert main(["read", str(BASIC), "--filter", "pv=NOPE", "-w", str(out)]) == 0
    err = capsys.readouterr().err
    assert "0 of" in err and "wrote 0 frames" in err
    assert _lines(capsys, str(out)) == []


def test_stdin_cannot_be_sliced(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["read", "-", "-w", "x.pcapng"]) == 2
    assert "cannot be stdin" in capsys.readouterr().err


def test_unwritable_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["read", str(BASIC), "-w", str(tmp_path / "no" / "such" / "x.pcapng")]) == 1
    assert "shark: error:" in capsys.readouterr().err


def test_damaged_capture_still_gives_its_slice(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut.pcap"
    data = BASIC.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "slice.pcapng"
    assert main(["read", str(cut), "-w", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"shark: error: {cut}" in err and "frames holding" in err
    assert _lines(capsys, str(out))  # what was read before the damage

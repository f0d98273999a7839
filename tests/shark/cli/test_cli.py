"""The ``shark`` command line."""

from __future__ import annotations

import contextlib
import datetime
import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from builders import (
    OWN_CAPTURES,
    capture,
    capture_streams,
    manifest,
    pcap_bytes,
    synthetic,
    tcp_frames,
)

import shark
from shark.cli import main
from shark.output.text import Clock


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"shark {shark.__version__}"


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["read", "--help"])
    assert exit_.value.code == 0
    assert "--summary" in capsys.readouterr().out
    assert main([]) == 2


def test_read_prints_a_line_per_message(capsys: pytest.CaptureFixture[str]) -> None:
    path = capture("ca_put_callback_and_errors.pcapng")
    assert main(["read", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    circuit_marks = [line for line in lines if " OPEN (" in line or " CLOSE (" in line]
    lines = [line for line in lines if line not in circuit_marks]
    assert len(lines) == manifest(path)["message_counts_by_command"]["total_ca_messages"]
    assert len(circuit_marks) == 3 * len(manifest(path)["capture_analysis"]["tcp_streams"]) // 2
    assert any("WRITE_NOTIFY" in line and "status=ECA_PUTFAIL" in line for line in lines)
    assert any(" ERROR " in line and "original_request=WRITE" in line for line in lines)
    assert any("EVENT_ADD" in line and "mask=VALUE|ALARM" in line for line in lines)
    first = lines[0].split()
    assert first[:2] == ["1", "0.000000"] and first[3] == "->"


def test_summary_table(capsys: pytest.CaptureFixture[str]) -> None:
    path = capture("ca_server_restart.pcapng")
    assert main(["read", "--summary", str(path)]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()}
    assert rows["command"] == ["tcp", "c->s", "tcp", "s->c", "udp", "total"]
    counts = manifest(path)["message_counts_by_command"]
    assert rows["EVENT_ADD"] == ["4", "216", "0", "220"]
    assert rows["RSRV_IS_UP"] == ["0", "0", str(counts["udp"]["13"]), str(counts["udp"]["13"])]
    assert rows["messages"][-1] == str(counts["total_ca_messages"])


def test_stdin_gzip_and_ports(tmp_path: Path) -> None:
    """``-`` reads standard input, compressed or not (a real process, real pipe)."""
    packed = gzip.compress(capture("ca_basic_default_port.pcap").read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "shark", "read", "-", "--summary", "--port", "5064"],
        input=packed, capture_output=True, check=True,
    )
    assert result.stdout.decode().splitlines()[-1].split()[-1] == "79"


def test_truncated_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = capture("ca_dbr_families.pcapng").read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[: len(data) // 2])
    assert main(["read", str(cut)]) == 1
    out, err = capsys.readouterr()
    assert out.count("\n") > 10  # what could be read is printed
    assert err.startswith("shark: error: ") and "truncated" in err and err.count("\n") == 1
    assert main(["read", "--summary", str(cut)]) == 1
    out, err = capsys.readouterr()
    assert "messages" in out and "truncated" in err


@pytest.mark.parametrize("content", [None, b"", b"not a capture at all"])
def test_unreadable_inputs(content: bytes | None, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "input"
    if content is not None:
        path.write_bytes(content)
    assert main(["read", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"shark: error: {path}: ") and err.count("\n") == 1


def test_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["read", "x", "--port", "70000"])
    assert exit_.value.code == 2


def test_summary_of_a_damaged_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A circuit seen without its handshake, on a port only the user names, with a hole:
    the sender is unknown ('tcp ?' column), GAP and UNDECODED rows follow the totals."""
    client, server = capture_streams("ca_monitors_100hz.pcap")
    segments = synthetic(b"".join(client), b"".join(server), [40], [100], drop=[(False, 30)],
                         handshake=False)
    frames = tcp_frames(segments[10:], server_port=7100, client_port=7200)
    path = tmp_path / "damaged.pcap"
    path.write_bytes(pcap_bytes([(f.time_ns, bytes(f.data)) for f in frames], 228))
    assert main(["read", "--summary", str(path), "-p", "7100", "--port", "7200"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()}
    assert rows["command"] == ["tcp", "c->s", "tcp", "s->c", "tcp", "?", "udp", "total"]
    assert rows["GAP"] == ["0", "0", "1", "0", "1"]
    assert int(rows["UNDECODED"][-1]) >= 1
    assert list(rows)[-2:] == ["GAP", "UNDECODED"] and "messages" in rows


def test_a_reader_that_stops_early_is_no_failure() -> None:
    """``shark read CAP | head``: the reader closing the pipe ends shark quietly, status 0."""
    path = OWN_CAPTURES / "softioc_pyepics_arrays.pcap"  # more than a pipe's buffer of jsonl
    proc = subprocess.Popen([sys.executable, "-m", "shark", "read", "-f", "jsonl", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"{")
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert err == b""


def test_filtered_lines_are_the_unfiltered_ones(capsys: pytest.CaptureFixture[str]) -> None:
    """Times count from the capture's first record, whether it is shown or not: the
    filtered output is a selection of the unfiltered lines, character for character."""
    path = OWN_CAPTURES / "softioc_pyepics_basic.pcap"
    assert main(["read", str(path)]) == 0
    everything = capsys.readouterr().out.splitlines()
    assert main(["read", str(path), "--filter", "command=READ_NOTIFY"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown and all(" READ_NOTIFY " in line for line in shown)
    assert shown == [line for line in everything if line in set(shown)]
    assert not shown[0].split()[1].startswith("0.000")


def test_time_bases(capsys: pytest.CaptureFixture[str]) -> None:
    """``--time``: relative (the default), absolute (local date and time) or delta (since
    the line shown before), on the capture's time base whatever the filter shows."""
    path = OWN_CAPTURES / "softioc_pyepics_basic.pcap"
    records = [r for r in shark.read(path) if r.command_name == "READ_NOTIFY"]
    assert main(["read", str(path), "--time", "absolute", "--filter", "command=READ_NOTIFY"]) == 0
    lines = capsys.readouterr().out.splitlines()
    first = datetime.datetime.fromtimestamp(records[0].time)
    assert lines[0].split()[1:3] == first.isoformat(sep=" ", timespec="microseconds").split()
    assert main(["read", str(path), "--time", "delta", "--filter", "command=READ_NOTIFY"]) == 0
    deltas = [float(line.split()[1]) for line in capsys.readouterr().out.splitlines()]
    assert deltas[0] == 0.0
    gaps = [b.time - a.time for a, b in zip(records, records[1:], strict=False)]
    assert deltas[1:] == pytest.approx(gaps, abs=2e-6)
    with pytest.raises(SystemExit):
        main(["read", str(path), "--time", "lunar"])


def test_a_time_no_calendar_holds_is_shown_as_seconds() -> None:
    clock = Clock("absolute")
    assert clock(1.8e13) == "18000000000000.000000"  # a damaged capture's time: no traceback


def test_csv_is_the_messages_table(capsys: pytest.CaptureFixture[str]) -> None:
    """``-f csv``: a header line with the columns of the ``messages`` table, then a
    row per message, the same rows as the table."""
    path = OWN_CAPTURES / "softioc_pyepics_basic.pcap"
    assert main(["read", "-f", "csv", str(path)]) == 0
    out = capsys.readouterr().out
    rows = pacsv.read_csv(io.BytesIO(out.encode()))
    table = shark.open(path, tables=["messages"]).arrow("messages")
    assert rows.column_names == table.column_names
    assert rows.num_rows == table.num_rows
    assert rows.column("frame").to_pylist() == table.column("frame").to_pylist()
    assert rows.column("pv").to_pylist() == (  # (CSV has no null: an empty field)
        table.column("pv").cast(pa.string()).fill_null("").to_pylist())


def test_a_filter_that_matches_nothing_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    path = OWN_CAPTURES / "softioc_pyepics_basic.pcap"
    messages = len(shark.open(path, tables=["messages"]).table("messages"))
    for fmt in ("text", "jsonl", "csv"):
        assert main(["read", "-f", fmt, str(path), "--filter", "pv=NO:SUCH:PV"]) == 0
        result = capsys.readouterr()
        assert result.err == f"shark: 0 of {messages} messages matched\n"
        assert result.out.count("\n") == (1 if fmt == "csv" else 0)  # (csv: its header)


@pytest.mark.parametrize(("expression", "words"), [
    ("command=READ_NOTFY", ["READ_NOTIFY", "READ_SYNC"]),
    ("status=ECA_NORMALL", ["ECA_NORMAL"]),
    ("severity>=MINORR", ["MINOR", "MAJOR", "INVALID"]),
    ("latency>10parsecs", ["ms"]),
    ("colour=red", ["pv", "command", "latency"]),
    ("(pv=A", ["parenthes"]),
])
def test_a_filter_it_cannot_understand_is_an_error(
        expression: str, words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    path = OWN_CAPTURES / "softioc_pyepics_basic.pcap"
    assert main(["read", str(path), "--filter", expression]) == 2
    result = capsys.readouterr()
    assert result.out == ""
    assert result.err.startswith("shark: error: --filter: ")
    assert all(word in result.err for word in words), result.err


def test_worked_examples_of_the_readme(capsys: pytest.CaptureFixture[str]) -> None:
    """Failed writes, slow reads, alarms, one client's traffic: the rows of each are
    those the tables' own columns say, in every view (text, jsonl, Python)."""
    path = capture("ca_put_callback_and_errors.pcapng")
    table = shark.open(path, tables=["messages"]).table("messages")
    cases = {
        "command=WRITE_NOTIFY status=failed": (table.command == "WRITE_NOTIFY")
        & table.status.notna() & (table.status != "ECA_NORMAL"),
        "command=READ_NOTIFY latency>1ms": (table.command == "READ_NOTIFY")
        & (table.latency > 1e-3),
        "severity>=MINOR": table.severity.isin(["MINOR", "MAJOR", "INVALID"]),
    }
    for expression, expected in cases.items():
        frames = table.frame[expected.fillna(False).to_numpy(bool)].tolist()
        assert main(["read", "-f", "jsonl", str(path), "--filter", expression]) == 0
        shown = [json.loads(line)["frame"] for line in capsys.readouterr().out.splitlines()]
        assert shown == frames, expression
        assert [r.frame for r in shark.read(path, filter=expression)] == frames
        assert shark.open(path).filter(expression).frame.tolist() == frames
    assert any(cases["command=WRITE_NOTIFY status=failed"])
    client = table.src[table.sender == "client"].iloc[0]
    host, port = client.rsplit(":", 1)
    assert main(["read", "-f", "jsonl", str(path), "--filter", f"host={host} port={port}"]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert shown and all(client in (m["src"], m["dst"]) for m in shown)


def test_a_command_imports_only_its_own_module() -> None:
    # `shark read` must not wait for the TUI's or the client tools' imports
    probe = ("import sys, io, contextlib\n"
             "from shark.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    try:\n        main(['read', '--help'])\n    except SystemExit:\n        pass\n"
             "print(sorted(m for m in sys.modules if m.startswith(('shark.cli.', 'tui', "
             "'textual'))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    loaded = done.stdout.strip()
    assert "shark.cli.read" in loaded
    for other in ("shark.cli.get", "shark.cli.replay", "'tui", "'textual"):
        assert other not in loaded, loaded


def _console_probe(words: list[str], said: str) -> str:
    """A program that runs ``shark WORDS`` (and any arguments it is given after them) as
    the ``shark`` program does, and at exit prints ``said`` (the items of a print, with
    gc and sys imported) on stderr, after all the command printed."""
    return ("import atexit, gc, sys\n"
            f"atexit.register(lambda: print({said}, file=sys.stderr))\n"
            "from shark.cli import console\n"
            f"console([*{words!r}, *sys.argv[1:]])\n")


def test_the_program_leaves_its_objects_to_the_system_at_exit() -> None:
    # The `shark` program (and `python -m shark`) exits with the command's status,
    # without Python's hunt for garbage among what the read left alive; output is
    # flushed and exit handlers run as ever.
    path = capture("ca_put_callback_and_errors.pcapng")
    probe = _console_probe(["read", str(path)],
                           "'gc', gc.isenabled(), gc.get_freeze_count() > 0")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "gc False True"
    assert len(done.stdout.splitlines()) > 10
    failed = subprocess.run([sys.executable, "-c", probe, "--filter", "command=READ_NOTIF"],
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2 and "READ_NOTIFY" in failed.stderr
    module = subprocess.run([sys.executable, "-m", "shark", "read", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert module.returncode == 0 and module.stdout == done.stdout


@pytest.mark.parametrize("argv", [
    ["read"], ["read", "-f", "jsonl", "--filter", "latency>=0 or failed"],
    ["read", "-f", "csv"], ["read", "--summary"], ["export", "-o", "{out}/tables"],
    ["export", "-t", "messages", "-o", "{out}/messages.csv"],
])
def test_reading_and_exporting_never_load_pandas(tmp_path: Path, argv: list[str]) -> None:
    # pandas is a third of a small capture's `shark read` (0.15 s): a command that makes
    # no DataFrame leaves it unloaded, whatever pyarrow and the tables do meanwhile
    # (shark.cli.console). The same output as with pandas loaded (main, in this process).
    words = [word.format(out=tmp_path) for word in argv]
    words.insert(1, str(capture("ca_dbr_families.pcapng")))
    done = subprocess.run([sys.executable, "-c",
                           _console_probe(words, "'pandas', 'pandas' in sys.modules")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1] == "pandas False"
    if words[0] == "read":
        assert done.stdout
        with contextlib.redirect_stdout(io.TextIOWrapper(io.BytesIO())) as loaded:
            assert main(words) == 0
            loaded.flush()
            assert loaded.buffer.getvalue().decode() == done.stdout

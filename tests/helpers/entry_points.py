"""Every entry point of shark run on one capture, and what a clean result is.

Shared by the hostile-input tests and the fuzz target: a capture, however broken, must
give records with marks, exit 0, or one clear ``shark: error: ...`` line on stderr with
status 1 or 2. Never a traceback, never an output line that is not valid UTF-8 (and, for
jsonl, not JSON). The command line runs in-process through ``shark.cli.main`` (fast);
:func:`run_subprocess` runs the real ``python -m shark`` for a few cases.

Each ``check_*`` function raises ``AssertionError`` with the reason when the result is
not clean; an exception escaping shark is re-raised as it is, so that its traceback shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import shark
from shark.capture.files import CaptureError, Frame, FrameBlock, LinkType, read_frames
from shark.capture.live import CaptureStats
from shark.cli import main as shark_main

#: The one line a failing command may leave on stderr (``shark replay: error:`` is
#: replay's own prefix for the same thing).
ERROR_LINE = re.compile(r"^shark(?: \w+)?: error: \S")
#: Formats ``shark export`` writes.
EXPORT_FORMATS = ("parquet", "csv", "feather")


@dataclass
class Result:
    """What one command run left: its exit status and its two output streams."""

    status: int
    out: bytes
    err: str


def run_cli(argv: Sequence[str], stdin: bytes | None = None) -> Result:
    """``shark ARGV`` in-process, with stdout caught as bytes (unencodable text kept as
    surrogate escapes, so that :func:`check_clean` can see it) and stdin fed ``stdin``."""
    out = io.BytesIO()
    err = io.StringIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", errors="surrogateescape",
                              write_through=True)
    fake_stdin = io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8")
    saved = sys.stdin, sys.stdout
    sys.stdin, sys.stdout = fake_stdin, stdout
    try:
        with contextlib.redirect_stderr(err):
            try:
                status = shark_main(list(argv))
            except SystemExit as exc:  # argparse
                status = exc.code if isinstance(exc.code, int) else 2
            stdout.flush()
    finally:
        sys.stdin, sys.stdout = saved
    return Result(status, out.getvalue(), err.getvalue())


def run_subprocess(argv: Sequence[str], stdin: bytes | None = None,
                   timeout: float = 120) -> Result:
    """``python -m shark ARGV`` as a real process."""
    done = subprocess.run([sys.executable, "-m", "shark", *argv], input=stdin or b"",
                          capture_output=True, timeout=timeout, check=False)
    return Result(done.returncode, done.stdout, done.stderr.decode("utf-8", "replace"))


def check_clean(result: Result, what: str = "") -> None:
    """Exit 0, or status 1 or 2 with a single clear error line; no traceback."""
    where = f"{what}: " if what else ""
    assert "Traceback" not in result.err, f"{where}traceback on stderr:\n{result.err}"
    assert result.status in (0, 1, 2), f"{where}exit status {result.status}:\n{result.err}"
    if result.status:
        errors = [line for line in result.err.splitlines() if ERROR_LINE.match(line)]
        assert len(errors) == 1, (
            f"{where}status {result.status} wants one 'shark: error:' line, stderr:\n"
            f"{result.err}")


def check_text(data: bytes, what: str = "") -> str:
    """Output that is valid UTF-8 (what a strict terminal or pipe would accept)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AssertionError(f"{what}: output is not valid UTF-8: {exc}") from None


def check_jsonl(data: bytes, what: str = "") -> int:
    """Every line valid UTF-8 JSON (an object); returns the number of lines."""
    lines = data.splitlines()
    for number, line in enumerate(lines, 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AssertionError(f"{what}: line {number} is not UTF-8: {exc}: "
                                 f"{line[:200]!r}") from None
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise AssertionError(f"{what}: line {number} is not JSON: {exc}: "
                                 f"{text[:200]!r}") from None
        assert isinstance(value, dict), f"{what}: line {number} is not an object"
    return len(lines)


# -- the entry points ------------------------------------------------------------------


def cli_read(path: Path, fmt: str, expression: str | None = None) -> None:
    """``shark read -f FMT`` (csv: one header line and rows that Arrow reads back),
    with ``--filter expression`` when given."""
    result = run_cli(["read", "-f", fmt, str(path),
                      *(["--filter", expression] if expression else [])])
    what = f"read -f {fmt}" + (f" --filter {expression!r}" if expression else "")
    check_clean(result, what)
    (check_jsonl if fmt == "jsonl" else check_text)(result.out, what)
    if fmt == "csv" and result.out:
        import pyarrow.csv as pacsv

        pacsv.read_csv(io.BytesIO(result.out))


def cli_read_write(path: Path, target: Path) -> None:
    """``shark read --write``: a slice of the frames of the errors and gaps, which
    ``shark read`` then reads back as cleanly."""
    result = run_cli(["read", str(path), "--filter", "error or gap or anomaly",
                      "-w", str(target)])
    check_clean(result, "read --write")
    if target.exists() and target.stat().st_size:
        back = run_cli(["read", str(target)])
        check_clean(back, "read of a written slice")
        check_text(back.out, "read of a written slice")


def cli_read_stdin(path: Path, fmt: str) -> None:
    result = run_cli(["read", "-f", fmt, "-"], stdin=path.read_bytes())
    check_clean(result, f"read -f {fmt} -")
    (check_jsonl if fmt == "jsonl" else check_text)(result.out, f"read -f {fmt} -")


def process_read_stdin(path: Path, fmt: str) -> None:
    """The real thing: ``python -m shark read -f FMT -`` with the capture on stdin."""
    result = run_subprocess(["read", "-f", fmt, "-"], stdin=path.read_bytes())
    check_clean(result, f"python -m shark read -f {fmt} -")
    (check_jsonl if fmt == "jsonl" else check_text)(result.out, f"read -f {fmt} -")


def cli_stats(path: Path, fmt: str) -> None:
    result = run_cli(["stats", "-f", fmt, str(path)])
    check_clean(result, f"stats -f {fmt}")
    text = check_text(result.out, f"stats -f {fmt}")
    if fmt == "json" and result.status == 0:
        json.loads(text)


def cli_export_dir(path: Path, fmt: str, out: Path) -> None:
    """Every table to a directory; what was written reads back."""
    result = run_cli(["export", "-f", fmt, "-o", str(out), str(path)])
    check_clean(result, f"export -f {fmt} -o DIR")
    if result.status == 0:
        for written in sorted(out.iterdir()):
            read_back(written, fmt)
        if fmt == "parquet":
            check_times(path, out / "messages.parquet")


def cli_export_file(path: Path, out: Path) -> None:
    """``export -o FILE.parquet -t messages``."""
    result = run_cli(["export", "-o", str(out), "-t", "messages", str(path)])
    check_clean(result, "export -o FILE.parquet -t messages")
    if result.status == 0:
        read_back(out, "parquet")
        check_times(path, out)


def read_back(path: Path, fmt: str) -> None:
    import pyarrow.csv
    import pyarrow.feather
    import pyarrow.parquet

    reader = {"parquet": pyarrow.parquet.read_table, "csv": pyarrow.csv.read_csv,
              "feather": pyarrow.feather.read_table}[fmt]
    reader(path)


def check_times(capture: Path, messages: Path) -> None:
    """The exported ``messages.time`` values are the capture's own times (as the iterator
    gives them) or null: a time outside the datetime range is never wrapped around."""
    import numpy as np
    import pyarrow.parquet

    column = pyarrow.parquet.read_table(messages, columns=["time"]).column("time").drop_null()
    if not len(column):
        return
    exported = np.unique(column.cast("int64").to_numpy()) / 1e9
    times = np.unique([record.time for record in iterator(capture)])
    assert len(times), "exported times, but the iterator gives no record"
    nearest = np.abs(exported[:, None] - times[None, :]).min(axis=1)  # small captures
    wrong = exported[nearest > 1e-3]
    assert not len(wrong), (f"exported times not in the capture: {wrong[:3]} "
                            f"(the capture's: {times[:3]})")


def iterator(path: Path) -> list[shark.Record]:
    """``shark.read``: records, then at most a :class:`CaptureError`."""
    records: list[shark.Record] = []
    with contextlib.suppress(CaptureError):
        records.extend(shark.read(path, lifecycle=True))
    return records


def marks(records: Sequence[shark.Record]) -> list[shark.Record]:
    """The records that say something was not understood: GAP and ERROR records, and
    messages with an anomaly."""
    return [record for record in records
            if record.kind in (shark.GAP, shark.ERROR) or record.anomaly is not None]


def table_api(path: Path) -> None:
    """``shark.open(p).table(name)`` for every table, then ``.report()`` (a damaged
    capture warns and keeps what was read)."""
    from shark.tables import TABLES

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cap = shark.open(path)
        for name in TABLES:
            cap.table(name)
        report = cap.report()
    json.dumps(report, default=str)


def replay_load(path: Path) -> None:
    """``shark.replay.load``: a recording, or a :class:`CaptureError`."""
    from shark.replay import load

    with contextlib.suppress(CaptureError):
        load(path)


def cli_replay_dry_run(path: Path) -> None:
    result = run_cli(["replay", "--as-client", "--dry-run", str(path)])
    check_clean(result, "replay --as-client --dry-run")
    check_text(result.out, "replay --as-client --dry-run")


def tui(path: Path) -> None:
    """The TUI on the file, as ``tests/tui/test_app.py`` drives it: load, let it finish,
    then every line of the log with its details and every row of every pane. Its error
    line, if any, is the iterator's :class:`CaptureError`."""
    from tui.app import SharkApp
    from tui.model import Model
    from tui.panes import PANES
    from tui.source import FileSource
    from tui.table import VirtualTable

    expected = None
    try:
        for _ in shark.read(path, lifecycle=True):
            pass
    except CaptureError as exc:
        expected = str(exc)

    async def main() -> SharkApp:
        model = Model(100_000)
        app = SharkApp(model, FileSource(model, path))
        async with app.run_test(size=(200, 50)) as pilot:
            deadline = time.monotonic() + 30
            while not app.source.finished and time.monotonic() < deadline:
                await pilot.pause(0.05)
            assert app.source.finished, "the TUI did not finish the file"
            app.refresh_view()
            for row in app.log_table.rows:  # every line of the log, and its details
                if row is not None:
                    app.log_table.render_row(row)
                    app._show(row)
            for pane, _title in PANES:  # every row of every pane (drawing each is slow)
                app.action_pane(pane)
                table = app._main(f"#{pane}-table", VirtualTable)
                for row in table.rows:
                    table.render_row(row)
            await pilot.press("1")
            await pilot.pause()
            assert app.source.error == expected, f"TUI error: {app.source.error}"
        return app

    asyncio.run(main())


@contextlib.contextmanager
def no_stray_output() -> Iterator[None]:
    """Nothing printed on stderr by the API entry points (a logged traceback counts)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        yield
    assert "Traceback" not in err.getvalue(), err.getvalue()


# -- live capture, with a file's frames standing in for the kernel ring -----------------


def file_frames(path: Path) -> list[Frame]:
    """The frames of ``path``, each holding a copy of its bytes; for a damaged file, those
    read before the damage (what a ring would have handed out before anything broke)."""
    frames: list[Frame] = []
    with contextlib.suppress(CaptureError):
        for frame in read_frames(path):
            frames.append(frame._replace(data=memoryview(bytes(frame.data))))
    return frames


class RingStandIn:
    """What ``shark live`` and the TUI's live source use of
    :class:`shark.capture.live.LiveCapture`, handing out ``frames`` in batches as the
    kernel ring would. When they are all out it calls ``on_empty`` once (to stop the
    capture as a person would); from :meth:`stop` or :meth:`close` on it gives nothing.
    """

    #: Frames per batch (a ring block holds a few).
    BATCH = 16
    #: Seconds to wait for a stop once the frames are out, before the test gives up.
    STOP_WAIT = 10.0

    def __init__(self, interface: str, ports: Sequence[int] = (), *,
                 frames: Sequence[Frame], on_empty: Callable[[], None]) -> None:
        self.interface = interface
        self.ports = tuple(ports)
        self.linktype = frames[0].linktype if frames else LinkType.EN10MB
        self.snaplen = max((len(frame.data) for frame in frames), default=0) or 65535
        self.filter = "a stand-in for the kernel ring"
        self.frames = list(frames)
        self.on_empty = on_empty
        self.handed = 0
        self.stopped = False
        self.closed = False
        self._empty_since: float | None = None

    def read_batch(self, timeout: float | None = None) -> list[Frame]:
        if self.stopped or self.closed:
            return []
        batch = self.frames[self.handed:self.handed + self.BATCH]
        self.handed += len(batch)
        if batch:
            return batch
        if self._empty_since is None:
            self._empty_since = time.monotonic()
            self.on_empty()
        elif time.monotonic() - self._empty_since > self.STOP_WAIT:
            raise AssertionError("the capture was not stopped once its frames were out")
        else:
            time.sleep(min(timeout or 0.01, 0.01))
        return []

    def read_blocks(self, timeout: float | None = None) -> list[FrameBlock]:
        """The frames of :meth:`read_batch` in blocks, one per link type in a row."""
        blocks: list[list[Frame]] = []
        for frame in self.read_batch(timeout):
            if not blocks or blocks[-1][0].linktype != frame.linktype:
                blocks.append([])
            blocks[-1].append(frame)
        return [FrameBlock.of(frames) for frames in blocks]

    def stats(self) -> CaptureStats:
        return CaptureStats(self.handed, 0)

    def stop(self) -> None:
        self.stopped = True

    def close(self) -> None:
        self.stopped = self.closed = True


def _interrupt() -> None:
    """Ctrl-C, once ``shark live`` has taken SIGINT over (else it would end the tests)."""
    handler = signal.getsignal(signal.SIGINT)
    assert handler not in (signal.default_int_handler, signal.SIG_DFL, signal.SIG_IGN, None), \
        "shark live reads frames before it handles SIGINT"
    signal.raise_signal(signal.SIGINT)


def cli_live(path: Path, fmt: str) -> None:
    """``shark live -i lo -f FMT``, in-process, reading the frames of ``path`` from a
    :class:`RingStandIn`, stopped by SIGINT once they are all out: exit 0 with every frame
    counted in its summary and the lines ``shark read`` prints of the file, or one error
    line."""
    from shark.cli import live

    frames = file_frames(path)
    stand_in = functools.partial(RingStandIn, frames=frames, on_empty=_interrupt)
    with mock.patch.object(live, "LiveCapture", stand_in):
        result = run_cli(["live", "-i", "lo", "--format", fmt])
    what = f"live -f {fmt}"
    check_clean(result, what)
    (check_jsonl if fmt == "jsonl" else check_text)(result.out, what)
    lines = result.err.splitlines()
    assert lines and lines[0].startswith("shark: capturing on lo ("), f"{what}: {result.err}"
    if result.status == 0:
        assert f"shark: {len(frames)} frames captured, 0 dropped" in result.err, result.err
        # the same lines as ``shark read`` (see shark/cli/live.py): the same frames
        assert result.out == run_cli(["read", "-f", fmt, str(path)]).out, \
            f"{what}: not the lines of read -f {fmt}"


def tui_live(path: Path) -> None:
    """The TUI's live source (its decoding thread, no screen) on the frames of ``path``
    from a :class:`RingStandIn`, stopped once they are all out: every frame read, the
    records in the model, no error."""
    import tui.source
    from tui.model import Model

    frames = file_frames(path)
    out = threading.Event()
    stand_in = functools.partial(RingStandIn, frames=frames, on_empty=out.set)
    model = Model(100_000)
    with mock.patch.object(tui.source, "LiveCapture", stand_in):
        source = tui.source.LiveSource(model, "lo")
    source.start()
    try:
        assert out.wait(30), "the TUI's live source did not read every frame"
    finally:
        source.stop()
        source.join(10)
    assert source.finished, "the TUI's live source did not end when stopped"
    assert source.error is None, f"TUI live error: {source.error}"
    assert source.stats().frames == len(frames)


# -- the stand-in IOC -----------------------------------------------------------------

#: How long ``replay --as-server`` serves before it is interrupted (seconds).
SERVE_FOR = 0.2


def cli_replay_server(path: Path) -> None:
    """``shark replay --as-server --port 0 FILE`` in-process, on 127.0.0.1 only: exit 0
    after serving for :data:`SERVE_FOR` seconds, stopped by SIGINT as a person would stop
    it (sent from inside its event loop, so never after it has ended), or one error line.
    While it serves, a :class:`shark.peers.client.Client` reads one PV of each server."""
    from shark.cli import replay

    served: list[str] = []
    failed: list[str] = []
    real_serve = replay.serve

    def serve(recording: Any, ports: Sequence[int], **options: Any) -> list[Any]:
        assert list(ports) == [0] and options["host"] == "127.0.0.1", (ports, options)
        servers = real_serve(recording, ports, **options)
        if servers:
            asyncio.get_running_loop().create_task(_visit_then_interrupt(servers, served, failed))
        return servers

    with mock.patch.object(replay, "serve", serve):
        result = run_cli(["replay", "--as-server", "--port", "0", str(path)])
    what = "replay --as-server --port 0"
    check_clean(result, what)
    text = check_text(result.out, what)
    if result.status == 0:
        listening = re.findall(r" on (\S+):\d+ \(searches", text)
        assert listening and set(listening) == {"127.0.0.1"}, text
        assert not failed, f"{what}: reading a PV back: {failed}"
        assert served, f"{what}: exit 0, but no PV was read back"


async def _visit_then_interrupt(servers: Sequence[Any], served: list[str],
                                failed: list[str]) -> None:
    """Once every server listens, read the first PV of each (noting what failed), then
    SIGINT; not when cancelled (the loop is ending: the signal would end the tests)."""
    from shark.peers.client import Client

    try:
        deadline = time.monotonic() + 1.0
        while not all(server.server.tcp_port for server in servers):
            assert time.monotonic() < deadline, "the replay servers did not start in 1 s"
            await asyncio.sleep(0.01)
        started = time.monotonic()
        for server in servers:
            engine = server.server
            name = next(iter(engine.pvs))
            async with Client([("127.0.0.1", engine.udp_port)], timeout=1.0) as client:
                await client.read(name)
            served.append(name)
        await asyncio.sleep(max(0.0, SERVE_FOR - (time.monotonic() - started)))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - said by the caller, after the server stopped
        failed.append(f"{type(exc).__name__}: {exc}")
    os.kill(os.getpid(), signal.SIGINT)

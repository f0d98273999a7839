"""Reading rate and memory of shark beside tshark, caproto-shark and dpkt, all measured
side by side in one run, on one core, on one large capture (issue 15's speed table).

For the capture (by default ``benchmarks/data/big_monitors.pcap``, made by
``benchmarks/make_big_capture.py``; ``make bench-storm`` gives it the storm,
``benchmarks/data/storm.pcap`` from ``benchmarks/make_storm_capture.py``) it measures:

* dpkt's raw pcap iteration (packets/s): the floor any Python reader pays per packet;
* ``shark read CAP > /dev/null`` (text), ``shark read -f jsonl`` and ``-f csv`` (when
  ``shark read --help`` lists csv): messages/s, whole-process time (interpreter start
  included: what a person at a shell waits), peak RSS, and the time as a multiple of
  dpkt's time to iterate the packets of the same file;
* tshark with cashark's ``ca.lua`` dissector (``tshark -r CAP -X lua_script:ca.lua >
  /dev/null``, its one-line-per-packet text), when tshark and a ca.lua are found (see
  :func:`find_ca_lua`); its messages are the CA commands tshark decodes, counted by one
  more, untimed, ``-T fields -e ca.command`` pass. The ratio shark/tshark is of times;
* the Python iterator ``shark.read`` (every record, attributed) and shark's tables,
  ``shark.open(CAP, tables=["messages"]).table("messages")`` end to end (capture file to
  DataFrame): messages/s on their own clock (from before the first frame is read:
  interpreter start and imports left out);
* the baseline ``pandas.DataFrame.from_records`` of the dicts of ``shark read --format
  jsonl`` over ``shark.read`` (slow, some 3 GB on big_monitors: ``--no-baseline`` skips
  it, as ``make bench-storm`` does);
* caproto's ``caproto-shark`` (it reads pcap on stdin and prints a line per message it
  decodes; it reassembles nothing, so a message split over segments is lost, and after
  the first bytes it cannot decode it ignores their sender): the messages it finds.

Every program is measured on the whole file and on a copy of its first 10 % (cut at a
packet boundary): a peak RSS that stays flat as the file grows shows there. Each runs
in a child process of its own pinned to one CPU (``--cpu``), ``--runs`` times (default
5) in rounds, each round starting one program later, so that a drift of the machine
hits all alike; the table gives the median with the min and max, and a targets section
says which of issue 15's targets are met. It asserts nothing.

Programs run as shark runs where it is installed: its sources compiled to bytecode
first; each ``shark read`` format once, untimed, before the rounds (numba compiles its
kernels into its cache on first use); and without this process's settings that a shell
lacks (no bytecode writes, unbuffered output: :data:`UNLIKE_A_SHELL`). ``--cut PERCENT``
measures the first PERCENT % of the capture instead, for a quick look.

Run on demand: ``python benchmarks/read_rate.py [CAPTURE]`` (``make bench-read``,
``make bench-storm``; ``make bench-storm BENCH_ARGS="--runs 3 --cut 25"``).
"""

from __future__ import annotations

import argparse
import compileall
import importlib.metadata
import os
import platform
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
DEFAULT_CAPTURE = DATA / "big_monitors.pcap"
PYTHON = sys.executable
#: Rounds of measurement (``--runs``): the median of as many runs is shown.
RUNS = 5
PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")

#: Where a ca.lua is looked for, after ``--ca-lua`` and ``$SHARK_BENCH_CA_LUA``: beside
#: the benchmark captures, then Wireshark's plugin folders (personal and global; tshark
#: loads the Lua scripts in those by itself).
CA_LUA_PLACES = (
    DATA / "ca.lua",
    DATA / "cashark" / "ca.lua",
    Path.home() / ".local" / "lib" / "wireshark" / "plugins" / "ca.lua",
    Path.home() / ".config" / "wireshark" / "plugins" / "ca.lua",
    Path.home() / ".wireshark" / "plugins" / "ca.lua",
    Path("/usr/local/lib/wireshark/plugins/ca.lua"),
    Path("/usr/share/wireshark/plugins/ca.lua"),
)
#: Folders whose Lua scripts tshark loads itself: a ca.lua there is not passed again
#: (a second ``-X lua_script`` of it would register the protocol twice).
AUTOLOADED = (
    Path.home() / ".local" / "lib" / "wireshark" / "plugins",
    Path.home() / ".config" / "wireshark" / "plugins",
    Path.home() / ".wireshark" / "plugins",
)

#: Each shark program reports, on its last line of stderr, its time (from before its
#: first frame is read, so without the interpreter's start), the CPU time it spent in
#: that time, in user and in system mode (system time is mostly page faults: on a
#: virtual machine that hands memory out lazily, a large share of the whole), and its
#: own peak resident size (VmHWM: a child's ``ru_maxrss`` would include what it
#: inherited from this process when forked).
_REPORT = """
import resource, sys, time
def _clock():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime, usage.ru_stime
def _report(start):
    spent = [end - begin for begin, end in zip(start, _clock())]
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print("BENCH", *spent, int(line.split()[1]), file=sys.stderr)
"""

ITERATOR = _REPORT + """
import sys
import shark
start = _clock()
count = 0
for _record in shark.read(sys.argv[1]):
    count += 1
print(count)
_report(start)
"""

#: pandas (and shark's tables) are imported before the clock starts, by both DataFrame
#: programs: what is measured is messages, not imports (shark.tables loads its modules
#: on first use: they are used here before the clock starts).
TABLE = _REPORT + """
import sys
import pandas
import shark
from shark.tables import Capture
start = _clock()
print(len(shark.open(sys.argv[1], tables=["messages"]).table("messages")))
_report(start)
"""

BASELINE = _REPORT + """
import sys
import pandas
import shark
from shark.output.jsonl import record_dict
start = _clock()
print(len(pandas.DataFrame.from_records([record_dict(r) for r in shark.read(sys.argv[1])])))
_report(start)
"""

#: ``shark read [--format F] CAP``, as the ``shark`` command runs it, to /dev/null.
CLI = _REPORT + """
import atexit, sys
from shark.cli import console
start = _clock()
atexit.register(lambda: (sys.stdout.flush(), _report(start)))
console(["read", *sys.argv[1:]])
"""

DPKT = _REPORT + """
import sys
import dpkt
start = _clock()
count = 0
with open(sys.argv[1], "rb") as handle:
    for _ts, _frame in dpkt.pcap.Reader(handle):
        count += 1
print(count)
_report(start)
"""


class Output(Enum):
    """What a measured program's stdout is for."""

    NULL = "null"  #: nothing: it goes to /dev/null
    COUNT = "count"  #: it prints its count
    LINES = "lines"  #: a line per message: they are counted


class Clock(Enum):
    """Which time a program's rate is of."""

    PROCESS = "process"  #: the whole process, start to exit, as a shell sees it
    OWN = "own"  #: its own clock, from before its first frame (a library call's time)


@dataclass(frozen=True)
class Program:
    """One measured program: ``argv(path)`` runs it on a capture."""

    key: str
    label: str
    argv: Callable[[Path], list[str]]
    unit: str = "msg"
    output: Output = Output.COUNT
    clock: Clock = Clock.OWN
    stdin: bool = False  #: the capture is its stdin
    reports: bool = True  #: it prints a BENCH line (a shark or dpkt program)
    streams: bool = False  #: it keeps nothing per message: its peak RSS should stay flat


@dataclass(frozen=True)
class Sample:
    """One run of one program on one file."""

    wall: float  #: seconds, whole process
    own: float | None  #: seconds on its own clock, when it reports one
    user: float  #: CPU seconds in user mode
    system: float  #: CPU seconds in the kernel
    rss: int  #: peak RSS, kB
    count: int | None  #: what it counted, when it prints a count or a line per message


class Failed(Exception):
    """A measured program exited with an error: its row says why, the others go on."""


@dataclass
class Series:
    """Every run of one program: on the whole file and on its first 10 %."""

    program: Program
    whole: list[Sample] = field(default_factory=list)
    part: list[Sample] = field(default_factory=list)
    count: int | None = None  #: messages (or packets) in the whole file, as it sees them
    failure: str = ""

    def times(self) -> list[float]:
        """The times its rate is of, one per run on the whole file."""
        if self.program.clock is Clock.OWN:
            return [sample.own or sample.wall for sample in self.whole]
        return [sample.wall for sample in self.whole]

    def time(self) -> float:
        return statistics.median(self.times())

    def rate(self, best: bool = False) -> float | None:
        """Its rate over the median time, or over the fastest run's (``best``: what a
        busy machine takes least from)."""
        if not self.count or not self.whole:
            return None
        return self.count / (min(self.times()) if best else self.time())

    def rss(self, part: bool = False) -> float:
        """Median peak RSS in MB, of the whole file or of its first 10 %."""
        samples = self.part if part else self.whole
        return statistics.median(sample.rss for sample in samples) / 1024 if samples else 0.0


def _vmhwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakWatch(threading.Thread):
    """Polls a child's VmHWM while it runs: the peak RSS of a program that does not
    report its own (tshark, caproto-shark). It runs on this process's CPU, not the
    measured one's."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, _vmhwm(self.pid))
            self.done.wait(0.01)


def _reported(errors: str) -> tuple[float, float, float, int] | None:
    """What the BENCH line a measured program printed says: own seconds, user, system,
    peak RSS in kB."""
    for line in reversed(errors.splitlines()):
        if line.startswith("BENCH "):
            seconds, user, system, rss = line.split()[1:]
            return float(seconds), float(user), float(system), int(rss)
    return None


#: Settings of this process's environment that a person's shell does not have, and that
#: would make a measured program slower than it is where it is installed: no bytecode
#: written (every run would compile shark's sources again) and unbuffered output.
UNLIKE_A_SHELL = ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")


def child_environment() -> dict[str, str]:
    """The environment of a measured program: this tree's shark first on the path (from
    any directory), without :data:`UNLIKE_A_SHELL`."""
    env = {name: value for name, value in os.environ.items() if name not in UNLIKE_A_SHELL}
    env["PYTHONPATH"] = str(ROOT)
    return env


def compiled() -> None:
    """shark's sources compiled to bytecode, as an installed shark has them, so that no
    measured run pays for compiling them (the first run would, and with bytecode writes
    turned off, every run)."""
    for folder in ("decoder", "shark", "tui"):
        compileall.compile_dir(ROOT / folder, quiet=1)


def measure(program: Program, path: Path, cpu: int | None) -> Sample:
    """Run ``program`` on ``path`` once, in a child pinned to ``cpu``; raises
    :class:`Failed` when it fails."""
    env = child_environment()
    stdout = subprocess.DEVNULL if program.output is Output.NULL else subprocess.PIPE
    with open(path if program.stdin else os.devnull, "rb") as source, \
            tempfile.TemporaryFile() as err:
        mine = os.sched_getaffinity(0)
        if cpu is not None:  # the child inherits the spawning thread's CPUs
            os.sched_setaffinity(0, {cpu})
        try:
            start = time.perf_counter()
            proc = subprocess.Popen(program.argv(path), stdin=source, stdout=stdout,
                                    stderr=err, env=env, cwd=ROOT)
        finally:
            os.sched_setaffinity(0, mine)
        watch = PeakWatch(proc.pid)
        watch.start()
        text, lines = b"", 0
        if proc.stdout is not None:
            while chunk := proc.stdout.read(1 << 16):
                if program.output is Output.LINES:
                    lines += chunk.count(b"\n")
                else:
                    text += chunk
            proc.stdout.close()
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # ended, not yet reaped
        wall = time.perf_counter() - start
        watch.done.set()
        watch.join()
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        errors = err.read().decode(errors="replace")
    report = _reported(errors) if program.reports else None
    if proc.returncode or (program.reports and report is None):
        tail = " ".join(errors.strip().splitlines()[-3:])[-300:]
        raise Failed(f"exit status {proc.returncode}: {tail or 'no message'}")
    count = lines if program.output is Output.LINES else None
    if program.output is Output.COUNT:
        if not text.split() or not text.split()[0].isdigit():
            raise Failed(f"printed no count: {text[:200]!r}")
        count = int(text.split()[0])
    if report is not None:
        own, user, system, rss = report
        return Sample(wall, own, user, system, rss, count)
    return Sample(wall, None, usage.ru_utime, usage.ru_stime, watch.peak, count)


def head(path: Path, fraction: float) -> Path:
    """A copy of a classic pcap file cut after the record that crosses ``fraction`` of
    its bytes (made once, in benchmarks/data: never next to a capture of a corpus)."""
    DATA.mkdir(parents=True, exist_ok=True)
    out = DATA / f"{path.stem}.head{fraction * 100:g}{path.suffix}"
    if out.exists() and out.stat().st_mtime >= path.stat().st_mtime:
        return out
    limit = int(path.stat().st_size * fraction)
    with open(path, "rb") as source, open(out, "wb") as copy:
        header = source.read(24)
        order = "<" if header[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        copy.write(header)
        written = 24
        while written < limit:
            record = source.read(16)
            if len(record) < 16:
                break
            caplen = struct.unpack_from(order + "I", record, 8)[0]
            copy.write(record + source.read(caplen))
            written += 16 + caplen
    return out


def empty(path: Path) -> Path:
    """A copy of a classic pcap file's header alone: the same file, without packets
    (made once, in benchmarks/data, like :func:`head`'s cuts)."""
    DATA.mkdir(parents=True, exist_ok=True)
    out = DATA / f"{path.stem}.empty{path.suffix}"
    if not out.exists():
        with open(path, "rb") as source:
            out.write_bytes(source.read(24))
    return out


def find_ca_lua(given: Path | None) -> Path | None:
    """cashark's ca.lua: ``--ca-lua``, else ``$SHARK_BENCH_CA_LUA``, else the first of
    :data:`CA_LUA_PLACES` that exists."""
    if given is not None:
        return given
    if os.environ.get("SHARK_BENCH_CA_LUA"):
        return Path(os.environ["SHARK_BENCH_CA_LUA"])
    return next((place for place in CA_LUA_PLACES if place.is_file()), None)


def tshark_argv(tshark: str, ca_lua: Path, *extra: str) -> Callable[[Path], list[str]]:
    """``tshark -r CAP`` with ca.lua loaded (unless tshark loads it by itself)."""
    script = [] if ca_lua.resolve().parent in {p.resolve() for p in AUTOLOADED} else [
        "-X", f"lua_script:{ca_lua.resolve()}"]
    return lambda path: [tshark, "-r", str(path), *script, *extra]


def tshark_messages(argv: Callable[[Path], list[str]], path: Path) -> int:
    """The CA messages tshark decodes in ``path``: ``-T fields -e ca.command`` prints
    each packet's commands (as 0x0001,0x0001,...); the ``0x`` are counted."""
    found, carry = 0, b""
    with subprocess.Popen([*argv(path), "-T", "fields", "-e", "ca.command"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        while chunk := proc.stdout.read(1 << 16):
            found += (carry + chunk).count(b"0x")
            carry = chunk[-1:]
    return found


def shark_formats() -> list[str]:
    """The formats ``shark read --help`` lists (csv joins text and jsonl when it has it)."""
    env = child_environment()
    shown = subprocess.run([PYTHON, "-m", "shark", "read", "--help"], capture_output=True,
                           text=True, env=env, cwd=ROOT).stdout
    listed = re.search(r"--format \{([^}]*)\}", shown)
    return listed.group(1).split(",") if listed else ["text", "jsonl"]


def cli_program(fmt: str) -> Program:
    name = "shark read CAP" if fmt == "text" else f"shark read -f {fmt} CAP"
    flags = [] if fmt == "text" else ["--format", fmt]
    return Program(f"read-{fmt}", f"{name} > /dev/null",
                   lambda path: [PYTHON, "-c", CLI, *flags, str(path)],
                   output=Output.NULL, clock=Clock.PROCESS, streams=True)


def programs(args: argparse.Namespace) -> tuple[list[Program], list[str]]:
    """The programs to measure, and a line for each one skipped, with its reason."""
    chosen = [Program("dpkt", "dpkt pcap iteration", lambda p: [PYTHON, "-c", DPKT, str(p)],
                      unit="pkt")]
    chosen += [cli_program(fmt) for fmt in shark_formats()]
    # The fixed costs any whole-process time above pays: the interpreter's start, and a
    # ``shark read`` of a capture without packets (imports, the command line, the file).
    chosen.append(Program("python", "python -c pass (interpreter start)",
                          lambda _p: [PYTHON, "-c", "pass"], output=Output.NULL,
                          clock=Clock.PROCESS, reports=False))
    chosen.append(Program("start", "shark read EMPTY > /dev/null (start-up)",
                          lambda p: [PYTHON, "-c", CLI, str(empty(p))],
                          output=Output.NULL, clock=Clock.PROCESS))
    skipped = []
    tshark = shutil.which("tshark")
    ca_lua = find_ca_lua(args.ca_lua)
    if args.no_tshark:
        skipped.append("tshark + ca.lua: skipped (--no-tshark)")
    elif tshark is None:
        skipped.append("tshark + ca.lua: skipped, tshark not installed "
                       "(apt-get install tshark)")
    elif ca_lua is None or not ca_lua.is_file():
        where = f"{ca_lua} does not exist" if ca_lua else (
            "no ca.lua: give --ca-lua PATH or $SHARK_BENCH_CA_LUA, or put cashark's "
            "ca.lua in benchmarks/data/ or a Wireshark plugin folder")
        skipped.append(f"tshark + ca.lua: skipped, {where}")
    else:
        chosen.append(Program("tshark", "tshark -r CAP -X lua_script:ca.lua > /dev/null",
                              tshark_argv(tshark, ca_lua), output=Output.NULL,
                              clock=Clock.PROCESS, reports=False))
    chosen.append(Program("iterator", "shark.read(CAP) iterator",
                          lambda p: [PYTHON, "-c", ITERATOR, str(p)], streams=True))
    chosen.append(Program("table", 'shark.open(CAP).table("messages")',
                          lambda p: [PYTHON, "-c", TABLE, str(p)]))
    if args.no_baseline:
        skipped.append("pandas from_records baseline: skipped (--no-baseline)")
    else:
        chosen.append(Program("baseline", "pandas from_records(jsonl dicts)",
                              lambda p: [PYTHON, "-c", BASELINE, str(p)]))
    caproto = shutil.which("caproto-shark") or str(Path(PYTHON).with_name("caproto-shark"))
    if args.no_caproto:
        skipped.append("caproto-shark: skipped (--no-caproto)")
    elif not Path(caproto).exists():
        skipped.append("caproto-shark: skipped, not installed (pip install -e '.[bench]')")
    else:
        chosen.append(Program("caproto", "caproto-shark < CAP", lambda _p: [caproto],
                              output=Output.LINES, clock=Clock.PROCESS, stdin=True,
                              reports=False))
    return chosen, skipped


def machine(cpu: int | None) -> list[str]:
    """Lines on the machine, the interpreter and the tools measured."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    pinned = f"each program pinned to CPU {cpu}" if cpu is not None else "not pinned"
    lines = [f"machine: {model}, {os.cpu_count()} cores ({pinned}); "
             f"{platform.system()} {platform.release()} {platform.machine()}",
             f"python:  {platform.python_version()} ({platform.python_implementation()})"]
    versions = []
    for name in ("dpkt", "caproto", "numpy", "pyarrow", "pandas"):
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    if tshark := shutil.which("tshark"):
        shown = subprocess.run([tshark, "--version"], capture_output=True, text=True).stdout
        versions.append(shown.splitlines()[0].split("(")[0].strip() + " "
                        + (shown.split()[2] if len(shown.split()) > 2 else ""))
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()
    lines.append(f"tools:   {', '.join(versions)}" + (f"; shark at {commit}" if commit else ""))
    return lines


def run_rounds(chosen: list[Program], path: Path, part: Path, runs: int,
               cpu: int | None) -> dict[str, Series]:
    """``runs`` rounds; round r starts with the r-th program, so that none always goes
    first (or after the heaviest)."""
    series = {program.key: Series(program) for program in chosen}
    for done in range(runs):
        order = chosen[done % len(chosen):] + chosen[:done % len(chosen)]
        for program in order:
            entry = series[program.key]
            if entry.failure:
                continue
            try:
                whole = measure(program, path, cpu)
                entry.part.append(measure(program, part, cpu))
            except Failed as error:
                entry.failure = str(error)
                print(f"  round {done + 1}/{runs}: {program.label} failed: {error}",
                      file=sys.stderr)
                continue
            entry.whole.append(whole)
            own = f", {whole.own:.2f} s own" if whole.own is not None else ""
            print(f"  round {done + 1}/{runs}: {program.label}: {whole.wall:.2f} s{own}",
                  file=sys.stderr, flush=True)
    return series


def row(entry: Series, dpkt: float | None) -> str:
    """One line of the table."""
    label = entry.program.label
    if entry.failure or not entry.whole:
        return f"  {label:<44} failed: {entry.failure}"
    times = entry.times()
    count = f"{entry.count:,} {entry.program.unit}" if entry.count else "?"
    rate = entry.rate()
    shown = f"{rate:>12,.0f} {entry.program.unit}/s" if rate else " " * 18
    ratio = f"{entry.time() / dpkt:8.1f}" if dpkt else " " * 8
    user = statistics.median(sample.user for sample in entry.whole)
    system = statistics.median(sample.system for sample in entry.whole)
    return (f"  {label:<44} {count:>15} {entry.program.clock.value:>7} "
            f"{entry.time():8.2f} {min(times):7.2f} {max(times):7.2f} {shown} "
            f"{user:6.1f} {system:5.1f} {entry.rss():8.1f} {entry.rss(part=True):8.1f} {ratio}")


HEADER = (f"  {'program':<44} {'count':>15} {'clock':>7} {'median':>8} {'min':>7} "
          f"{'max':>7} {'rate (median)':>18} {'user':>6} {'sys':>5} {'RSS MB':>8} "
          f"{'10 % MB':>8} {'x dpkt':>8}")

#: Issue 15's target for the ``messages`` table, end to end from the capture file.
TABLE_TARGET = 1.5e6
#: The iterator's messages/s against dpkt's packets/s (read_rate's earlier target).
ITERATOR_SHARE = 1 / 3
#: "Flat" peak RSS: the whole file's at most this many times its first 10 %'s.
FLAT_RSS = 1.25
#: Issue 15's targets for ``shark read`` text and jsonl: a time within this many times
#: dpkt's iteration of the same file's packets, and this many times tshark + ca.lua's
#: messages per second.
DPKT_TIME = 1.25
TSHARK_RATE = 50


def targets(series: dict[str, Series]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each target that could be measured."""
    found = []
    table = series.get("table")
    if table and table.rate():
        found.append((f'messages table >= {TABLE_TARGET / 1e6:g} M msg/s (issue 15)',
                      f"{table.rate() / 1e6:.2f} M msg/s (fastest run: "
                      f"{table.rate(best=True) / 1e6:.2f})", table.rate() >= TABLE_TARGET))
    iterator, dpkt = series.get("iterator"), series.get("dpkt")
    if iterator and iterator.rate() and dpkt and dpkt.rate():
        share = iterator.rate() / dpkt.rate()
        found.append(("shark.read iterator msg/s >= 1/3 of dpkt's pkt/s",
                      f"{share:.2f} x (fastest runs: "
                      f"{iterator.rate(best=True) / dpkt.rate(best=True):.2f} x)",
                      share >= ITERATOR_SHARE))
    tshark = series.get("tshark")
    tshark_rate = tshark.rate() if tshark else None
    for key in ("read-text", "read-jsonl"):
        entry = series.get(key)
        if not entry or not entry.whole:
            continue
        label = entry.program.label.split(" > ")[0]
        if dpkt and dpkt.whole:
            ratio = entry.time() / dpkt.time()
            floor = _floor(series, dpkt.time() * DPKT_TIME)
            found.append((f"{label}: time <= {DPKT_TIME:g} x dpkt's iteration (issue 15)",
                          f"x{ratio:.1f} ({entry.time():.2f} s against {dpkt.time():.2f} s, "
                          f"whole process against dpkt's own loop{floor})",
                          ratio <= DPKT_TIME))
        if tshark_rate and entry.rate() and entry.count:
            ratio = entry.rate() / tshark_rate
            found.append((f"{label}: msg/s >= {TSHARK_RATE} x tshark + ca.lua's (issue 15)",
                          f"x{ratio:.1f} ({entry.rate():,.0f} against {tshark_rate:,.0f} "
                          f"msg/s{_floor(series, entry.count / tshark_rate / TSHARK_RATE)})",
                          ratio >= TSHARK_RATE))
    for entry in series.values():
        if entry.program.streams and entry.whole and entry.part:
            grown = entry.rss() / entry.rss(part=True)
            found.append((f"flat RSS, {entry.program.label.split(' > ')[0]}: whole file "
                          f"<= {FLAT_RSS:g} x first 10 %",
                          f"{entry.rss():.0f} MB vs {entry.rss(part=True):.0f} MB "
                          f"({grown:.2f} x)", grown <= FLAT_RSS))
    return found


def _floor(series: dict[str, Series], budget: float) -> str:
    """What a time target leaves a ``shark read`` (``budget`` seconds), beside the two
    parts of it that no output format changes: a process's start-up, and the decoding
    of the capture into the columns every view reads (the ``messages`` table's own
    time). A target below their sum is out of reach by any speed of formatting."""
    parts = []
    start, table = series.get("start"), series.get("table")
    if start and start.whole:
        parts.append(f"a shark process's start-up takes {start.time():.2f} s")
    if table and table.whole:
        parts.append(f"decoding the capture into columns (the table's own time) "
                     f"{table.time():.2f} s")
    return f"; the target is {budget:.2f} s, " + " and ".join(parts) if parts else ""


def report(series: dict[str, Series], path: Path, part: Path, runs: int, cut: bool) -> None:
    """The table, the comparisons and the targets."""
    dpkt = series.get("dpkt")
    dpkt_time = dpkt.time() if dpkt and dpkt.whole else None
    iterator = series.get("iterator")
    messages = iterator.count if iterator and iterator.count else None
    for entry in series.values():  # what shark's command line prints is the iterator's
        if entry.program.key.startswith("read-"):
            entry.count = messages
    packets = dpkt.count if dpkt else None
    print(f"capture: {path.name}, {path.stat().st_size / 1e6:.1f} MB"
          + (f", {packets:,} packets" if packets else "")
          + (f", {messages:,} messages" if messages else "")
          + (f" ({messages / packets:.1f} per packet)" if messages and packets else "")
          + f"; first 10 %: {part.stat().st_size / 1e6:.1f} MB")
    print(f"runs:    {runs} round{'s' if runs > 1 else ''}, each program on the whole file "
          "then on its first 10 %, the order turned by one each round; median with min "
          "and max")
    print("clock:   'process' = the whole process, interpreter start included, as at a "
          "shell; 'own' = from before the first frame is read (imports left out)")
    print()
    print(HEADER)
    for entry in series.values():
        print(row(entry, dpkt_time))
    print("  (time in s; user and sys: CPU seconds, median; RSS MB: peak RSS, median, of "
          "the whole file and of its first 10 %; x dpkt: time / dpkt's iteration time)")
    python, start = series.get("python"), series.get("start")
    if start and start.whole and python and python.whole and dpkt and dpkt.whole:
        print(f"  fixed costs: the interpreter's start {python.time():.2f} s; a shark "
              f"process's start-up (shark read of the capture's header alone: imports, "
              f"command line, file) {start.time():.2f} s; dpkt's whole process "
              f"{statistics.median(sample.wall for sample in dpkt.whole):.2f} s "
              f"(its loop {dpkt.time():.2f} s)")
    print()
    tshark, text = series.get("tshark"), series.get("read-text")
    if tshark and tshark.whole:
        for key in ("read-text", "read-jsonl", "read-csv"):
            mine = series.get(key)
            if mine and mine.whole:
                print(f"  {mine.program.label.split(' > ')[0]} / tshark + ca.lua: time "
                      f"x{mine.time() / tshark.time():.2f}")
        if tshark.count and messages:
            print(f"  tshark + ca.lua decodes {tshark.count:,} CA messages "
                  f"({100 * tshark.count / messages:.1f} % of shark's)")
    caproto = series.get("caproto")
    if caproto and caproto.count and messages:
        print(f"  caproto-shark finds {caproto.count:,} messages "
              f"({100 * caproto.count / messages:.1f} % of shark's)")
    if iterator and iterator.whole and dpkt_time and dpkt.rate() and iterator.rate():
        per = f"{messages / packets:.0f}" if messages and packets else "many"
        print(f"  shark.read iterator vs dpkt: time x{iterator.time() / dpkt_time:.1f}, "
              f"rate {iterator.rate():,.0f} msg/s / {dpkt.rate():,.0f} pkt/s = "
              f"x{iterator.rate() / dpkt.rate():.2f}")
        print(f"    this capture packs ~{per} messages per packet: dpkt only walks the "
              "packets while shark decodes every message in them, so the time ratio is "
              "no like-for-like race (the rate ratio counts messages against packets)")
    table, baseline = series.get("table"), series.get("baseline")
    if table and table.rate() and baseline and baseline.rate():
        print(f"  shark's tables x{table.rate() / baseline.rate():.1f} the from_records "
              "baseline")
    if text and text.whole and table and table.whole:
        print(f"  shark read (text) / the messages table: time x"
              f"{text.time() / table.time():.1f}")
    print()
    print("targets (on the medians; a busy machine shows in the max):")
    for name, measured, met in targets(series):
        print(f"  {'met    ' if met else 'NOT MET'}  {name}: {measured}")
    if cut:
        print("  (measured on a cut of the capture: on a small file the interpreter and the "
              "imports weigh most, so rates and the flat-RSS figures say little)")


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("capture", nargs="?", type=Path, default=DEFAULT_CAPTURE)
    parser.add_argument("--runs", type=int, default=RUNS, metavar="N",
                        help=f"rounds: the median of N runs of each program (default {RUNS})")
    parser.add_argument("--cut", type=float, default=None, metavar="PERCENT",
                        help="measure only the first PERCENT %% of the capture (quicker)")
    parser.add_argument("--cpu", type=int, default=None, metavar="N",
                        help="the CPU the measured programs run on (default: the last "
                             "one this process may use; this process keeps the others)")
    parser.add_argument("--ca-lua", type=Path, default=None, metavar="PATH",
                        help="cashark's ca.lua for tshark (else $SHARK_BENCH_CA_LUA, "
                             "benchmarks/data/ca.lua or a Wireshark plugin folder)")
    parser.add_argument("--no-tshark", action="store_true", help="skip tshark + ca.lua")
    parser.add_argument("--no-caproto", action="store_true", help="skip caproto-shark")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the from_records baseline (slow, some 3 GB of RAM)")
    args = parser.parse_args()
    runs = max(1, args.runs)
    path = args.capture.resolve()  # the measured programs run in the project directory
    if not path.exists():
        sys.exit(f"{path} not found: make it with benchmarks/make_big_capture.py "
                 "or benchmarks/make_storm_capture.py")
    with open(path, "rb") as handle:
        if handle.read(4) not in PCAP_MAGICS:
            sys.exit(f"{path}: not a classic pcap file")
    if args.cut is not None:
        if not 0 < args.cut <= 100:
            sys.exit(f"--cut {args.cut:g}: give a percentage above 0, at most 100")
        path = head(path, args.cut / 100) if args.cut < 100 else path
    part = head(path, 0.1)
    cpus = sorted(os.sched_getaffinity(0))
    cpu = args.cpu if args.cpu is not None else cpus[-1]
    if cpu not in cpus:
        sys.exit(f"--cpu {cpu}: this process may use CPUs {cpus}")
    if len(cpus) > 1:  # this process (reading pipes, polling RSS) keeps off the measured CPU
        os.sched_setaffinity(0, [c for c in cpus if c != cpu])
    for line in machine(cpu):
        print(line)
    chosen, skipped = programs(args)
    for line in skipped:
        print(f"skipped: {line}")
    sys.stdout.flush()  # before the rounds' progress on stderr
    compiled()
    for copy in (path, part):  # into the page cache: no run pays for the disk
        with open(copy, "rb") as handle:
            while handle.read(1 << 24):
                pass
    for program in chosen:  # numba compiles its kernels into its cache on first use
        if program.key.startswith("read-"):
            subprocess.run(program.argv(part), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=child_environment(), cwd=ROOT)
    series = run_rounds(chosen, path, part, runs, cpu)
    if (tshark := series.get("tshark")) and tshark.whole:
        tshark.count = tshark_messages(tshark.program.argv, path)
        if not tshark.count:
            tshark.failure = "tshark decoded no CA message with this ca.lua"
    if (caproto := series.get("caproto")) and caproto.whole:
        caproto.count = caproto.whole[0].count
    for entry in series.values():
        if entry.program.output is Output.COUNT and entry.whole:
            entry.count = entry.whole[0].count
    print()
    report(series, path, part, runs, cut=args.cut is not None and args.cut < 100)


if __name__ == "__main__":
    main()

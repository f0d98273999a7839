"""Reading rate and memory of ``shark read`` on one large capture, beside caproto-shark and
dpkt, all measured in the same run on the same file.

For the capture (by default ``benchmarks/data/big_monitors.pcap``, made by
``benchmarks/make_big_capture.py``) it prints:

* ``shark read --format jsonl FILE > /dev/null``: messages/s and peak RSS, for the whole
  file and for its first 10 % (a copy cut at a packet boundary), so that memory growth
  with the file's length shows;
* the Python iterator ``shark.read`` (every record, attributed), the same;
* shark's tables, ``shark.open(FILE, tables=["messages"]).table("messages")`` end to end
  (capture file to DataFrame): rows, messages/s and peak RSS, whole file and first 10 %;
* the baseline ``pandas.DataFrame.from_records`` of the dicts of ``shark read --format
  jsonl`` (:func:`shark.output.jsonl.record_dict`) over ``shark.read``, the same, and the ratio
  of the two rates (slow, and some 3 GB on the default capture: ``--no-baseline``
  skips it);
* caproto's ``caproto-shark`` (it reads pcap on stdin and prints a line per message it
  decodes; it reassembles nothing, so a message split over segments is lost, and after
  the first bytes it cannot decode it ignores their sender): its message count and rate
  (time and peak RSS as seen from outside: interpreter start included);
* dpkt's raw pcap iteration (packets/s): the floor any Python reader pays per packet.

The capture must be classic pcap (caproto-shark and dpkt's pcap reader read nothing
else). The targets: the iterator's messages/s at no less than a third of dpkt's packets/s;
at least 1 M messages/s into the ``messages`` DataFrame, end to end from the capture file.
Each measured program runs in a child process of its own, so that its peak RSS is its
own, three times (``--runs``): the fastest run is the one shown. Run on demand:
``python benchmarks/read_rate.py [CAPTURE]`` (``make bench-read``); it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
DEFAULT_CAPTURE = DATA / "big_monitors.pcap"
PYTHON = sys.executable

#: Each measured program reports, on its last line of stderr, its time (from before its
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
import sys, time
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
import sys, time
import pandas
import shark
from shark.tables import Capture
start = _clock()
print(len(shark.open(sys.argv[1], tables=["messages"]).table("messages")))
_report(start)
"""

BASELINE = _REPORT + """
import sys, time
import pandas
import shark
from shark.output.jsonl import record_dict
start = _clock()
print(len(pandas.DataFrame.from_records([record_dict(r) for r in shark.read(sys.argv[1])])))
_report(start)
"""

JSONL = _REPORT + """
import sys, time
from shark.cli import main
start = _clock()
status = main(["read", "--format", "jsonl", sys.argv[1]])
sys.stdout.flush()
_report(start)
sys.exit(status)
"""

DPKT = """
import sys, time
import dpkt
start = time.perf_counter()
count = 0
with open(sys.argv[1], "rb") as handle:
    for _ts, _frame in dpkt.pcap.Reader(handle):
        count += 1
print(count, time.perf_counter() - start)
"""


def run(argv: list[str], stdin: Path | None = None, stdout: bool = True,
        ) -> tuple[bytes, float, int, int, str]:
    """Run ``argv``: (its stdout, or the number of lines in it when ``stdout`` is False,
    as text; wall seconds; the peak RSS in kB it reached, polled from /proc while it
    runs; its exit status; its stderr)."""
    # This tree's shark, whatever the current directory (``-c`` puts it on the path).
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(stdin or os.devnull, "rb") as source, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=source, stdout=subprocess.PIPE, stderr=err,
                                env=env, cwd=ROOT)
        text, lines, peak = b"", 0, 0
        while chunk := proc.stdout.read(1 << 16):
            if stdout:
                text += chunk
            else:
                lines += chunk.count(b"\n")
            peak = max(peak, _vmhwm(proc.pid))
        status = proc.wait()
        seconds = time.perf_counter() - start
        proc.stdout.close()
        err.seek(0)
        errors = err.read().decode(errors="replace")
    return (text.decode() if stdout else str(lines)), seconds, peak, status, errors


def _vmhwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Report(NamedTuple):
    seconds: float
    user: float  #: CPU seconds in user mode
    system: float  #: CPU seconds in the kernel
    rss: int  #: peak RSS, kB


def _reported(errors: str, what: str) -> Report:
    """What the BENCH line a measured program printed says."""
    for line in reversed(errors.splitlines()):
        if line.startswith("BENCH "):
            seconds, user, system, rss = line.split()[1:]
            return Report(float(seconds), float(user), float(system), int(rss))
    sys.exit(f"{what} failed: {errors[-2000:]}")


def head(path: Path, fraction: float) -> Path:
    """A copy of a classic pcap file cut after the record that crosses ``fraction`` of
    its bytes (made once, in benchmarks/data: never next to a capture of a corpus)."""
    DATA.mkdir(parents=True, exist_ok=True)
    out = DATA / f"{path.stem}.head{round(fraction * 100)}{path.suffix}"
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


#: Each measured program runs this many times (``--runs``), and the fastest run is
#: reported: what a virtual machine's neighbours add to a run is noise, not the
#: program's (dpkt's iteration is the best of as many too).
RUNS = 3


def jsonl(path: Path, runs: int) -> Report:
    """``shark read --format jsonl`` to /dev/null: the fastest of ``runs`` runs."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    reports = []
    for _ in range(runs):
        with open(os.devnull, "wb") as null, tempfile.TemporaryFile() as err:
            status = subprocess.run([PYTHON, "-c", JSONL, str(path)], stdout=null,
                                    stderr=err, env=env, cwd=ROOT).returncode
            err.seek(0)
            errors = err.read().decode(errors="replace")
        if status:
            sys.exit(f"shark read failed on {path}: {errors[-2000:]}")
        reports.append(_reported(errors, "shark read"))
    return min(reports)


def measured(program: str, path: Path, what: str, runs: int) -> tuple[int, Report]:
    """A measured program that prints a count on ``path``: the count, and the report of
    the fastest of ``runs`` runs."""
    reports = []
    for _ in range(runs):
        text, _wall, _peak, status, errors = run([PYTHON, "-c", program, str(path)])
        if status:
            sys.exit(f"{what} failed on {path}: {errors[-2000:]}")
        reports.append(_reported(errors, what))
    return int(text), min(reports)


def rate_line(label: str, count: int, report: Report, part: Report) -> float:
    """Print a count's rate, CPU times and peak RSS, on the whole file and its first 10 %
    (``part``); returns the rate."""
    print(f"  {label:<34} {count:>10,} messages {count / report.seconds:>12,.0f} msg/s  "
          f"CPU {report.user:5.1f} s user {report.system:4.1f} s system  "
          f"peak RSS {report.rss / 1024:6.1f} MB (first 10 %: {part.rss / 1024:.1f} MB)",
          end="")
    return count / report.seconds


def measured_line(label: str, program: str, path: Path, part: Path, runs: int
                  ) -> tuple[int, float]:
    """:func:`rate_line` of a measured program; returns (count, rate)."""
    count, report = measured(program, path, label, runs)
    return count, rate_line(label, count, report, measured(program, part, label, runs)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", nargs="?", type=Path, default=DEFAULT_CAPTURE)
    parser.add_argument("--no-caproto", action="store_true",
                        help="skip caproto-shark (the slowest by far)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the from_records baseline (slow, some 3 GB of RAM)")
    parser.add_argument("--runs", type=int, default=RUNS, metavar="N",
                        help=f"runs of each measured program, the fastest reported "
                             f"(default {RUNS})")
    args = parser.parse_args()
    runs = max(1, args.runs)
    path = args.capture.resolve()  # the measured programs run in the project directory
    if not path.exists():
        sys.exit(f"{path} not found: make it with `python benchmarks/make_big_capture.py`")
    with open(path, "rb") as handle:
        if handle.read(4) not in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4",
                                  b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
            sys.exit(f"{path}: not a classic pcap file")
    size = path.stat().st_size
    part = head(path, 0.1)
    print(f"{path.name}: {size / 1e6:.1f} MB; first 10 %: {part.stat().st_size / 1e6:.1f} MB")

    dpkt = [run([PYTHON, "-c", DPKT, str(path)])[0].split() for _ in range(runs)]
    packets = int(dpkt[0][0])
    dpkt_rate = packets / min(float(seconds) for _, seconds in dpkt)  # the best run
    print(f"  {'dpkt pcap iteration':<34} {packets:>10,} packets  {dpkt_rate:>12,.0f} pkt/s")

    records, rate = measured_line("shark.read (Python iterator)", ITERATOR, path, part,
                                    runs)
    print(f"   x{rate / dpkt_rate:.2f} dpkt's pkt/s")

    rate_line("shark read --format jsonl", records, jsonl(path, runs), jsonl(part, runs))
    print()

    table_rate = measured_line('shark.open(...).table("messages")', TABLE, path, part,
                               runs)[1]
    print()
    if not args.no_baseline:
        baseline = measured_line("pandas from_records(jsonl dicts)", BASELINE, path, part,
                                 runs)[1]
        print(f"   shark's tables x{table_rate / baseline:.1f}")

    caproto = shutil.which("caproto-shark") or str(Path(PYTHON).with_name("caproto-shark"))
    if args.no_caproto:
        return
    if not Path(caproto).exists():
        print("  caproto-shark not installed (pip install caproto dpkt): skipped")
        return
    lines, seconds, rss, _status, _errors = run([caproto], stdin=path, stdout=False)
    found = int(lines)
    shown = f"{rss / 1024:6.1f} MB" if rss else "   n/a"  # it ended before a look
    print(f"  {'caproto-shark':<34} {found:>10,} messages {found / seconds:>12,.0f} msg/s  "
          f"peak RSS {shown}   ({100 * found / records:.1f} % of shark's)")


if __name__ == "__main__":
    main()

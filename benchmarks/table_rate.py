"""Messages per second into the ``messages`` DataFrame, and peak memory, beside pandas.

The table-building step is measured apart from decoding: a capture's records are first
decoded (``shark.read``: capture reading, TCP reassembly, framing, attribution) into a
list, then that list is turned into a DataFrame, and only that is timed, by the clock
and in CPU time, user and system apart (the machine may be shared; system time is
mostly page faults, which a virtual machine that hands memory out lazily makes dear).
The decoder decodes value payloads lazily, so that work (the scalar value, alarm state
and EPICS time of every value message) falls in the table step, for shark and for the
baseline alike:

* ``shark.tables``: ``TableBuilder(["messages"])``, ``extend(records)``,
  ``table("messages")``, the records read with ``bulk=True`` as ``shark.open`` reads
  them (monitor updates in batches: :mod:`shark.extract.bulk`);
* the same building all twelve tables (what ``shark.open`` does);
* the baseline: ``pandas.DataFrame.from_records`` of the dicts of
  ``shark read --format jsonl`` (:func:`shark.output.jsonl.record_dict`), a row at a time;
* decoding alone, for the memory the decoded records take.

Each runs in its own process, so that its peak RSS is its own (the decoded records are
in all of them). The decoded records are moved out of the garbage collector's sight
(``gc.freeze``) before timing: they would be in a notebook, and its collections would
otherwise charge their traversal to whoever allocates at the time.

By default the inputs are ``../shared/captures/ca_many_channels_500.pcap`` and
``ca_monitors_100hz.pcap``, read again and again until a million messages; give
captures (e.g. one made by ``benchmarks/make_big_capture.py``) and ``--messages`` to
change that. It prints a table; it asserts nothing.

    .venv/bin/python benchmarks/table_rate.py [CAPTURE ...] [--messages N]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from shark.analysis.attribution import read  # noqa: E402
from shark.extract.bulk import UPDATES, UpdateBatch  # noqa: E402
from shark.extract.record import CLOSE, OPEN, Record  # noqa: E402
from shark.output.jsonl import record_dict  # noqa: E402
from shark.tables import TableBuilder  # noqa: E402

SHARED = ROOT.parent / "shared" / "captures"
DEFAULT_CAPTURES = [SHARED / "ca_many_channels_500.pcap", SHARED / "ca_monitors_100hz.pcap"]
MODES = {
    "decode": "decoding only (no table)",
    "messages": "shark.tables: messages",
    "all": "shark.tables: all 12 tables",
    "pandas": "pandas.DataFrame.from_records(jsonl dicts)",
}


def decode(paths: list[Path], messages: int, bulk: bool) -> list[Record | UpdateBatch]:
    """The records of the captures, read in turn until ``messages`` message records
    (OPEN and CLOSE come along, not counted); with ``bulk``, update batches too, as
    ``shark.open`` reads them."""
    records = itertools.chain.from_iterable(
        read(path, lifecycle=True, bulk=bulk) for path in itertools.cycle(paths))
    out = []
    while messages > 0:
        record = next(records)
        out.append(record)
        messages -= len(record) if record.kind is UPDATES else record.kind not in (OPEN, CLOSE)
    return out


def build(mode: str, records: list[Record]) -> int:
    """The table step; returns the rows of the messages DataFrame."""
    if mode == "pandas":
        return len(pd.DataFrame.from_records(
            [record_dict(r) for r in records if r.kind not in (OPEN, CLOSE)]))
    builder = TableBuilder(None if mode == "all" else ["messages"])
    builder.extend(records)
    frame = builder.table("messages")
    if mode == "all":
        for name in builder.names:
            builder.table(name)
    return len(frame)


def measure(mode: str, paths: list[Path], messages: int) -> dict:
    start = time.perf_counter()
    records = decode(paths, messages, bulk=mode != "pandas")
    decoding = time.perf_counter() - start
    gc.freeze()
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    rows = messages if mode == "decode" else build(mode, records)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"rows": rows, "decode": decoding, "build": time.perf_counter() - start,
            "user": after.ru_utime - before.ru_utime,
            "system": after.ru_stime - before.ru_stime,
            "peak_rss_mb": after.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("captures", nargs="*", type=Path, default=DEFAULT_CAPTURES)
    parser.add_argument("--messages", type=int, default=1_000_000,
                        help="messages to measure (the captures are read again as needed)")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        json.dump(measure(args.child, args.captures, args.messages), sys.stdout)
        return
    missing = [str(p) for p in args.captures if not p.is_file()]
    if missing:
        sys.exit(f"no such capture: {', '.join(missing)}")
    print(f"captures: {', '.join(p.name for p in args.captures)}; {args.messages} messages, "
          "decoded first; the table step timed alone")
    print(f"{'':44}{'msgs/s':>9}{'table s':>9}{'user s':>8}{'sys s':>7}{'decode s':>10}"
          f"{'peak RSS MB':>13}")
    for mode, label in MODES.items():
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--messages", str(args.messages),
             *map(str, args.captures)], check=True, capture_output=True, text=True).stdout
        result = json.loads(out)
        if mode == "decode":
            rate = table = user = system = "-"
        else:
            rate = f"{result['rows'] / result['build'] / 1e6:.2f} M"
            table = f"{result['build']:.2f}"
            user, system = f"{result['user']:.2f}", f"{result['system']:.2f}"
        print(f"{label:44}{rate:>9}{table:>9}{user:>8}{system:>7}{result['decode']:>10.2f}"
              f"{result['peak_rss_mb']:>13.0f}")


if __name__ == "__main__":
    main()

"""``shark get/put/info/monitor`` against a softioc serving the records of the CA tools'
reference file (``../shared/reference/catools.md``), and that file's samples read back.

* :data:`RECORDS`: the records of the reference's test setup, for :func:`peers.run_scenario`;
* :func:`samples`: the reference's ``$ command`` blocks, with their output and status;
* ``catools_peers.py client PARAMS``: what runs in the namespace beside the IOC: each
  step's ``shark`` command line, in process (the output of both streams, merged, and
  the status), or sent SIGTERM after ``term`` seconds (a monitor), with puts made
  ``meanwhile`` by another client;
  steps marked ``setup`` only bring the records to the state a sample starts from.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peers

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "catools_peers.py"
REFERENCE = HERE.parents[2] / "shared" / "reference" / "catools.md"
TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")

_ALARMS = {"HIHI": 90, "HIGH": 80, "LOW": -80, "LOLO": -90, "HHSV": "MAJOR", "HSV": "MINOR",
           "LSV": "MINOR", "LLSV": "MAJOR"}
#: The records of the reference's test setup (catvs's ``ival``/``aval`` left out).
RECORDS: list[dict[str, Any]] = [
    {"name": "TEST:AI", "type": "ai", "db": True,
     "fields": {"VAL": 3.14159, "PREC": 3, "EGU": "mm", "HOPR": 100, "LOPR": -100, "PINI": "YES",
                **_ALARMS}},
    {"name": "TEST:AO", "type": "ao", "db": True,
     "fields": {"VAL": 1.5, "PREC": 2, "EGU": "V", "DRVH": 10, "DRVL": -10, "PINI": "YES"}},
    {"name": "TEST:LONG", "type": "longout", "db": True,
     "fields": {"VAL": 42, "EGU": "cnt", "HOPR": 1000, "PINI": "YES"}},
    {"name": "TEST:STR", "type": "stringout", "db": True,
     "fields": {"VAL": "hello world", "PINI": "YES"}},
    {"name": "TEST:ENUM", "type": "mbbo", "db": True,
     "fields": {"ZRST": "Off", "ONST": "On", "TWST": "Fault", "VAL": 1, "PINI": "YES"}},
    {"name": "TEST:BO", "type": "bo", "db": True,
     "fields": {"ZNAM": "Closed", "ONAM": "Open", "VAL": 0, "PINI": "YES"}},
    {"name": "TEST:COUNTER", "type": "calc",
     "fields": {"SCAN": ".5 second", "CALC": "A+1", "INPA": "TEST:COUNTER NPP"}},
    {"name": "TEST:WFSHORT", "type": "waveform", "db": True,
     "fields": {"FTVL": "SHORT", "NELM": 10}},
    {"name": "TEST:WFCHAR", "type": "waveform", "db": True,
     "fields": {"FTVL": "CHAR", "NELM": 64}},
    {"name": "TEST:WFDBL", "type": "waveform", "db": True,
     "fields": {"FTVL": "DOUBLE", "NELM": 100000}},
    {"name": "PY:AI", "type": "ai", "value": 12.5, "fields": {"EGU": "degC", "PREC": 2}},
    {"name": "PY:WF", "type": "waveform", "value": {"arange": 100000}, "ftvl": "DOUBLE",
     "nelm": 100000},
]
MAX_ARRAY_BYTES = 10_000_000
#: The reference's tools and the shark commands that stand for them.
COMMANDS = {"caget": "get", "caput": "put", "cainfo": "info", "camonitor": "monitor"}


@dataclass
class Sample:
    """One ``$ command`` block of the reference: argv (of the EPICS tool), its note
    (what the recording did, in parentheses), the output lines and the exit status."""

    command: str
    argv: list[str]
    note: str
    output: list[str]
    status: int

    @property
    def shark_argv(self) -> list[str]:
        return [COMMANDS[self.argv[0]], *self.argv[1:]]


def samples(path: Path = REFERENCE) -> list[Sample]:
    """Every sample of the reference, in its order."""
    found: list[Sample] = []
    lines = path.read_text().splitlines()
    current: Sample | None = None
    for line in lines:
        if current is None:
            if line.startswith("$ "):
                command = line[2:]
                note = ""
                if "   (" in command:
                    command, note = command.split("   (", 1)
                current = Sample(command.strip(), shlex.split(command), note.rstrip(")"),
                                 [], 0)
            continue
        exit_status = re.fullmatch(r"\[exit (\d+)\]", line)
        if exit_status:
            current.status = int(exit_status.group(1))
            found.append(current)
            current = None
        elif line.startswith("```"):  # a block without an exit line (casw's)
            current = None
        else:
            current.output.append(line)
    return found


def masked(lines: list[str]) -> list[str]:
    """Lines with their timestamps replaced (the rest must match byte for byte)."""
    return [TIME.sub("<TIME>", line) for line in lines]


# ------------------------------------------------------------------ inside the namespace


def run_in_process(argv: list[str]) -> tuple[int, str]:
    """``shark ARGV`` in this process: its status, and stdout and stderr as one text."""
    from shark.cli import main

    merged = io.StringIO()
    with contextlib.redirect_stdout(merged), contextlib.redirect_stderr(merged):
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse
            status = int(exc.code or 0)
    return status, merged.getvalue()


def run_terminated(argv: list[str], after: float) -> tuple[int, str]:
    """``shark ARGV`` in this process, sent SIGTERM after ``after`` seconds (a monitor
    catches it: it ends as camonitor killed by it does, status 143)."""
    timer = threading.Timer(after, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        return run_in_process([*argv, "--duration", str(after + 5)])
    finally:
        timer.cancel()


def put_later(delay: float, name: str, value: str) -> threading.Thread:
    """Write ``value`` to ``name`` after ``delay`` seconds, on a thread with a client of
    its own (what a monitor running meanwhile should see), printing nothing."""
    def put() -> None:
        import asyncio

        from shark.catools.session import open_client

        async def write() -> None:
            async with open_client(2.0) as client:
                await client.write(name, value, notify=True)

        time.sleep(delay)
        asyncio.run(write())

    thread = threading.Thread(target=put, daemon=True)
    thread.start()
    return thread


def client_main(params_path: str) -> int:
    params = peers.load_client_params([params_path])
    results = []
    for step in params["steps"]:
        started = time.monotonic()
        meanwhile = [put_later(*put) for put in step.get("meanwhile", [])]
        if step.get("term"):
            status, text = run_terminated(step["argv"], step["term"])
        else:
            status, text = run_in_process(step["argv"])
        for thread in meanwhile:
            thread.join(10)
        results.append({"argv": step["argv"], "status": status, "output": text,
                         "seconds": round(time.monotonic() - started, 3)})
    peers.save_client_result(params, results)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        sys.exit(client_main(sys.argv[2]))
    print(__doc__, file=sys.stderr)
    sys.exit(2)

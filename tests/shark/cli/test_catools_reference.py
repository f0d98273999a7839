"""``shark get/put/info/monitor`` print what caget, caput, cainfo and camonitor print.

Every sample of the reference file (``../shared/reference/catools.md``) whose tool is
one of those four is run against a softioc serving the reference's records, in a
private network namespace pinned to 127.0.0.1, and compared with the recorded output
line for line, byte for byte, timestamps aside, with the same exit status. The samples
were recorded in an order that is not the file's, so a few records are first put in the
state the sample shows as ``Old``.

Monitors that need something to happen while they run get it from another client at the
recorded time (a put, a change of units). Left out: the monitor across an IOC restart,
casw, and of ``caput TEST:LONG notanumber`` the CA.Client.Exception block (libca's
source file and line): its Old and New lines and status are compared. The lines of the
counter are compared by their shape (times, relative times and the count masked), since
the count moves on; the other lines of the same monitor exactly.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from typing import Any

import catools_peers
import peers
import pytest

#: The state each sample starts from in the recording, where it is not the one the file's
#: order leaves: (command, occurrence) -> shark commands to run first.
SETUPS = {
    ("caget -a TEST:AI", 0): ["put TEST:AI 95"],
    ("caput TEST:AI 95", 0): ["put TEST:AI 85"],
    ("caget -f3 TEST:AI", 0): ["put TEST:AI 3.14159"],
    ("caget TEST:WFSHORT", 0): ["put -a TEST:WFSHORT 5 1 2 3 -4 5"],
    ("caput -a TEST:WFSHORT 5 1 2 3 -4 5", 0): ["put -a TEST:WFSHORT 10 0 0 0 0 0 0 0 0 0 0"],
    ("caput TEST:AO 99", 0): ["put TEST:AO 5.5"],
    ("caput -F , TEST:LONG 7", 0): ["put TEST:LONG 12345"],
}
#: Monitors that need an IOC restart: left out.
UNSUPPORTED = {"camonitor TEST:LONG"}
#: What another client writes while a monitor runs, as in the recording: (seconds, PV,
#: value); and how long those monitors run.
MEANWHILE = {"camonitor TEST:COUNTER TEST:AO": [(1.0, "TEST:AO", "6")],
             "camonitor -m p TEST:AI": [(0.5, "TEST:AI.EGU", "cm")]}
LONGER = {"camonitor TEST:COUNTER TEST:AO": 2.2}
#: Seconds a monitor runs before its SIGTERM.
MONITOR_SECONDS = 0.8
COUNTER = "TEST:COUNTER"
ONLY_OLD_AND_NEW = {"caput TEST:LONG notanumber"}
_RELATIVE = re.compile(r"[+-]\d+\.\d{6}")
_COUNT = re.compile(r"(?<=[ ,(])\d+(\.\d+)?(?=(  |,,)$)")


if not catools_peers.REFERENCE.is_file():
    pytest.skip(f"the reference of EPICS base's tools is not at {catools_peers.REFERENCE}",
                allow_module_level=True)


def _samples() -> list[catools_peers.Sample]:
    return [s for s in catools_peers.samples()
            if s.argv[0] in catools_peers.COMMANDS and s.command not in UNSUPPORTED]


SAMPLES = _samples()


def _steps() -> list[dict[str, Any]]:
    seen: Counter = Counter()
    steps = []
    for sample in SAMPLES:
        occurrence = seen[sample.command]
        seen[sample.command] += 1
        for setup in SETUPS.get((sample.command, occurrence), []):
            steps.append({"argv": setup.split(), "setup": True})
        step: dict[str, Any] = {"argv": sample.shark_argv, "sample": sample.command}
        if sample.argv[0] == "camonitor":
            step["term"] = LONGER.get(sample.command,
                                      MONITOR_SECONDS + (0.7 if "-w" in sample.argv else 0))
            step["meanwhile"] = MEANWHILE.get(sample.command, [])
        steps.append(step)
    return steps


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    missing = peers.peers_missing()
    if missing:
        pytest.skip(missing)
    steps = _steps()
    result = peers.run_scenario(
        catools_peers.RECORDS, [sys.executable, str(catools_peers.SCRIPT), "client"],
        tmp_path_factory.mktemp("catools"), client_params={"steps": steps},
        client_timeout=90, max_array_bytes=catools_peers.MAX_ARRAY_BYTES)
    assert result["ok"], result["errors"]
    ran = result["client_result"]
    return [r for r, step in zip(ran, steps, strict=True) if not step.get("setup")]


def _expected(sample: catools_peers.Sample) -> list[str]:
    tool = sample.argv[0]
    shark = f"shark {catools_peers.COMMANDS[tool]}"
    return [line.replace(f"'{tool} -h'", f"'{shark} -h'") for line in sample.output]


def _shape(lines: list[str]) -> set[str]:
    return {_COUNT.sub("<N>", _RELATIVE.sub("<DT>", line))
            for line in catools_peers.masked(lines)}


@pytest.mark.parametrize("index", range(len(SAMPLES)),
                         ids=[f"{i}:{s.command}" for i, s in enumerate(SAMPLES)])
def test_the_output_is_the_tools(outputs: list[dict[str, Any]], index: int) -> None:
    sample = SAMPLES[index]
    ran = outputs[index]
    ours = ran["output"].splitlines()
    expected = _expected(sample)
    assert ran["status"] == sample.status, ran["output"]
    if sample.command in ONLY_OLD_AND_NEW:
        ours = [line for line in ours if line.startswith(("Old :", "New :"))]
        expected = [line for line in expected if line.startswith(("Old :", "New :"))]
    if sample.argv[0] == "camonitor" and COUNTER in sample.argv:
        assert len(ours) >= 2, ran["output"]
        counted = [line for line in ours if line.startswith(COUNTER)]
        assert _shape(counted) == _shape([e for e in expected if e.startswith(COUNTER)])
        ours = [line for line in ours if not line.startswith(COUNTER)]
        expected = [line for line in expected if not line.startswith(COUNTER)]
    assert catools_peers.masked(ours) == catools_peers.masked(expected)

"""Periodic updates: each kind's steps (pure, no waiting), and the loop that plays them
on a server, with a fake clock."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from decoder.dbr import DBRType
from shark.ioc.pv import IocPV
from shark.ioc.scan import Call, Counter, Noise, Ramp, Scan, resolve, run_scan
from shark.peers.server import PV, Server


def _steps(step: Any, value: Any, n: int) -> list[Any]:
    seen = []
    for tick in range(n):
        value = step(value, float(tick))
        seen.append(value)
    return seen


def test_a_ramp_climbs_by_its_step_and_starts_again_past_stop() -> None:
    pv = PV("R", DBRType.DOUBLE, 0.0)
    assert _steps(Ramp(1, stop=2, step=0.5).stepper(pv), 0.0, 6) == [
        0.5, 1.0, 1.5, 2.0, 0.0, 0.5]
    down = Ramp(1, stop=-1, step=-1, start=1).stepper(pv)
    assert _steps(down, 1, 4) == [0, -1, 1, 0]


def test_a_counter_counts_and_wraps_an_enum_at_its_last_state() -> None:
    assert _steps(Counter(1).stepper(PV("C", DBRType.LONG, 7)), 7, 3) == [8, 9, 10]
    assert _steps(Counter(1, start=1, stop=3).stepper(PV("C", DBRType.SHORT, 1)), 1, 4) == [
        2, 3, 1, 2]
    enum = PV("E", DBRType.ENUM, 0, enum_strings=["a", "b", "c"])
    assert _steps(Counter(1).stepper(enum), 0, 4) == [1, 2, 0, 1]


def test_noise_stays_within_its_amplitude_element_by_element_and_repeats_with_a_seed() -> None:
    pv = PV("N", DBRType.DOUBLE, [10.0, 100.0], count=2)
    first = _steps(Noise(1, amplitude=0.5, seed=3).stepper(pv), None, 50)
    assert all(9.5 <= a <= 10.5 and 99.5 <= b <= 100.5 for a, b in first)
    assert first == _steps(Noise(1, amplitude=0.5, seed=3).stepper(pv), None, 50)
    around = Noise(1, amplitude=1, center=-3).stepper(PV("N", DBRType.FLOAT, 0.0))
    assert all(-4 <= v <= -2 for v in _steps(around, None, 20))


@pytest.mark.parametrize(("periodic", "pv", "problem"), [
    (Ramp(1, stop=10), PV("S", DBRType.STRING, "x"), "numeric PV, not DBR_STRING"),
    (Counter(1), PV("A", DBRType.LONG, [1, 2]), "scalar PV, not an array of 2"),
    (Ramp(1, stop=-5, step=1), PV("D", DBRType.DOUBLE, 0.0), "never reaches -5"),
])
def test_a_kind_refuses_a_pv_it_cannot_move(periodic: Any, pv: PV, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        periodic.stepper(pv)


def test_resolve_finds_a_function_beside_the_file(tmp_path: Any) -> None:
    (tmp_path / "oven_model.py").write_text("def heat(value, t):\n    return value + t\n")
    assert resolve("oven_model:heat", tmp_path)(1, 2) == 3
    assert resolve("math.hypot")(3, 4) == 5
    for path, problem in [("nosuchmodule_xyz:f", "cannot import"), ("math:nope", "no 'nope'"),
                          ("math:pi", "not callable"), ("justaname", "not module:function")]:
        with pytest.raises(ValueError, match=problem):
            resolve(path)


class FakeClock:
    """A clock the scan's sleeps move forward, so a scan runs without waiting."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def _play(step: Any, ticks: int, pv: PV | None = None,
                slow: float = 0.0) -> tuple[Server, FakeClock]:
    server = Server([pv or IocPV("S", DBRType.LONG, 0)], port=0, beacon_address=None)
    clock = FakeClock()

    def timed(value: Any, elapsed: float) -> Any:
        clock.now += slow
        return step(value, elapsed)

    task = asyncio.create_task(run_scan(server, Scan("S", 0.5, timed), clock=clock,
                                        sleep=clock.sleep))
    while len(clock.sleeps) < ticks:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return server, clock


def test_the_loop_sets_each_step_at_whole_periods_and_gives_the_time() -> None:
    times: list[float] = []

    def step(value: int, elapsed: float) -> int:
        times.append(elapsed)
        return value + 1

    server, clock = asyncio.run(_play(step, 5))
    assert clock.sleeps == [0.5] * 5 and times == [0.5, 1.0, 1.5, 2.0]
    assert server.pvs["S"].value == 4


def test_the_loop_skips_ticks_a_slow_step_missed() -> None:
    server, clock = asyncio.run(_play(lambda value, _: value + 1, 4, slow=1.2))
    assert clock.sleeps == pytest.approx([0.5, 0.3, 0.3, 0.3])  # 0.5, 2.0, 3.5, 5.0


def test_an_async_step_and_none_leave_and_a_failing_step_is_told_once(
        caplog: pytest.LogCaptureFixture) -> None:
    async def later(value: int, _: float) -> int:
        return value + 10

    server, _ = asyncio.run(_play(later, 3))
    assert server.pvs["S"].value == 20
    server, _ = asyncio.run(_play(lambda value, _: None, 3))
    assert server.pvs["S"].value == 0

    def broken(value: int, _: float) -> int:
        raise ZeroDivisionError("oops")

    with caplog.at_level(logging.DEBUG, logger="shark.ioc.scan"):
        asyncio.run(_play(broken, 4))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "scan of S failed" in errors[0].getMessage()
    assert errors[0].exc_info is not None


def test_a_call_hands_its_function_value_and_time() -> None:
    call = Call(1.0, lambda value, elapsed: value * 2 + elapsed)
    assert call.stepper(PV("C", DBRType.DOUBLE, 1.0))(3.0, 0.5) == 6.5

"""Periodic updates of a PV: a ramp, noise, a counter, or a Python callable.

What a record's SCAN field and a simulation's device support give a soft IOC: a value
that moves by itself. Each kind is a small frozen description (:class:`Ramp`,
:class:`Noise`, :class:`Counter`, :class:`Call`) that the file form and the Python form
share; :meth:`stepper` turns it into a *step* for one PV, a function of the PV's current
value and the seconds since the IOC started that gives the next value (None: leave it).
:class:`Scan` ties a step to a PV name and a period, and :func:`run_scan` plays it on a
running :class:`~shark.peers.server.Server`. The steps are pure but for noise's random
generator, and the loop takes its clock and sleep as arguments, so both are tested
without waiting.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import math
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from decoder.dbr import DBRType
from shark.peers.server import PV, Server

__all__ = ["Call", "Counter", "Noise", "Ramp", "Scan", "ScanKind", "Step", "resolve",
           "run_scan"]

log = logging.getLogger(__name__)

#: (current value, seconds since the IOC started) -> the next value, None to leave it,
#: or an awaitable of either.
Step = Callable[[Any, float], Any]
_NUMBERS = {DBRType.DOUBLE, DBRType.FLOAT, DBRType.LONG, DBRType.SHORT, DBRType.CHAR,
            DBRType.ENUM}


class ScanKind(Enum):
    """The kinds of periodic update, by the name a file gives them."""

    RAMP = "ramp"
    NOISE = "noise"
    COUNTER = "counter"
    CALL = "call"


def _numeric(pv: PV, kind: ScanKind, arrays: bool = False) -> None:
    if pv.data_type not in _NUMBERS:
        raise ValueError(f"a {kind.value} needs a numeric PV, not {pv.data_type.dbr_name}")
    if pv.count > 1 and not arrays:
        raise ValueError(f"a {kind.value} needs a scalar PV, not an array of {pv.count}")


@dataclass(frozen=True)
class Ramp:
    """A sawtooth: every ``period`` seconds the value grows by ``step`` (which may be
    negative); past ``stop`` it starts again at ``start`` (default: the initial value)."""

    period: float
    stop: float
    step: float = 1.0
    start: float | None = None
    kind = ScanKind.RAMP

    def describe(self) -> str:
        start = "the initial value" if self.start is None else f"{self.start:g}"
        return f"ramp from {start} to {self.stop:g} by {self.step:g} every {self.period:g} s"

    def stepper(self, pv: PV) -> Step:
        _numeric(pv, self.kind)
        start = pv.value if self.start is None else self.start
        if self.step == 0 or (self.stop - start) * self.step < 0:
            raise ValueError(f"a ramp from {start} by {self.step} never reaches {self.stop}")

        def step(value: Any, _: float) -> float:
            after = value + self.step
            beyond = after > self.stop if self.step > 0 else after < self.stop
            return start if beyond else after
        return step


@dataclass(frozen=True)
class Counter:
    """Counts by ``step`` (default 1) every ``period`` seconds from the initial value;
    after ``stop`` (default: none, or the last state of an enum) back to ``start``
    (default: the initial value, 0 for an enum)."""

    period: float
    step: int = 1
    start: int | None = None
    stop: int | None = None
    kind = ScanKind.COUNTER

    def describe(self) -> str:
        wrap = "" if self.stop is None else f" up to {self.stop}"
        return f"counter by {self.step}{wrap} every {self.period:g} s"

    def stepper(self, pv: PV) -> Step:
        _numeric(pv, self.kind)
        enum = pv.data_type == DBRType.ENUM
        start = self.start if self.start is not None else (0 if enum else pv.value)
        stop = self.stop if self.stop is not None or not enum else len(pv.enum_strings) - 1

        def step(value: Any, _: float) -> Any:
            after = value + self.step
            if stop is not None and (after > stop if self.step > 0 else after < stop):
                return start
            return after
        return step


@dataclass(frozen=True)
class Noise:
    """Every ``period`` seconds a value drawn uniformly within ``amplitude`` of
    ``center`` (default: the initial value; element by element for an array).
    ``seed`` makes the sequence the same every run."""

    period: float
    amplitude: float = 1.0
    center: float | None = None
    seed: int | None = None
    kind = ScanKind.NOISE

    def describe(self) -> str:
        center = "" if self.center is None else f" around {self.center:g}"
        return f"noise of ±{self.amplitude:g}{center} every {self.period:g} s"

    def stepper(self, pv: PV) -> Step:
        _numeric(pv, self.kind, arrays=True)
        centers = [self.center] * pv.count if self.center is not None else list(pv.values)
        rng = random.Random(self.seed)
        spread = self.amplitude

        def step(_: Any, __: float) -> Any:
            drawn = [c + rng.uniform(-spread, spread) for c in centers]
            return drawn[0] if pv.count == 1 else drawn
        return step


@dataclass(frozen=True)
class Call:
    """Every ``period`` seconds ``function(value, elapsed)``: the PV's current value and
    the seconds since the IOC started; it returns the new value (or None to leave it, or
    an awaitable of either). ``path`` is how a file names it (``module:function``)."""

    period: float
    function: Callable[[Any, float], Any]
    path: str = ""
    kind = ScanKind.CALL

    def describe(self) -> str:
        name = self.path or getattr(self.function, "__qualname__", repr(self.function))
        return f"{name}(value, elapsed) every {self.period:g} s"

    def stepper(self, pv: PV) -> Step:
        return self.function


#: Any periodic update a PV may have.
Periodic = Ramp | Counter | Noise | Call


def resolve(path: str, near: Path | None = None) -> Callable[..., Any]:
    """The callable named ``module.path:attribute`` (``:`` or a last ``.``). ``near``, a
    directory, is searched first, so that a module beside an IOC file needs no install.
    Raises ValueError saying what is missing."""
    module_name, colon, attribute = path.partition(":")
    if not colon:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"{path!r} is not module:function")
    added = near is not None and str(near) not in sys.path
    if added:
        sys.path.insert(0, str(near))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from None
    finally:
        if added:
            sys.path.remove(str(near))
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"module {module_name!r} has no {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{path!r} is not callable")
    return target


@dataclass(frozen=True)
class Scan:
    """A step played on the PV ``name`` every ``period`` seconds."""

    name: str
    period: float
    step: Step


async def run_scan(
    server: Server,
    scan: Scan,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    origin: float | None = None,
) -> None:
    """Play ``scan`` on ``server`` until cancelled. Ticks come at whole periods after
    ``origin`` (default: now); ticks missed (a slow step, a busy loop) are skipped, not
    bunched. A step that fails is logged (the first time with its traceback) and the
    scan goes on; a PV the server no longer has is skipped."""
    origin = clock() if origin is None else origin
    ticks, failures = 0, 0
    while True:
        now = clock()
        ticks = max(ticks + 1, math.ceil((now - origin) / scan.period))
        await sleep(max(0.0, origin + ticks * scan.period - now))
        pv = server.pvs.get(scan.name)
        if pv is None:
            continue
        try:
            value = scan.step(pv.value, clock() - origin)
            if inspect.isawaitable(value):
                value = await value
            if value is not None:
                server.set(scan.name, value)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a user's step: tell it and go on
            failures += 1
            if failures == 1:
                log.exception("scan of %s failed (told once; later failures at debug level)",
                              scan.name)
            else:
                log.debug("scan of %s failed again (%d times): %s", scan.name, failures, exc)

"""An IOC declared as a Python class: each attribute a PV, with put and scan hooks.

In the spirit of caproto's ``PVGroup``/``pvproperty``::

    class Oven(PVGroup):
        temperature = pvproperty(20.0, name="TEMP", units="degC", precision=2,
                                 writable=False, alarm={"high": 80, "hihi": 95})
        setpoint = pvproperty(20.0, name="SP", control={"low": 0, "high": 100})

        @setpoint.putter
        def setpoint(self, value):          # a client wrote; return what to keep
            return round(value, 1)          # (None: as written; raise to refuse)

        @temperature.scan(period=0.5)
        def temperature(self):              # every 0.5 s; return the new value
            return self.temperature + (self.setpoint - self.temperature) / 10

    run(Oven(prefix="OVEN:"))               # shark.ioc.run: serves until interrupted

:func:`pvproperty` takes the keys of a ``[[pv]]`` table of an IOC file
(:func:`shark.ioc.spec.define`), the value first and the name defaulting to the
attribute's. Reading the attribute gives the PV's value (a scalar, a list for an array, a
state index for an enum); assigning it changes the value and, while the group is served,
posts it to subscribers, as :meth:`PVGroup.set` does with alarms and metadata too.
Putters are plain functions: they run as the write arrives, before the client is
answered. Scan hooks may be ``async``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

from shark.ioc.pv import IocPV
from shark.ioc.scan import Scan
from shark.ioc.spec import KEYS, PVSpec, SpecError, check_keys, define
from shark.peers.server import Server

__all__ = ["PVGroup", "pvproperty"]

_UNSET: Any = object()


class pvproperty:  # noqa: N801 - named as the decorator-like declaration it is
    """One PV of a :class:`PVGroup`; see the module's docstring."""

    def __init__(self, value: Any = None, *, name: str | None = None, **keys: Any) -> None:
        self.value = value
        self.name = name
        self.keys = keys
        self.attr = ""
        self.spec: PVSpec | None = None
        self.put_hook: Callable[[Any, Any], Any] | None = None
        self.scan_hook: tuple[float, Callable[[Any], Any]] | None = None

    def __set_name__(self, owner: type, attr: str) -> None:
        if not self.attr:  # a hook named otherwise binds the property a second time
            self.attr = attr

    def putter(self, hook: Callable[[Any, Any], Any]) -> pvproperty:
        """Decorate ``hook(group, value)``, called with each client's write: it returns
        the value to keep (None: as written) or raises (ValueError) to refuse it."""
        self.put_hook = hook
        return self

    def scan(self, period: float) -> Callable[[Callable[[Any], Any]], pvproperty]:
        """Decorate ``hook(group)``, called every ``period`` seconds while served: it
        returns the new value (None: leave it), or is a coroutine that does."""
        def decorate(hook: Callable[[Any], Any]) -> pvproperty:
            self.scan_hook = (period, hook)
            return self
        return decorate

    def define(self, owner: type) -> None:
        """Check the declaration (at class creation): raises SpecError naming it."""
        where = f"{owner.__name__}.{self.attr}"
        check_keys(self.keys, [k for k in KEYS if k not in ("name", "value")], where)
        self.spec = define(self.name or self.attr, value=self.value, where=where, **self.keys)
        if self.put_hook is not None and inspect.iscoroutinefunction(self.put_hook):
            raise SpecError(f"{where}: putter: runs as the write arrives, so it is a plain "
                            f"def, not async")
        if self.scan_hook is not None:
            if self.spec.scan is not None:
                raise SpecError(f"{where}: scan: given twice (scan= and @{self.attr}.scan)")
            if not self.scan_hook[0] > 0:
                raise SpecError(f"{where}: scan: period {self.scan_hook[0]} is not above 0")

    def __get__(self, group: PVGroup | None, owner: type | None = None) -> Any:
        if group is None:
            return self
        return group.pv(self.attr).value

    def __set__(self, group: PVGroup, value: Any) -> None:
        group.set(self.attr, value)


class PVGroup:
    """A set of PVs declared as :func:`pvproperty` attributes; ``prefix`` goes before
    every name. Serve it with :func:`shark.ioc.run` or :class:`shark.ioc.Ioc`."""

    #: The declarations by attribute, in the order of the class (base classes first).
    properties: ClassVar[dict[str, pvproperty]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, pvproperty] = {}
        for klass in reversed(cls.__mro__):
            for attr, item in vars(klass).items():
                if isinstance(item, pvproperty) and item not in found.values():
                    found[item.attr or attr] = item
        for item in found.values():
            item.define(cls)
        cls.properties = found

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.server: Server | None = None
        self._pvs: dict[str, IocPV] = {}
        for attr, item in self.properties.items():
            assert item.spec is not None
            hook = item.put_hook
            self._pvs[attr] = item.spec.build(prefix, None if hook is None else
                                              _bound(hook, self))

    @property
    def pvs(self) -> list[IocPV]:
        """The PVs, in declaration order."""
        return list(self._pvs.values())

    def pv(self, attr: str) -> IocPV:
        """The PV of attribute ``attr`` (its name, limits, alarm ...)."""
        return self._pvs[attr]

    def set(self, attr: str, value: Any = _UNSET, **changes: Any) -> None:
        """Change the PV of ``attr``: its value and/or ``status``, ``severity``,
        ``units``, limits ...; subscribers are told while the group is served."""
        pv = self._pvs[attr]
        if value is not _UNSET:
            changes["value"] = value
        if self.server is not None and self.server.pvs.get(pv.name) is pv:
            self.server.set(pv.name, **changes)
        else:
            pv.update(**changes)

    def scans(self) -> list[Scan]:
        """The periodic updates: the declared ones and the ``@prop.scan`` hooks."""
        found = []
        for attr, item in self.properties.items():
            pv = self._pvs[attr]
            assert item.spec is not None
            if item.spec.scan is not None:
                found.append(Scan(pv.name, item.spec.scan.period, item.spec.scan.stepper(pv)))
            if item.scan_hook is not None:
                period, hook = item.scan_hook
                found.append(Scan(pv.name, period, _scanned(hook, self)))
        return found

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r}, {len(self._pvs)} PVs)"


def _bound(hook: Callable[[Any, Any], Any], group: PVGroup) -> Callable[[Any], Any]:
    return lambda value: hook(group, value)


def _scanned(hook: Callable[[Any], Any], group: PVGroup) -> Callable[[Any, float], Any]:
    return lambda value, elapsed: hook(group)

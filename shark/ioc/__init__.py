"""IOCs without asyncio code: PVs declared in a TOML file (``shark serve FILE``) or as a
Python class (:class:`PVGroup` with :func:`pvproperty` attributes), served by shark's own
CA server (:mod:`shark.peers.server`) with alarms computed from limits as records do,
control limits on writes, and periodic updates.

* :mod:`~shark.ioc.spec`: the file's schema, checked into :class:`PVSpec` values;
* :mod:`~shark.ioc.alarms`: alarm status and severity from limits and enum states;
* :mod:`~shark.ioc.scan`: ramps, noise, counters and callables played periodically;
* :mod:`~shark.ioc.pv`: the PV that applies them (:class:`IocPV`);
* :mod:`~shark.ioc.group`: the Python form;
* :mod:`~shark.ioc.run`: :class:`Ioc` and :func:`run`, which serve either.
"""

from shark.ioc.group import PVGroup, pvproperty
from shark.ioc.pv import Beyond, IocPV
from shark.ioc.run import Ioc, Placement, ServeError, run, serve
from shark.ioc.scan import Call, Counter, Noise, Ramp
from shark.ioc.spec import IocSpec, PVSpec, SpecError, load

__all__ = [
    "Beyond", "Call", "Counter", "Ioc", "IocPV", "IocSpec", "Noise", "PVGroup", "PVSpec",
    "Placement", "Ramp", "ServeError", "SpecError", "load", "pvproperty", "run", "serve",
]

"""The Python form: a class whose attributes are PVs, with put and scan hooks, served
in process by :class:`shark.ioc.Ioc` and read back with our own client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from decoder import ECA, AlarmSeverity, AlarmStatus
from decoder.dbr import DBRType
from shark.ioc import Counter, Ioc, PVGroup, SpecError, load, pvproperty
from shark.ioc.run import Placement, ServeError
from shark.peers.client import CAError, Client

LOOPBACK = "127.0.0.1"


class Oven(PVGroup):
    temperature = pvproperty(20.0, name="TEMP", units="degC", precision=2, writable=False,
                             alarm={"high": 80, "hihi": 95})
    setpoint = pvproperty(20.0, name="SP", control={"low": 0, "high": 100})
    mode = pvproperty("Off", enum=["Off", "On", ["Broken", "MAJOR"]])
    ticks = pvproperty(0, scan=Counter(period=0.02))
    puts: list[Any]

    @setpoint.putter
    def setpoint(self, value: float) -> float:
        self.puts.append(value)
        if value == 13:
            raise ValueError("unlucky")
        return round(value, 1)

    @temperature.scan(period=0.02)
    async def temperature(self) -> float:
        return self.temperature + (self.setpoint - self.temperature) / 2

    def __init__(self, prefix: str = "") -> None:
        super().__init__(prefix)
        self.puts = []


def test_a_group_s_pvs_are_its_attributes() -> None:
    oven = Oven(prefix="OVEN:")
    assert [pv.name for pv in oven.pvs] == ["OVEN:TEMP", "OVEN:SP", "OVEN:mode", "OVEN:ticks"]
    assert oven.temperature == 20.0 and oven.mode == 0
    oven.mode = "Broken"  # not served: the PV changes all the same, alarm and all
    assert oven.pv("mode").severity == AlarmSeverity.MAJOR
    oven.set("temperature", 85.0)
    assert oven.pv("temperature").status == AlarmStatus.HIGH
    assert Oven.setpoint.spec is not None and Oven.setpoint.spec.writable
    assert [scan.name for scan in oven.scans()] == ["OVEN:TEMP", "OVEN:ticks"]


def test_groups_are_separate() -> None:
    one, two = Oven("A:"), Oven("B:")
    one.setpoint = 50.0
    assert (one.setpoint, two.setpoint) == (50.0, 20.0)


async def _served(oven: Oven) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with Ioc(oven, port=0, beacons=False) as ioc:
        async with Client([(LOOPBACK, ioc.server.udp_port)], timeout=3) as client:
            ctrl = await client.read("OVEN:TEMP", DBRType.CTRL_DOUBLE)
            out["ctrl"] = (ctrl.units, ctrl.precision, ctrl.upper_alarm_limit)
            await client.write("OVEN:SP", 150.33)
            out["sp"] = oven.setpoint
            for name, value in (("OVEN:SP", 13), ("OVEN:TEMP", 1.0)):
                try:
                    await client.write(name, value)
                except CAError as error:
                    out.setdefault("refused", []).append(ECA(error.status).name)
            sub = client.subscribe("OVEN:TEMP", DBRType.TIME_DOUBLE)
            severities = [(await asyncio.wait_for(anext(sub), 2)).severity]
            while severities[-1] != AlarmSeverity.MAJOR and len(severities) < 100:
                severities.append((await asyncio.wait_for(anext(sub), 2)).severity)
            await sub.cancel()
            out["severities"] = severities
            out["ticks"] = (await client.read("OVEN:ticks")).values[0]
    out["puts"] = oven.puts
    out["detached"] = oven.server is None
    return out


def test_served_the_hooks_run_and_clients_see_alarms() -> None:
    out = asyncio.run(asyncio.wait_for(_served(Oven("OVEN:")), 20))
    assert out["ctrl"] == ("degC", 2, 95.0)
    assert out["sp"] == 100.0 and out["puts"] == [100.0, 13.0]  # clipped before the putter
    assert out["refused"] == ["ECA_PUTFAIL", "ECA_NOWTACCESS"]
    assert out["severities"][-1] == AlarmSeverity.MAJOR  # the scan heats it past HIHI
    assert out["ticks"] > 0 and out["detached"]


def test_a_bad_declaration_fails_as_the_class_is_made() -> None:
    with pytest.raises(SpecError, match=r"Bad\.level: units: a string PV has none"):
        class Bad(PVGroup):
            level = pvproperty("x", units="mm")
    with pytest.raises(SpecError, match=r"Typo\.x: unknown key 'unit' \(did you mean 'units'"):
        class Typo(PVGroup):
            x = pvproperty(1.0, unit="mm")
    with pytest.raises(SpecError, match=r"Twice\.x: scan: given twice"):
        class Twice(PVGroup):
            x = pvproperty(0, scan=Counter(1))

            @x.scan(period=1)
            def x(self) -> int:
                return 1
    with pytest.raises(SpecError, match=r"Async\.x: putter: .* plain def"):
        class Async(PVGroup):
            x = pvproperty(0)

            @x.putter
            async def x(self, value: int) -> None:
                return None


def test_names_declared_twice_are_refused() -> None:
    with pytest.raises(ServeError, match="declared more than once: OVEN:SP"):
        Ioc(Oven("OVEN:"), Oven("OVEN:"), port=0, beacons=False)


def test_a_file_and_a_group_serve_together(tmp_path: Any) -> None:
    path = tmp_path / "more.toml"
    path.write_text("prefix = 'LAB:'\n[[pv]]\nname = 'X'\nvalue = 1\n")
    ioc = Ioc(load(path), Oven("OVEN:"), port=0, beacons=False)
    assert sorted(ioc.pvs) == ["LAB:X", "OVEN:SP", "OVEN:TEMP", "OVEN:mode", "OVEN:ticks"]


def test_the_placement_follows_the_epics_server_variables() -> None:
    assert Placement.from_environment({}) == Placement("127.0.0.1", 5064,
                                                       ("127.0.0.1", 5065))
    env = {"EPICS_CAS_INTF_ADDR_LIST": " 127.0.0.2 10.0.0.1", "EPICS_CA_SERVER_PORT": "6000",
           "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.3", "EPICS_CA_REPEATER_PORT": "6001"}
    assert Placement.from_environment(env) == Placement("127.0.0.2", 6000,
                                                        ("127.0.0.3", 6001))
    env["EPICS_CAS_SERVER_PORT"] = "70000"
    with pytest.raises(ServeError, match="EPICS_CAS_SERVER_PORT: '70000' is not a port number"):
        Placement.from_environment(env)

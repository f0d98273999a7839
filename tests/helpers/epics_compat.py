"""One script, run through pyepics and through ``shark.epics`` against one softioc.

``tests/shark/test_epics.py`` runs this module as the client of a
:func:`peers.run_scenario` (softioc with :data:`RECORDS`, everything on 127.0.0.1, in a
private network namespace when there is one). :func:`script` takes the module to call
(``epics`` or ``shark.epics``) and returns what each call gave, made comparable: values
with their Python type (and dtype for arrays), metadata without the times and the host.
It puts back the values it changed, so that the second run starts where the first did.
"""

from __future__ import annotations

import sys
import time
from types import ModuleType
from typing import Any

import peers

AO, LONG, STR, ENUM, WFDBL, WFCHAR, WFSHORT, AI = (
    "CMP:AO", "CMP:LONG", "CMP:STR", "CMP:ENUM", "CMP:WFDBL", "CMP:WFCHAR", "CMP:WFSHORT",
    "CMP:AI")
RECORDS = [
    {"name": AI, "type": "ai", "value": 3.14159,
     "fields": {"PREC": 3, "EGU": "mm", "HOPR": 100, "LOPR": -100, "HIHI": 90, "HIGH": 80,
                "LOW": -80, "LOLO": -90, "HHSV": "MAJOR", "HSV": "MINOR", "LSV": "MINOR",
                "LLSV": "MAJOR"}},
    {"name": AO, "type": "ao", "value": 1.5,
     "fields": {"PREC": 2, "EGU": "V", "DRVH": 10, "DRVL": -10, "HOPR": 10, "LOPR": -10,
                "HIGH": 5, "HSV": "MINOR", "HIHI": 8, "HHSV": "MAJOR"}},
    {"name": LONG, "type": "longout", "value": 42, "fields": {"EGU": "cnt", "HOPR": 1000}},
    {"name": STR, "type": "stringout", "value": "hello world"},
    {"name": ENUM, "type": "mbbo", "value": 1, "options": ["Off", "On", ["Fault", "MAJOR"]]},
    {"name": WFDBL, "type": "waveform_out", "ftvl": "DOUBLE", "nelm": 8,
     "value": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5]},
    {"name": WFCHAR, "type": "waveform_out", "ftvl": "CHAR", "nelm": 32,
     "value": [ord(c) for c in "abc"] + [0] * 29},
    {"name": WFSHORT, "type": "waveform", "ftvl": "SHORT", "nelm": 5,
     "value": [1, -2, 3, -4, 5]},
]
NAMES = [record["name"] for record in RECORDS]
#: Metadata that differs between runs, or between libca and shark by design.
VOLATILE = {"timestamp", "posixseconds", "nanoseconds", "host", "chid", "cb_info"}


def typed(value: Any) -> Any:
    """A value with its type, comparable across the two libraries."""
    if hasattr(value, "dtype") and hasattr(value, "tolist"):
        return {"ndarray": str(value.dtype), "values": value.tolist()}
    if isinstance(value, (list, tuple)):
        return {type(value).__name__: [typed(v) for v in value]}
    if isinstance(value, dict):
        return {k: typed(v) for k, v in sorted(value.items()) if k not in VOLATILE}
    return {type(value).__name__: value}


def stable_info(text: str | None) -> list[str] | None:
    """cainfo's lines without those naming times, the host or a callback's file."""
    if text is None:
        return None
    skip = ("timestamp", "posixseconds", "nanoseconds", "host ", " in file ")
    return [line for line in text.splitlines() if not any(word in line for word in skip)]


def script(ca: ModuleType) -> dict[str, Any]:
    """The calls, through ``ca``; what each gave, by a label."""
    out: dict[str, Any] = {}
    for name in NAMES:
        out[f"caget {name}"] = typed(ca.caget(name))
        out[f"caget {name} as_string"] = typed(ca.caget(name, as_string=True))
    out["caget count=3"] = typed(ca.caget(WFDBL, count=3))
    out["caget as_numpy=False"] = typed(ca.caget(WFSHORT, as_numpy=False))
    out["caget missing"] = typed(ca.caget("CMP:NOPE", connection_timeout=0.3))
    for name in NAMES:
        pv = ca.PV(name)
        pv.wait_for_connection(5.0)
        out[f"PV {name}"] = typed({
            "get": pv.get(), "count": pv.count, "nelm": pv.nelm, "type": pv.type,
            "char_value": pv.char_value, "severity": pv.severity, "status": pv.status,
            "enum_strs": pv.enum_strs, "units": pv.units, "precision": pv.precision,
            "access": pv.access, "read_access": pv.read_access,
            "write_access": pv.write_access, "repr": repr(pv),
            "get_ctrlvars": pv.get_ctrlvars(), "get_timevars": pv.get_timevars(),
            "get as_string": pv.get(as_string=True), "get use_monitor=False":
                pv.get(use_monitor=False), "metadata": pv.get_with_metadata(form="ctrl"),
            "upper_disp_limit": pv.upper_disp_limit, "lower_alarm_limit": pv.lower_alarm_limit,
        })
        pv.disconnect()
    for form in ("native", "ctrl"):
        for name in (AI, ENUM, WFSHORT, STR):
            pv = ca.PV(name, form=form)
            pv.wait_for_connection(5.0)
            out[f"PV {name} form={form}"] = typed({
                "metadata": pv.get_with_metadata(), "value": pv.value, "type": pv.type,
                "char_severity": pv.char_severity, "char_status": pv.char_status})
            pv.disconnect()
    pv = ca.PV(WFDBL, auto_monitor=False)
    pv.wait_for_connection(5.0)
    # Read rather than monitored, pyepics gives a ctypes array for as_numpy=False (from
    # a monitor a list); shark.epics a list both ways: compared as lists.
    out["PV auto_monitor=False"] = typed([pv.get(), pv.get(count=2),
                                          list(pv.get(as_numpy=False)), pv.auto_monitor])
    pv.disconnect()
    pv = ca.PV(AO)
    pv.wait_for_connection(5.0)
    pv.value = 3.5
    time.sleep(0.15)
    out["PV value set"] = typed([pv.value, pv.char_value])
    out["put use_complete"] = typed(pv.put(4.5, use_complete=True))
    deadline = time.time() + 5
    while not pv.put_complete and time.time() < deadline:
        time.sleep(0.01)
    out["put_complete"] = typed([pv.put_complete, ca.caget(AO, use_monitor=False)])
    pv.disconnect()
    puts = [(AO, 2.5), (AO, 6.0), (LONG, 7), (STR, "bye"), (ENUM, "Fault"), (ENUM, 0),
            (WFDBL, [9.0, 8.0, 7.0]), (WFCHAR, "hi there")]
    for name, value in puts:
        out[f"caput {name} {value} wait"] = typed(ca.caput(name, value, wait=True))
        out[f"after caput {name} {value}"] = typed(
            [ca.caget(name, use_monitor=False), ca.caget(name, as_string=True),
             ca.get_pv(name).severity])
    out["caput no wait"] = typed(ca.caput(LONG, 8))
    time.sleep(0.15)
    out["after caput no wait"] = typed(ca.caget(LONG, use_monitor=False))
    seen: list[Any] = []

    def monitor(pvname: str = "", value: Any = None, char_value: str = "", severity: int = 0,
                status: int = 0, **kwargs: Any) -> None:
        seen.append([pvname, typed(value), char_value, severity, status,
                     sorted(k for k in kwargs if k not in VOLATILE)])

    ca.camonitor(AO, callback=monitor)
    for value in (1.25, 9.0, 3.0):
        ca.caput(AO, value, wait=True)
    time.sleep(0.25)
    ca.camonitor_clear(AO)
    ca.caput(AO, 4.0, wait=True)
    time.sleep(0.15)
    out["camonitor"] = seen
    lines: list[str] = []
    ca.camonitor(LONG, writer=lines.append)
    ca.caput(LONG, 9, wait=True)
    time.sleep(0.25)
    ca.camonitor_clear(LONG)
    out["camonitor writer"] = [line.split()[0::3] for line in lines]  # name and value
    events: list[Any] = []
    pv = ca.PV(ENUM, connection_callback=lambda pvname=None, conn=None, **_: events.append(
        ["conn", pvname, conn]))
    pv.wait_for_connection(5.0)
    # libca may hand pyepics the first update after wait_for_connection returns (then
    # a callback added now is called with it) or before: let it come first.
    time.sleep(0.25)
    index = pv.add_callback(lambda pvname=None, value=None, char_value=None, **_: events.append(
        ["value", pvname, value, char_value]))
    pv.put("On", wait=True)
    time.sleep(0.25)
    pv.remove_callback(index)
    pv.put(2, wait=True)
    time.sleep(0.15)
    out["PV callbacks"] = events
    done: list[Any] = []
    out["put callback"] = typed(pv.put(0, callback=lambda **kw: done.append(sorted(kw))))
    time.sleep(0.25)
    out["put callback called"] = done
    pv.disconnect()
    for name in (AI, AO, LONG, ENUM, WFCHAR):
        out[f"cainfo {name}"] = stable_info(ca.cainfo(name, print_out=False))
    out["caget_many"] = typed(ca.caget_many([AO, LONG, STR, "CMP:NOPE"],
                                            connection_timeout=0.5))
    out["caput_many"] = typed(ca.caput_many([AO, LONG], [1.0, 2], wait="each"))
    for record in RECORDS:  # as it was, for the next run
        if record["type"] not in ("ai", "waveform"):
            ca.caput(record["name"], record["value"], wait=True)
    return out


def main(argv: list[str]) -> int:
    params = peers.load_client_params(argv)
    import epics

    import shark.epics

    result = {"pyepics": script(epics), "shark": script(shark.epics)}
    epics.ca.finalize_libca()
    peers.save_client_result(params, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

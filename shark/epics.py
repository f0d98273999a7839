"""pyepics' calls on shark's client, for scripts being ported: ``from shark import epics``.

The module-level functions (:func:`caget`, :func:`caput`, :func:`cainfo`,
:func:`camonitor`, :func:`camonitor_clear`, :func:`caget_many`, :func:`caput_many`,
:func:`get_pv`, :func:`poll`) and the :class:`PV` class take pyepics' arguments and
give its results: the same Python types (a scalar for one element, a numpy array of the
native dtype for more, ``str`` for strings, a numpy ``uint8`` array for a CHAR
waveform), the same ``char_value`` text, the same keyword arguments to callbacks. They
are synchronous, as pyepics' are, but run on one :class:`shark.peers.client.Client`
driven by an asyncio loop on a background thread; the calls wait on it through
thread-safe futures. User callbacks (monitors, connection changes, put completion) run
on one callback thread of their own, in order, never on the loop: a callback may call
``caget`` or ``caput`` without blocking the client.

Where the client searches is where ``shark get`` searches
(:func:`shark.catools.session.ca_addresses`): ``EPICS_CA_ADDR_LIST`` (hosts, each
optionally ``:port``, ``EPICS_CA_SERVER_PORT`` or 5064 otherwise), else 127.0.0.1.
Unlike libca, no broadcast address is ever added (``EPICS_CA_AUTO_ADDR_LIST`` is not
followed).

Left out, compared with pyepics: the low-level ``epics.ca`` and ``epics.dbr`` modules
(chids, contexts, ``ca.poll`` pending events, put/get callbacks by chid), ``Device``,
``Motor``, ``Alarm``, the multiprocessing helpers, ``monitor_delta`` (accepted, not
applied), ``access_callback`` is called once on connection only (access rights changes
are not followed), and ``host`` is the server's address as ``ip:port`` where libca
names the host (``localhost:5064``). Differences on purpose: ``as_numpy=False`` always
gives a list (pyepics gives a ctypes array for a value read rather than monitored), and
a monitored PV counts as connected once its first value is in, so that a callback added
after :meth:`PV.wait_for_connection` never gets it (with libca it may, or may not).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import copy
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from math import log10
from types import SimpleNamespace
from typing import Any

import numpy

from decoder import AccessRights
from decoder.dbr import DBRType, DBRValue
from shark.catools.session import open_client
from shark.peers.background import Background
from shark.peers.client import CAError, ClientChannel, ClientSubscription, ServerError

__all__ = [
    "INVALID_ALARM", "MAJOR_ALARM", "MINOR_ALARM", "NO_ALARM", "PV", "caget", "caget_many",
    "cainfo", "camonitor", "camonitor_clear", "caput", "caput_many", "fmt_time", "get_pv",
    "poll",
]

log = logging.getLogger(__name__)

NO_ALARM, MINOR_ALARM, MAJOR_ALARM, INVALID_ALARM = range(4)
#: pyepics: PVs with fewer elements are monitored unless told otherwise.
AUTOMONITOR_MAXLENGTH = 65536
DEFAULT_CONNECTION_TIMEOUT = 2.0
_STRING, _SHORT, _FLOAT, _ENUM, _CHAR, _LONG, _DOUBLE = range(7)
_NUMPY_TYPES = {_SHORT: numpy.int16, _FLOAT: numpy.float32, _ENUM: numpy.uint16,
                _CHAR: numpy.uint8, _LONG: numpy.int32, _DOUBLE: numpy.float64}
_LIMITS = ("upper_disp_limit", "lower_disp_limit", "upper_alarm_limit",
           "upper_warning_limit", "lower_warning_limit", "lower_alarm_limit",
           "upper_ctrl_limit", "lower_ctrl_limit")
#: EPICS time starts 1990-01-01: seconds from the Unix epoch.
_EPICS_EPOCH = 631152000
_SEVERITIES = ("NO_ALARM", "MINOR", "MAJOR", "INVALID")
_ACCESS = ("no access", "read-only", "write-only", "read/write")
_STATUSES = (
    "NO_ALARM", "READ", "WRITE", "HIHI", "HIGH", "LOLO", "LOW", "STATE", "COS", "COMM",
    "TIMEOUT", "HWLIMIT", "CALC", "SCAN", "LINK", "SOFT", "BAD_SUB", "UDF", "DISABLE",
    "SIMM", "READ_ACCESS", "WRITE_ACCESS")


# ------------------------------------------------------------------- the module's client


_lock = threading.Lock()
_current: Background | None = None


def _context() -> Background:
    """The one client of the module, started at the first call."""
    global _current
    with _lock:
        if _current is None:
            client = open_client(DEFAULT_CONNECTION_TIMEOUT, on_connection=_on_connection)
            _current = Background("shark.epics", client)
            atexit.unregister(_shutdown)  # once, however many clients came and went
            atexit.register(_shutdown)
        return _current


def _shutdown() -> None:
    """Stop the client and both threads (registered with atexit)."""
    global _current
    with _lock:
        context, _current = _current, None
    if context is not None:
        context.close()
    _PV_CACHE.clear()
    _MONITORS.clear()
    _FOLLOWERS.clear()


# --------------------------------------------------------------------------- values


def _unpack(value: DBRValue, nelm: int, as_numpy: bool = True) -> Any:
    """A DBR value's values as pyepics gives them: one element as a Python scalar,
    more as a numpy array of the native dtype (a list without ``as_numpy``), strings
    as ``str`` (a list for an array), a CHAR waveform always as an array."""
    native = value.dbr_type % 7 if value.dbr_type < DBRType.PUT_ACKT else _STRING
    values = value.values
    if native == _STRING:
        out = list(values)
        return out[0] if len(out) == 1 and nelm == 1 else out
    count = len(values)
    if count == 1 and not (native == _CHAR and nelm > 1):
        item = values[0]
        return item.item() if hasattr(item, "item") else item
    array = numpy.asarray(values).astype(_NUMPY_TYPES[native])
    if as_numpy and (count != 1 or native == _CHAR):
        return array
    return array.tolist()


def _metadata(value: DBRValue) -> dict[str, Any]:
    """The metadata of a TIME or CTRL value under pyepics' names."""
    meta = value.metadata()
    out: dict[str, Any] = {}
    family = value.dbr_type // 7
    if family >= 3:  # GR, CTRL
        for name in (*_LIMITS, "precision", "units", "status", "severity"):
            if name in meta:
                out[name] = meta[name]
        if meta.get("enum_strings"):
            out["enum_strs"] = tuple(meta["enum_strings"])
    elif family == 2:  # TIME
        seconds, nanoseconds = meta.get("seconds", 0), meta.get("nanoseconds", 0)
        out["status"] = meta.get("status")
        out["severity"] = meta.get("severity")
        out["timestamp"] = _EPICS_EPOCH + seconds + 1e-6 * int(1e-3 * nanoseconds)
        out["posixseconds"] = seconds + _EPICS_EPOCH
        out["nanoseconds"] = nanoseconds
    return out


def _promote(native: int, form: str) -> int:
    """The DBR type a form reads (pyepics reads a string's CTRL form as TIME)."""
    if native == _STRING and form == "ctrl":
        return int(DBRType.TIME_STRING)
    return native + {"time": 14, "ctrl": 28}.get(form, 0)


def _type_name(ftype: int) -> str:
    """pyepics' name of a DBR type (``time_double``; SHORT is ``int`` when plain)."""
    return "int" if ftype == DBRType.SHORT else DBRType(ftype).name.lower()


def fmt_time(tstamp: float | None = None) -> str:
    """A time as pyepics writes it: ``2026-11-21 12:54:50.52164``."""
    if tstamp is None:
        tstamp = time.time()
    tstamp, frac = divmod(tstamp, 1)
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(tstamp))}.{round(1e5 * frac):05d}"


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------------------- PV


class PV:
    """A process variable, as pyepics' ``epics.PV``: connects in the background,
    monitors itself (``auto_monitor``) so that :meth:`get` gives the latest value,
    runs callbacks on changes and connection changes."""

    _fields = ("pvname", "value", "char_value", "status", "ftype", "chid", "host", "count",
               "access", "write_access", "read_access", "severity", "timestamp",
               "posixseconds", "nanoseconds", "precision", "units", "enum_strs",
               "monitor_delta", *_LIMITS)

    def __init__(self, pvname: str, callback: Callable[..., Any] | Sequence | None = None,
                 form: str = "time", verbose: bool = False, auto_monitor: Any = None,
                 count: int | None = None, connection_callback: Callable[..., Any] | None = None,
                 connection_timeout: float | None = None,
                 access_callback: Callable[..., Any] | None = None,
                 monitor_delta: float | None = None) -> None:
        self.pvname = pvname.strip()
        self.form = form.lower() if form.lower() in ("native", "time", "ctrl") else "time"
        self.verbose = verbose
        self._auto_monitor = auto_monitor
        self.ftype: int | None = None
        self.connected = False
        self.connection_timeout = (DEFAULT_CONNECTION_TIMEOUT if connection_timeout is None
                                   else connection_timeout)
        self._user_max_count = count
        self._args: dict[str, Any] = dict.fromkeys(self._fields)
        self._args.update(pvname=self.pvname, count=count, nelm=-1, type="unknown",
                          typefull="unknown", access="unknown", monitor_delta=monitor_delta)
        self.connection_callbacks = [connection_callback] if connection_callback else []
        self.access_callbacks = [access_callback] if access_callback else []
        self.callbacks: dict[int, tuple[Callable[..., Any], dict]] = {}
        if isinstance(callback, (tuple, list)):
            self.callbacks = {i: (cb, {}) for i, cb in enumerate(callback) if callable(cb)}
        elif callable(callback):
            self.callbacks[0] = (callback, {})
        self._put_complete: bool | None = None
        self._subscription: ClientSubscription | None = None
        self._up = threading.Event()
        self._context = _context()
        self._channel: ClientChannel | None = None
        self._context.submit(self._follow())

    # -- connection ------------------------------------------------------------------

    async def _follow(self) -> None:
        """On the loop: the PV hears its channel's connection changes from now on
        (:func:`_on_connection`), and takes it as connected if it already is."""
        channel = self._channel = self._context.client.channel(self.pvname)
        _FOLLOWERS.setdefault(self.pvname, set()).add(self)
        if channel.connected:
            self._connected(channel)

    async def _unfollow(self) -> None:
        followers = _FOLLOWERS.get(self.pvname, set())
        followers.discard(self)
        if not followers:
            _FOLLOWERS.pop(self.pvname, None)

    def _connected(self, channel: ClientChannel) -> None:
        if not channel.connected or self.connected:  # lost again since, or told already
            return
        nelm = channel.native_count or 1
        native = int(channel.native_type or 0)
        self._args["nelm"] = nelm
        self._args["count"] = min(nelm, self._user_max_count or nelm)
        server = channel.server
        self._args["host"] = f"{server[0]}:{server[1]}" if server else None
        self.ftype = _promote(native, self.form)
        self._args["type"] = self._args["typefull"] = _type_name(self.ftype)
        self._args["ftype"] = self.ftype
        rights = channel.access_rights
        read, write = bool(rights & AccessRights.READ), bool(rights & AccessRights.WRITE)
        self._args.update(read_access=read, write_access=write,
                          access=_ACCESS[read + 2 * write])
        for callback in self.connection_callbacks:
            self._context.later(callback, pvname=self.pvname, conn=True, pv=self)
        for callback in self.access_callbacks:
            self._context.later(_positional(callback, read, write), pv=self)
        self.connected = True
        self._check_auto_monitor()
        if self._subscription is None:
            self._up.set()
        else:  # connected once the first value is in (or, failing that, a second later)
            asyncio.get_running_loop().call_later(1.0, self._set_up, channel)

    def _set_up(self, channel: ClientChannel) -> None:
        if channel.connected:
            self._up.set()

    def _disconnected(self) -> None:
        if not self.connected:
            return
        self.connected = False
        self._up.clear()
        for callback in self.connection_callbacks:
            self._context.later(callback, pvname=self.pvname, conn=False, pv=self)

    def _check_auto_monitor(self) -> None:
        """On the loop: subscribe once (the client renews it on each reconnection)."""
        if self._auto_monitor is None:
            self._auto_monitor = self._args["count"] < AUTOMONITOR_MAXLENGTH
        if not self._auto_monitor or self._subscription is not None:
            return
        mask = None if self._auto_monitor is True else int(self._auto_monitor)
        kwargs = {} if mask is None else {"mask": mask}
        self._subscription = self._context.client.subscribe(
            self.pvname, self.ftype, count=self._user_max_count or None,
            callback=self._on_changes, **kwargs)

    def _on_changes(self, value: DBRValue) -> None:
        """On the loop: a monitor update. Nothing may escape to the client, whose
        circuit would go with it (and every other PV on it)."""
        try:
            self._update(value)
        except Exception:  # a bug of ours: this update is lost, the circuit goes on
            log.exception("shark.epics: update of %s not taken", self.pvname)

    def _update(self, value: DBRValue) -> None:
        """The PV's state from an update; user callbacks get a copy of it."""
        meta = _metadata(value)
        self._args.update(meta)
        # As libca's event: the count is the update's (an array's current length).
        self._args.update(ftype=int(value.dbr_type), count=len(value.values))
        self._args["value"] = _unpack(value, self._args["nelm"])
        if "timestamp" not in meta:
            self._args["timestamp"] = time.time()
        self._set_charval(self._args["value"], call_ca=False)
        if self.verbose:
            _write(f"{self.pvname}: {self._args['char_value']} "
                   f"({fmt_time(self._args['timestamp'])})")
        self._up.set()
        # The callbacks there are now, with the state of now: the callback thread may
        # run them later, but they are this update's.
        self._context.later(_run, callbacks=list(self.callbacks.items()), state=dict(self._args),
                            pv=self)

    def wait_for_connection(self, timeout: float | None = None) -> bool:
        """Wait until connected, at most ``timeout`` (default: the connection timeout)."""
        if not self._up.is_set():
            self._up.wait(self.connection_timeout if timeout is None else timeout)
        return self.connected

    def connect(self, timeout: float | None = None) -> bool:
        """As :meth:`wait_for_connection`."""
        return self.wait_for_connection(timeout)

    def reconnect(self) -> bool:
        return self.wait_for_connection()

    @property
    def auto_monitor(self) -> Any:
        return self._auto_monitor

    @auto_monitor.setter
    def auto_monitor(self, value: Any) -> None:
        self._auto_monitor = value
        if not value:
            self._cancel_subscription()
        elif self.connected:
            self._context.call(_on_loop(self._check_auto_monitor), 2.0)

    def clear_auto_monitor(self) -> None:
        self.auto_monitor = False

    def _cancel_subscription(self) -> None:
        sub, self._subscription = self._subscription, None
        if sub is not None:
            with contextlib.suppress(Exception):
                self._context.call(sub.cancel(1.0), 2.0)

    def disconnect(self, deepclean: bool = True) -> None:
        """Stop following the PV: no more callbacks; it leaves the cache of get_pv."""
        self.connected = False
        for key, pv in list(_PV_CACHE.items()):
            if pv is self:
                del _PV_CACHE[key]
        self._context.submit(self._unfollow())
        self._cancel_subscription()
        self.callbacks.clear()
        self.connection_callbacks = []

    # -- reading -----------------------------------------------------------------------

    def _read(self, ftype: int, count: int | None, timeout: float | None) -> DBRValue | None:
        if timeout is None:
            timeout = 0.5 + log10(max(1, self._args["count"] or 1))
        try:
            return self._context.call(
                self._context.client.read(self.pvname, ftype, count, timeout=timeout),
                timeout + 0.5)
        except (TimeoutError, asyncio.TimeoutError, CAError, ServerError) as error:
            log.warning("shark.epics: get of %s failed: %s", self.pvname,
                        str(error) or "timed out")
            return None

    def get(self, count: int | None = None, as_string: bool = False, as_numpy: bool = True,
            timeout: float | None = None, with_ctrlvars: bool = False,
            use_monitor: bool = True) -> Any:
        """The value (from the monitor unless ``use_monitor`` is False), None when the
        PV is not connected or the read fails."""
        data = self.get_with_metadata(count=count, as_string=as_string, as_numpy=as_numpy,
                                      timeout=timeout, with_ctrlvars=with_ctrlvars,
                                      use_monitor=use_monitor)
        return data["value"] if data is not None else None

    def get_with_metadata(self, count: int | None = None, as_string: bool = False,
                          as_numpy: bool = True, timeout: float | None = None,
                          with_ctrlvars: bool = False, form: str | None = None,
                          use_monitor: bool = True, as_namespace: bool = False) -> Any:
        """The value and the metadata of the PV's form (``form`` to ask another)."""
        if not self.wait_for_connection(timeout=timeout):
            return None
        assert self.ftype is not None
        if form is None:
            form, ftype = self.form, self.ftype
        else:
            ftype = _promote(self.ftype % 7, form)
        if with_ctrlvars and self._args.get("units") is None and form == "ctrl":
            self.get_ctrlvars()
        cached = self._args["value"]
        cached_length = len(cached) if hasattr(cached, "__len__") and not isinstance(
            cached, str) else 1
        if (not use_monitor or not self._auto_monitor or ftype != self.ftype
                or cached is None or (count is not None and count > cached_length)):
            if count is None and self._args["count"] != self._args["nelm"]:
                count = self._args["count"]
            value = self._read(ftype, count, timeout)
            if value is None:
                return None
            metad = {**_metadata(value), "value": _unpack(value, self._args["nelm"], as_numpy)}
            self._args.update(metad)
            if with_ctrlvars and form != "ctrl":
                metad = self._args.copy()
            val = metad["value"]
        else:
            metad = self._args.copy()
            val = self._args["value"]
        if as_string:
            metad["value"] = self._set_charval(val, force_long_string=True)
        elif self._args["nelm"] > 1 and val is not None:
            if not hasattr(val, "__len__") or isinstance(val, str):
                val = [val]
            if count is None:
                count = len(val)
            if as_numpy and not isinstance(val, numpy.ndarray):
                val = numpy.asarray(val)
            elif not as_numpy and isinstance(val, numpy.ndarray):
                val = val.tolist()
            if count < len(val):
                val = val[:count]
            metad["value"] = val
        return SimpleNamespace(**metad) if as_namespace else metad

    def get_ctrlvars(self, timeout: float = 5, warn: bool = True) -> dict[str, Any] | None:
        """The CTRL fields (limits, units, precision, enum strings), read now."""
        return self._vars(28, timeout)

    def get_timevars(self, timeout: float = 5, warn: bool = True) -> dict[str, Any] | None:
        """The TIME fields (status, severity, timestamp), read now."""
        return self._vars(14, timeout)

    def _vars(self, family: int, timeout: float) -> dict[str, Any] | None:
        if not self.wait_for_connection():
            return None
        assert self.ftype is not None
        value = self._read(self.ftype % 7 + family, 1, timeout)
        if value is None:
            return None
        found = _metadata(value)
        self._args.update(found)
        return found

    # -- writing -----------------------------------------------------------------------

    def put(self, value: Any, wait: bool = False, timeout: float = 30.0,
            use_complete: bool = False, callback: Callable[..., Any] | None = None,
            callback_data: Any = None) -> int | None:
        """Write ``value``: 1 once sent (``wait``: once the server says it is done),
        -1 when it failed or ``wait`` timed out, None when the PV is not connected.
        ``callback(pvname=, data=callback_data)`` runs on completion (a dict of
        ``callback_data`` gives its items as keywords instead)."""
        if not self.wait_for_connection():
            return None
        assert self.ftype is not None
        native, nelm = self.ftype % 7, self._args["nelm"]
        if native == _ENUM and isinstance(value, str):
            if self._args["enum_strs"] is None:
                self.get_ctrlvars()
            if value in (self._args["enum_strs"] or ()):
                value = list(self._args["enum_strs"]).index(value)
        data_type = None
        if native == _CHAR and nelm > 1 and isinstance(value, (str, bytes)):
            raw = value.encode() if isinstance(value, str) else value
            value, data_type = list(raw[:nelm - 1]) + [0], _CHAR
        elif isinstance(value, numpy.ndarray):
            value = value.tolist()
        if nelm > 1 and isinstance(value, (list, tuple)):
            value = list(value)[:nelm]
        notify = wait or use_complete or callback is not None
        self._put_complete = False if use_complete else None
        write = self._context.client.write(self.pvname, value, notify=notify,
                                           data_type=data_type, timeout=timeout)
        if wait or not notify:
            try:
                self._context.call(write, timeout + 0.5)
            except (TimeoutError, asyncio.TimeoutError, CAError) as error:
                log.warning("shark.epics: put to %s failed: %s", self.pvname,
                            str(error) or "timed out")
                return -1
            if notify:
                self._completed(callback, callback_data)
            return 1
        future = self._context.submit(write)
        future.add_done_callback(lambda _: self._completed(callback, callback_data))
        return 1

    def _completed(self, callback: Callable[..., Any] | None, data: Any) -> None:
        self._put_complete = True
        if callback is not None:  # callback_data: a dict of keywords, or ``data``
            kwargs = data if isinstance(data, dict) else {"data": data}
            self._context.later(callback, **{**kwargs, "pvname": self.pvname})

    @property
    def put_complete(self) -> bool | None:
        """True once the last put with ``use_complete`` is done."""
        return self._put_complete

    # -- callbacks ---------------------------------------------------------------------

    def run_callbacks(self) -> None:
        """Run every user callback with the current state."""
        for index in sorted(self.callbacks):
            self.run_callback(index)

    def run_callback(self, index: int) -> None:
        """Run one callback with pyepics' keyword arguments (and ``cb_info``)."""
        try:
            function, kwargs = self.callbacks[index]
        except KeyError:
            return
        kwds = copy.copy(self._args)
        kwds.update(kwargs)
        kwds["cb_info"] = (index, self)
        if callable(function):
            function(**kwds)

    def add_callback(self, callback: Callable[..., Any] | None = None,
                     index: int | None = None, run_now: bool = False,
                     with_ctrlvars: bool = True, **kw: Any) -> int | None:
        """Add ``callback`` (called with the PV's state and ``kw``); returns its index."""
        if callable(callback):
            if index is None:
                index = 1 + max(self.callbacks) if self.callbacks else 1
            self.callbacks[index] = (callback, kw)
        if with_ctrlvars and self.connected:
            self.get_ctrlvars()
        if run_now:
            self.get(as_string=True)
            if self.connected and index is not None:
                self.run_callback(index)
        return index

    def remove_callback(self, index: int | None = None) -> None:
        self.callbacks.pop(index, None)  # type: ignore[arg-type]

    def clear_callbacks(self, with_access_callback: bool = False,
                        with_connect_callback: bool = False) -> None:
        self.callbacks.clear()
        if with_access_callback:
            self.access_callbacks = []
        if with_connect_callback:
            self.connection_callbacks = []

    # -- text --------------------------------------------------------------------------

    def _set_charval(self, val: Any, call_ca: bool = True,
                     force_long_string: bool = False) -> str:
        """The value as pyepics writes it (``char_value``)."""
        if val is None:
            self._args["char_value"] = "None"
            return "None"
        ntype = (self._args["ftype"] or 0) % 7
        count = self._args["count"] or 1
        if ntype == _STRING:
            cval = val if isinstance(val, str) else repr(val)
        elif ntype == _CHAR and (count < AUTOMONITOR_MAXLENGTH or force_long_string):
            items = val.tolist() if isinstance(val, numpy.ndarray) else val
            items = items if isinstance(items, list) else [items]
            items = items[:items.index(0)] if 0 in items else items
            try:
                cval = "".join(chr(i) for i in items).rstrip()
            except (ValueError, TypeError):
                cval = ""
        elif count > 1:
            length = len(val) if hasattr(val, "__len__") else 1
            cval = f"<array size={length}, type={_type_name(self._args['ftype'])}>"
        elif ntype in (_FLOAT, _DOUBLE):
            if call_ca and self._args["precision"] is None:
                self.get_ctrlvars()
            try:
                prec = self._args["precision"]
                fmt = "%%.%df"
                if 4 < abs(int(log10(abs(val + 1.e-9)))):
                    fmt = "%%.%dg"
                cval = (fmt % prec) % val
            except (ValueError, TypeError, ArithmeticError):
                cval = str(val)
        elif ntype == _ENUM:
            if call_ca and self._args["enum_strs"] in ([], None):
                self.get_ctrlvars()
            try:
                cval = self._args["enum_strs"][val]
            except (TypeError, KeyError, IndexError):
                cval = str(val)
        else:
            cval = repr(val)
        self._args["char_value"] = cval
        return cval

    def _getarg(self, arg: str) -> Any:
        if self._args["value"] is None:
            self.get()
        if self._args.get(arg) is None:
            if arg in ("status", "severity", "timestamp", "posixseconds", "nanoseconds"):
                self.get_timevars(timeout=1, warn=False)
            else:
                self.get_ctrlvars(timeout=1, warn=False)
        return self._args.get(arg)

    @property
    def value(self) -> Any:
        return self._getarg("value")

    @value.setter
    def value(self, value: Any) -> None:
        self.put(value)

    @property
    def char_value(self) -> str:
        self._getarg("char_value")
        return self._set_charval(self._getarg("value"))

    @property
    def status(self) -> int | None:
        return self._getarg("status")

    @property
    def char_status(self) -> str:
        status = self.status or 0
        return _STATUSES[status] if status < len(_STATUSES) else str(status)

    @property
    def severity(self) -> int | None:
        return self._getarg("severity")

    @property
    def char_severity(self) -> str:
        severity = self.severity or 0
        return _SEVERITIES[severity] if severity < len(_SEVERITIES) else str(severity)

    @property
    def type(self) -> str:
        return self._args["type"]

    @property
    def typefull(self) -> str:
        return self._args["typefull"]

    @property
    def host(self) -> str | None:
        return self._getarg("host")

    @property
    def count(self) -> int | None:
        """Elements read (the current length of an array, at most ``count``)."""
        if self._args["count"] is not None:
            return self._args["count"]
        return self._getarg("count")

    @property
    def nelm(self) -> int:
        """The native element count (a waveform's NELM)."""
        self.wait_for_connection()
        return self._args["nelm"]

    @property
    def read_access(self) -> bool | None:
        return self._getarg("read_access")

    @property
    def write_access(self) -> bool | None:
        return self._getarg("write_access")

    @property
    def access(self) -> str | None:
        return self._getarg("access")

    @property
    def monitor_delta(self) -> float | None:
        return self._getarg("monitor_delta")

    @property
    def timestamp(self) -> float | None:
        return self._getarg("timestamp")

    @property
    def posixseconds(self) -> int | None:
        return self._getarg("posixseconds")

    @property
    def nanoseconds(self) -> int | None:
        return self._getarg("nanoseconds")

    @property
    def precision(self) -> int | None:
        return self._getarg("precision")

    @property
    def units(self) -> str | None:
        return self._getarg("units")

    @property
    def enum_strs(self) -> tuple[str, ...] | None:
        return self._getarg("enum_strs")

    upper_disp_limit = property(lambda self: self._getarg("upper_disp_limit"))
    lower_disp_limit = property(lambda self: self._getarg("lower_disp_limit"))
    upper_alarm_limit = property(lambda self: self._getarg("upper_alarm_limit"))
    lower_alarm_limit = property(lambda self: self._getarg("lower_alarm_limit"))
    upper_warning_limit = property(lambda self: self._getarg("upper_warning_limit"))
    lower_warning_limit = property(lambda self: self._getarg("lower_warning_limit"))
    upper_ctrl_limit = property(lambda self: self._getarg("upper_ctrl_limit"))
    lower_ctrl_limit = property(lambda self: self._getarg("lower_ctrl_limit"))

    @property
    def info(self) -> str | None:
        """A paragraph about the PV, as pyepics' ``PV.info``."""
        return self._getinfo()

    def _getinfo(self) -> str | None:
        if not self.wait_for_connection():
            return None
        self.get_ctrlvars()
        if self._args["value"] is None:
            self.get()
        mod, xtype = "native", self._args["typefull"]
        if "_" in xtype:
            mod, xtype = xtype.split("_")
        fmt = "{val:d}"
        if xtype in ("float", "double"):
            fmt = "{val:g}"
        elif xtype in ("string", "char"):
            fmt = "{val:s}"
        self._set_charval(self._args["value"], call_ca=False)
        out = [f"== {self.pvname}  ({mod}_{xtype}) =="]
        fields = {}
        if self.count == 1:
            fields["value"] = fmt.format(val=self._args["value"])
        else:
            ext = ",...." if self.count > 10 else ""
            aval: Any = ("unknown",)
            try:
                aval = [fmt.format(val=self._args["value"][i]) for i in range(min(5, self.count))]
            except ValueError:
                aval = [repr(self._args["value"][i]) for i in range(min(5, self.count))]
            except TypeError:
                pass
            if isinstance(aval, (list, tuple)):
                aval = ",".join(aval)
            fields["value"] = f" array  [{aval}{ext}]"
        for name in ("char_value", "count", "nelm", "type", "units", "precision", "host",
                     "access", "monitor_delta", "status", "char_status", "severity",
                     "char_severity", "timestamp", "posixseconds", "nanoseconds",
                     "upper_ctrl_limit", "lower_ctrl_limit", "upper_disp_limit",
                     "lower_disp_limit", "upper_alarm_limit", "lower_alarm_limit",
                     "upper_warning_limit", "lower_warning_limit"):
            att = getattr(self, name, None)
            if att is not None:
                if name == "timestamp":
                    att = f"{att:.3f} ({fmt_time(att)})"
                elif name == "char_value":
                    att = f"'{att}'"
                fields[name] = str(att)
        for key, val in fields.items():
            out.append(f"   {key:20s} = {val}" if len(key) > 14 else f"   {key:15s} = {val}")
        if xtype == "enum":
            out.append("   enum strings: ")
            out.extend(f"       {i} = {name}" for i, name in enumerate(self.enum_strs or ()))
        if self._subscription is not None:
            out.append(f"   PV is internally monitored, with {len(self.callbacks)} "
                       "user-defined callbacks")
            for index in sorted(self.callbacks):
                function = self.callbacks[index][0]
                name = getattr(function, "__name__", repr(function))
                code = getattr(function, "__code__", None)
                out.append(f"      {name} in file '{getattr(code, 'co_filename', '?')}'")
        else:
            out.append("   PV is NOT internally monitored")
        out.append("=============================")
        return "\n".join(out)

    def __repr__(self) -> str:
        if not self.connected:
            return f"<PV '{self.pvname}': not connected>"
        if self.count == 1:
            return (f"<PV '{self.pvname}', count={self._args['count']}, "
                    f"type={self._args['typefull']}, access={self._args['access']}>")
        return (f"<PV '{self.pvname}', count={self._args['count']}/{self._args['nelm']}, "
                f"type={self._args['typefull']}, access={self._args['access']}>")


_FOLLOWERS: dict[str, set[PV]] = {}


def _on_connection(channel: ClientChannel, connected: bool) -> None:
    """The client's hook, on the loop: tell the PVs of the channel's name, on the
    loop's next turn (the client renews the channel's subscriptions after calling the
    hook: a PV subscribing within it would be subscribed twice)."""
    loop = asyncio.get_running_loop()
    for pv in list(_FOLLOWERS.get(channel.name, ())):
        if connected:
            loop.call_soon(pv._connected, channel)
        else:
            loop.call_soon(pv._disconnected)


def _run(callbacks: list[tuple[int, tuple[Callable[..., Any], dict]]], state: dict[str, Any],
         pv: PV) -> None:
    """On the callback thread: the callbacks of one update, as pyepics calls them."""
    for index, (function, kwargs) in sorted(callbacks, key=lambda item: item[0]):
        if index not in pv.callbacks:  # removed since
            continue
        try:
            function(**{**state, **kwargs, "cb_info": (index, pv)})
        except Exception:  # one user's callback must not keep the others from running
            log.exception("shark.epics: callback %r of %s failed", function, pv.pvname)


def _positional(callback: Callable[..., Any], *args: Any) -> Callable[..., Any]:
    """``callback`` with positional arguments first: the callback thread passes keywords."""
    return lambda **kwargs: callback(*args, **kwargs)


async def _on_loop(function: Callable[[], Any]) -> Any:
    return function()


# --------------------------------------------------------------------- module functions


_PV_CACHE: dict[tuple[str, str], PV] = {}
_MONITORS: dict[str, PV] = {}


def get_pv(pvname: str, form: str = "time", connect: bool = False, context: Any = None,
           timeout: float = 5.0, connection_callback: Callable[..., Any] | None = None,
           access_callback: Callable[..., Any] | None = None,
           callback: Callable[..., Any] | None = None, verbose: bool = False,
           count: int | None = None, auto_monitor: Any = None,
           monitor_delta: float | None = None) -> PV:
    """The PV of ``pvname`` from the cache the ca* functions share, made if new."""
    form = form if form in ("native", "time", "ctrl") else "time"
    pv = _PV_CACHE.get((pvname, form))
    if pv is None:
        pv = _PV_CACHE[(pvname, form)] = PV(
            pvname, form=form, callback=callback, connection_callback=connection_callback,
            access_callback=access_callback, connection_timeout=timeout, count=count,
            verbose=verbose, auto_monitor=auto_monitor, monitor_delta=monitor_delta)
    else:
        if connection_callback is not None:
            if pv.connected:
                connection_callback(pvname=pv.pvname, conn=pv.connected, pv=pv)
            pv.connection_callbacks.append(connection_callback)
        if access_callback is not None:
            pv.access_callbacks.append(access_callback)
        if callback is not None:
            pv.run_callback(pv.add_callback(callback))
        if auto_monitor and not pv.auto_monitor:
            pv.auto_monitor = auto_monitor
    if connect and not pv.wait_for_connection(timeout=timeout):
        _write(f"cannot connect to {pvname}")
    return pv


def caget(pvname: str, as_string: bool = False, count: int | None = None,
          as_numpy: bool = True, use_monitor: bool = True, timeout: float = 5.0,
          connection_timeout: float = 5.0) -> Any:
    """The value of ``pvname`` (``as_string``: as text), None on failure."""
    start = time.time()
    pv = get_pv(pvname, timeout=connection_timeout, connect=True)
    if not pv.connected:
        return None
    if as_string:
        pv.get_ctrlvars()
    return pv.get(count=count, timeout=timeout - (time.time() - start),
                  use_monitor=use_monitor, as_string=as_string, as_numpy=as_numpy)


def caput(pvname: str, value: Any, wait: bool = False, timeout: float = 60.0,
          connection_timeout: float = 5.0) -> int | None:
    """Write ``value`` to ``pvname`` (``wait``: until the server is done): 1, -1 on
    failure, None when it does not connect."""
    start = time.time()
    pv = get_pv(pvname, timeout=connection_timeout, connect=True)
    if not pv.connected:
        return None
    return pv.put(value, wait=wait, timeout=timeout - (time.time() - start))


def cainfo(pvname: str, print_out: bool = True, timeout: float = 5.0,
           connection_timeout: float = 5.0) -> str | None:
    """A paragraph about ``pvname``: printed, or returned with ``print_out=False``."""
    pv = get_pv(pvname, timeout=connection_timeout, connect=True)
    if not pv.connected:
        return None
    pv.get(timeout=timeout)
    pv.get_ctrlvars(timeout=timeout)
    if print_out:
        _write(pv.info or "")
        return None
    return pv.info


def camonitor(pvname: str, writer: Callable[[str], Any] | None = None,
              callback: Callable[..., Any] | None = None, connection_timeout: float = 5.0,
              monitor_delta: float | None = None) -> None:
    """Follow ``pvname``: a line per change to ``writer`` (stdout by default), or
    ``callback`` called with pyepics' keyword arguments."""
    write = _write if writer is None else writer
    if callback is None:
        def callback(pvname: str | None = None, value: Any = None,
                     char_value: str | None = None, **_: Any) -> None:
            text = repr(value) if char_value is None else char_value
            write(f"{pvname:.32s} {fmt_time()} {text}")

    pv = get_pv(pvname, timeout=connection_timeout, connect=True, monitor_delta=monitor_delta)
    if pv.connected:
        pv.get()
        pv.add_callback(callback, index=-999, with_ctrlvars=True)
        _MONITORS[pvname] = pv


def camonitor_clear(pvname: str) -> None:
    """Stop what :func:`camonitor` started for ``pvname``."""
    pv = _MONITORS.pop(pvname, None)
    if pv is not None:
        pv.remove_callback(index=-999)


def caget_many(pvlist: Sequence[str], as_string: bool = False, as_numpy: bool = True,
               count: int | None = None, timeout: float = 1.0,
               connection_timeout: float = 5.0, conn_timeout: float | None = None) -> list:
    """The values of several PVs, None for each that fails."""
    if conn_timeout is not None:
        connection_timeout = conn_timeout
    pvs = [get_pv(name, auto_monitor=False) for name in pvlist]
    deadline = time.time() + connection_timeout
    for pv in pvs:
        pv.wait_for_connection(max(0.0, deadline - time.time()))
    return [pv.get(count=count, as_string=as_string, as_numpy=as_numpy, timeout=timeout,
                   use_monitor=False) if pv.connected else None for pv in pvs]


def caput_many(pvlist: Sequence[str], values: Sequence[Any], wait: bool | str = False,
               connection_timeout: float = 5.0, put_timeout: float = 60) -> list:
    """Write several PVs: 1 or -1 each (None-connected ones -1), as pyepics."""
    if len(pvlist) != len(values):
        raise ValueError("List of PV names must be equal to list of values.")
    pvs = [get_pv(name, auto_monitor=False, timeout=connection_timeout) for name in pvlist]
    for pv in pvs:
        pv.wait_for_connection(connection_timeout)
    if wait == "all":
        for pv, value in zip(pvs, values, strict=True):
            if pv.connected:
                pv.put(value, use_complete=True, timeout=put_timeout)
        deadline = time.time() + put_timeout
        while not all(pv.connected and pv.put_complete for pv in pvs):
            if time.time() > deadline:
                break
            time.sleep(0.001)
        return [1 if pv.connected and pv.put_complete else -1 for pv in pvs]
    done = [pv.put(value, wait=wait == "each", timeout=put_timeout)
            for pv, value in zip(pvs, values, strict=True)]
    return [1 if status == 1 else -1 for status in done]


def poll(evt: float = 1.e-4, iot: float = 1.0) -> None:
    """pyepics' ``poll``: nothing is pending here (the loop runs on its own), so only
    the pause."""
    time.sleep(evt)


"""Real Channel Access peers on loopback: a pythonSoftIOC server, a client script, tcpdump.

Tests and ``captures/make_captures.py`` need genuine CA traffic between real
implementations.  This module runs a whole *scenario* -- tcpdump on ``lo``, one softioc
server built from a records description, one client script -- and returns a JSON-able
result describing what happened.

Safety: every EPICS process gets :func:`epics_env` (all addresses 127.0.0.1, automatic
address lists off, PV Access off).  When we are root and ``unshare`` works, the scenario
runs in a private network namespace (plus PID and mount namespaces, so that nothing can
outlive it) whose only interface is ``lo``; otherwise it runs directly on the host, still
loopback-pinned, and capturing needs tcpdump to be permitted there.

Three layers live in this one file so that the code inside the namespace is the same
file the tests import:

* host side: :func:`epics_env`, :func:`free_port`, :func:`namespace_command`,
  :func:`peers_missing`, :func:`capture_missing`, :func:`run_scenario`,
  :func:`run_bounded` (a command in its own session, killed whole after a timeout);
* for scripts of their own run inside the namespace: :func:`bring_up_loopback`,
  :func:`become_subreaper` and :func:`stop_strays` (so that what libca spawns, such
  as caRepeater, never outlives the test);
* ``python tests/peers.py run SPEC.json``: the scenario runner, executed inside the
  namespace; starts and stops tcpdump, the IOC and the client by PID, writes the result;
* ``python tests/peers.py ioc CONFIG.json``: the softioc server;
* client helpers :func:`load_client_params`, :func:`save_client_result`, :func:`jsonable`
  for client scripts (this directory is on their ``PYTHONPATH``).

Records description (one dict per record)::

    {"name": "DEMO:TEMP",            # full PV name
     "type": "ai",                   # ai ao longin longout bi bo mbbi mbbo stringin
                                     # stringout waveform waveform_out (softioc records), or
                                     # any EPICS record type such as calc (plain DB record)
     "value": 23.25,                 # initial value; waveforms: a list or {"arange": n}
     "options": ["Idle", ["Fault", "MAJOR"]],   # mbbi/mbbo states (optional severity)
     "nelm": 10, "ftvl": "DOUBLE",   # waveforms
     "db": false,                    # true: plain DB record even for a softioc type
     "fields": {"EGU": "degC", "PREC": 2, "HIHI": 100, "HHSV": "MAJOR", "SCAN": "1 second"}}
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import importlib.util
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
HERE = Path(__file__).resolve().parent
IOC_READY = "SHARK-IOC-READY"
TCPDUMP_MISSING = "tcpdump not installed; `make test` installs it as root"
# softioc record types backed by Python device support, and their builder functions.
SOFTIOC_BUILDERS = {
    "ai": "aIn", "ao": "aOut", "longin": "longIn", "longout": "longOut",
    "bi": "boolIn", "bo": "boolOut", "mbbi": "mbbIn", "mbbo": "mbbOut",
    "stringin": "stringIn", "stringout": "stringOut",
    "waveform": "WaveformIn", "waveform_out": "WaveformOut",
}
OUTPUT_TYPES = {"ao", "longout", "bo", "mbbo", "stringout", "waveform_out"}


# --------------------------------------------------------------------------- host side


#: The standard CA ports, used inside a private namespace where nothing else runs.
SERVER_PORT, REPEATER_PORT = 5064, 5065


def epics_env(port: int, repeater_port: int, max_array_bytes: int | None = None) -> dict[str, str]:
    """Environment pinning every EPICS process (client and server) to 127.0.0.1.

    Automatic address lists are off so that libca/rsrv never search or beacon on other
    interfaces; PV Access variables are pinned too in case a server enables it anyway.
    """
    env = {
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_ADDR_LIST": LOOPBACK,
        "EPICS_CA_SERVER_PORT": str(port),
        "EPICS_CA_REPEATER_PORT": str(repeater_port),
        "EPICS_CAS_INTF_ADDR_LIST": LOOPBACK,
        "EPICS_CAS_SERVER_PORT": str(port),
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_CAS_BEACON_ADDR_LIST": LOOPBACK,
        "EPICS_CAS_BEACON_PORT": str(repeater_port),
        "EPICS_PVA_AUTO_ADDR_LIST": "NO",
        "EPICS_PVA_ADDR_LIST": LOOPBACK,
        "EPICS_PVAS_INTF_ADDR_LIST": LOOPBACK,
        "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_PVAS_BEACON_ADDR_LIST": LOOPBACK,
    }
    if max_array_bytes:
        env["EPICS_CA_MAX_ARRAY_BYTES"] = str(max_array_bytes)
    return env


def free_port(avoid: Iterable[int] = ()) -> int:
    """A loopback port free for both TCP and UDP (a CA server listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((LOOPBACK, 0))
            port = tcp.getsockname()[1]
            if port in set(avoid):
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((LOOPBACK, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free loopback port found")


@functools.lru_cache(maxsize=1)
def namespace_command() -> tuple[str, ...] | None:
    """The ``unshare`` prefix giving a private network namespace, or None if unavailable.

    Needs root.  PID + mount namespaces are added when possible: when the runner (PID 1
    there) exits or is killed, the kernel kills everything left inside, e.g. a caRepeater
    spawned by libca.
    """
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        return None
    candidates = (
        (unshare, "--net", "--pid", "--fork", "--kill-child", "--mount-proc"),
        (unshare, "--net"),
    )
    for prefix in candidates:
        try:
            probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return prefix
    return None


def peers_missing() -> str | None:
    """Why real peers cannot run here (softioc or pyepics not importable), else None."""
    for module in ("softioc", "epics"):
        if importlib.util.find_spec(module) is None:
            return f"python package {module!r} not importable (pip install '.[test]')"
    return None


@functools.lru_cache(maxsize=1)
def capture_missing() -> str | None:
    """Why tcpdump cannot capture on lo here, else None.

    In a private namespace as root capture is always permitted; on the host we try it.
    """
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        return TCPDUMP_MISSING
    if namespace_command() is not None:
        return None
    proc = _Proc("tcpdump-probe", [tcpdump, "-i", "lo", "-c", "1", "-w", os.devnull])
    try:
        if proc.wait_for_line("listening on", timeout=5):
            return None
        return "capture not permitted: " + " | ".join(proc.stderr_tail(3))
    finally:
        proc.stop(timeout=2)


class ScenarioError(RuntimeError):
    """The scenario runner itself failed (no result produced)."""


def run_scenario(
    records: Sequence[Mapping[str, Any]],
    client_argv: Sequence[str],
    workdir: str | os.PathLike[str],
    *,
    pcap: str | os.PathLike[str] | None = None,
    client_params: Mapping[str, Any] | None = None,
    client_timeout: float = 30.0,
    max_array_bytes: int | None = None,
    settle: float = 0.3,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run IOC + client (+ tcpdump if ``pcap``) in one namespace; return the runner's result.

    ``client_argv`` is run with the path of a params JSON appended; the client reads it
    with :func:`load_client_params` (it holds ``client_params`` plus ``port``,
    ``repeater_port`` and ``result_path``) and reports with :func:`save_client_result`.
    Everything is bounded: the whole run is killed after ``timeout`` seconds (default:
    client_timeout + 60).
    """
    work = Path(workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    spec = {
        "records": list(records),
        "client_argv": [str(a) for a in client_argv],
        "client_params": dict(client_params or {}),
        "client_timeout": client_timeout,
        "max_array_bytes": max_array_bytes,
        "settle": settle,
        "pcap": str(Path(pcap).resolve()) if pcap else None,
        "workdir": str(work),
        "result_path": str(work / "scenario_result.json"),
    }
    spec_path = work / "scenario_spec.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    Path(spec["result_path"]).unlink(missing_ok=True)
    prefix = namespace_command()
    argv = [sys.executable, str(Path(__file__).resolve()), "run", str(spec_path)]
    if prefix:
        argv = [*prefix, *argv[:3], "--netns", *argv[3:]]
    done = run_bounded(argv, timeout or client_timeout + 60.0)
    try:
        result = json.loads(Path(spec["result_path"]).read_text())
    except (OSError, ValueError) as exc:
        raise ScenarioError(
            f"scenario runner produced no result (exit {done['returncode']}): "
            f"{done['stderr'][-2000:]}"
        ) from exc
    result["runner"] = done
    return result


def run_bounded(argv: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run argv in its own session; kill the whole process group after ``timeout``."""
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, text=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        out, err = proc.communicate()
    except BaseException:  # e.g. Ctrl-C in pytest: leave nothing running behind us
        _kill_group(proc)
        proc.wait()
        raise
    return {"argv": list(argv), "returncode": proc.returncode, "timed_out": timed_out,
            "stdout": out[-4000:], "stderr": err[-4000:]}


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process group (in a namespace, killing its PID 1 kills all inside)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


# ----------------------------------------------------------------------- client helpers


def load_client_params(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Params of a client script: the JSON file named by the last command line argument."""
    args = sys.argv if argv is None else argv
    return json.loads(Path(args[-1]).read_text())


def save_client_result(params: Mapping[str, Any], result: Any) -> None:
    """Write a client's result where the runner expects it (numpy values made JSON-able)."""
    Path(params["result_path"]).write_text(json.dumps(jsonable(result), indent=1))


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, bytes and tuples recursively into JSON types."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    if isinstance(value, float) and value != value:
        return "nan"
    return value


# ------------------------------------------------------------------- process handling


class _Proc:
    """A child process whose output lines are collected by reader threads.

    Reading continuously keeps pipes from filling up (which would block the child), and
    lets the runner wait for readiness lines with a timeout.
    """

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
                 cwd: str | None = None) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._new_line = threading.Condition()
        self.popen = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=dict(env) if env is not None else None, cwd=cwd,
            text=True, errors="replace",
        )
        self.pid = self.popen.pid
        self.t_start = time.time()
        self.stopped_by: str | None = None
        self._readers = [
            threading.Thread(target=self._read, args=(stream, key), daemon=True)
            for stream, key in ((self.popen.stdout, "stdout"), (self.popen.stderr, "stderr"))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, key: str) -> None:
        for line in stream:
            with self._new_line:
                self.lines[key].append(line.rstrip("\n"))
                self._new_line.notify_all()

    def wait_for_line(self, text: str, timeout: float) -> bool:
        """True once ``text`` appears in stdout or stderr; False on timeout or exit."""
        deadline = time.monotonic() + timeout
        with self._new_line:
            while True:
                if any(text in line for key in self.lines for line in self.lines[key]):
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and not self._reading()):
                    return False
                self._new_line.wait(min(left, 0.1))

    def _reading(self) -> bool:
        return any(reader.is_alive() for reader in self._readers)

    def wait(self, timeout: float) -> int | None:
        """Exit code, or None if still running after ``timeout``."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it is still there after ``timeout``."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            self.stopped_by = "SIGTERM"
            if self.wait(timeout) is None:
                self.popen.kill()
                self.stopped_by = "SIGKILL"
                self.popen.wait(timeout)
        for reader in self._readers:
            reader.join(timeout=2)

    def stderr_tail(self, n: int = 20) -> list[str]:
        return self.lines["stderr"][-n:]

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "argv": self.argv,
                "t_start_unix": self.t_start, "returncode": self.popen.returncode,
                "stopped_by": self.stopped_by, "stdout_tail": self.lines["stdout"][-20:],
                "stderr_tail": self.stderr_tail()}


def become_subreaper() -> None:
    """Adopt orphaned descendants (e.g. caRepeater spawned by libca) so we can stop them."""
    pr_set_child_subreaper = 36
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def _children(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def stop_strays(timeout: float = 3.0) -> list[int]:
    """Stop every remaining child (adopted orphans included); return their PIDs."""
    strays = _children(os.getpid())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in strays:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _reap(strays):
            time.sleep(0.05)
    return strays


def _reap(pids: list[int]) -> bool:
    """Reap exited children among ``pids``; True while some are still running."""
    alive = False
    for pid in pids:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        alive = alive or done == 0
    return alive


def bring_up_loopback() -> None:
    """``ip link set lo up`` without needing iproute2 (a fresh namespace has lo down)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, siocgifflags, req))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


# ------------------------------------------------------------------------ the runner


class _Runner:
    """Executes one scenario spec (inside the namespace) and collects its result."""

    def __init__(self, spec: Mapping[str, Any], netns: bool) -> None:
        self.spec = spec
        self.netns = netns
        self.work = Path(spec["workdir"])
        self.result: dict[str, Any] = {"ok": False, "errors": [], "namespace": None}
        if netns:
            self.result["namespace"] = "private network namespace (unshare), only lo"
        else:
            self.result["namespace"] = "none: host network, loopback-pinned EPICS env"
        self.procs: list[_Proc] = []

    def run(self) -> dict[str, Any]:
        t0 = time.time()
        try:
            self._steps()
        except Exception as exc:  # reported in the result, never raised
            self.result["errors"].append(f"{type(exc).__name__}: {exc}")
        finally:
            self._stop_all()
        self.result["duration_s"] = round(time.time() - t0, 3)
        self.result["ok"] = not self.result["errors"]
        return self.result

    def _steps(self) -> None:
        if self.netns:
            # The namespace is ours alone: use the standard ports, as a real site does.
            port, repeater_port = SERVER_PORT, REPEATER_PORT
        else:
            port = free_port()
            repeater_port = free_port(avoid=[port])
        env = dict(os.environ)
        env.update(epics_env(port, repeater_port, self.spec.get("max_array_bytes")))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
        self.result["ports"] = {"server": port, "repeater": repeater_port}
        self.result["epics_env"] = epics_env(port, repeater_port,
                                             self.spec.get("max_array_bytes"))
        if self.spec.get("pcap"):
            self._start_tcpdump(self.spec["pcap"])
        self._start_ioc(env)
        self._run_client(env, port, repeater_port)
        time.sleep(self.spec.get("settle", 0.3))

    def _start_tcpdump(self, pcap: str) -> None:
        tcpdump = shutil.which("tcpdump")
        if tcpdump is None:
            raise RuntimeError(TCPDUMP_MISSING)
        # --immediate-mode: without it libpcap's TPACKET_V3 ring hands packets over in blocks,
        # and those still in the ring when tcpdump is stopped are lost.
        argv = [tcpdump, "-i", "lo", "--immediate-mode", "-U", "-n", "-s", "0", "-w", pcap]
        if os.geteuid() == 0:
            argv[1:1] = ["-Z", "root"]  # keep privileges: the pcap lives in a root-owned dir
        proc = self._spawn("tcpdump", [*argv, "udp or tcp"])
        if not proc.wait_for_line("listening on", timeout=10):
            raise RuntimeError(f"tcpdump not ready: {proc.stderr_tail(5)}")
        self.result["capture"] = {"tool": "tcpdump", "argv": proc.argv, "interface": "lo",
                                  "bpf_filter": "udp or tcp", "file": pcap}

    def _start_ioc(self, env: Mapping[str, str]) -> None:
        config = {"records": self.spec["records"], "log_path": str(self.work / "ioc_log.json")}
        config_path = self.work / "ioc_config.json"
        config_path.write_text(json.dumps(config, indent=1))
        proc = self._spawn("ioc", [sys.executable, str(Path(__file__).resolve()), "ioc",
                                   str(config_path)], env=env)
        if not proc.wait_for_line(IOC_READY, timeout=30):
            raise RuntimeError(f"IOC not ready: {proc.stderr_tail(10)}")

    def _run_client(self, env: Mapping[str, str], port: int, repeater_port: int) -> None:
        params = dict(self.spec.get("client_params", {}))
        params.update(port=port, repeater_port=repeater_port,
                      result_path=str(self.work / "client_result.json"))
        params_path = self.work / "client_params.json"
        params_path.write_text(json.dumps(params, indent=1))
        Path(params["result_path"]).unlink(missing_ok=True)
        proc = self._spawn("client", [*self.spec["client_argv"], str(params_path)], env=env)
        if proc.wait(self.spec.get("client_timeout", 30.0)) is None:
            self.result["errors"].append("client timed out")
            proc.stop()
        if proc.popen.returncode != 0:
            self.result["errors"].append(f"client exit code {proc.popen.returncode}: "
                                         f"{proc.stderr_tail(10)}")
        with contextlib.suppress(OSError, ValueError):
            self.result["client_result"] = json.loads(Path(params["result_path"]).read_text())
        if "client_result" not in self.result:
            self.result["errors"].append("client wrote no result")

    def _spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None
               ) -> _Proc:
        proc = _Proc(name, argv, env=env, cwd=str(self.work))
        self.procs.append(proc)
        return proc

    def _stop_all(self) -> None:
        """Stop in reverse start order (client, IOC, then tcpdump last to flush the pcap)."""
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop(timeout=5)
            self.result.setdefault("processes", {})[proc.name] = proc.summary()
            if proc.name == "tcpdump":
                time.sleep(0.05)
        self.result["strays_stopped"] = stop_strays()
        with contextlib.suppress(OSError, ValueError):
            self.result["ioc_log"] = json.loads((self.work / "ioc_log.json").read_text())
        pcap = self.spec.get("pcap")
        if pcap and Path(pcap).exists():
            self.result.setdefault("capture", {})["bytes"] = Path(pcap).stat().st_size
            tcpdump = [p for p in self.procs if p.name == "tcpdump"]
            if tcpdump:
                self.result["capture"]["tcpdump_report"] = tcpdump[0].stderr_tail(5)


def _runner_main(spec_path: str, netns: bool) -> int:
    spec = json.loads(Path(spec_path).read_text())
    if netns:
        bring_up_loopback()
    become_subreaper()
    result = _Runner(spec, netns).run()
    _atomic_write(Path(spec["result_path"]), json.dumps(jsonable(result), indent=1))
    return 0 if result["ok"] else 1


def _atomic_write(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


# --------------------------------------------------------------------------- the IOC


def _initial_waveform(value: Any, ftvl: str) -> Any:
    """A waveform initial value; ``{"arange": n}`` avoids huge lists in the config."""
    import numpy
    from softioc import builder

    dtype = builder.DbfStringToNumpy[ftvl]
    if isinstance(value, Mapping):
        return numpy.arange(value["arange"]).astype(dtype)
    return numpy.array(value, dtype=dtype)


def _build_record(desc: Mapping[str, Any], log: list[dict[str, Any]]) -> Any:
    """Create one record from its description (softioc builder or plain DB record)."""
    from softioc import builder

    rtype, name = desc["type"], desc["name"]
    fields = dict(desc.get("fields", {}))
    if desc.get("db") or rtype not in SOFTIOC_BUILDERS:
        db_type = "waveform" if rtype == "waveform_out" else rtype
        return getattr(builder.records, db_type)(name, **fields)
    args: list[Any] = [tuple(o) if isinstance(o, list) else o for o in desc.get("options", [])]
    if rtype.startswith("waveform"):
        ftvl = desc.get("ftvl", "DOUBLE")
        fields.update(FTVL=ftvl, length=desc.get("nelm") or len(desc.get("value", [])))
        if desc.get("value") is not None:
            fields["initial_value"] = _initial_waveform(desc["value"], ftvl)
    elif desc.get("value") is not None:
        fields["initial_value"] = desc["value"]
    if rtype in OUTPUT_TYPES:
        fields["on_update"] = functools.partial(_log_write, log, name)
    return getattr(builder, SOFTIOC_BUILDERS[rtype])(name, *args, **fields)


def _log_write(log: list[dict[str, Any]], name: str, value: Any) -> None:
    log.append({"pv": name, "value": jsonable(value), "t_unix": time.time()})


def _ioc_main(config_path: str) -> int:
    """Serve the configured records until SIGTERM, then write the log of writes seen."""
    config = json.loads(Path(config_path).read_text())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    from softioc import asyncio_dispatcher, builder, softioc

    log: list[dict[str, Any]] = []
    for desc in config["records"]:
        _build_record(desc, log)
    builder.LoadDatabase()
    softioc.iocInit(asyncio_dispatcher.AsyncioDispatcher(), enable_pva=False)
    print(IOC_READY, flush=True)
    t_ready = time.time()
    while not stop.wait(0.1):
        pass
    info = {"pid": os.getpid(), "t_ready_unix": t_ready, "t_stop_unix": time.time(),
            "writes_seen": log}
    _atomic_write(Path(config["log_path"]), json.dumps(jsonable(info), indent=1))
    sys.stdout.flush()
    os._exit(0)  # skip epicsExit/atexit teardown: nothing left to flush, and it can hang


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point inside the namespace: ``run SPEC [--netns]`` or ``ioc CONFIG``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["run"]:
        netns = "--netns" in args
        return _runner_main([a for a in args[1:] if a != "--netns"][0], netns)
    if args[:1] == ["ioc"]:
        return _ioc_main(args[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

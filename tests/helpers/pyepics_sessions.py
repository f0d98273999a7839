"""pyepics (libca) against a server of ours, in the private network namespace.

``peers.run_scenario`` can only start softioc. To put pyepics in front of one of our
servers (``shark.peers.server`` in process, or ``shark replay --as-server``), a helper
script runs as ``SCRIPT serve SPEC [--netns]``: it serves, runs its own
``SCRIPT pyepics-client PARAMS`` against the server and writes what both saw to
``result.json`` beside the spec. This module holds what those scripts share:

* host side: :func:`run_session` starts ``SCRIPT serve`` (in the namespace when there is
  one) and reads its result;
* the script's entry: :func:`script_main` (its modes: ``serve``, and its clients');
* inside: :func:`serve_main` (loopback up, nothing left running, errors reported in the
  result, never raised), :func:`session_ports`, :class:`PyepicsClient`;
* in the pyepics client: :func:`reads_with_metadata`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any

import peers

#: What a ``serve`` mode runs inside: ``serve(spec, netns)`` -> the session's result.
Serve = Callable[[dict[str, Any], bool], Coroutine[Any, Any, dict[str, Any]]]
#: pyepics' promotions of a channel's native type: the DBR forms a client reads.
PROMOTIONS: dict[str, dict[str, bool]] = {
    "plain": {}, "time": {"use_time": True}, "ctrl": {"use_ctrl": True}}


# --------------------------------------------------------------------------- host side


def run_session(script: Path, work: Path, *, client_timeout: float, timeout: float
                ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Run ``script serve`` bounded by ``timeout``: its result (None if it wrote none)
    and how the run ended (:func:`peers.run_bounded`)."""
    spec_path = work / "spec.json"
    spec_path.write_text(json.dumps({"workdir": str(work), "client_timeout": client_timeout}))
    argv = [sys.executable, str(script), "serve", str(spec_path)]
    prefix = peers.namespace_command()
    if prefix:
        argv = [*prefix, *argv, "--netns"]
    done = peers.run_bounded(argv, timeout=timeout)
    result_path = work / "result.json"
    result = json.loads(result_path.read_text()) if result_path.exists() else None
    return result, done


# ------------------------------------------------------------------ inside the namespace


def script_main(argv: list[str], clients: Mapping[str, Callable[[str], int]], serve: Serve,
                slack: float) -> int:
    """A helper script's entry, ``SCRIPT MODE PATH [--netns]``: ``serve`` runs
    :func:`serve_main` (the command :func:`run_session` gives), any other mode the client
    ``clients[MODE]`` on its params file."""
    mode, path = argv[0], argv[1]
    if mode == "serve":
        return serve_main(path, "--netns" in argv, serve, slack)
    if mode in clients:
        return clients[mode](path)
    raise SystemExit(f"unknown mode {mode!r}")


def serve_main(spec_path: str, netns: bool, serve: Serve, slack: float) -> int:
    """``SCRIPT serve SPEC [--netns]``: run ``serve`` for at most the client's timeout plus
    ``slack`` seconds, then stop what libca left running (caRepeater) and write the
    result, with any exception among its errors."""
    spec = json.loads(Path(spec_path).read_text())
    if netns:
        peers.bring_up_loopback()
    peers.become_subreaper()  # caRepeater, spawned by libca, must not outlive us
    try:
        result = asyncio.run(asyncio.wait_for(serve(spec, netns),
                                              spec["client_timeout"] + slack))
    except Exception as exc:  # reported in the result
        result = {"errors": [f"{type(exc).__name__}: {exc}"]}
    finally:
        strays = peers.stop_strays()
    result["strays_stopped"] = strays
    (Path(spec["workdir"]) / "result.json").write_text(json.dumps(peers.jsonable(result)))
    return 0


def session_ports(netns: bool) -> tuple[int, int]:
    """The server and repeater ports: the standard ones in a namespace of our own (as a
    real site has them), free loopback ports on a shared host."""
    if netns:
        return peers.SERVER_PORT, peers.REPEATER_PORT
    port = peers.free_port()
    return port, peers.free_port(avoid=[port])


class PyepicsClient:
    """``SCRIPT pyepics-client PARAMS`` in a process of its own, pinned to loopback."""

    def __init__(self, proc: asyncio.subprocess.Process, result_path: Path) -> None:
        self.proc = proc
        self.result_path = result_path

    @classmethod
    async def start(cls, script: Path, work: Path, port: int, repeater: int,
                    **params: Any) -> PyepicsClient:
        """Start the client; ``params`` (JSON) reach it with its ``result_path``."""
        result_path = work / "client_result.json"
        params_path = work / "client_params.json"
        params_path.write_text(json.dumps({**params, "result_path": str(result_path)}))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(script), "pyepics-client", str(params_path),
            env={**os.environ, **peers.epics_env(port, repeater)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(proc, result_path)

    async def finish(self, timeout: float, out: dict[str, Any]) -> None:
        """Wait for the client (killed after ``timeout``); put its result in
        ``out["client_result"]`` and what went wrong in ``out["errors"]``."""
        try:
            _, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            _, err = await self.proc.communicate()
            out["errors"].append("pyepics client timed out")
        if self.proc.returncode:
            out["errors"].append(
                f"pyepics client exit {self.proc.returncode}: {err.decode()[-3000:]}")
        if self.result_path.exists():
            out["client_result"] = json.loads(self.result_path.read_text())
        else:
            out["errors"].append("pyepics client wrote no result")

    async def stop(self, timeout: float = 10.0) -> None:
        """Terminate the client if it still runs; wait for its end."""
        if self.proc.returncode is None:
            self.proc.terminate()
        await asyncio.wait_for(self.proc.wait(), timeout)


# ------------------------------------------------------------------ in the pyepics client


def reads_with_metadata(chids: Mapping[str, Any], forms: Iterable[str]
                        ) -> dict[str, dict[str, Any]]:
    """``ca.get_with_metadata`` of every channel in each of ``forms`` (:data:`PROMOTIONS`)."""
    from epics import ca

    return {form: {name: ca.get_with_metadata(chid, ftype=ca.promote_type(
                       chid, **PROMOTIONS[form]), timeout=5)
                   for name, chid in chids.items()}
            for form in forms}

"""Shared pytest fixtures. Shared code lives in tests/helpers (real peers: its peers.py)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peers
import pytest


@pytest.fixture
def require_peers() -> None:
    """Skip unless softioc and pyepics are importable."""
    reason = peers.peers_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def require_capture(require_peers: None) -> None:
    """Skip unless real peers can run and tcpdump may capture on lo."""
    reason = peers.capture_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def scenario(require_peers: None, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """peers.run_scenario with workdir bound to this test's tmp_path."""
    return functools.partial(peers.run_scenario, workdir=tmp_path / "scenario")


# Test modules that run themselves as subprocess scripts import the helpers too.
# (Transitional: those scripts move to tests/helpers, where their own folder is on the path.)
_HELPERS = str(Path(__file__).resolve().parent / "helpers")
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_HELPERS, os.environ.get("PYTHONPATH")]))

"""Shared pytest fixtures. Shared code lives in tests/helpers (real peers: its peers.py)."""

from __future__ import annotations

import functools
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


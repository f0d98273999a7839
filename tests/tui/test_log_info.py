"""What the log's info column says of messages that are not what they look like."""

from __future__ import annotations

from typing import Any

import pytest
from builders import capture

pytest.importorskip("textual")

from tui_pilot import drive  # noqa: E402

from shark.analysis.notes import WAKEUP  # noqa: E402
from tui.app import SharkApp  # noqa: E402
from tui.rows import log_info  # noqa: E402


def test_libca_wake_up_is_named_in_the_log() -> None:
    async def script(app: SharkApp, pilot: Any) -> None:
        rows = app.model.log_rows()
        wakeups = [row for row in rows if row is not None and row.src == row.dst
                   and row.command == "VERSION"]
        assert wakeups and all(log_info(row) == WAKEUP for row in wakeups)

    drive(capture("ca_server_restart.pcapng"), script)

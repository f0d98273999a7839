"""``shark get/put/info/monitor`` against shark's own server on loopback: the errors a
person must understand, the wire they show and save, ``--stats`` and ``-f jsonl``.

The server runs on a thread of its own (its own event loop) on 127.0.0.1, at a free
port named by ``EPICS_CA_SERVER_PORT``; the commands run in this process.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from decoder.dbr import DBRType
from shark.catools.session import ca_addresses
from shark.cli import main
from shark.peers.server import PV, Server

LOOPBACK = "127.0.0.1"


def _pvs() -> list[PV]:
    return [
        PV("RO:VALUE", DBRType.DOUBLE, 1.5, writable=False, precision=2),
        PV("RW:VALUE", DBRType.DOUBLE, 2.5, precision=2, units="V"),
        PV("RW:MODE", DBRType.ENUM, 1, enum_strings=["Off", "On", "Fault"]),
        PV("RW:COUNT", DBRType.LONG, 7),
        PV("RW:WAVE", DBRType.SHORT, [1, 2, 3, 4], count=4),
    ]


class _Running:
    """A Server on a thread: started, its port known, stopped at the end."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.server: Server | None = None
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "server not started"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            self.server = Server(_pvs(), port=0, beacon_address=None)
            await self.server.start()
            self.ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def call(self, function, *args) -> None:  # noqa: ANN001 - a server method
        self.loop.call_soon_threadsafe(function, *args)

    def when_connected(self, then, *args) -> threading.Thread:  # noqa: ANN001
        """Call ``then(*args)`` on a thread once a client has connected (the command
        under test starts after its modules are imported, which takes a while)."""
        def wait() -> None:
            deadline = time.monotonic() + 10
            while self.server.circuit_count == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.1)
            then(*args)

        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        return thread

    def stop_server(self) -> None:
        """Stop serving (the circuits close), the loop going on."""
        assert self.server is not None
        if not self.stopped:
            self.stopped = True
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)

    def restart_server(self) -> None:
        """A new server on the same ports, as an IOC restarted is."""
        assert self.server is not None
        old = self.server

        async def start() -> None:
            self.server = Server(_pvs(), port=old.udp_port, tcp_port=old.tcp_port,
                                 beacon_address=None)
            await self.server.start()
            self.stopped = False

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def stop(self) -> None:
        self.stop_server()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Running]:
    running = _Running()
    assert running.server is not None
    monkeypatch.setenv("EPICS_CA_ADDR_LIST", LOOPBACK)
    monkeypatch.setenv("EPICS_CA_SERVER_PORT", str(running.server.udp_port))
    try:
        yield running
    finally:
        running.stop()


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_pv_that_does_not_connect_is_said_as_caget_says_it(server, capsys):
    assert _run(capsys, "get", "-w", "0.3", "NO:SUCH") == (
        1, "", "Channel connect timed out: 'NO:SUCH' not found.\n")
    status, out, err = _run(capsys, "info", "-w", "0.3", "RW:VALUE", "NO:SUCH")
    assert (status, out, err) == (1, "", "Channel connect timed out: some PV(s) not found.\n")


def test_a_put_to_a_read_only_pv_is_refused_with_a_message(server, capsys):
    status, out, err = _run(capsys, "put", "RO:VALUE", "3")
    assert status == 1
    assert out == "Old : RO:VALUE                       1.5\n"
    assert "no write access to 'RO:VALUE'" in err
    assert server.server.pvs["RO:VALUE"].values[0] == 1.5


def test_an_invalid_enum_string_is_refused_and_nothing_is_written(server, capsys):
    assert _run(capsys, "put", "RW:MODE", "Bogus") == (
        1, "", "Enum string value 'Bogus' invalid.\n")
    assert _run(capsys, "put", "-n", "RW:MODE", "x") == (
        1, "", "Enum index value 'x' is not a number.\n")
    status, out, _ = _run(capsys, "put", "RW:MODE", "Fault")
    assert (status, out) == (0, "Old : RW:MODE                        On\n"
                                "New : RW:MODE                        Fault\n")


def test_a_rejected_write_is_said_on_stderr_and_with_c_fails(server, capsys):
    status, out, err = _run(capsys, "put", "RW:COUNT", "notanumber")
    assert status == 0  # as caput: the WRITE has no reply, its ERROR comes on its own
    assert "the write to 'RW:COUNT' was rejected" in err
    assert out.splitlines()[-1] == "New : RW:COUNT                       7"
    status, out, err = _run(capsys, "put", "-c", "RW:COUNT", "notanumber")
    assert status == 1
    assert "Error occurred writing data to 'RW:COUNT'" in err


def test_the_wire_shown_is_what_shark_read_prints_of_the_capture_saved(server, capsys,
                                                                       tmp_path: Path):
    capture = tmp_path / "get.pcapng"
    status, out, err = _run(capsys, "get", "--wire", "--write", str(capture), "RW:VALUE",
                            "RW:WAVE")
    assert status == 0
    assert out == "RW:VALUE                       2.5\nRW:WAVE 4 1 2 3 4\n"
    assert _run(capsys, "read", str(capture)) == (0, err, "")
    commands = [line.split()[7] for line in err.splitlines()]
    for command in ("SEARCH", "VERSION", "CREATE_CHAN", "READ_NOTIFY", "ACCESS_RIGHTS"):
        assert command in commands
    assert any(line.endswith(" ms]") for line in err.splitlines())  # latencies


def test_nothing_is_sent_off_the_addresses_given(server, capsys, tmp_path: Path):
    capture = tmp_path / "put.pcapng"
    assert _run(capsys, "put", "-c", "--write", str(capture), "RW:VALUE", "4")[0] == 0
    _, out, _ = _run(capsys, "read", "--format", "jsonl", str(capture))
    port = server.server.udp_port
    for line in out.splitlines():
        message = json.loads(line)
        assert message["src"].startswith(LOOPBACK) and message["dst"].startswith(LOOPBACK)
        if message["transport"] == "udp" and message["sender"] == "client":
            assert message["dst"] == f"{LOOPBACK}:{port}"


def test_the_addresses_come_from_the_environment_else_loopback():
    assert ca_addresses({}) == [("127.0.0.1", 5064)]
    assert ca_addresses({"EPICS_CA_ADDR_LIST": "10.0.0.1 10.0.0.2:6000",
                         "EPICS_CA_SERVER_PORT": "5070"}) == [("10.0.0.1", 5070),
                                                              ("10.0.0.2", 6000)]


def test_info_with_wire_says_what_the_search_and_the_circuit_told(server, capsys):
    status, out, _ = _run(capsys, "info", "--wire", "RW:VALUE")
    assert status == 0
    lines = out.splitlines()
    assert lines[:7] == ["RW:VALUE", "    State:            connected",
                         f"    Host:             localhost:{server.server.tcp_port}",
                         "    Access:           read, write",
                         "    Native data type: DBF_DOUBLE",
                         "    Request type:     DBR_DOUBLE",
                         "    Element count:    1"]
    assert lines[7] == f"    Server:           {LOOPBACK}:{server.server.tcp_port}"
    assert lines[8].startswith(f"    Search reply:     from {LOOPBACK}:")
    assert lines[9] == "    CA version:       4.13"
    assert lines[10].startswith("    Connected in:     ")


def test_monitor_stats_count_updates_gaps_and_repeats(server, capsys):
    def changes() -> None:
        for step, value in enumerate((3.0, 3.0, 4.0)):
            server.loop.call_later(0.1 * (step + 1), lambda v=value: server.server.set(
                "RW:VALUE", v, force=True))

    server.call(changes)
    status, out, _ = _run(capsys, "monitor", "--stats", "--duration", "0.6", "RW:VALUE")
    assert status == 0
    lines = out.splitlines()
    values = [line.split()[-1] for line in lines[:4]]
    assert values == ["2.5", "3", "3", "4"]
    assert lines[4].split() == ["PV", "updates", "rate/s", "max", "gap", "s", "p99", "gap",
                                "s", "repeats"]
    row = lines[5].split()
    assert row[0] == "RW:VALUE" and row[1] == "4" and row[-1] == "1"


def test_jsonl_is_one_object_a_line_for_every_command(server, capsys):
    _, out, _ = _run(capsys, "get", "-f", "jsonl", "RW:VALUE", "RW:WAVE")
    first, second = map(json.loads, out.splitlines())
    assert (first["pv"], first["value"], first["type"]) == ("RW:VALUE", 2.5,
                                                             "DBR_TIME_DOUBLE")
    assert second["value"] == [1, 2, 3, 4]
    _, out, _ = _run(capsys, "put", "--format", "jsonl", "RW:VALUE", "6")
    record = json.loads(out)
    assert (record["old"]["value"], record["new"]["value"]) == (2.5, 6.0)
    _, out, _ = _run(capsys, "info", "-f", "jsonl", "RW:VALUE")
    assert json.loads(out)["server_version"] == "4.13"
    _, out, _ = _run(capsys, "monitor", "-f", "jsonl", "--duration", "0.2", "RW:VALUE")
    assert json.loads(out.splitlines()[0])["value"] == 6.0


def test_monitor_says_when_the_server_goes(server, capsys):
    stopping = server.when_connected(server.stop_server)
    status, out, _ = _run(capsys, "monitor", "--duration", "1.0", "-F", ",", "RW:VALUE")
    stopping.join()
    assert status == 0
    first, gone = out.splitlines()
    assert first.startswith("RW:VALUE,") and first.endswith(",2.5,,")
    assert gone.startswith("RW:VALUE,2") and gone.endswith(" *** disconnected")


def test_monitor_comes_back_with_the_server(server, capsys):
    def bounce() -> None:
        server.stop_server()
        time.sleep(0.3)
        server.restart_server()

    bouncing = server.when_connected(bounce)
    status, out, _ = _run(capsys, "monitor", "--duration", "2.0", "-t", "n", "RW:COUNT")
    bouncing.join()
    assert status == 0
    first, gone, back = out.splitlines()
    assert first.split() == back.split() == ["RW:COUNT", "7"]
    assert gone.endswith(" *** disconnected")  # at the client's time, whatever -t says

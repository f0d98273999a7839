"""Ports from EPICS environment variables: one reading, one refusal, whoever reads them
(the repeater, the CA tools' search addresses)."""

from __future__ import annotations

import pytest

from shark.catools.session import ca_addresses
from shark.errors import SharkError
from shark.peers.environment import PortError, environment_port, port_number
from shark.peers.repeater import RepeaterError, port_from_environment

BAD = ["x", "0", "65536", "-1", "5064.5", "0x13c8"]


def test_a_port_is_a_number_from_1_to_65535() -> None:
    assert port_number("1", "V") == 1 and port_number(" 65535 ", "V") == 65535
    for bad in BAD:
        with pytest.raises(PortError) as error:
            port_number(bad, "V")
        assert str(error.value) == f"V: {bad!r} is not a port number (1 to 65535)"
        assert isinstance(error.value, SharkError) and isinstance(error.value, ValueError)


def test_an_unset_or_blank_variable_is_the_default() -> None:
    assert environment_port("P", 5064, {}) == 5064
    assert environment_port("P", 5064, {"P": "  "}) == 5064
    assert environment_port("P", 5064, {"P": "6000"}) == 6000


@pytest.mark.parametrize("bad", BAD)
def test_every_reader_refuses_a_bad_port_in_the_same_words(bad: str) -> None:
    words = f"{bad!r} is not a port number (1 to 65535)"
    with pytest.raises(RepeaterError) as repeater:  # (what the repeater's callers catch)
        port_from_environment({"EPICS_CA_REPEATER_PORT": bad})
    assert str(repeater.value) == f"EPICS_CA_REPEATER_PORT: {words}"
    with pytest.raises(PortError) as server:
        ca_addresses({"EPICS_CA_SERVER_PORT": bad})
    assert str(server.value) == f"EPICS_CA_SERVER_PORT: {words}"
    with pytest.raises(PortError) as entry:
        ca_addresses({"EPICS_CA_ADDR_LIST": f"10.0.0.1 10.0.0.2:{bad}"})
    assert str(entry.value) == f"EPICS_CA_ADDR_LIST entry '10.0.0.2:{bad}': {words}"


def test_good_ports_are_read_alike() -> None:
    assert port_from_environment({"EPICS_CA_REPEATER_PORT": " 6000 "}) == 6000
    assert port_from_environment({}) == 5065
    assert ca_addresses({"EPICS_CA_SERVER_PORT": " 5070 "}) == [("127.0.0.1", 5070)]
    assert ca_addresses({"EPICS_CA_ADDR_LIST": "10.0.0.1:6000"}) == [("10.0.0.1", 6000)]

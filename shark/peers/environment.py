"""Ports named by EPICS environment variables, read one way.

libca, caRepeater and the CA tools take their ports from the environment
(``EPICS_CA_SERVER_PORT``, ``EPICS_CA_REPEATER_PORT``, the ``host:port`` entries of
``EPICS_CA_ADDR_LIST``). The peers (the repeater) and the tools built on them
(``shark.catools``) read them with the one function here, so that a bad value is
refused alike, in the same words, wherever it is read. It lives with the peers, the
lowest stage that reads the environment, so that every stage above may use it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from shark.errors import SharkError

__all__ = ["PortError", "environment_port", "port_number"]


class PortError(SharkError, ValueError):
    """A port an EPICS variable gives is no port number."""


def port_number(text: str, where: str) -> int:
    """``text`` as a port (1 to 65535, blanks around it allowed); ``where`` says where
    it came from (the variable, or the entry of a list) in the :class:`PortError` raised
    otherwise. (libca warns and takes its default instead: a tool that was told a port
    and quietly used another would look for servers where none are.)"""
    try:
        number = int(text.strip())
    except ValueError:
        number = 0
    if not 0 < number < 65536:
        raise PortError(f"{where}: {text!r} is not a port number (1 to 65535)")
    return number


def environment_port(variable: str, default: int,
                     environ: Mapping[str, str] | None = None) -> int:
    """The port ``variable`` names in ``environ`` (None: this process's environment),
    ``default`` when it is unset or blank; :class:`PortError` when it is no port."""
    text = (os.environ if environ is None else environ).get(variable, "")
    return port_number(text, variable) if text.strip() else default

"""Record filters for ``shark read --filter``: which messages a person wants to see.

A filter is a list of terms separated by spaces; a record must match every term.
A term is ``key=value[,value...]`` and matches when any of its values does:

======================  ==============================================================
``pv=GLOB``             the PV name matches a shell-style pattern (``pv=SR:*:Current``)
``command=NAME``        the command name, without ``CA_PROTO_`` (``command=READ_NOTIFY``)
``host=IP[:PORT]``      source or destination
``port=PORT``           source or destination port
``circuit=N``           the TCP circuit number
``transport=tcp|udp``
``sender=client|server|repeater``
======================  ==============================================================

A term without ``=`` is part of a PV name, in any case (``temp`` finds ``SR:TEMP:1``),
or a PV pattern when it holds one of ``*?[``. Names and values are case-insensitive except
PV names, which EPICS treats as case-sensitive. A value that can never match (a
command, transport or sender that does not exist, a port beyond 65535) is an error,
not a filter that silently shows nothing.
"""

from __future__ import annotations

import difflib
import fnmatch
import ipaddress
import re
from collections.abc import Callable, Iterable

from decoder import Command, Role
from shark.errors import SharkError
from shark.extract.record import Record

__all__ = ["FilterError", "parse_filter"]

Predicate = Callable[[Record], bool]
#: What makes a bare word a pattern rather than part of a name.
_GLOB = re.compile(r"[*?\[]")


class FilterError(SharkError, ValueError):
    """A filter that cannot be understood; the message says why."""


def parse_filter(expression: str) -> Predicate:
    """A predicate for ``expression`` (see the module docstring)."""
    tests = [_term(term) for term in expression.split()]
    return lambda record: all(test(record) for test in tests)


def combine(predicates: Iterable[Predicate]) -> Predicate:
    """All of ``predicates`` (several ``--filter`` options)."""
    predicates = list(predicates)
    return lambda record: all(p(record) for p in predicates)


def _term(term: str) -> Predicate:
    key, sep, value = term.partition("=")
    if not sep:  # a bare word: part of a PV name, in any case, or a pattern
        words = [v for v in term.split(",") if v]
        if words and not any(_GLOB.search(v) for v in words):
            return _pv_part(words)
        key, value = "pv", term
    key = key.lower()
    values = [v for v in value.split(",") if v]
    if not values:
        raise FilterError(f"no value in {term!r}")
    make = _KEYS.get(key)
    if make is None:
        raise FilterError(f"unknown filter key {key!r} in {term!r}; known: {', '.join(_KEYS)}")
    return make(values)


def _pv(values: list[str]) -> Predicate:
    pattern = re.compile("|".join(fnmatch.translate(v) for v in values))
    return lambda record: record.pv is not None and pattern.match(record.pv) is not None


#: What ``command=`` can name: the CA commands, and the records that are not messages
#: as :attr:`shark.extract.record.Record.command_name` names them.
_COMMANDS = frozenset(c.name for c in Command) | {"GAP", "UNDECODED", "OPEN", "CLOSE"}


def _pv_part(words: list[str]) -> Predicate:
    """PV names holding any of ``words``, in any case: what a person typing a word
    into a filter means (``temp`` finds ``SR:TEMP:1``)."""
    lowered = [w.lower() for w in words]
    return lambda record: record.pv is not None and any(
        w in record.pv.lower() for w in lowered)


def _command(values: list[str]) -> Predicate:
    names = {v.upper().removeprefix("CA_PROTO_") for v in values}
    for name in sorted(names - _COMMANDS):  # a typo would otherwise show nothing, silently
        near = difflib.get_close_matches(name, _COMMANDS, n=3, cutoff=0.5)
        raise FilterError(f"no command is called {name!r}"
                          + (f"; did you mean {', '.join(near)}?" if near else ""))
    return lambda record: record.command_name in names


def _host(values: list[str]) -> Predicate:
    exact = {_endpoint(v) for v in values if _has_port(v)}
    hosts = {_address(v.strip("[]")) for v in values if not _has_port(v)}

    def test(record: Record) -> bool:
        for endpoint in (record.src, record.dst):
            if endpoint in exact or endpoint.rpartition(":")[0].strip("[]") in hosts:
                return True
        return False

    return test


def _address(text: str) -> str:
    """An IP address as records spell it (``inet_ntop``'s form: IPv6 compressed, in
    lower case), so that any spelling of the same address matches; other text as given."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _endpoint(text: str) -> str:
    """``ip:port`` or ``[ip]:port`` as records spell it."""
    host, _, port = text.rpartition(":")
    address = _address(host.strip("[]"))
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _has_port(value: str) -> bool:
    """``1.2.3.4:5064`` and ``[::1]:5064`` carry a port; ``::1`` and ``1.2.3.4`` do not."""
    if value.startswith("["):
        return "]:" in value
    return value.count(":") == 1


def _port(values: list[str]) -> Predicate:
    try:
        ports = {str(int(v)) for v in values}
    except ValueError:
        raise FilterError(f"not a port number in {values}") from None
    if any(not 0 <= int(p) < 65536 for p in ports):
        raise FilterError(f"not a port number in {values}")
    return lambda record: (record.src.rpartition(":")[2] in ports
                           or record.dst.rpartition(":")[2] in ports)


def _circuit(values: list[str]) -> Predicate:
    try:
        circuits = {int(v) for v in values}
    except ValueError:
        raise FilterError(f"not a circuit number in {values}") from None
    return lambda record: record.circuit in circuits


def _one_of(key: str, wanted: set[str], known: Iterable[str]) -> set[str]:
    """``wanted``, having checked that each is one of ``known``: a value that can never
    match is a mistake to report, not a filter that shows nothing."""
    known = tuple(known)
    unknown = sorted(wanted - set(known))
    if unknown:
        raise FilterError(f"{key}={unknown[0].lower()}: {key} is one of "
                          f"{', '.join(sorted(k.lower() for k in known))}")
    return wanted


def _transport(values: list[str]) -> Predicate:
    wanted = _one_of("transport", {v.lower() for v in values}, ("tcp", "udp"))
    return lambda record: record.transport in wanted


def _sender(values: list[str]) -> Predicate:
    wanted = _one_of("sender", {v.upper() for v in values}, (r.name for r in Role))
    return lambda record: record.sender is not None and record.sender.name in wanted


_KEYS: dict[str, Callable[[list[str]], Predicate]] = {
    "pv": _pv,
    "command": _command,
    "host": _host,
    "port": _port,
    "circuit": _circuit,
    "transport": _transport,
    "sender": _sender,
}

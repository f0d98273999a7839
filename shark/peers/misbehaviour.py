"""A peer's misbehaviour, told once per peer and kind, with a count.

A hostile or broken peer repeats itself: a server that resets every connection
is reconnected to again and again, one that names a bad native type does so for
every channel, a client that leaves with thousands of subscriptions leaves as
many updates unsent. Logging each occurrence floods stderr and hides the cause,
so the client and server note each one here instead: the first occurrence of a
kind from a peer is logged, later ones only counted, and the count is told at
shutdown (told as each circuit goes, it would again be a line per connection).
:meth:`Misbehaviours.causes` gives one line per peer and kind, for a command to end
with.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

__all__ = ["Kind", "Misbehaviours"]


class Kind(enum.Enum):
    """What a peer did, with the unit its count is told in and the level it is logged at
    (the first word of each value keeps two kinds of the same unit and level apart)."""

    BAD_NATIVE_TYPE = ("bad native type", "channels", logging.INFO)
    PROTOCOL = ("protocol", "circuits", logging.INFO)
    #: A request wrong by itself, refused with an ERROR on a circuit that goes on.
    REFUSED = ("refused", "requests", logging.INFO)
    UNREACHABLE = ("unreachable", "attempts", logging.INFO)
    CONNECTION_LOST = ("connection lost", "connections", logging.INFO)
    SILENT = ("silent", "circuits", logging.INFO)
    FAILED_UPDATE = ("failed update", "updates", logging.WARNING)
    ERROR_MESSAGE = ("error message", "messages", logging.WARNING)
    WENT_AWAY = ("went away", "messages unsent", logging.DEBUG)
    INTERNAL = ("internal", "times", logging.ERROR)

    def __init__(self, _: str, unit: str, level: int) -> None:
        self.unit = unit
        self.level = level


@dataclass
class _Tally:
    """One peer's one kind: the first occurrence's words and how many there were."""

    detail: str
    count: int = 1
    told: int = 1  # how many of them the log has heard of


class Misbehaviours:
    """Occurrences by peer and kind; logs to ``log`` the first of each, counts the rest."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._tallies: dict[tuple[str, Kind], _Tally] = {}

    def note(self, peer: str, kind: Kind, detail: str) -> bool:
        """Count one occurrence; log it if it is the first of its kind from ``peer``.
        True if it was the first."""
        tally = self._tallies.get((peer, kind))
        if tally is not None:
            tally.count += 1
            return False
        self._tallies[peer, kind] = _Tally(detail)
        self.log.log(kind.level, "%s: %s", peer, detail)
        return True

    def count(self, peer: str, kind: Kind) -> int:
        tally = self._tallies.get((peer, kind))
        return tally.count if tally is not None else 0

    def close(self) -> None:
        """At shutdown: log the counts not yet told, keeping the tallies for :meth:`causes`."""
        for key, tally in self._tallies.items():
            self._summarise(key, tally)

    def causes(self) -> list[str]:
        """One line per peer and kind: the first occurrence and, beyond one, the count."""
        return [_line(peer, kind, tally) for (peer, kind), tally in self._tallies.items()]

    def _summarise(self, key: tuple[str, Kind], tally: _Tally) -> None:
        if tally.count > tally.told:
            peer, kind = key
            self.log.log(kind.level, "%s", _line(peer, kind, tally))
            tally.told = tally.count


def _line(peer: str, kind: Kind, tally: _Tally) -> str:
    line = f"{peer}: {tally.detail}"
    return f"{line} ({tally.count} {kind.unit})" if tally.count > 1 else line

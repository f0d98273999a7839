"""Replay a capture as a server or as a client.

A capture is a recording of a conversation; replaying either side turns it into a
test fixture. :func:`load` reads a capture into a :class:`Recording` (per server
its PVs and their timelines, per client its operations and their answers);
:class:`ReplayServer` (made per captured server by :func:`serve`) is a stand-in IOC
acting out a server's side, and :func:`replay_clients` re-issues the clients'
requests to a live server and says, per operation, what differs from the captured
answer (:class:`Outcome`, :class:`Difference`), and whether for real or only in
timing (:class:`Verdict`; numbers within a :class:`Tolerance`). ``shark replay`` is
the command.
"""

from shark.replay.compare import Difference, Tolerance, Verdict
from shark.replay.recording import (
    Answer,
    Operation,
    RecordedClient,
    RecordedPV,
    RecordedServer,
    Recording,
    load,
)
from shark.replay.reissue import Outcome, replay_clients
from shark.replay.serve import ReplayServer, serve

__all__ = [
    "Answer", "Difference", "Operation", "Outcome", "RecordedClient", "RecordedPV",
    "RecordedServer", "Recording", "ReplayServer", "Tolerance", "Verdict", "load",
    "replay_clients", "serve",
]

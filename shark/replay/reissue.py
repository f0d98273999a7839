"""Replaying the client side: the captured clients' requests, sent again to a live server.

Each captured client circuit gets a :class:`shark.peers.client.Client` of its own, which
searches for its channels at the addresses given and so maps the captured ids (CID,
SID, IOID, subscription id) onto fresh ones. Its operations are issued in the
captured order at the captured pace (``speed`` times faster; 0: each as soon as the
previous one is answered, and a client the capture shows beginning after another
ended waits for it), each answer timed, and a subscription's updates collected
until its captured cancel (or the end of its circuit). A subscription is not cancelled
before it has as many updates as captured, or has lasted as long as it did in the
capture (``speed`` times faster; at 0, as long): at ``--speed 0`` a subscription
cancelled as soon as its first update came would say nothing of the others. Then every
answer is compared with the captured one (:mod:`shark.replay.compare`), the values of
a PV the capture shows changing on its own as differences of timing.

The engine sends what libca would for the same intent, which is not always the
captured bytes: a captured READ is re-issued as READ_NOTIFY, and a circuit's
version, host and user names are the replaying client's own.

What the server does wrong (a native type that is no DBR type, connections reset,
breaches of the protocol) is noted once per server and kind in ``misbehaviour``,
shared by the replaying clients, for the caller to report once per cause.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from decoder import ECA, EventMask
from shark.peers.client import CAError, Client, ClientSubscription, ServerError
from shark.peers.misbehaviour import Misbehaviours
from shark.replay.compare import EXACT, Difference, Tolerance, Verdict, differences, verdict
from shark.replay.recording import (
    CANCEL,
    CLEAR,
    CREATE,
    READ_OP,
    SUBSCRIBE,
    WRITE_NOTIFY,
    WRITE_OP,
    Answer,
    Operation,
    RecordedClient,
    Recording,
)

__all__ = ["Outcome", "replay_clients"]

_DEFAULT_MASK = EventMask.VALUE | EventMask.ALARM


@dataclass
class Outcome:
    """One operation replayed: the answer (None if none came: ``error`` says why), the
    updates of a subscription, and what differs from the capture."""

    client: RecordedClient
    operation: Operation
    answer: Answer | None = None
    updates: list[Answer] = field(default_factory=list)
    error: str = ""
    differences: list[Difference] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        """DIFFERENT for a field that differs for real, or an answer missing that the
        capture has; TIMING when only what depends on timing differs."""
        if self.error and self.operation.answer is not None:
            return Verdict.DIFFERENT
        return verdict(self.differences)

    @property
    def differs(self) -> bool:
        """Something differs for real (not only in timing)."""
        return self.verdict is Verdict.DIFFERENT


async def replay_clients(recording: Recording, addresses: Sequence[tuple[str, int]], *,
                         speed: float = 1.0, timeout: float = 2.0,
                         latency_slack: float = 0.1, tolerance: Tolerance = EXACT,
                         strict: bool = False,
                         misbehaviour: Misbehaviours | None = None) -> list[Outcome]:
    """Replay every captured client against the server searched for at ``addresses``
    (concurrently, as captured); the outcomes client by client, in captured order.
    Numbers within ``tolerance`` are the same; with ``strict``, differences of timing
    count as real ones. The server's misbehaviour is noted in ``misbehaviour`` (if
    given)."""
    clients = [client for client in recording.clients if client.operations]
    if not clients:
        return []
    origin = min(client.operations[0].time for client in clients)
    clock = _Clock(origin, speed)
    ended = {id(client): asyncio.Event() for client in clients}

    async def replay(client: RecordedClient) -> list[Outcome]:
        # At speed 0, a client the capture shows beginning after others ended waits for
        # them: a write of one must come before the read of the next, as captured.
        if speed == 0:
            for before in clients:
                if before.end < client.operations[0].time:
                    await ended[id(before)].wait()
        try:
            return await _Replay(client, clock, addresses, timeout, misbehaviour).run()
        finally:
            ended[id(client)].set()

    done = await asyncio.gather(*(replay(client) for client in clients))
    outcomes = [outcome for replayed in done for outcome in replayed]
    changing = {(server.address, pv.name) for server in recording.servers.values()
                for pv in server.pvs.values() if pv.servable and pv.changes_on_its_own()}
    for outcome in outcomes:
        outcome.differences = differences(
            outcome.operation, outcome.answer, outcome.updates, latency_slack,
            changing=(outcome.client.server, outcome.operation.pv) in changing,
            tolerance=tolerance, strict=strict)
    return outcomes


class _Clock:
    """The replay clock: capture time ``origin`` is now, and it runs ``speed`` times
    as fast as the capture's (0: no waiting at all)."""

    def __init__(self, origin: float, speed: float) -> None:
        self.origin = origin
        self.speed = speed
        self.loop = asyncio.get_running_loop()
        self.start = self.loop.time()

    async def until(self, capture_time: float) -> None:
        if self.speed > 0:
            due = self.start + (capture_time - self.origin) / self.speed
            await asyncio.sleep(max(0.0, due - self.loop.time()))

    def now(self) -> float:
        """Seconds since the replay began."""
        return self.loop.time() - self.start


class _Replay:
    """One captured client, replayed.

    Channels connect in the background, as libca's do: a create is answered when
    its channel connects, and the requests on a channel wait for that; those on a
    channel that did not connect are not sent.
    """

    def __init__(self, recorded: RecordedClient, clock: _Clock,
                 addresses: Sequence[tuple[str, int]], timeout: float,
                 misbehaviour: Misbehaviours | None = None) -> None:
        self.recorded = recorded
        self.misbehaviour = misbehaviour
        self.clock = clock
        self.addresses = addresses
        self.timeout = timeout
        #: The channels' connections (their create's outcome), by name.
        self.creates: dict[str, tuple[asyncio.Task, Outcome]] = {}
        #: The replayed subscriptions, by their subscribe operation.
        self.subscriptions: dict[int, ClientSubscription] = {}
        #: When the capture shows each request's next one sent (by id).
        self.following = {id(op): after.time for op, after in pairwise(recorded.operations)}
        #: Their outcomes, when they were sent, and an event set once they have as
        #: many updates as captured.
        self.collected: dict[int, tuple[Outcome, float, asyncio.Event]] = {}
        self.issuers: dict[str, Callable[[Client, Operation, Outcome, float], Any]] = {
            CREATE: self._create, READ_OP: self._read, WRITE_OP: self._write,
            WRITE_NOTIFY: self._write, SUBSCRIBE: self._subscribe, CANCEL: self._cancel,
            CLEAR: self._clear,
        }

    async def run(self) -> list[Outcome]:
        outcomes = []
        async with Client(self.addresses, timeout=self.timeout,
                          misbehaviour=self.misbehaviour) as client:
            for op in self.recorded.operations:
                await self.clock.until(op.time)
                outcome = Outcome(self.recorded, op)
                outcomes.append(outcome)
                if op.kind == CREATE:
                    task = asyncio.create_task(self._issue(client, op, outcome))
                    self.creates[op.pv] = task, outcome
                elif await self._connected(op.pv, outcome):
                    await self._issue(client, op, outcome)
            await asyncio.gather(*(task for task, _ in self.creates.values()))
            await self.clock.until(self.recorded.end)  # updates until the circuit ended
            for key in list(self.collected):
                await self._settle(key, self.recorded.end)
        return outcomes

    async def _settle(self, key: int, until: float) -> None:
        """Wait until the subscription ``key`` has as many updates as captured, or has
        lasted as long as captured (to the capture time ``until``)."""
        outcome, sent, enough = self.collected.pop(key)
        span = max(0.0, until - outcome.operation.time)
        left = sent + span / (self.clock.speed or 1.0) - self.clock.now()
        if left > 0 and not enough.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(enough.wait(), left)
        if outcome.operation.updates and not outcome.updates and not outcome.error:
            outcome.error = "no update came"

    async def _connected(self, name: str, outcome: Outcome) -> bool:
        """Wait for the channel's create, if one was replayed; False if it failed."""
        if name not in self.creates:  # created before the capture began: connect now
            return True
        task, created = self.creates[name]
        await task
        if created.answer is None or created.answer.status != ECA.ECA_NORMAL:
            outcome.error = f"not sent: {name} did not connect"
            return False
        return True

    async def _issue(self, client: Client, op: Operation, outcome: Outcome) -> None:
        sent = self.clock.now()
        try:
            await self.issuers[op.kind](client, op, outcome, sent)
        except CAError as error:
            self._answer(outcome, sent, status=error.status)
        except asyncio.TimeoutError:
            outcome.error = f"no answer in {self.timeout} s"
        except ValueError as error:  # a write in a type no write may have
            outcome.error = f"not sent: {error}"
        except ServerError as error:  # no answer: the server broke the protocol
            outcome.error = str(error)

    def _answer(self, outcome: Outcome, sent: float, **fields: Any) -> None:
        now = self.clock.now()
        outcome.answer = Answer(now, now - sent, **fields)

    async def _create(self, client: Client, op: Operation, outcome: Outcome,
                      sent: float) -> None:
        channel = await client.connect(op.pv)
        self._answer(outcome, sent, native_type=channel.native_type,
                     native_count=channel.native_count, access=channel.access_rights)

    async def _read(self, client: Client, op: Operation, outcome: Outcome, sent: float) -> None:
        data = await client.read(op.pv, op.data_type, op.count)
        self._answer(outcome, sent, data=data)

    async def _write(self, client: Client, op: Operation, outcome: Outcome, sent: float
                     ) -> None:
        assert op.data is not None
        notify = op.kind == WRITE_NOTIFY
        await client.write(op.pv, op.data.values, notify=notify, data_type=op.data_type)
        if notify:
            self._answer(outcome, sent)

    async def _subscribe(self, client: Client, op: Operation, outcome: Outcome,
                         sent: float) -> None:
        """Subscribe, and wait for the first update: it answers the request. Not when
        the capture shows the client's next request before it (an IOC that sends no
        first update of an empty array: the next request, a write, brings one)."""
        first, enough = asyncio.Event(), asyncio.Event()
        self.collected[id(op)] = outcome, sent, enough

        def collect(value: Any) -> None:
            now = self.clock.now()
            update = Answer(now, None if outcome.updates else now - sent, data=value)
            outcome.updates.append(update)
            if outcome.answer is None:
                outcome.answer = update
            first.set()
            if len(outcome.updates) >= len(op.updates):
                enough.set()

        self.subscriptions[id(op)] = client.subscribe(
            op.pv, op.data_type, count=op.count, callback=collect,
            mask=_DEFAULT_MASK if op.mask is None else op.mask)
        following = self.following.get(id(op))
        if op.answer is not None and following is not None and following < op.answer.time:
            return
        await asyncio.wait_for(first.wait(), self.timeout)

    async def _cancel(self, client: Client, op: Operation, outcome: Outcome,
                      sent: float) -> None:
        sub = self.subscriptions.pop(id(op.subscription), None)
        if sub is None:  # a capture may show a client cancelling twice
            outcome.error = "already cancelled"
            return
        if id(op.subscription) in self.collected:
            await self._settle(id(op.subscription), op.time)
            sent = self.clock.now()  # the cancel is sent now
        await sub.cancel(self.timeout)
        self._answer(outcome, sent)

    async def _clear(self, client: Client, op: Operation, outcome: Outcome,
                     sent: float) -> None:
        for key, (subscribed, _, _) in list(self.collected.items()):
            if subscribed.operation.pv == op.pv:
                await self._settle(key, op.time)
                sent = self.clock.now()
        await client.clear(op.pv)
        self._answer(outcome, sent)
        self.creates.pop(op.pv, None)

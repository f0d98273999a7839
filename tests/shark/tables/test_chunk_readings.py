"""What the channels of a run's subscriptions read (shark.tables.chunk._run_readings),
and their names (Vocabularies.run_pvs): worked out again as the channels learn and the
run meets more subscriptions, and for runs like one before them, the same as from
scratch."""

from __future__ import annotations

import struct

from decoder import DBRType
from decoder.circuit import Channel, Subscription, learned
from shark.tables.chunk import Vocabularies, _run_readings


class FakeRun:
    """What _run_readings reads of a run: its subscriptions."""

    def __init__(self) -> None:
        self.subscriptions: list[Subscription | None] = []


def teach(channel: Channel, precision: int) -> None:
    channel.learn(DBRType.CTRL_DOUBLE, struct.pack(">hhh", 0, 0, precision) + bytes(40))


def from_scratch(run: FakeRun) -> list[tuple[object, int]]:
    """Per subscription, its channel's present reading and when it began."""
    out = []
    for subscription in run.subscriptions:
        channel = None if subscription is None else subscription.channel
        if channel is None or not channel.readings:
            out.append((None, -1))
        else:
            began, reading = channel.readings[-1]
            out.append((reading, began))
    return out


#: Runs alike, as one builder's vocabularies keep them (shared by the tests: a run met
#: first must read what its channels read now, whatever the cache holds).
ALIKE: dict = Vocabularies().alike_readings


def worked_out(run: FakeRun) -> list[tuple[object, int]]:
    present, began, distinct = _run_readings(run, ALIKE)
    assert len(present) == len(began) == len(run.subscriptions) + 1
    assert present[-1] == -1  # (for a message of no subscription)
    return [(None, -1) if p < 0 else (distinct[p], int(b))
            for p, b in zip(present[:-1].tolist(), began[:-1].tolist(), strict=True)]


def test_readings_follow_what_channels_learn() -> None:
    channels = [Channel(f"PV{k}", cid=k) for k in range(6)]
    run = FakeRun()
    run.subscriptions += [Subscription(k, channels[k], 6, 1, None) for k in range(3)]
    assert worked_out(run) == from_scratch(run)  # nothing learnt
    teach(channels[0], 3)
    teach(channels[2], 3)
    clock = learned()
    assert worked_out(run) == from_scratch(run)
    assert worked_out(run) == from_scratch(run)  # (kept: nothing learnt since)
    assert learned() == clock
    # More subscriptions, one of a channel not known, one missing; channels learn again.
    run.subscriptions += [Subscription(3, None, 6, 1, None), None,
                          Subscription(5, channels[5], 6, 1, None),
                          Subscription(6, channels[0], 6, 1, None)]
    teach(channels[0], 5)
    teach(channels[5], 3)
    assert worked_out(run) == from_scratch(run)
    teach(channels[2], 1)
    teach(channels[2], 2)
    assert worked_out(run) == from_scratch(run)
    teach(channels[1], 3)  # (as channels[5] reads)
    assert worked_out(run) == from_scratch(run)
    present, _, _ = _run_readings(run, ALIKE)
    assert present[1] == present[5] != present[0]  # channels that read alike share one


def test_a_run_like_one_before_it_reads_what_channels_read_now() -> None:
    """Runs that meet the same subscriptions start from what the first worked out, and
    still read what the channels read now (they learn between the runs)."""
    channels = [Channel(f"PV{k}", cid=k) for k in range(4)]
    subscriptions = [Subscription(k, channels[k], 6, 1, None) for k in range(4)]
    teach(channels[1], 2)
    first = FakeRun()
    first.subscriptions += subscriptions
    assert worked_out(first) == from_scratch(first)
    teach(channels[1], 4)
    teach(channels[3], 6)
    second = FakeRun()
    second.subscriptions += subscriptions
    assert worked_out(second) == from_scratch(second)
    second.subscriptions.append(Subscription(9, channels[0], 6, 1, None))
    teach(channels[0], 1)
    assert worked_out(second) == from_scratch(second)
    third = FakeRun()
    third.subscriptions += subscriptions  # (as the first: not as the second grew)
    assert worked_out(third) == from_scratch(third)
    assert worked_out(first) == from_scratch(first)


def test_pv_codes_of_a_run_like_one_before_it() -> None:
    """Vocabularies.run_pvs: a run with the subscriptions of one before it, and one that
    meets more later, name each by its channel (None: no channel, or none known)."""
    vocabularies = Vocabularies()
    channels = [Channel(f"PV{k}", cid=k) for k in range(3)]
    subscriptions = [Subscription(k, channels[k], 6, 1, None) for k in range(3)]

    def names(run: FakeRun) -> list[str | None]:
        codes = vocabularies.run_pvs(run)
        assert codes[-1] == -1 and len(codes) == len(run.subscriptions) + 1
        return [None if c < 0 else vocabularies.pvs.values[c] for c in codes[:-1].tolist()]

    first, second = FakeRun(), FakeRun()
    first.subscriptions += subscriptions
    second.subscriptions += subscriptions
    assert names(first) == names(second) == ["PV0", "PV1", "PV2"]
    second.subscriptions += [Subscription(7, None, 6, 1, None), None,
                             Subscription(8, Channel("PV9", cid=9), 6, 1, None)]
    assert names(second) == ["PV0", "PV1", "PV2", None, None, "PV9"]
    third = FakeRun()
    third.subscriptions += subscriptions
    assert names(third) == ["PV0", "PV1", "PV2"]


def test_runs_alike_only_in_their_ends_are_told_apart() -> None:
    """A run whose subscriptions are as many as another's, with the same first and last
    but others between, reads (and names) its own: the cache's key is not enough."""
    vocabularies = Vocabularies()
    channels = [Channel(f"PV{k}", cid=k) for k in range(4)]
    teach(channels[1], 2)
    ends = [Subscription(k, channels[k], 6, 1, None) for k in (0, 3)]
    first, second = FakeRun(), FakeRun()
    first.subscriptions += [ends[0], Subscription(1, channels[1], 6, 1, None), ends[1]]
    second.subscriptions += [ends[0], Subscription(2, channels[2], 6, 1, None), ends[1]]
    alike: dict = Vocabularies().alike_readings
    for run in (first, second):
        present, began, distinct = _run_readings(run, alike)
        assert [(None, -1) if p < 0 else (distinct[p], int(b)) for p, b in zip(
            present[:-1].tolist(), began[:-1].tolist(), strict=True)] == from_scratch(run)
        codes = vocabularies.run_pvs(run)
        assert [vocabularies.pvs.values[c] for c in codes[:-1].tolist()] == [
            s.channel.name for s in run.subscriptions]

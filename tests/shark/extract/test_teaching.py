"""What channels learn from updates taken in bulk
(:meth:`shark.extract.bulk.Segment.count_updates`): the same as each subscription's last
GR/CTRL update would teach them one by one, however the segment reads the precisions (all
at once) and skips what changes nothing."""

from __future__ import annotations

import numpy as np

from decoder import DBRType, DBRValue
from decoder import messages as m
from decoder.circuit import Channel, Subscription
from shark.extract.bulk import Run, Segment, frame_headers

ECA_NORMAL = 1


def update(kind: DBRType, subscription: int, **metadata: object) -> bytes:
    return m.EventAddResponse(data_type=kind, data_count=1, status=ECA_NORMAL,
                              subscriptionid=subscription,
                              data=DBRValue(kind, [1.5], **metadata)).to_bytes()


def channels() -> tuple[list[Channel], list[Subscription]]:
    """Two channels, one of them known to read with PREC 2 already; four subscriptions."""
    first, second = Channel("A", 1, 1), Channel("B", 2, 2)
    first.learn(DBRType.CTRL_DOUBLE, update(DBRType.CTRL_DOUBLE, 1, precision=2)[16:])
    subscriptions = [Subscription(k + 1, channel, DBRType.CTRL_DOUBLE, 1, 1)
                     for k, channel in enumerate([first, first, second, second])]
    return [first, second], subscriptions


def learnt(channel: Channel) -> list:
    """What a channel knows, with its readings' order (the counts are the process's)."""
    return [channel.precision, channel.enum_strings, [r for _, r in channel.readings]]


def test_channels_learn_as_from_each_update_in_turn() -> None:
    # Subscription 1 and 2 share channel A: the first teaches PREC 2 (what A has), then
    # 5, the second 2 after it (what A had before, not what it has by then); B learns
    # PREC 4, then its state strings from an enum.
    messages = [update(DBRType.CTRL_DOUBLE, 1, precision=2),
                update(DBRType.CTRL_DOUBLE, 3, precision=4),
                update(DBRType.GR_DOUBLE, 1, precision=5),
                update(DBRType.CTRL_DOUBLE, 2, precision=2),
                update(DBRType.CTRL_ENUM, 4, enum_strings=["Off", "On"]),
                update(DBRType.CTRL_DOUBLE, 3, precision=4)]
    buffer = b"".join(messages)
    starts, _end, headers = frame_headers(buffer, 1 << 20)
    run = Run(buffer, starts, np.array([0, len(starts)]), [1], [0.0], headers)
    # Each subscription's last (message indexes 2, 3, 5, 4), in subscription order.
    taught = [0, 1, 2, 3]
    last = np.array([2, 3, 5, 4])

    expected_channels, expected_subscriptions = channels()
    for k, index in zip(taught, last.tolist(), strict=True):
        body, size = int(run.bodies[index]), int(run.sizes[index])
        expected_subscriptions[k].channel.learn(int(run.data_type[index]),
                                                buffer[body : body + size])

    got_channels, got_subscriptions = channels()
    segment = Segment(run, 0, 1)
    segment.updates = (got_subscriptions, np.array([2, 1, 2, 1]))
    segment.teaching = (taught, last)
    segment.count_updates()

    assert [learnt(c) for c in got_channels] == [learnt(c) for c in expected_channels]
    assert got_channels[0].precision == 2 and len(got_channels[0].readings) == 3
    assert got_channels[1].precision == 4
    assert got_channels[1].enum_strings == ("Off", "On")
    assert [s.updates for s in got_subscriptions] == [2, 1, 2, 1]

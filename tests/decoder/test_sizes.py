"""The payload size a header implies (decoder.sizes), and the framer that checks it."""

from __future__ import annotations

import pytest

from decoder import DBRType, DecodeError, Role, StreamFramer
from decoder import messages as m
from decoder.sizes import PAYLOAD, Payload, payload_bounds


def test_every_message_form_has_a_payload_rule():
    assert set(PAYLOAD) == set(m.ALL_MESSAGE_CLASSES)


@pytest.mark.parametrize(("cls", "data_type", "count", "bounds"), [
    (m.VersionRequest, 0, 13, (0, 0)),
    (m.CreateChanResponse, DBRType.DOUBLE, 1, (0, 0)),
    (m.WriteNotifyResponse, DBRType.DOUBLE, 1, (0, 0)),
    (m.EventAddRequest, DBRType.DOUBLE, 1, (16, 16)),
    (m.EventAddResponse, DBRType.DOUBLE, 1, (8, 8)),
    (m.EventAddResponse, DBRType.TIME_DOUBLE, 1, (24, 24)),
    (m.EventAddResponse, DBRType.TIME_DOUBLE, 0, (16, 16)),  # an empty array: metadata
    (m.ReadNotifyResponse, DBRType.DOUBLE, 0, (0, 0)),
    (m.ReadNotifyResponse, DBRType.SHORT, 3, (8, 8)),
    (m.WriteNotifyRequest, DBRType.STRING, 1, (1, 40)),  # libca sends only the string
    (m.ReadNotifyResponse, 39, 1, (1, 0)),  # no such type: no size fits
    (m.Beacon, 0, 0, (1, 0)),  # never on a circuit
])
def test_bounds(cls, data_type, count, bounds):
    assert payload_bounds(cls, data_type, count) == bounds


def test_text_forms_are_bounded():
    least, most = payload_bounds(m.CreateChanRequest, 0, 0)
    assert least == 0 and 1000 < most < 0xFFF8
    assert PAYLOAD[m.ErrorResponse] is Payload.TEXT


def _update(size: int, data_type: int = DBRType.LONG, count: int = 1) -> bytes:
    return m.HEADER.pack(1, size, data_type, count, 1, 7)


def test_the_checking_framer_refuses_a_lying_size_as_soon_as_the_header_is_whole():
    good = m.EventAddResponse(data_type=DBRType.LONG, data_count=1, status=1,
                              subscriptionid=7, data=[5]).to_bytes()
    liar = _update(0xFFF8)
    framer = StreamFramer(Role.SERVER, check_sizes=True)
    with pytest.raises(DecodeError) as caught:
        framer.feed(good + liar)  # the lie's payload has not come: refused all the same
    assert [msg.to_bytes() for msg in caught.value.messages] == [good]
    assert "65528" in str(caught.value) and "DBR_LONG x 1 takes 8" in str(caught.value)
    assert framer.clear() == liar
    # Not checking (a peer answers such a request itself), it waits for the payload.
    assert StreamFramer(Role.SERVER).feed(good + liar)[0].to_bytes() == good


@pytest.mark.parametrize("wire", [
    m.HEADER.pack(0, 8, 0, 13, 0, 0) + bytes(8),  # VERSION with a payload
    m.HEADER.pack(18, 8, 6, 1, 1, 2) + bytes(8),  # CREATE_CHAN reply with a payload
    m.HEADER.pack(15, 16, 6, 1, 1, 2) + bytes(16),  # one double in 16 bytes
    m.HEADER.pack(5, 0, 0, 0, 0, 0),  # SNAPSHOT: not on a circuit
])
def test_the_checking_framer_refuses_sizes_the_fields_contradict(wire):
    with pytest.raises(DecodeError):
        StreamFramer(Role.SERVER, check_sizes=True).feed(wire)


def test_an_unknown_sender_is_held_to_either_form():
    framer = StreamFramer(None, check_sizes=True)
    read = m.HEADER.pack(15, 0, 6, 1, 1, 2)  # a READ_NOTIFY request
    reply = m.HEADER.pack(15, 8, 6, 1, 1, 2) + bytes(8)  # its reply
    assert len(framer.feed(read + reply)) == 2
    with pytest.raises(DecodeError):
        framer.feed(m.HEADER.pack(15, 16, 6, 1, 1, 2) + bytes(16))

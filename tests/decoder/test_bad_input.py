"""Bad bytes: random, truncated, lying. The decoder answers with DecodeError or
waits for more data; nothing else escapes, and no claim is ever allocated."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import build_message, message_args, raw_messages

from decoder import DecodeError, Role, StreamFramer, dbr, split_datagram
from decoder import messages as m
from decoder.dbr import DBRType

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SENDERS = st.sampled_from([Role.CLIENT, Role.SERVER, Role.REPEATER, None])
FOUR_GB = 0xFFFFFFFF


def _properties(cls: type) -> list[str]:
    names = []
    for klass in cls.__mro__:
        names += [name for name, value in vars(klass).items() if isinstance(value, property)]
    return sorted(set(names))


def touch_everything(msg: m.Message, depth: int = 0) -> None:
    """Read every field and property of ``msg`` (its DBR data and the request an
    ERROR quotes too); only DecodeError may come out of any of them."""
    actions: list[Any] = [
        lambda: msg.to_bytes(), lambda: repr(msg), lambda: msg.fields(), lambda: msg == msg,
    ]
    actions += [lambda name=name: getattr(msg, name) for name in _properties(type(msg))]
    actions += [lambda name=name: getattr(msg, name) for name in msg.FIELDS]
    actions += [lambda name=name: getattr(msg, name) for name in msg.PAYLOAD_FIELDS]
    for action in actions:
        try:
            action()
        except DecodeError:
            pass
    try:
        data = msg.data
    except (AttributeError, DecodeError):
        data = None
    if data is not None:
        for name in _properties(type(data)):
            getattr(data, name)
        for name in dbr.METADATA_FIELDS:
            getattr(data, name)
        repr(data)
        data.metadata()
        assert data == data
        dbr.encode(data.dbr_type, data)
    if isinstance(msg, m.ErrorResponse) and depth == 0:
        try:
            original = msg.original_request
        except DecodeError:
            return
        touch_everything(original, depth + 1)


def frame_checked(data: bytes, sender: Role | None, pieces: list[int]) -> list[m.Message]:
    """Feed ``data`` cut at ``pieces``; the framer either frames, waits, or raises
    DecodeError, and its bookkeeping always adds up to what was fed."""
    framer = StreamFramer(sender)
    out: list[m.Message] = []
    bounds = sorted({0, len(data), *(p for p in pieces if p < len(data))})
    fed = 0
    for a, b in zip(bounds, bounds[1:], strict=False):
        fed += b - a
        try:
            out += framer.feed(data[a:b])
        except DecodeError as error:
            out += error.messages
            assert error.offset == framer.bytes_consumed
            assert framer.bytes_consumed + framer.pending == fed
            return out
        assert framer.bytes_consumed == sum(msg.size for msg in out)
        assert framer.bytes_consumed + framer.pending == fed
    return out


def split_checked(data: bytes, sender: Role | None) -> list[m.Message]:
    try:
        out = split_datagram(data, sender)
    except DecodeError as error:
        assert error.offset == sum(msg.size for msg in error.messages)
        assert error.offset < len(data)
        return error.messages
    assert sum(msg.size for msg in out) == len(data)
    return out


# --- random bytes ----------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=300), sender=SENDERS, pieces=st.lists(st.integers(0, 300)))
def test_random_bytes(data: bytes, sender: Role | None, pieces: list[int]) -> None:
    for msg in frame_checked(data, sender, pieces) + split_checked(data, sender):
        touch_everything(msg)


@FUZZ
@given(chunks=st.lists(raw_messages(), min_size=1, max_size=6), sender=SENDERS,
       pieces=st.lists(st.integers(0, 600)))
def test_random_messages(chunks: list[bytes], sender: Role | None, pieces: list[int]) -> None:
    """Headers around the known commands and DBR types, payloads of random bytes,
    sizes and counts true or lying."""
    data = b"".join(chunks)
    for msg in frame_checked(data, sender, pieces) + split_checked(data, sender):
        touch_everything(msg)


@settings(max_examples=300, deadline=None)
@given(data_type=st.one_of(st.integers(0, 40), st.integers(-5, 0xFFFF)),
       count=st.one_of(st.integers(0, 20), st.integers(0, FOUR_GB)),
       payload=st.binary(max_size=500))
def test_dbr_decode_of_random_bytes(data_type: int, count: int, payload: bytes) -> None:
    try:
        value = dbr.decode(data_type, count, payload)
    except DecodeError:
        return
    assert value.count == count
    repr(value), value.metadata(), value.timestamp, value.value  # noqa: B018


# --- truncated messages -------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), cls=st.sampled_from(m.ALL_MESSAGE_CLASSES))
def test_truncated_messages_wait_or_fail(data: st.DataObject, cls: type[m.Message]) -> None:
    """Any proper prefix of a message: the framer waits with all of it pending, a
    datagram fails at offset 0 with no message."""
    msg = build_message(cls, data.draw(message_args(cls)))
    wire = msg.to_bytes()
    cut = data.draw(st.integers(0, len(wire) - 1))
    sender = cls.sender
    framer = StreamFramer(sender)
    assert framer.feed(wire[:cut]) == []
    assert (framer.pending, framer.bytes_consumed) == (cut, 0)
    if cut:
        with pytest.raises(DecodeError) as info:
            split_datagram(wire[:cut], sender)
        assert info.value.messages == [] and info.value.offset == 0
    assert len(framer.feed(wire[cut:])) == 1


def test_every_prefix_of_an_extended_message_waits() -> None:
    wire = m.ReadNotifyResponse(data_type=DBRType.TIME_DOUBLE, status=1, ioid=3,
                                data=[1.0] * 9, extended=True).to_bytes()
    for cut in range(len(wire)):
        framer = StreamFramer(Role.SERVER)
        assert framer.feed(wire[:cut]) == [] and framer.pending == cut
        if cut:
            with pytest.raises(DecodeError):
                split_datagram(wire[:cut], Role.SERVER)


# --- lying headers ------------------------------------------------------------------------------


def _extended(size: int, count: int, command: int = 15, data_type: int = 6) -> bytes:
    return m.HEADER.pack(command, 0xFFFF, data_type, 0, 1, 2) + m.EXTENSION.pack(size, count)


def test_standard_header_claiming_more_than_it_brings() -> None:
    head = m.HEADER.pack(15, 0xFFF8, 6, 1, 1, 2)
    framer = StreamFramer(Role.SERVER)
    assert framer.feed(head + bytes(100)) == [] and framer.pending == 116
    with pytest.raises(DecodeError):
        split_datagram(head + bytes(100), Role.SERVER)


@pytest.mark.parametrize("sender", [Role.CLIENT, Role.SERVER, None])
def test_four_gigabyte_claim_is_refused_by_default(sender: Role | None) -> None:
    """Above max_payload (64 MiB by default) the framer refuses the claim as soon
    as the header is complete, and keeps refusing; pending counts what came."""
    framer = StreamFramer(sender)
    claim = _extended(FOUR_GB, 1)
    assert framer.feed(claim[:20]) == [] and framer.pending == 20
    fed = 20
    for chunk in (claim[20:], bytes(5), bytes(1000)):
        with pytest.raises(DecodeError) as info:
            framer.feed(chunk)
        fed += len(chunk)
        assert info.value.offset == 0 and info.value.messages == []
        assert framer.pending == fed and framer.bytes_consumed == 0
    with pytest.raises(DecodeError):
        split_datagram(claim + bytes(64), sender)


def test_claim_just_above_max_payload_is_refused() -> None:
    framer = StreamFramer(Role.SERVER, max_payload=1000)
    assert framer.feed(_extended(1000, 125) + bytes(8)) == []
    with pytest.raises(DecodeError):
        StreamFramer(Role.SERVER, max_payload=1000).feed(_extended(1008, 126))
    with pytest.raises(DecodeError):
        split_datagram(_extended(1008, 126) + bytes(1008), Role.SERVER, max_payload=1000)


@settings(max_examples=30, deadline=None)
@given(chunks=st.lists(st.binary(min_size=0, max_size=5000), max_size=20),
       size=st.sampled_from([0xFFFF, 0x1000000, FOUR_GB]))
def test_accepted_big_claim_only_grows_pending(chunks: list[bytes], size: int) -> None:
    """With a max_payload that lets a big claim through, the framer waits: no
    messages, and pending grows by exactly what is fed."""
    framer = StreamFramer(Role.SERVER, max_payload=2**33)
    assert framer.feed(_extended(size, 1)) == []
    pending = 24
    for chunk in chunks:
        assert framer.feed(chunk) == []
        pending += len(chunk)
        assert framer.pending == pending and framer.bytes_consumed == 0


def test_no_allocation_for_a_four_gigabyte_claim() -> None:
    """Feeding a header that claims 4 GB, then a little data, allocates about the
    data, never the claim; so do splitting and decoding such a message."""
    claim = _extended(FOUR_GB, 1)
    tracemalloc.start()
    try:
        framer = StreamFramer(Role.SERVER, max_payload=2**33)
        assert framer.feed(claim) == []
        for _ in range(16):
            assert framer.feed(bytes(4096)) == []
        with pytest.raises(DecodeError):
            StreamFramer(Role.SERVER).feed(claim + bytes(4096))
        with pytest.raises(DecodeError):
            split_datagram(claim + bytes(4096), Role.SERVER)
        # a count of 0xFFFFFFFF doubles with an 8-byte payload frames, then fails to decode
        (liar,) = split_datagram(_extended(8, FOUR_GB) + bytes(8), Role.SERVER)
        with pytest.raises(DecodeError):
            _ = liar.data
        for data_type in range(39):
            with pytest.raises(DecodeError):
                dbr.decode(data_type, FOUR_GB, bytes(1000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert framer.pending == 24 + 16 * 4096
    assert peak < 2 * 1024 * 1024, f"peak allocation {peak} bytes"


@pytest.mark.parametrize("count", [0xFFFF, 0x10000, FOUR_GB])
@pytest.mark.parametrize("data_type", [DBRType.STRING, DBRType.DOUBLE, DBRType.CTRL_ENUM,
                                       DBRType.TIME_CHAR])
def test_lying_count_fails_on_access_only(data_type: int, count: int) -> None:
    """A count larger than the payload frames (the header is self-consistent) but
    its data raises DecodeError, whichever way it is read."""
    wire = _extended(16, count, data_type=data_type) + bytes(16)
    for msg in (split_datagram(wire, Role.SERVER)[0], StreamFramer(None).feed(wire)[0]):
        assert msg.data_count == count
        with pytest.raises(DecodeError):
            _ = msg.data
        with pytest.raises(DecodeError):
            _ = msg.value
        assert "undecodable" in repr(msg)
        touch_everything(msg)


def test_event_add_request_with_a_short_payload() -> None:
    (msg,) = split_datagram(m.HEADER.pack(1, 8, 6, 1, 1, 2) + bytes(8), Role.CLIENT)
    assert type(msg) is m.EventAddRequest
    with pytest.raises(DecodeError):
        _ = msg.mask
    touch_everything(msg)


def test_unknown_dbr_type_in_a_data_message() -> None:
    (msg,) = split_datagram(m.HEADER.pack(15, 8, 39, 1, 1, 2) + bytes(8), Role.SERVER)
    assert msg.data_type_name == "DBR_UNKNOWN_39"
    with pytest.raises(DecodeError):
        _ = msg.data
    touch_everything(msg)

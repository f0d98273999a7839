"""Hypothesis strategies shared by the decoder tests.

What each DBR type carries is written here from ``db_access.h`` (not read back
from :mod:`decoder.dbr`), so that a layout bug in the decoder shows up as a
mismatch instead of being mirrored by the tests.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from decoder import messages as m
from decoder.dbr import DBRType, DBRValue
from decoder.protocol import Role

UINT8 = st.integers(0, 0xFF)
INT16 = st.integers(-(2**15), 2**15 - 1)
UINT16 = st.integers(0, 0xFFFF)
INT32 = st.integers(-(2**31), 2**31 - 1)
UINT32 = st.integers(0, 0xFFFFFFFF)
#: Any float32 (NaN and infinities included): it survives a trip through ``>f4``.
FLOAT32 = st.floats(width=32)
FLOAT64 = st.floats()

STRING, SHORT, FLOAT, ENUM, CHAR, LONG, DOUBLE = range(7)
NATIVE_NAMES = ("STRING", "SHORT", "FLOAT", "ENUM", "CHAR", "LONG", "DOUBLE")
FAMILIES = ("", "STS_", "TIME_", "GR_", "CTRL_")

_LIMITS = (
    "upper_disp_limit",
    "lower_disp_limit",
    "upper_alarm_limit",
    "upper_warning_limit",
    "lower_warning_limit",
    "lower_alarm_limit",
)
_CTRL_LIMITS = (*_LIMITS, "upper_ctrl_limit", "lower_ctrl_limit")


def c_text(max_bytes: int) -> st.SearchStrategy[str]:
    """Text for a C string field of ``max_bytes + 1`` bytes: no NUL, non-ASCII
    welcome, its UTF-8 at most ``max_bytes`` long (cut on a character boundary)."""
    chars = st.characters(exclude_characters="\0", exclude_categories=("Cs",))
    return st.text(chars, max_size=max_bytes).map(
        lambda s: s.encode()[:max_bytes].decode("utf-8", "ignore")
    )


#: One element of each native type, in DBRType order.
ELEMENTS: tuple[st.SearchStrategy[Any], ...] = (
    c_text(39),  # dbr_string_t: char[40]
    INT16,  # dbr_short_t
    FLOAT32,  # dbr_float_t
    UINT16,  # dbr_enum_t
    UINT8,  # dbr_char_t (epicsUInt8)
    INT32,  # dbr_long_t
    FLOAT64,  # dbr_double_t
)


def native_of(dbr_type: int) -> int:
    """The native value type of a DBR type, from the spec's numbering."""
    if dbr_type < 35:
        return dbr_type % 7
    return {35: ENUM, 36: ENUM, 37: STRING, 38: STRING}[dbr_type]


def metadata_spec(dbr_type: int) -> dict[str, st.SearchStrategy[Any]]:
    """The metadata fields ``dbr_type`` carries, each with a strategy for its values."""
    if dbr_type == DBRType.STSACK_STRING:
        return {"status": UINT16, "severity": UINT16, "ackt": UINT16, "acks": UINT16}
    if dbr_type >= 35:  # PUT_ACKT, PUT_ACKS, CLASS_NAME: a bare value
        return {}
    family, native = divmod(dbr_type, 7)
    if family == 0:
        return {}
    spec: dict[str, st.SearchStrategy[Any]] = {"status": INT16, "severity": INT16}
    if family == 2:
        spec.update(seconds=UINT32, nanoseconds=UINT32)
    if family < 3 or native == STRING:  # dbr_gr_string / dbr_ctrl_string are sts
        return spec
    if native == ENUM:
        spec["enum_strings"] = st.lists(c_text(25), max_size=16)
        return spec
    if native in (FLOAT, DOUBLE):
        spec["precision"] = INT16
    spec["units"] = c_text(7)
    for name in _LIMITS if family == 3 else _CTRL_LIMITS:
        spec[name] = ELEMENTS[native]
    return spec


def dbr_metadata(dbr_type: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(metadata_spec(dbr_type))


ALL_DBR_TYPES = st.integers(0, 38)
#: Element counts: none, one (the usual case), a few.
SMALL_COUNTS = st.sampled_from([0, 1, 1, 2, 3, 5, 17])


def dbr_payloads(
    dbr_types: st.SearchStrategy[int] = ALL_DBR_TYPES,
    counts: st.SearchStrategy[int] = SMALL_COUNTS,
) -> st.SearchStrategy[tuple[int, list[Any], dict[str, Any]]]:
    """(dbr_type, values, metadata) with exactly the metadata the type carries."""

    @st.composite
    def build(draw: st.DrawFn) -> tuple[int, list[Any], dict[str, Any]]:
        dbr_type = draw(dbr_types)
        count = draw(counts)
        values = draw(st.lists(ELEMENTS[native_of(dbr_type)], min_size=count, max_size=count))
        return dbr_type, values, draw(dbr_metadata(dbr_type))

    return build()


# --- messages ---------------------------------------------------------------------------

def framing_sender(cls: type[m.Message]) -> Role:
    """Who to frame ``cls`` as: its sender, or the client for forms both sides share."""
    return cls.sender if cls.sender is not None else Role.CLIENT


_SLOT_VALUES = {
    "data_type": UINT16,
    # a count >= 0xFFFF forces the extended header: draw those now and then
    "data_count": st.one_of(UINT16, UINT16, st.integers(0xFFFF, 0xFFFFFFFF)),
    "parameter1": UINT32,
    "parameter2": UINT32,
}
#: Requests whose header an ERROR response may copy.
ERROR_ORIGINALS = (
    m.EventAddRequest,
    m.EventCancelRequest,
    m.ReadRequest,
    m.WriteRequest,
    m.ReadNotifyRequest,
    m.WriteNotifyRequest,
    m.CreateChanRequest,
    m.ClearChannelRequest,
    m.SearchRequest,
)


def original_requests() -> st.SearchStrategy[m.Message]:
    """A request header as an ERROR response copies it: 16 bytes, or 24 when
    the count needs the extended form; its own payload is not repeated."""

    @st.composite
    def build(draw: st.DrawFn) -> m.Message:
        cls = draw(st.sampled_from(ERROR_ORIGINALS))
        count = draw(st.one_of(UINT16, st.integers(0xFFFF, 0xFFFFFFFF)))
        return cls.from_wire(
            draw(UINT16), count, draw(UINT32), draw(UINT32), b"", count >= 0xFFFF
        )

    return build()


def payload_fields(cls: type[m.Message]) -> st.SearchStrategy[dict[str, Any]]:
    """Constructor arguments for the payload of ``cls`` (possibly none)."""
    if issubclass(cls, m._TextPayload):
        return st.fixed_dictionaries({"name": c_text(60)})
    if cls is m.EventAddRequest:
        return st.fixed_dictionaries(
            {"low": FLOAT32, "high": FLOAT32, "to": FLOAT32, "mask": UINT16}
        )
    if cls is m.SearchResponse:
        return st.fixed_dictionaries({"version": st.one_of(st.none(), UINT16)})
    if cls is m.ErrorResponse:
        return st.fixed_dictionaries(
            {
                "original_request": original_requests(),
                # sizes >= 0xFFFF force the copy into the extended form
                "original_payload_size": st.one_of(st.none(), st.integers(0, 0xFFFE)),
                "error_message": c_text(80),
            }
        )
    if cls is m.EventAddResponse:
        # an empty payload would make it the EVENT_CANCEL confirmation (as libca
        # reads it): plain types need at least one element
        return dbr_payloads(counts=st.integers(1, 5)).map(lambda t: {"data": t})
    if issubclass(cls, m._DataPayload):
        return dbr_payloads().map(lambda t: {"data": t})
    if cls in (m.UnknownCommand, m.SnapshotRequest, m.BuildRequest, m.ReadBuildRequest,
               m.SignalRequest):
        # commands with no payload layout of their own keep whatever bytes came
        return st.fixed_dictionaries({"payload": st.binary(max_size=40)})
    return st.just({})


def message_args(cls: type[m.Message]) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments that build a ``cls``: every named header field (drawn
    in its wire range) and its payload fields.

    For data-bearing forms ``data`` is a (dbr_type, values, metadata) triple and
    the header's data_type/data_count follow it; see :func:`build_message`.
    """

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        args = {name: draw(_SLOT_VALUES[slot]) for name, slot in cls.FIELDS.items()}
        args.update(draw(payload_fields(cls)))
        if cls is m.UnknownCommand:
            args["command"] = draw(st.integers(28, 0xFFFF))
        return args

    return build()


def build_message(cls: type[m.Message], args: dict[str, Any]) -> m.Message:
    """``cls(**args)``, the data triple of :func:`message_args` made a DBRValue."""
    args = dict(args)
    if "data" in args:
        dbr_type, values, metadata = args.pop("data")
        args["data_type"] = dbr_type
        args["data_count"] = len(values)
        args["data"] = DBRValue(dbr_type, values, **metadata)
    return cls(**args)


# --- raw bytes for the bad-input tests ----------------------------------------------------


def raw_messages(max_payload: int = 64) -> st.SearchStrategy[bytes]:
    """One header and a payload of random bytes: commands around the known ones,
    DBR types around the 39, counts small and huge, sizes true or lying."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        command = draw(st.one_of(st.integers(0, 30), UINT16))
        data_type = draw(st.one_of(st.integers(0, 40), UINT16))
        count = draw(st.one_of(st.integers(0, 20), UINT16, UINT32))
        p1, p2 = draw(UINT32), draw(UINT32)
        payload = draw(st.binary(max_size=max_payload))
        claimed = draw(st.one_of(st.just(len(payload)), st.integers(0, max_payload * 2)))
        if draw(st.booleans()) or count > 0xFFFF or claimed >= 0xFFFF:
            head = m.HEADER.pack(command, 0xFFFF, data_type, 0, p1, p2)
            head += m.EXTENSION.pack(claimed, count)
        else:
            head = m.HEADER.pack(command, claimed, data_type, count, p1, p2)
        return head + payload

    return build()

"""DBR payloads: layouts against libca, encode/decode round trips, numpy or not."""

from __future__ import annotations

import calendar
import ctypes
import math
import random
import struct
from array import array
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import NATIVE_NAMES, dbr_metadata, dbr_payloads, native_of

from decoder import DecodeError, dbr
from decoder.dbr import LAYOUTS, DBRType, DBRValue

#: numpy is optional: the decoder uses it for arrays when installed.
numpy = dbr.numpy
requires_numpy = pytest.mark.skipif(numpy is None, reason="numpy is not installed")

N_TYPES = 39
#: One plain value of each native type, in DBRType order.
SAMPLE = ("abc", -3, 1.5, 2, 7, -9, 2.5)
ALL_TYPES = list(range(N_TYPES))
ROUND_TRIP = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def as_list(values: Any) -> list[Any]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def assert_values(got: Any, expected: list[Any]) -> None:
    got = as_list(got)
    assert len(got) == len(expected)
    bad = [i for i, (g, e) in enumerate(zip(got, expected, strict=True)) if not _same(g, e)]
    if bad:
        first = bad[0]
        pytest.fail(f"{len(bad)} values differ, first at {first}: "
                    f"{got[first]!r} != {expected[first]!r}")


def assert_metadata(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert _same(got[name], value), (name, got[name], value)


# --- (a) layouts: libca's own tables ------------------------------------------------------


@pytest.fixture(scope="module")
def libca() -> ctypes.CDLL:
    try:
        import epicscorelibs.path
    except ImportError as exc:
        pytest.skip(f"epicscorelibs is not importable ({exc}); it ships the libca to compare with")
    lib_dir = Path(epicscorelibs.path.lib_path)
    candidates = sorted(lib_dir.glob("libca.so*")) + sorted(lib_dir.glob("libca*.dylib"))
    if not candidates:
        pytest.skip(f"no libca shared library in {lib_dir}")
    return ctypes.CDLL(str(candidates[0]))


def _libca_table(lib: ctypes.CDLL, name: str) -> list[int]:
    return list((ctypes.c_ushort * N_TYPES).in_dll(lib, name))


def test_layouts_match_libca_sizes_and_offsets(libca: ctypes.CDLL) -> None:
    """dbr_size, dbr_value_size and dbr_value_offset are libca's exported arrays."""
    assert len(LAYOUTS) == N_TYPES
    assert [lay.size(1) for lay in LAYOUTS] == _libca_table(libca, "dbr_size")
    assert [lay.value_size for lay in LAYOUTS] == _libca_table(libca, "dbr_value_size")
    assert [lay.value_offset for lay in LAYOUTS] == _libca_table(libca, "dbr_value_offset")


@pytest.mark.parametrize("count", [0, 1, 2, 100_000])
def test_sizes_follow_libca_dbr_size_n(libca: ctypes.CDLL, count: int) -> None:
    """db_access.h: dbr_size_n(T, n) = dbr_size[T] + (n - 1) * dbr_value_size[T]; for
    n = 0 that is the metadata alone, which rsrv sends for an empty array."""
    sizes = _libca_table(libca, "dbr_size")
    value_sizes = _libca_table(libca, "dbr_value_size")
    expected = [size + (count - 1) * value for size, value in zip(sizes, value_sizes,
                                                                   strict=True)]
    assert [lay.size(count) for lay in LAYOUTS] == expected


def test_names_match_libca_dbr_text(libca: ctypes.CDLL) -> None:
    texts = (ctypes.c_char_p * N_TYPES).in_dll(libca, "dbr_text")
    assert [DBRType(i).dbr_name for i in ALL_TYPES] == [t.decode() for t in texts]
    assert dbr.dbr_name(6) == "DBR_DOUBLE" and dbr.dbr_name(39) == "DBR_UNKNOWN_39"


def test_layout_native_types_follow_the_numbering() -> None:
    for i in ALL_TYPES:
        assert LAYOUTS[i].native_type == native_of(i), DBRType(i).name
        assert DBRType(i).name.endswith(NATIVE_NAMES[native_of(i)]) or i in (35, 36, 38)


# --- (b) round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("dbr_type", ALL_TYPES, ids=lambda t: DBRType(t).name)
@ROUND_TRIP
@given(data=st.data())
def test_round_trip(dbr_type: int, data: st.DataObject) -> None:
    """encode(values, metadata) -> decode gives them back, for every type and
    counts 0, 1 and a few; NaN and infinities, non-ASCII text, 0-16 enum strings."""
    _, values, metadata = data.draw(dbr_payloads(st.just(dbr_type)))
    raw = dbr.encode(dbr_type, values, **metadata)
    assert len(raw) == LAYOUTS[dbr_type].size(len(values))
    decoded = dbr.decode(dbr_type, len(values), raw)
    assert decoded.dbr_type == dbr_type
    assert decoded.count == len(values)
    assert_values(decoded.values, values)
    assert_metadata(decoded.metadata(), metadata)
    expected = DBRValue(dbr_type, values, **metadata)
    assert decoded == expected and expected == decoded
    # trailing bytes (CA pads payloads to 8) change nothing
    assert dbr.decode(dbr_type, len(values), raw + bytes(7)) == expected
    # and what was decoded encodes to the same bytes
    assert dbr.encode(dbr_type, decoded) == raw


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dbr_type=st.sampled_from(ALL_TYPES), count=st.integers(65_536, 70_000),
       seed=st.integers(0, 2**32 - 1), data=st.data())
def test_round_trip_big_counts(dbr_type: int, count: int, seed: int,
                               data: st.DataObject) -> None:
    """Counts above 65535 (the extended header's arrays); values from random bit
    patterns, so NaNs and infinities turn up in float arrays."""
    native = native_of(dbr_type)
    rng = random.Random(seed)
    if native == 0:
        pool = ["", "x", "ü-Ω", "ω" * 19, "Strahl 3 (€)", "a" * 39]
        values = [pool[rng.randrange(len(pool))] for _ in range(count)]
    else:
        code = "_hfHBid"[native]
        values = list(struct.unpack(f">{count}{code}",
                                    rng.randbytes(count * struct.calcsize(code))))
    metadata = data.draw(dbr_metadata(dbr_type))
    raw = dbr.encode(dbr_type, values, **metadata)
    assert len(raw) == LAYOUTS[dbr_type].size(count)
    decoded = dbr.decode(dbr_type, count, raw)
    assert_values(decoded.values, values)
    assert_metadata(decoded.metadata(), metadata)


def test_count_zero_is_metadata_only() -> None:
    raw = dbr.encode(DBRType.TIME_DOUBLE, [], status=3, severity=1, seconds=7)
    assert len(raw) == 16
    decoded = dbr.decode(DBRType.TIME_DOUBLE, 0, raw)
    assert decoded.count == 0 and decoded.status == 3 and decoded.seconds == 7
    assert dbr.decode(DBRType.DOUBLE, 0, b"").count == 0
    # rsrv's answer to a failed autosized CTRL_DOUBLE read: count 0, 80 bytes
    assert dbr.decode(DBRType.CTRL_DOUBLE, 0, bytes(80)).count == 0


def test_lone_short_dbr_string_decodes() -> None:
    """libca (and rsrv's READ reply) send a DBR_STRING of count 1 as strlen + 1
    bytes padded to 8, not 40 (seen in ca_put_callback_and_errors)."""
    assert dbr.decode(DBRType.STRING, 1, b"Moving\0\0").value == "Moving"
    assert dbr.decode(DBRType.STRING, 1, b"beam off at 14:05\0" + bytes(6)).value == (
        "beam off at 14:05")
    assert dbr.decode(DBRType.STRING, 2, b"a".ljust(40, b"\0") + b"b\0").values == ["a", "b"]
    with pytest.raises(DecodeError):
        dbr.decode(DBRType.STRING, 2, b"a".ljust(40, b"\0"))


def test_string_of_40_bytes_without_nul() -> None:
    assert dbr.decode(DBRType.STRING, 1, b"z" * 40).value == "z" * 40


def test_string_bytes_that_are_not_utf8_survive() -> None:
    raw = b"\xff\xfeLatin-1 \xe9\0".ljust(40, b"\0")
    decoded = dbr.decode(DBRType.STRING, 1, raw)
    assert dbr.encode(DBRType.STRING, decoded) == raw


def test_long_texts_are_cut_to_their_c_fields() -> None:
    raw = dbr.encode(DBRType.GR_ENUM, [1], enum_strings=["s" * 30, "t"])
    decoded = dbr.decode(DBRType.GR_ENUM, 1, raw)
    assert decoded.enum_strings == ["s" * 25, "t"]
    raw = dbr.encode(DBRType.GR_DOUBLE, [1.0], units="kilogram")
    assert dbr.decode(DBRType.GR_DOUBLE, 1, raw).units == "kilogra"
    assert dbr.decode(DBRType.STRING, 1, dbr.encode(DBRType.STRING, "q" * 50)).value == "q" * 39


def test_more_than_16_enum_strings_are_cut_with_their_count() -> None:
    """no_str must say 16 when only 16 strings fit (it said 17 here)."""
    raw = dbr.encode(DBRType.CTRL_ENUM, [0], enum_strings=[str(i) for i in range(17)])
    assert struct.unpack_from(">h", raw, 4) == (16,)
    assert dbr.decode(DBRType.CTRL_ENUM, 1, raw).enum_strings == [str(i) for i in range(16)]


@pytest.mark.parametrize(("no_str", "kept"), [(-3, 0), (0, 0), (16, 16), (300, 16)])
def test_lying_enum_string_count_is_clamped(no_str: int, kept: int) -> None:
    raw = bytearray(dbr.encode(DBRType.GR_ENUM, [0], enum_strings=["a"] * 16))
    struct.pack_into(">h", raw, 4, no_str)
    assert len(dbr.decode(DBRType.GR_ENUM, 1, bytes(raw)).enum_strings) == kept


def test_nan_metadata_and_values_compare_equal_both_ways() -> None:
    """Real GR_FLOAT replies carry NaN alarm limits (ca_dbr_families)."""
    nan = float("nan")
    raw = dbr.encode(DBRType.GR_FLOAT, [nan, 1.0], upper_alarm_limit=nan)
    built = DBRValue(DBRType.GR_FLOAT, [nan, 1.0], status=0, severity=0, precision=0,
                     units="", upper_disp_limit=0.0, lower_disp_limit=0.0,
                     upper_alarm_limit=nan, upper_warning_limit=0.0,
                     lower_warning_limit=0.0, lower_alarm_limit=0.0)
    decoded = dbr.decode(DBRType.GR_FLOAT, 2, raw)
    assert decoded == built and built == decoded
    assert decoded != DBRValue(DBRType.GR_FLOAT, [nan, 2.0], **built.metadata())


@pytest.mark.parametrize("dbr_type", ALL_TYPES, ids=lambda t: DBRType(t).name)
def test_short_payload_raises_decode_error(dbr_type: int) -> None:
    lay = LAYOUTS[dbr_type]
    cut = 39 if lay.native_type == 0 else 0  # a lone string may be short, not absent
    for count in (1, 3):
        raw = dbr.encode(dbr_type, [SAMPLE[lay.native_type]] * count)
        dbr.decode(dbr_type, count, raw[: len(raw) - cut])
        with pytest.raises(DecodeError):
            dbr.decode(dbr_type, count, raw[: len(raw) - cut - 1])
    with pytest.raises(DecodeError):
        dbr.decode(dbr_type, 0xFFFFFFFF, raw)


@pytest.mark.parametrize("dbr_type", [39, 40, 0xFFFF, -1])
def test_unknown_dbr_type_raises_decode_error(dbr_type: int) -> None:
    with pytest.raises(DecodeError):
        dbr.decode(dbr_type, 1, bytes(64))


# --- (c) with and without numpy ------------------------------------------------------------


@requires_numpy
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=dbr_payloads(counts=st.sampled_from([0, 1, 2, 7, 33])))
def test_decode_and_encode_without_numpy_agree(payload: tuple[int, list, dict]) -> None:
    dbr_type, values, metadata = payload
    raw = dbr.encode(dbr_type, values, **metadata)
    with_numpy = dbr.decode(dbr_type, len(values), raw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dbr, "numpy", None)
        assert dbr.encode(dbr_type, values, **metadata) == raw
        plain = dbr.decode(dbr_type, len(values), raw)
        from_view = dbr.decode(dbr_type, len(values), memoryview(raw))
        assert not isinstance(plain.values, numpy.ndarray)
        if native_of(dbr_type) != 0 and len(values) > 1:
            assert isinstance(plain.values, array)
        assert plain == with_numpy and with_numpy == plain
        assert from_view == plain
        assert dbr.encode(dbr_type, plain) == raw
    assert_values(plain.values, as_list(with_numpy.values))
    assert_metadata(plain.metadata(), with_numpy.metadata())
    if native_of(dbr_type) != 0 and len(values) > 1:
        assert isinstance(with_numpy.values, numpy.ndarray)


@requires_numpy
def test_big_array_without_numpy_agrees() -> None:
    values = [float(i) / 3 for i in range(100_000)]
    raw = dbr.encode(DBRType.TIME_FLOAT, values, seconds=5)
    fast = dbr.decode(DBRType.TIME_FLOAT, len(values), raw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dbr, "numpy", None)
        slow = dbr.decode(DBRType.TIME_FLOAT, len(values), raw)
    assert fast.values.tolist() == slow.values.tolist()


# --- (d) timestamps -------------------------------------------------------------------------


def test_epics_epoch_is_1990() -> None:
    assert dbr.EPICS_EPOCH_OFFSET == calendar.timegm((1990, 1, 1, 0, 0, 0)) == 631152000


@pytest.mark.parametrize(
    ("seconds", "nanoseconds", "unix"),
    [(0, 0, 631152000.0), (1, 500_000_000, 631152001.5), (1164113719, 0, 1795265719.0)],
)
def test_timestamp_conversion(seconds: int, nanoseconds: int, unix: float) -> None:
    raw = dbr.encode(DBRType.TIME_DOUBLE, [1.0], seconds=seconds, nanoseconds=nanoseconds)
    decoded = dbr.decode(DBRType.TIME_DOUBLE, 1, raw)
    assert (decoded.seconds, decoded.nanoseconds) == (seconds, nanoseconds)
    assert decoded.timestamp == pytest.approx(unix, abs=1e-6)


def test_timestamp_wire_layout() -> None:
    """dbr_time_*: status, severity, then epicsTimeStamp {secPastEpoch, nsec}."""
    raw = struct.pack(">hhII", 6, 1, 1164113719, 216390862) + bytes(4) + struct.pack(">d", -6.25)
    decoded = dbr.decode(DBRType.TIME_DOUBLE, 1, raw)
    assert decoded.value == -6.25
    assert (decoded.status_name, decoded.severity_name) == ("LOW", "MINOR")
    assert decoded.timestamp == pytest.approx(1795265719.216391, abs=1e-6)


def test_types_without_time_have_no_timestamp() -> None:
    for dbr_type in (DBRType.DOUBLE, DBRType.STS_DOUBLE, DBRType.CTRL_DOUBLE):
        assert dbr.decode(dbr_type, 1, dbr.encode(dbr_type, [1.0])).timestamp is None

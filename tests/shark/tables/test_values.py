"""The fields extract_values reads of many payloads at once, against the decoder's."""

import numpy as np
import pytest

from decoder import dbr
from decoder.dbr import DBRType
from shark.tables.values import InBuffer, Values, extract_values

#: Alarm status and severity at the ends of their range (read as one 32-bit number).
_ALARMS = [(0, 0), (1, 2), (-1, -2), (32767, -32768), (-32768, 32767), (7, -1)]
_UNSIGNED = [(0, 0), (1, 2), (65535, 65534), (32768, 40000), (7, 65535), (3, 3)]


def _payloads(data_type: DBRType, alarms: list[tuple[int, int]]) -> list[bytes]:
    value = "text" if dbr.native_type(data_type) == DBRType.STRING else 2.5
    return [dbr.encode(data_type, [value], status=status, severity=severity,
                       seconds=100 + i, nanoseconds=i, precision=3)
            for i, (status, severity) in enumerate(alarms)]


@pytest.mark.parametrize(("data_type", "alarms"), [
    (DBRType.STS_DOUBLE, _ALARMS), (DBRType.TIME_SHORT, _ALARMS),
    (DBRType.CTRL_DOUBLE, _ALARMS), (DBRType.STS_STRING, _ALARMS),
    (DBRType.STSACK_STRING, _UNSIGNED)])
@pytest.mark.parametrize("mixed", [False, True])
def test_alarm_fields_match_the_decoder(data_type: DBRType, alarms: list, mixed: bool) -> None:
    payloads = _payloads(data_type, alarms)
    types = np.full(len(payloads), int(data_type), dtype=np.uint16)
    if mixed:  # the general way (layouts grouped), with a type of another layout
        payloads.append(dbr.encode(DBRType.STS_LONG, [5], status=-3, severity=4))
        types = np.append(types, np.uint16(DBRType.STS_LONG))
    counts = np.ones(len(payloads), dtype=np.uint32)
    buffer = b"".join(payloads)
    lengths = np.array([len(p) for p in payloads], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    for given in (payloads, InBuffer(buffer, starts, lengths)):
        out = Values(len(payloads) + 1)
        at = np.arange(1, len(payloads) + 1)
        extract_values(out, at, types, counts, given)
        for row, payload, data_type_i in zip(at.tolist(), payloads, types.tolist(),
                                             strict=True):
            data = dbr.decode(data_type_i, 1, payload)
            assert out.has_alarm[row]
            assert (out.status[row], out.severity[row]) == (data.status, data.severity)
        assert not out.has_alarm[0]

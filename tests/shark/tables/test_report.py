"""`shark stats` and :mod:`shark.tables.report`: the answers against the ground truth."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from builders import capture, manifest

import shark
from shark.cli import main


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["stats", "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_unanswered_searches_leaderboards(capsys: pytest.CaptureFixture[str]) -> None:
    path = capture("ca_unanswered_searches.pcap")
    report = _json(capsys, str(path))
    missing = {e["pv"]: e["udp_search_requests_in_capture"]
               for e in manifest(path)["nonexistent_pvs_searched"]}
    searches = report["unanswered_searches"]
    assert {row["pv"]: row["tries"] for row in searches["by_pv"]} == missing
    assert searches["names"] == len(missing) and searches["tries"] == sum(missing.values())
    [client] = searches["by_client"]
    assert (client["pvs"], client["tries"]) == (len(missing), sum(missing.values()))


def test_restart_and_errors_in_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(capture("ca_server_restart.pcapng"))]) == 0
    text = capsys.readouterr().out
    beacons = text[text.index("Beacons: restarts and anomalies"):].splitlines()
    assert beacons[1].split()[:4] == ["server", "beacons", "period", "restarts"]
    assert beacons[2].split()[0] == "127.0.0.1:5086" and beacons[2].split()[3] == "1"
    assert "restart 1" in beacons[2] and "Errors: 0" in text
    for title in ("Top talkers", "Messages per command", "Unanswered searches",
                  "Slowest servers", "Slowest PVs", "Busiest subscriptions by rate"):
        assert title in text


def test_failed_writes(capsys: pytest.CaptureFixture[str]) -> None:
    path = capture("ca_put_callback_and_errors.pcapng")
    report = _json(capsys, str(path), "--top", "3")
    errors = report["errors"]
    analysis = manifest(path)["capture_analysis"]
    assert errors["total"] == len(analysis["tcp_error_messages"]) + analysis[
        "write_notify_reply_status"]["160"]
    assert {(r["kind"], r["status"]): r["count"] for r in errors["by_kind"]} == {
        ("ERROR", "ECA_PUTFAIL"): 3, ("WRITE_NOTIFY", "ECA_PUTFAIL"): 2}
    assert len(errors["latest"]) == 3
    counts = {row["command"]: row for row in report["commands"]}
    sent = manifest(path)["message_counts_by_command"]
    assert counts["WRITE_NOTIFY"]["tcp c->s"] == sent["tcp_client_to_server"]["19"]
    assert report["capture"]["messages"] == sent["total_ca_messages"]


def test_busiest_subscriptions(capsys: pytest.CaptureFixture[str]) -> None:
    report = _json(capsys, str(capture("ca_monitors_100hz.pcap")))
    by_rate = report["busiest_subscriptions"]["by_rate"]
    assert by_rate[0]["pv"] in ("DEMO:MON:FAST", "DEMO:MON:TICKS")
    assert 90 < by_rate[0]["rate"] < 110  # 100 Hz
    by_bytes = report["busiest_subscriptions"]["by_bytes"]
    assert by_bytes[0]["data_type"] == "DBR_CTRL_DOUBLE"  # the biggest payload at 100 Hz
    assert [r["bytes"] for r in by_bytes] == sorted((r["bytes"] for r in by_bytes),
                                                    reverse=True)


def test_latency_percentiles_are_within_six_percent() -> None:
    """The histogram's percentiles against the exact ones of the messages table (the
    value of rank ceil(p N / 100))."""
    cap = shark.open(capture("ca_many_channels_500.pcap"))
    messages = cap.messages.dropna(subset=["latency"])
    exact = messages.groupby(["src", "pv", "command"], observed=True).latency
    checked = 0
    for row in cap.latency.itertuples():
        values = np.sort(exact.get_group((row.server, row.pv, row.command)).to_numpy(float))
        assert row.responses == len(values) and math.isclose(row.mean, values.mean())
        assert (row.min, row.max) == (values[0], values[-1])
        for percent in (50, 90, 99):
            rank = math.ceil(percent * len(values) / 100)
            assert abs(getattr(row, f"p{percent}") / values[rank - 1] - 1) <= 0.06
            checked += 1
    assert checked > 1000
    by_server = cap.builder.latency(["server", "command"])
    reads = by_server[by_server.command == "READ_NOTIFY"]
    assert reads.responses.tolist() == [500]


def test_damaged_capture_is_reported_as_far_as_it_goes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole = capture("ca_monitors_100hz.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[: len(whole) // 2 + 5])
    assert main(["stats", str(cut)]) == 1
    out, err = capsys.readouterr()
    assert "Messages per command" in out and "error" in err

"""The analysis report of ``shark stats``: the questions engineers bring to a capture.

Who talks most, which commands, which client keeps searching for PVs nobody serves,
which server and which PV answer slowly, which subscriptions flood the network, did a
server restart (beacon anomalies), what failed. :func:`build_report` answers them from
the tables of a :class:`shark.tables.TableBuilder` as plain data (JSON-ready: times are
ISO 8601 strings, durations seconds); :func:`format_report` lays that out as text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pandas as pd

from shark.tables.schema import TIME_RANGE

if TYPE_CHECKING:
    from shark.tables import TableBuilder

__all__ = ["REPORT_TABLES", "build_report", "format_report"]

#: The tables the report reads.
REPORT_TABLES = ("circuits", "channels", "subscriptions", "searches", "beacons",
                 "beacon_anomalies", "errors", "commands", "talkers", "latency")
#: Commands whose latency measures a server: the time it took to answer.
_ANSWERS = ("READ_NOTIFY", "WRITE_NOTIFY", "CREATE_CHAN", "READ", "SEARCH", "ECHO")


def build_report(builder: TableBuilder, top: int = 10) -> dict[str, Any]:
    """The report, as nested dicts and lists; leaderboards hold ``top`` entries."""
    table = builder.table
    commands, subscriptions = table("commands"), table("subscriptions")
    beacons, errors = table("beacons"), table("errors")
    return {
        "capture": {
            "records": builder.records,
            "start": _time(builder.first_time),
            "end": _time(builder.last_time),
            "start_seconds": builder.first_time,
            "end_seconds": builder.last_time,
            "times_out_of_range": builder.times_outside,
            "duration": None if builder.first_time is None
            else builder.last_time - builder.first_time,
            "messages": int(commands.loc[~commands.command.isin(_NOT_MESSAGES), "messages"]
                            .sum()),
            "bytes": int(commands.loc[~commands.command.isin(_NOT_MESSAGES), "bytes"].sum()),
            "circuits": len(table("circuits")),
            "channels": len(table("channels")),
            "subscriptions": len(subscriptions),
            "servers_beaconing": len(beacons),
            "negative_latencies": int(table("latency").negative.sum()),
        },
        "talkers": _records(_top(table("talkers").assign(
            bytes=lambda t: t.bytes_sent + t.bytes_received), "bytes", top)),
        "commands": _records(_commands(commands)),
        "unanswered_searches": _unanswered(table("searches"), top),
        "slowest_servers": _records(_slowest(builder.latency(("server", "command")), top)),
        "slowest_pvs": _records(_slowest(builder.latency(("pv", "command")), top)),
        "busiest_subscriptions": {
            "by_rate": _records(_top(subscriptions, "rate", top)[_SUBSCRIPTION]),
            "by_bytes": _records(_top(subscriptions, "bytes", top)[_SUBSCRIPTION]),
        },
        "beacons": _beacons(beacons, table("beacon_anomalies")),
        "errors": {
            "total": len(errors),
            "by_kind": _records(errors.groupby(["kind", "status"], observed=True,
                                               dropna=False).size().rename("count")
                                .reset_index().sort_values("count", ascending=False)),
            "latest": _records(errors.tail(top)[["time", "kind", "pv", "status", "request",
                                                 "circuit", "detail"]]),
        },
    }


_NOT_MESSAGES = ("GAP", "UNDECODED")
_SUBSCRIPTION = ["pv", "server", "client", "data_type", "updates", "rate", "bytes", "start",
                 "end"]


def _top(frame: pd.DataFrame, column: str, top: int) -> pd.DataFrame:
    return frame.dropna(subset=[column]).sort_values(column, ascending=False).head(top)


def _commands(commands: pd.DataFrame) -> pd.DataFrame:
    """Messages per command in the columns of ``shark read --summary``."""
    direction = commands.transport.astype(str) + " " + commands.sender.astype(str).replace(
        {"client": "c->s", "server": "s->c"})
    direction = direction.where(commands.transport != "udp", "udp")
    pivot = commands.assign(direction=direction).pivot_table(
        index="command", columns="direction", values="messages", aggfunc="sum",
        fill_value=0, observed=True)
    pivot["total"] = pivot.sum(axis=1)
    pivot["bytes"] = commands.groupby("command", observed=True).bytes.sum()
    return pivot.sort_values("total", ascending=False).reset_index()


def _unanswered(searches: pd.DataFrame, top: int) -> dict[str, Any]:
    """Names nobody answered: the leaderboards by PV and by client."""
    lost = searches[~searches.answered]
    by_pv = lost.groupby("pv", observed=True).agg(
        clients=("client", "nunique"), tries=("tries", "sum"),
        first=("first_search", "min"), last=("last_search", "max"))
    by_client = lost.groupby("client", observed=True).agg(
        pvs=("pv", "nunique"), tries=("tries", "sum"),
        first=("first_search", "min"), last=("last_search", "max"))
    return {
        "names": int(lost.pv.nunique()),
        "tries": int(lost.tries.sum()),
        "by_pv": _records(_top(by_pv.reset_index(), "tries", top)),
        "by_client": _records(_top(by_client.reset_index(), "tries", top)),
    }


def _slowest(latency: pd.DataFrame, top: int) -> pd.DataFrame:
    answers = latency[latency.command.isin(_ANSWERS)]
    return _top(answers, "p90", top).drop(columns=["mean", "min"])


def _beacons(beacons: pd.DataFrame, anomalies: pd.DataFrame) -> list[dict[str, Any]]:
    """Servers with their restarts and anomalies by kind, the troubled ones first."""
    kinds = anomalies.groupby(["server", "kind"], observed=True).size()
    rows = []
    for server in beacons.sort_values(["restarts", "anomalies"], ascending=False).itertuples():
        seen = anomalies[anomalies.server == server.server]
        rows.append({
            "server": server.server, "beacons": int(server.beacons),
            "period": _plain(server.estimate), "restarts": int(server.restarts),
            "anomalies": int(server.anomalies),
            "kinds": {kind: int(n) for (name, kind), n in kinds.items() if name == server.server},
            "last_anomaly": _plain(seen.time.max()) if len(seen) else None,
        })
    return rows


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: times as ISO 8601, missing values as None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{key: _plain(value) for key, value in row.items()}
            for row in frame.to_dict("records")]


def _time(seconds: float | None) -> str | None:
    """ISO 8601, or None where a time column could not hold it (``times_out_of_range``
    and the raw ``start_seconds`` and ``end_seconds`` say so)."""
    if seconds is None or not TIME_RANGE[0] <= seconds <= TIME_RANGE[1]:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


# -- text -------------------------------------------------------------------------------


def format_report(report: dict[str, Any]) -> str:
    """The report as text: a few lines of totals, then a table per question."""
    capture = report["capture"]
    duration = capture["duration"]
    lines = [
        f"capture   {capture['start'] or '-'} .. {capture['end'] or '-'}"
        + (f" ({duration:.3f} s)" if duration is not None else ""),
        f"messages  {capture['messages']} ({capture['bytes']} bytes), circuits "
        f"{capture['circuits']}, channels {capture['channels']}, subscriptions "
        f"{capture['subscriptions']}, servers beaconing {capture['servers_beaconing']}",
    ]
    if capture["times_out_of_range"]:
        lines.append(f"times     {capture['times_out_of_range']} records with a capture time "
                     f"outside 1677..2262 (a damaged capture?): from "
                     f"{capture['start_seconds']!r} to {capture['end_seconds']!r} s; null in "
                     f"the tables' times, kept in raw_time")
    if capture["negative_latencies"]:
        lines.append(f"latency   {capture['negative_latencies']} responses timestamped before "
                     f"their request (several interfaces?): negative latencies kept")
    searches = report["unanswered_searches"]
    errors = report["errors"]
    sections: list[tuple[str, list[dict[str, Any]], tuple[str, ...]]] = [
        ("Top talkers (bytes both ways)", report["talkers"],
         ("endpoint", "messages_sent", "bytes_sent", "messages_received", "bytes_received")),
        ("Messages per command", report["commands"], ()),
        (f"Unanswered searches: {searches['names']} names, {searches['tries']} tries; by PV",
         searches["by_pv"], ("pv", "clients", "tries", "first", "last")),
        ("Unanswered searches by client", searches["by_client"],
         ("client", "pvs", "tries", "first", "last")),
        ("Slowest servers (latency, ms)", report["slowest_servers"],
         ("server", "command", "responses", "p50", "p90", "p99", "max")),
        ("Slowest PVs (latency, ms)", report["slowest_pvs"],
         ("pv", "command", "responses", "p50", "p90", "p99", "max")),
        ("Busiest subscriptions by rate (updates/s)",
         report["busiest_subscriptions"]["by_rate"],
         ("pv", "server", "data_type", "updates", "rate", "bytes")),
        ("Busiest subscriptions by bytes", report["busiest_subscriptions"]["by_bytes"],
         ("pv", "server", "data_type", "updates", "rate", "bytes")),
        ("Beacons: restarts and anomalies", [
            {**row, "kinds": ", ".join(f"{k} {n}" for k, n in row["kinds"].items())}
            for row in report["beacons"]],
         ("server", "beacons", "period", "restarts", "anomalies", "kinds", "last_anomaly")),
        (f"Errors: {errors['total']}", errors["by_kind"], ("kind", "status", "count")),
        ("Latest errors", errors["latest"],
         ("time", "kind", "pv", "status", "request", "circuit", "detail")),
    ]
    for title, rows, columns in sections:
        lines += ["", title]
        lines += _table(rows, columns or tuple(rows[0]) if rows else columns,
                        _milliseconds if "ms)" in title else _cell)
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, str) and len(value) > 26 and value[10:11] == "T":  # ISO time
        return value[11:23]
    return str(value)


def _milliseconds(value: Any) -> str:
    return f"{value * 1e3:.3f}" if isinstance(value, float) else _cell(value)


def _table(rows: list[dict[str, Any]], columns: Iterable[str],
           cell: Callable[[Any], str]) -> list[str]:
    """Rows as aligned text: text columns left, numbers right."""
    columns = tuple(columns)
    if not rows:
        return ["  (none)"]
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows)
               for c in columns]

    def line(values: list[str]) -> str:
        return "  " + "  ".join(v.rjust(w) if n else v.ljust(w)
                                for v, w, n in zip(values, widths, numeric, strict=True)
                                ).rstrip()

    return [line(list(columns)), *map(line, cells)]

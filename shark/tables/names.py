"""The names of the tables, apart from the code that builds them: the command line lists
them without loading pandas and pyarrow."""

__all__ = ["PER_MESSAGE", "TABLES"]

#: Every table, in the order reports and exports list them.
TABLES: tuple[str, ...] = (
    "messages", "updates", "circuits", "channels", "subscriptions", "searches", "beacons",
    "beacon_anomalies", "errors", "commands", "talkers", "latency",
)
#: The tables with a row per message, which grow in row groups (those a sink takes).
PER_MESSAGE: tuple[str, ...] = ("messages", "updates")

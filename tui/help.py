"""The help screen: every key, what it does, and the filter syntax."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["KEYS", "HelpScreen"]

#: (keys, what they do), in the order a newcomer needs them.
KEYS = [
    ("?", "this help (Esc closes it)"),
    ("/", "filter the log, as shark read --filter: key=value terms (pv=GLOB "
          "command=NAME host=IP[:PORT] status=failed severity>=MINOR latency>10ms "
          "value>5 ...), error, anomaly, gap, with and (a space), or, not and "
          "parentheses; a bare word is part of a PV name; Enter applies, an empty filter "
          "shows everything"),
    ("space", "pause / resume the log (the panes and counters go on)"),
    ("↑ ↓ PgUp PgDn Home", "move in the log (pauses it) or in a pane; a capture file's "
                           "log holds every message, Home is the first"),
    ("End, G", "back to the newest message, following the tail"),
    (":", "jump to a frame number (1234) or a time since the first message (12.5s)"),
    ("f", "follow the selected PV across every circuit (log, channels, searches); "
          "f again stops"),
    ("e / E", "next / previous error in the log"),
    ("Esc", "stop following the PV, then clear the filter"),
    ("1 2 3 4 5", "panes: channels, circuits, searches, servers, errors"),
    ("6", "graphs: messages/s over time with errors marked, the latency histogram (of "
          "the filter's or followed PV's rows when there are), the beacon periods of "
          "the server picked in the servers pane (else the one with most anomalies)"),
    ("l", "back to the message log"),
    ("d", "hide / show the details pane (more room for the log)"),
    ("Enter", "in a pane: follow that PV (channels, searches), filter that circuit or "
              "server, show that error in the log"),
    ("Tab", "next pane or widget"),
    ("x", "export the log as shown (filter applied) to a Parquet file"),
    ("q", "quit"),
]


class HelpScreen(ModalScreen[None]):
    """Keys and filter syntax, over the main screen."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 95%; height: auto; max-height: 90%;
        border: thick $accent; background: $surface; padding: 1 2;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]

    def __init__(self, what: str = "live") -> None:
        super().__init__()
        #: What is shown: "live", or the capture file's name.
        self.what = what

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold cyan", justify="right", no_wrap=True)
        keys.add_column()
        for key, meaning in KEYS:
            keys.add_row(key, meaning)
        note = Text("\nIn the log, red rows are problems: ERROR messages, failed statuses, "
                    "gaps in the capture, undecodable bytes, anomalies of the circuit "
                    "state; server messages are cyan, UDP (searches, beacons) magenta, "
                    "circuit ends and lost bytes dim. In the channels pane, red is a "
                    "channel whose circuit failed or was cut off (a capture that ends "
                    "while circuits are open cuts them off), dim a cleared one, italic a "
                    "subscription whose channel the capture never showed created. In the "
                    "graphs, red marks are errors and beacon anomalies.", style="dim")
        with VerticalScroll():
            yield Static(Text(f"shark — Channel Access, {self.what}\n", style="bold"))
            yield Static(keys)
            yield Static(note)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)

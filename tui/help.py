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
          "parentheses; a bare word is part of a PV name; checked as you type (the "
          "reason in red if it is not understood; how many rows match); Enter applies, "
          "an empty filter shows everything"),
    ("space", "pause / resume the log (the panes and counters go on)"),
    ("↑ ↓ PgUp PgDn Home", "move in the log (pauses it) or in a pane; a capture file's "
                           "log holds every message, Home is the first"),
    ("End, G", "back to the newest message, following the tail"),
    (":", "jump to a frame number (1234) or a time since the first message (12.5s)"),
    ("f", "follow the selected PV across every circuit (log, channels, searches); "
          "f again stops"),
    ("e / E", "next / previous error in the log"),
    ("Esc", "stop following the PV, then drop the circuit, then clear the filter"),
    ("⌫ (backspace)", "clear the filter (the status bar lists every restriction on the "
                      "log with the key that clears it: filter ⌫, PV f, circuit c)"),
    ("c", "stop keeping to the circuit or server picked in a pane"),
    ("m", "mark / unmark the message under the cursor (● and a blue background)"),
    ("n / N", "next / previous mark among the rows shown (round the end)"),
    ("Ctrl-T", "count the times shown from the message under the cursor (ΔTime); "
               "Ctrl-T on it again: from the capture's first message"),
    ("s / S", "sort the pane shown by its next column / the other way (a click on a "
              "column's title sorts by it); the arrow in the title says which"),
    ("1 2 3 4 5", "panes: channels, circuits, searches, servers, errors"),
    ("6", "graphs: messages/s over time with errors marked, the latency histogram (of "
          "the filter's or followed PV's rows when there are), the beacon periods of "
          "the server picked in the servers pane (else the one with most anomalies)"),
    ("l", "back to the message log"),
    ("d", "hide / show the details pane (more room for the log); below 120 columns, "
          "show the details over the screen (Enter in the log too; ↑ ↓ move, Esc closes)"),
    ("v", "choose the columns of the log (or of the pane focused); kept for the session"),
    ("Enter", "in a pane: follow that PV (channels, searches), keep to that circuit or "
              "server (c drops it), show that error in the log"),
    ("Tab", "next pane or widget"),
    ("x", "export the marked messages (if any, else the log as shown) to a Parquet "
          "file, and their frames (with their channels' set-ups) to a pcapng slice of "
          "a capture file any tool opens"),
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
                    "circuit ends and lost bytes dim; marked rows (m) have a blue "
                    "background and a ● before their number. In the channels pane, a "
                    "rate is blank until the channel has had two values; red is a "
                    "channel whose circuit failed or was cut off (a capture that ends "
                    "while circuits are open cuts them off), dim a cleared one, italic a "
                    "subscription whose channel the capture never showed created. In the "
                    "graphs, red marks are errors and beacon anomalies. In the searches "
                    "pane, UNANSWERED is red. In the status bar, green is a source "
                    "running (red: failed) and a log following the newest message, "
                    "yellow a paused log, the time reference, or a live log that let "
                    "go of its oldest rows, "
                    "cyan what restricts the log (each with its clearing key, and the "
                    "rows it keeps), blue the marks, red drops, gaps and errors once "
                    "there are any. A filter bar with a red border holds a filter that "
                    "is not understood (why, above it).", style="dim")
        with VerticalScroll():
            yield Static(Text(f"shark — Channel Access, {self.what}\n", style="bold"))
            yield Static(keys)
            yield Static(note)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)

"""Every view of errors and of beacon anomalies tells the same story, on every capture.

What is an error is decided once (:mod:`shark.analysis.problems`), what is a beacon
anomaly and what a server is called once too (:mod:`decoder.beacons`); this test is what
keeps it so. For each capture of ``captures/`` and of the shared corpus (when present),
it reads the capture as ``shark.open`` does (the ``errors``, ``beacons`` and
``beacon_anomalies`` tables, the ``shark stats`` report) and as the TUI does (its model,
fed by a :class:`tui.source.FileSource` run on this thread, and the session's discovery
state), and asserts that they find the same problems on the same frames and the same
beacon anomalies of the same servers.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from builders import OWN_CAPTURES, capture_paths, pcap_bytes

import shark
from shark.analysis.problems import ProblemKind
from shark.capture.files import read_frames

pytest.importorskip("textual")

from tui.model import Model  # noqa: E402
from tui.source import FileSource  # noqa: E402

OWN = sorted(p for p in OWN_CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))
SHARED = capture_paths()
#: Enough for every record of the captures here: the e/E keys search the log's records.
RING = 1 << 21


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _kind(label: str) -> ProblemKind:
    """The problem an ``errors`` table kind stands for (failed replies are named by
    their command)."""
    try:
        return ProblemKind(label)
    except ValueError:
        return ProblemKind.FAILED_STATUS


@pytest.mark.parametrize("path", [*OWN, *SHARED], ids=_ids([*OWN, *SHARED]))
def test_views_agree(path: Path) -> None:
    assert_views_agree(path)


@pytest.mark.parametrize("path", OWN, ids=_ids(OWN))
def test_views_agree_on_a_capture_joined_mid_stream(path: Path, tmp_path: Path) -> None:
    """The same capture without its first third: circuits joined mid-stream, where what
    follows from joining late is no error (shark.analysis.problems), in every view."""
    frames = list(read_frames(path))
    cut = tmp_path / path.name
    cut.write_bytes(pcap_bytes([(f.time_ns, bytes(f.data)) for f in frames[len(frames) // 3:]],
                               frames[0].linktype))
    model = assert_views_agree(cut)
    assert model.midstream


def assert_views_agree(path: Path) -> Model:
    """Read ``path`` every way, assert the views agree; the TUI's model, for more."""
    cap = shark.open(path)
    report = cap.report(top=1_000_000)
    model = Model(ring_size=RING)
    source = FileSource(model, path)
    source.run()
    assert source.error is None
    assert model.records < RING  # the log holds every record

    # -- errors: the table, shark stats, the Errors pane, the red lines and e/E keys ---
    errors = cap.errors
    table = Counter((int(row.frame), _kind(row.kind)) for row in errors.itertuples())
    pane = Counter((row.record.frame, row.kind) for row in model.errors)
    assert pane == table
    assert model.error_count == len(errors) == report["errors"]["total"]
    assert sum(row["count"] for row in report["errors"]["by_kind"]) == len(errors)
    held = model.store.slice(0, model.store.end, ["frame"])  # the log's rows, in red:
    frames = [] if held is None else held.column("frame").to_pylist()
    flagged = {frames[p] for chunk in model.problem_rows.all() for p in chunk.tolist()}
    assert flagged == {frame for frame, _ in table}

    # -- beacon anomalies: discovery state, the tables, shark stats, the Servers pane --
    discovery = model.session.discovery
    judged = [(a.server, str(a.kind), a.beacon_id) for a in discovery.beacon_anomalies]
    listed = [(row.server, row.kind, int(row.beacon_id))
              for row in cap.beacon_anomalies.itertuples()]
    assert judged == listed
    per_server = {name: (s.watch.beacons, s.watch.anomalies, s.watch.restarts)
                  for name, s in discovery.beacons.items()}
    assert per_server == {row.server: (row.beacons, row.anomalies, row.restarts)
                          for row in cap.beacons.itertuples()}
    assert per_server == {row["server"]: (row["beacons"], row["anomalies"], row["restarts"])
                          for row in report["beacons"]}
    kinds = Counter((server, kind) for server, kind, _id in judged)
    assert kinds == Counter({(row["server"], kind): n for row in report["beacons"]
                             for kind, n in row["kinds"].items()})
    servers = {row.address: (row.beacons, row.anomalies, row.restarts)
               for row in model.servers.values() if row.beacon is not None}
    assert servers == per_server
    return model


def test_the_corpus_has_something_to_agree_on() -> None:
    """The test above would pass on captures without errors or anomalies: make sure the
    corpus has both, where it is present."""
    if not SHARED:
        pytest.skip("shared capture corpus not found")
    names = {p.name: p for p in SHARED}
    assert len(shark.open(names["ca_put_callback_and_errors.pcapng"]).errors)
    assert len(shark.open(names["ca_server_restart.pcapng"]).beacon_anomalies)

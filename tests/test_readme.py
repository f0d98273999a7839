"""The README's examples run as they are written: every Python block, and every
``shark`` command line that reads a capture file (``CAPTURE`` standing for a bundled
capture; live capture, the TUI and replay need a network or a terminal and have tests
of their own)."""

import re
import shlex
from pathlib import Path

import pytest
from builders import OWN_CAPTURES, ROOT

from shark.cli import main

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
#: The offline commands of the shell blocks, comments and optional ``[...]`` parts cut.
COMMANDS = [
    re.sub(r"\s*\[[^\]]*\]", "", line.split("  #")[0]).strip()
    for block in re.findall(r"```sh\n(.*?)```", README, re.S)
    for line in block.splitlines()
    if re.match(r"shark (read|export|stats) CAPTURE", line)
]
CAPTURE = OWN_CAPTURES / "softioc_pyepics_basic.pcap"


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code: str, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out.strip(), "the example printed nothing"


def test_the_readme_has_command_lines() -> None:
    assert len(COMMANDS) >= 10, COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    words = shlex.split(command)
    target = None
    if ">" in words:  # a redirection: the output goes to that file
        target = tmp_path / words[words.index(">") + 1]
        words = words[:words.index(">")]
    words = [str(CAPTURE) if re.fullmatch(r"CAPTURE(\.pcap|\.pcapng)?", w) else w
             for w in words[1:]]
    status = main(words)
    result = capsys.readouterr()
    assert status == 0, (command, result.err)
    assert "error" not in result.err, (command, result.err)
    if target is not None:
        target.write_text(result.out)
        assert target.stat().st_size > 0
    # Something was written: lines, a file, or (a filter that matches nothing here) why.
    assert result.out or any(tmp_path.iterdir()) or "0 of" in result.err, command

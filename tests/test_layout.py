"""The house rules, read from the code's own imports: they fail when the layout decays.

* ``decoder/`` is sans-I/O: it imports no socket, thread, process or event loop, and
  nothing of ``shark`` or ``tui`` (nor any third-party package but numpy).
* Imports flow ``tui -> shark -> decoder``.
* Inside ``shark/`` a stage imports only stages before it in the pipeline
  (``docs/architecture.md``); ``shark/errors.py``, the root of shark's errors, is for all.
* Test modules never import one another and never run as scripts: shared code and the
  scripts tests start live in ``tests/helpers/``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import ROOT

#: The stages of shark in pipeline order. A stage may import those of lower rank; stages
#: of equal rank are independent of each other.
STAGES = {
    "capture": 1, "network": 2, "extract": 3, "analysis": 4, "output": 5, "tables": 5,
    "peers": 6, "replay": 7, "ioc": 7, "catools": 7, "cli": 8,
}
#: Modules of shark's top level any stage may import.
SHARED = {"errors"}
#: Modules of shark's top level that face users, built on the stages (pyepics' API):
#: they may import any stage, and no stage imports them.
FACADES = {"epics"}
#: What the sans-I/O core may not import.
IO_MODULES = {"socket", "asyncio", "threading", "selectors", "subprocess", "multiprocessing",
              "mmap", "ssl", "io"}


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in a file; relative ones resolved."""
    package = ".".join(path.relative_to(ROOT).parent.parts)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # ``from shark import tables`` imports a stage too
                yield node.lineno, f"{module}.{alias.name}"


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_the_decoder_does_no_io_and_stands_alone() -> None:
    third_party_ok = {"numpy"}
    bad = []
    for path in sources("decoder"):
        for line, module in imports(path):
            top = module.split(".")[0]
            if top in ("shark", "tui") or top in IO_MODULES:
                bad.append(f"{where(path, line)} imports {module}")
            elif (top not in sys.stdlib_module_names and top not in third_party_ok
                  and top not in ("decoder", "__future__")):
                bad.append(f"{where(path, line)} imports third-party {module}")
    assert not bad, "\n".join(bad)


def test_shark_never_imports_the_tui() -> None:
    bad = [f"{where(path, line)} imports {module}"
           for path in sources("shark") for line, module in imports(path)
           if module.split(".")[0] == "tui"]
    assert not bad, "\n".join(bad)


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "shark" and len(parts) > 1 else None


@pytest.mark.parametrize("stage", sorted(STAGES, key=STAGES.get))
def test_a_stage_imports_only_the_stages_before_it(stage: str) -> None:
    assert (ROOT / "shark" / stage).is_dir(), f"shark/{stage}/ is gone: update STAGES"
    bad = []
    for path in sources(f"shark/{stage}"):
        for line, module in imports(path):
            target = stage_of(module)
            if target is None or target == stage or target in SHARED:
                continue
            if target not in STAGES or STAGES[target] >= STAGES[stage]:
                bad.append(f"{where(path, line)}: {stage} imports {module}")
    assert not bad, "\n".join(bad)


def test_top_level_modules_are_shared_or_facades() -> None:
    modules = {p.stem for p in (ROOT / "shark").glob("*.py")} - {"__init__", "__main__"}
    assert modules == SHARED | FACADES, "a top-level module was added: say what it is"
    bad = [f"{where(path, line)} imports {module}"
           for stage in STAGES for path in sources(f"shark/{stage}")
           for line, module in imports(path) if stage_of(module) in FACADES]
    assert not bad, "\n".join(bad)


def test_every_folder_of_shark_is_a_known_stage() -> None:
    folders = {p.name for p in (ROOT / "shark").iterdir()
               if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(STAGES), "a stage was added or renamed: update STAGES and the docs"


def test_test_modules_neither_import_each_other_nor_run_as_scripts() -> None:
    bad = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for line, module in imports(path):
            if module.split(".")[-1].startswith("test_") or module.startswith("tests"):
                bad.append(f"{where(path, line)} imports {module}")
        for node in tree.body:
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                bad.append(f"{where(path, node.lineno)} runs as a script: move it to helpers")
    assert not bad, "\n".join(bad)

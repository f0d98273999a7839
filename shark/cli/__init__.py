"""The ``shark`` command line: a dispatcher over the subcommands.

Each subcommand is a module of this package with ``NAME``, ``HELP``, ``DESCRIPTION``,
``configure(parser)`` and ``run(args) -> int`` (and ``PANDAS = False`` when it makes no
pandas object: see :func:`console`). Packages built on shark (the TUI)
add theirs through the ``shark.commands`` entry point group, so that shark never
imports them.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

import shark
from shark.cli.options import UsageError

__all__ = ["console", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    return _main(argv, own_process=False)


def _main(argv: Sequence[str] | None, own_process: bool) -> int:
    """:func:`main`; ``own_process``: the process is the command's alone (see
    :func:`console`)."""
    words = list(sys.argv[1:] if argv is None else argv)
    # Only the command asked for is imported (each brings its own dependencies: a
    # `shark read` must not wait for the TUI's); the list of all is for help and errors.
    parser, modules = _parser(_command_modules(words[0] if words else None))
    args = parser.parse_args(words)
    if args.command is None:
        parser.print_help()
        return 2
    module = modules[args.command]
    if own_process and not getattr(module, "PANDAS", True):
        _arrow_without_pandas()
    try:
        return module.run(args)
    except BrokenPipeError:
        # The reader of our output went away (`| head`): it had what it wanted, which is
        # no failure of ours. Python's flush at exit must not fail on the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    except UsageError as exc:
        print(f"shark: error: {exc}", file=sys.stderr)
        return 2


def console(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``shark`` program (and ``python -m shark``): :func:`main`, then exit with its
    status, leaving what is still alive to the system.

    At exit Python looks for garbage among every object still alive, and a command
    that read a capture leaves many: the channels, requests and records its session
    and the tables' caches hold (a read of two million messages: some 400 thousand,
    0.3 s, a tenth of the whole run). The system takes the process's memory back at
    once; finalizers still run, and files are closed, as ever (those not in reference
    cycles: Python promises no more).

    A command whose module says it makes no pandas object (``PANDAS = False``: ``shark
    read``, ``export``, ``live``) runs without pandas loaded (:func:`_arrow_without_pandas`):
    here only, where no other code shares the process."""
    status = _main(argv, own_process=True)
    gc.disable()
    gc.freeze()
    sys.exit(status)


def _arrow_without_pandas() -> None:
    """Keep pyarrow from loading pandas, some 0.15 s, a third of a small capture's
    ``shark read``.

    The first time pyarrow converts anything (``pa.array`` of a list or of a numpy
    array) it imports pandas, to tell whether it was given a pandas object. Asked while
    pandas cannot be imported, it takes it that there is no pandas and asks no more
    (right: no pandas object can exist before pandas is loaded); should it need pandas
    after all (``to_pandas()``), it imports it then. Only for a process of one command
    that makes no pandas object: a program that loaded pandas later and handed pyarrow
    its Series would have them taken for plain sequences."""
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    sys.meta_path.insert(0, _NO_PANDAS)
    try:
        pa.array([])
    finally:
        sys.meta_path.remove(_NO_PANDAS)


class _NoPandas:
    """An import finder for which pandas cannot be found."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("pandas is not loaded for this command", name=name)


_NO_PANDAS = _NoPandas()


def _command_modules(wanted: str | None = None) -> list[ModuleType]:
    """The subcommands' modules: only ``wanted``'s when it names one, else all."""
    names = [info.name for info in pkgutil.iter_modules(__path__)]
    if wanted in names:
        module = importlib.import_module(f"{__name__}.{wanted}")
        if getattr(module, "NAME", None) == wanted:
            return [module]
    from importlib import metadata  # (20 ms to load: not for a command of our own)

    entries = list(metadata.entry_points(group="shark.commands"))
    if wanted not in names and wanted in {entry.name for entry in entries}:
        entries = [entry for entry in entries if entry.name == wanted]
        names = []
    found = [
        module for name in names
        if hasattr(module := importlib.import_module(f"{__name__}.{name}"), "NAME")
    ]
    for entry in entries:
        try:
            found.append(entry.load())
        except ImportError as exc:  # an optional extra that is not installed
            print(f"shark: command {entry.name!r} unavailable: {exc}", file=sys.stderr)
    return found


class _Version(argparse.Action):
    """``--version``: argparse's, with the version looked up only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(f"{parser.prog} {shark.__version__}")
        parser.exit()


def _parser(commands: list[ModuleType]) -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    parser = argparse.ArgumentParser(
        prog="shark", description="Packet analysis and debugging for EPICS Channel Access."
    )
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="show program's version number and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for module in commands:
        module.configure(subparsers.add_parser(module.NAME, help=module.HELP,
                                             description=module.DESCRIPTION))
        modules[module.NAME] = module
    return parser, modules

"""The ``shark`` command line: a dispatcher over the subcommands.

Each subcommand is a module of this package with ``NAME``, ``HELP``, ``DESCRIPTION``,
``configure(parser)`` and ``run(args) -> int``. Packages built on shark (the TUI)
add theirs through the ``shark.commands`` entry point group, so that shark never
imports them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from importlib import metadata
from types import ModuleType

import shark
from shark.cli.options import UsageError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser, modules = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return modules[args.command].run(args)
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


def _command_modules() -> list[ModuleType]:
    found = [
        module for info in pkgutil.iter_modules(__path__)
        if hasattr(module := importlib.import_module(f"{__name__}.{info.name}"), "NAME")
    ]
    for entry in metadata.entry_points(group="shark.commands"):
        try:
            found.append(entry.load())
        except ImportError as exc:  # an optional extra that is not installed
            print(f"shark: command {entry.name!r} unavailable: {exc}", file=sys.stderr)
    return found


def _parser() -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    parser = argparse.ArgumentParser(
        prog="shark", description="Packet analysis and debugging for EPICS Channel Access."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {shark.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for module in _command_modules():
        module.configure(subparsers.add_parser(module.NAME, help=module.HELP,
                                             description=module.DESCRIPTION))
        modules[module.NAME] = module
    return parser, modules

"""``python -m shark``: the command line."""

from shark.cli import console

console()

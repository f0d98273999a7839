"""The subcommands of ``shark``, one module each (see :mod:`shark.cli`)."""

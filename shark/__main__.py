"""``python -m shark``: the command line."""

from .cli import main

raise SystemExit(main())

"""``python -m shark``: the command line."""

from shark.cli import main

raise SystemExit(main())

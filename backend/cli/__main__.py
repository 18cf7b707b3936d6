"""``python -m backend.cli`` is ``dalt`` (for a Python without the console script on its PATH)."""

from backend.cli import main

raise SystemExit(main())

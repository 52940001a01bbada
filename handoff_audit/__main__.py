"""Entry point for ``python -m handoff_audit``."""

from __future__ import annotations

from handoff_audit.cli import main

if __name__ == "__main__":
    main()

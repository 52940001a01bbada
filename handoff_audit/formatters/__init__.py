"""Report formatters: each takes a Report and returns text. None opens files, reads the clock or exits.

``REGISTRY`` maps a format name to its ``render`` function.
"""

from __future__ import annotations

from collections.abc import Callable

from handoff_audit.formatters import csv_, json_, junit, markdown, table
from handoff_audit.models import Report

Renderer = Callable[..., str]

REGISTRY: dict[str, Renderer] = {
    "table": table.render,
    "json": json_.render,
    "csv": csv_.render,
    "junit": junit.render,
    "markdown": markdown.render,
}

# The format an --output file gets from its name when none is given.
EXTENSIONS: dict[str, str] = {".json": "json", ".csv": "csv", ".xml": "junit", ".md": "markdown", ".txt": "table"}


def render(fmt: str, report: Report, *, width: int = 120, color: bool = False) -> str:
    """Render ``report`` in ``fmt``; ``width`` and ``color`` matter to the terminal table only."""
    if fmt == "table":
        return table.render(report, width=width, color=color)
    return REGISTRY[fmt](report)

"""Report formatters: each takes a Report and returns text. None opens files, reads the clock or exits.

``REGISTRY`` maps a format name to its ``render`` function.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping

from handoff_audit.models import Report

Renderer = Callable[..., str]


class _Registry(Mapping[str, Renderer]):
    """Format name -> render function, each formatter imported when first used: a JSON report does
    not pay for the terminal table's imports."""

    _modules = {"table": "table", "json": "json_", "csv": "csv_", "junit": "junit", "markdown": "markdown"}

    def __getitem__(self, fmt: str) -> Renderer:
        module = self._modules[fmt]
        render: Renderer = importlib.import_module(f"handoff_audit.formatters.{module}").render
        return render

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)


REGISTRY: Mapping[str, Renderer] = _Registry()

# The format an --output file gets from its name when none is given.
EXTENSIONS: dict[str, str] = {".json": "json", ".csv": "csv", ".xml": "junit", ".md": "markdown", ".txt": "table"}


def render(fmt: str, report: Report, *, width: int = 120, color: bool = False) -> str:
    """Render ``report`` in ``fmt``; ``width`` and ``color`` matter to the terminal table only."""
    if fmt == "table":
        return REGISTRY["table"](report, width=width, color=color)
    return REGISTRY[fmt](report)

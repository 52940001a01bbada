"""handoff-audit: audit recorded traces of multi-agent LLM systems, handoff by handoff.

``handoff_audit.scan(paths, ...) -> Report`` is the Python API (see ``handoff_audit.api``).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "scan"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the command line reads __version__ without loading the pipeline.
    if name == "scan":
        from handoff_audit.api import scan

        return scan
    raise AttributeError(name)

"""handoff-audit: audit recorded traces of multi-agent LLM systems, handoff by handoff."""

from __future__ import annotations

__version__ = "0.1.0"

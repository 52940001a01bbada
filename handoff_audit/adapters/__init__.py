"""Input adapters: each turns one source's lines into native events and Skipped records.

Every adapter has the same shape (see ``base.Adapter``); ``REGISTRY`` lists them by name.
"""

from __future__ import annotations

from handoff_audit.adapters.base import Adapter
from handoff_audit.adapters.native import NativeAdapter

REGISTRY: dict[str, Adapter] = {a.name: a for a in (NativeAdapter(),)}

__all__ = ["REGISTRY", "Adapter"]

"""The frozen configuration of a scan."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_IDLE_EVENTS = 200_000  # events read without one of a trace's own before the trace is closed


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """What to read and how."""

    paths: tuple[str, ...]
    idle_events: int = DEFAULT_IDLE_EVENTS

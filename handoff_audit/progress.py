"""A progress bar on stderr for long reads: bytes read of the total, lines per second, time left.

Shown only when stderr is a terminal and the inputs are large; the reader reports its position every
few thousand lines (at the buffer's idle checks), so the bar costs nothing per line.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from handoff_audit.sources import Source

MIN_BYTES = 64 * 2**20  # smaller inputs are read before a bar would be worth drawing


def wanted(sources: Sequence[Source], enabled: bool | None) -> bool:
    """Whether to draw a bar: ``enabled`` True/False forces it, None means "on a terminal, for large inputs"."""
    if enabled is not None:
        return enabled
    if not sys.stderr.isatty() or any(s.path is None for s in sources):
        return False
    return total_bytes(sources) >= MIN_BYTES


def total_bytes(sources: Sequence[Source]) -> int:
    total = 0
    for s in sources:
        try:
            total += os.path.getsize(s.path) if s.path is not None else 0
        except OSError:
            pass
    return total


class Bar:
    """Progress over a sequence of inputs, measured in bytes of the files (compressed, if they are)."""

    def __init__(self, sources: Sequence[Source], scale: float = 1.0) -> None:
        """``scale`` multiplies the position read: a worker that reads the first of N equal byte ranges
        shows the whole file's progress with a scale of N."""
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("reading"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task("read", total=total_bytes(sources) or None, rate="")
        self._done = 0  # bytes of the inputs already read
        self._fd: int | None = None
        self._start = time.monotonic()
        self._scale = scale

    def __enter__(self) -> Bar:
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()

    def begin(self, stream: Any) -> None:
        """A new input is being read from ``stream``."""
        try:
            self._fd = stream.fileno()
        except (OSError, AttributeError, ValueError):
            self._fd = None

    def end(self, source: Source) -> None:
        """The input is read."""
        if source.path is not None:
            try:
                self._done += os.path.getsize(source.path)
            except OSError:
                pass
        self._fd = None
        self._progress.update(self._task, completed=self._done)

    def tick(self, lines: int) -> None:
        """``lines`` input lines have been read so far."""
        position = self._done
        if self._fd is not None:
            try:
                position += os.lseek(self._fd, 0, os.SEEK_CUR)
            except OSError:
                pass
        elapsed = max(time.monotonic() - self._start, 1e-9)
        self._progress.update(self._task, completed=position * self._scale, rate=f"{lines * self._scale / elapsed / 1000:,.0f}k lines/s")

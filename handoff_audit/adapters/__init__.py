"""Input adapters: each turns one source's lines into native events and Skipped records.

Every adapter has the same shape (see ``base.Adapter``); ``REGISTRY`` lists them by name. The
span formats are imported only when a file of theirs is read, so the CLI starts fast. ``detect``
picks the format of each input from its first lines.
"""

from __future__ import annotations

import importlib
import itertools
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import orjson

from handoff_audit.adapters.base import Adapter
from handoff_audit.adapters.native import NativeAdapter

if TYPE_CHECKING:
    from handoff_audit.buffer import Collector


class _Lazy:
    """An adapter whose module is imported on first use."""

    def __init__(self, name: str, module: str, cls: str) -> None:
        self.name = name
        self._where = (module, cls)
        self._adapter: Adapter | None = None

    def feed(self, lines: Iterable[bytes], name: str, sink: Collector) -> None:
        if self._adapter is None:
            module, cls = self._where
            self._adapter = getattr(importlib.import_module(module), cls)()
        self._adapter.feed(lines, name, sink)


REGISTRY: dict[str, Adapter] = {
    a.name: a
    for a in (
        NativeAdapter(),
        _Lazy("otlp-json", "handoff_audit.adapters.otlp", "OtlpJsonAdapter"),
        _Lazy("agents-sdk", "handoff_audit.adapters.agents_sdk", "AgentsSdkAdapter"),
        _Lazy("otel-console", "handoff_audit.adapters.console", "ConsoleAdapter"),
    )
}
FORMATS = tuple(REGISTRY)
SNIFF_LINES = 32  # non-blank lines looked at to tell a format


def _decide(line: bytes) -> str | None:
    try:
        ev = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(ev) is not dict:
        return None
    if "resourceSpans" in ev or "resource_spans" in ev:
        return "otlp-json"
    if ev.get("object") in ("trace", "trace.span"):
        return "agents-sdk"
    data = ev.get("data")
    if type(data) is list and data and type(data[0]) is dict and data[0].get("object") in ("trace", "trace.span"):
        return "agents-sdk"  # the SDK's backend exporter's batches, {"data": [...]}
    return "native"


def detect(stream: Iterator[bytes], forced: str | None = None) -> tuple[str | None, Iterator[bytes]]:
    """The format of an input and its lines (those read to tell the format come first again).

    The first non-blank lines decide: a JSON object with ``resourceSpans`` is OTLP JSON; one whose
    ``object`` is ``trace`` or ``trace.span`` is an Agents SDK export; any other JSON object is a
    native event. A first line ``{`` opens a pretty-printed document: OTLP JSON if it holds
    ``"resourceSpans"``, console output if its spans have a ``"context"``. None when nothing fits.
    """
    if forced is not None:
        return forced, iter(stream)
    head: list[bytes] = []
    found: str | None = None
    seen = 0
    for raw in stream:
        head.append(raw)
        if not raw.strip():
            continue
        seen += 1
        if seen == 1 and raw.strip() == b"{":
            found = _pretty(head, stream)
            break
        found = _decide(raw)
        if found is not None or seen >= SNIFF_LINES:
            break
    return found, itertools.chain(head, stream)


def _pretty(head: list[bytes], stream: Iterator[bytes]) -> str | None:
    """Read ahead in a pretty-printed document until a key tells which one it is."""
    for raw in stream:
        head.append(raw)
        key = raw.strip()
        if key.startswith((b'"resourceSpans"', b'"resource_spans"')):
            return "otlp-json"
        if key.startswith(b'"context"'):
            return "otel-console"
        if len(head) > 64:
            break
    return None


def finish(sink: Collector) -> None:
    """Hand over what the span formats hold until the input ends."""
    spans = sys.modules.get("handoff_audit.adapters.spans")
    if spans is not None:
        spans.finish(sink)


__all__ = ["FORMATS", "REGISTRY", "Adapter", "detect", "finish"]

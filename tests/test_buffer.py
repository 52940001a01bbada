"""The trace buffer: the generic Collector.add path must agree with the native reader's inline one."""

from __future__ import annotations

import orjson
from conftest import SAMPLES

from handoff_audit.adapters.native import NativeAdapter, make_event
from handoff_audit.buffer import Collector
from handoff_audit.formatters import render
from handoff_audit.models import Skipped
from handoff_audit.summary import Aggregator


def _via_add(paths: list[str]) -> str:
    agg = Aggregator(tuple(paths))
    sink = Collector(200_000, agg)
    for path in paths:
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                try:
                    ev = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    sink.skip(Skipped(path, lineno, "not valid JSON"))
                    continue
                sink.add(make_event(ev, sink.seq + 1, path, lineno))
    sink.close_all()
    return render("json", agg.report())


def _via_feed(paths: list[str]) -> str:
    agg = Aggregator(tuple(paths))
    sink = Collector(200_000, agg)
    for path in paths:
        with open(path, "rb") as fh:
            NativeAdapter().feed(fh, path, sink)
    sink.close_all()
    return render("json", agg.report())


def test_add_and_the_native_reader_give_the_same_report() -> None:
    paths = sorted(str(p) for p in SAMPLES.glob("*.jsonl") if not p.name.startswith("skipped_"))
    assert _via_add(paths) == _via_feed(paths)

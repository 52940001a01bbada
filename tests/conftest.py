"""Shared test helpers: write events to a trace file and audit it."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, settings

# Property tests check what is generated, not how fast: a busy machine must not fail them.
settings.register_profile("handoff-audit", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("handoff-audit")

from handoff_audit.models import Report
from handoff_audit.pipeline import ScanConfig, run

pytest_plugins = ["pytester"]  # runs the pytest plugin in a test session of its own

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_traces"
GOLDEN = Path(__file__).resolve().parent / "golden"
# The native sample traces, one of each kind (the framework fixtures below them and the larger
# incident sample are left out).
NATIVE = [str(p) for p in sorted(SAMPLES.glob("*.jsonl")) if not p.name.startswith("incident_")]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        help="Rewrite tests/golden/ from the current output (review the diff before committing).",
    )


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


def require(module: str, extra: str) -> ModuleType:
    """Import a framework an integration test needs: skipped without it, but an error under CI.

    CI installs every extra (``.ci/run``), so there a missing framework must fail, not skip.
    """
    if os.environ.get("CI"):
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"needs the {extra} extra")


def write_events(path: Path, events: list[dict[str, Any]]) -> Path:
    """Write events as JSONL."""
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


@pytest.fixture
def audit(tmp_path: Path):  # type: ignore[no-untyped-def]
    """audit(events) -> Report, through a real file and the real pipeline."""
    counter = iter(range(10_000))

    def _audit(events: list[dict[str, Any]]) -> Report:
        path = write_events(tmp_path / f"t{next(counter)}.jsonl", events)
        return run(ScanConfig((str(path),)))

    return _audit


def kinds(report: Report) -> list[str]:
    """The kinds of a report's findings, in report order."""
    return [f.kind for f in report.findings]


class T:
    """Builds one trace's events tersely: T("t1").send("a", "b", {...}, hid="h1")..."""

    def __init__(self, trace_id: str = "t1") -> None:
        self.trace_id = trace_id
        self.events: list[dict[str, Any]] = []
        self.ts = 1000.0

    def _add(self, type_: str, **fields: Any) -> T:
        self.ts += 1
        event: dict[str, Any] = {"trace_id": self.trace_id, "type": type_, "ts": self.ts}
        event.update(fields)
        self.events.append(event)
        return self

    def send(self, frm: str, to: str, state: dict[str, Any], hid: str | None = "auto", **kw: Any) -> T:
        fields: dict[str, Any] = {"from": frm, "to": to, "state": state, **kw}
        if hid == "auto":
            hid = f"{frm}-{to}-{sum(1 for e in self.events if e['type'] == 'handoff.sent')}"
        if hid is not None:
            fields["handoff_id"] = hid
        return self._add("handoff.sent", **fields)

    def recv(self, frm: str, to: str, state: dict[str, Any], hid: str | None = "auto", **kw: Any) -> T:
        fields: dict[str, Any] = {"from": frm, "to": to, "state": state, **kw}
        if hid == "auto":
            sends = [e for e in self.events if e["type"] == "handoff.sent" and e["from"] == frm and e["to"] == to]
            hid = sends[-1].get("handoff_id") if sends else f"{frm}-{to}-x"
        if hid is not None:
            fields["handoff_id"] = hid
        return self._add("handoff.received", **fields)

    def hop(self, frm: str, to: str, sent: dict[str, Any], received: dict[str, Any] | None = None) -> T:
        return self.send(frm, to, sent).recv(frm, to, sent if received is None else received)

    def outcome(self, agent: str, status: str = "success") -> T:
        return self._add("outcome", agent=agent, status=status)

    def end(self, agent: str, status: str = "ok") -> T:
        return self._add("agent.end", agent=agent, status=status)

    def tool(self, agent: str, tool: str, **args: Any) -> T:
        return self._add("tool.call", agent=agent, tool=tool, args=args)

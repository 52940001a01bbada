"""The runnable examples under examples/ run offline and record what their docstrings promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO, require

from handoff_audit.pipeline import ScanConfig, run


def _run_example(name: str, tmp_path: Path) -> Path:
    out = tmp_path / "runs" / f"{name}.jsonl"
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / f"{name}.py"), str(out)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert f"events to {out}" in proc.stderr
    return out


def _found(path: Path) -> list[tuple[str, str, str | None, str | None, str]]:
    report = run(ScanConfig((str(path),)))
    return sorted((f.failure_class, f.kind, f.from_agent, f.to_agent, f.path) for f in report.findings)


def test_the_recording_api_example(tmp_path: Path) -> None:
    path = _run_example("record_api", tmp_path)
    assert _found(path) == [("state_loss", "removed_field", "validator", "payment", "customer.shipping_address")]
    assert b"ann@example.com" not in path.read_bytes()


def test_the_openai_agents_example(tmp_path: Path) -> None:
    require("agents", "openai-agents")
    found = _found(_run_example("openai_agents_support", tmp_path))
    assert found == [
        ("responsibility_gap", "orphaned_handoff", "triage", "shipping", ""),
        ("state_loss", "nulled_field", "triage", "refunds", "tool_calls"),
        ("state_loss", "nulled_field", "triage", "refunds", "tool_outputs"),
        ("state_loss", "removed_field", "triage", "refunds", "handoff_arguments"),
    ]


def test_the_langgraph_example(tmp_path: Path) -> None:
    require("langgraph", "langgraph")
    found = _found(_run_example("langgraph_orders", tmp_path))
    assert found == [
        ("responsibility_gap", "missing_outcome", None, None, ""),
        ("state_loss", "removed_field", "payment", "payment/charge", "log"),
        ("state_loss", "removed_field", "payment", "payment/charge", "messages"),
        ("state_loss", "removed_field", "payment", "payment/charge", "shipping_address"),
    ]

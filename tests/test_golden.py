"""Golden reports: every sample trace, in every format, byte for byte.

Refresh with ``pytest tests/test_golden.py --update-goldens`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import GOLDEN, REPO, SAMPLES

from handoff_audit.api import judge
from handoff_audit.contracts import load_contracts
from handoff_audit.formatters import REGISTRY, render
from handoff_audit.pipeline import ScanConfig, run
from handoff_audit.rules import RULES

SAMPLE_FILES = sorted(p.name for p in SAMPLES.glob("*.jsonl"))
EXTENSION = {"table": "txt", "json": "json", "csv": "csv", "junit": "xml", "markdown": "md"}


CONTRACT = "examples/ecommerce.contracts.yaml"
VIOLATIONS = "examples/ecommerce_contract_violations.jsonl"


def _report(*targets: str, contracts: bool = False):  # type: ignore[no-untyped-def]
    cwd = os.getcwd()
    os.chdir(REPO)  # reports name inputs as given: keep them relative
    try:
        # As the command line does for a JUnit output: trace records kept, judged by the default policy.
        if contracts:
            cs = load_contracts(CONTRACT)
            return judge(run(ScanConfig(targets, keep_traces=True, contracts=cs, require_contracts=True)))
        return judge(run(ScanConfig(targets, keep_traces=True)))
    finally:
        os.chdir(cwd)


def test_every_format_has_a_golden_extension() -> None:
    assert set(EXTENSION) == set(REGISTRY)


@pytest.mark.parametrize("fmt", sorted(REGISTRY))
@pytest.mark.parametrize("name", [*SAMPLE_FILES, "ALL"])
def test_golden(name: str, fmt: str, update_goldens: bool) -> None:
    target = "sample_traces" if name == "ALL" else f"sample_traces/{name}"
    text = render(fmt, _report(target), width=120, color=False)
    golden = GOLDEN / f"{Path(name).stem}.{EXTENSION[fmt]}"
    if update_goldens:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8", newline="")
    assert golden.exists(), f"no golden report {golden.name}: run pytest --update-goldens and review it"
    assert text == golden.read_bytes().decode("utf-8")


@pytest.mark.parametrize("fmt", sorted(REGISTRY))
def test_golden_with_the_example_contract(fmt: str, update_goldens: bool) -> None:
    text = render(fmt, _report("sample_traces", VIOLATIONS, contracts=True), width=120, color=False)
    golden = GOLDEN / f"contracts_ALL.{EXTENSION[fmt]}"
    if update_goldens:
        golden.write_text(text, encoding="utf-8", newline="")
    assert golden.exists(), f"no golden report {golden.name}: run pytest --update-goldens and review it"
    assert text == golden.read_bytes().decode("utf-8")


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_each_sample_shows_exactly_the_kind_its_name_says(name: str) -> None:
    report = _report(f"sample_traces/{name}")
    found = {f.kind for f in report.findings}
    if name.startswith("clean_") or name.startswith("skipped_"):
        assert found == set()
        return
    if name.startswith("incident_"):
        # The investigation walk-through's log (docs/investigate.md): several kinds on purpose.
        assert found == {"removed_field", "renamed_field", "unit_changed", "clarification_loop"}
        return
    kind = next(k for k in RULES if name.removesuffix(".jsonl").endswith(k))
    assert found == {kind}
    assert name.startswith(RULES[kind].failure_class.value)


def test_samples_cover_every_kind() -> None:
    covered = {k for k in RULES for n in SAMPLE_FILES if n.removesuffix(".jsonl").endswith(k)}
    assert covered == {k for k, r in RULES.items() if not r.contract}


def test_the_example_contract_shows_every_contract_kind() -> None:
    found = {f.kind for f in _report("sample_traces", VIOLATIONS, contracts=True).findings}
    assert {k for k, r in RULES.items() if r.contract} <= found
    # The violations file breaks only the contract: without it, it has no finding of its own.
    assert _report(VIOLATIONS).findings == ()


def test_the_clean_run_keeps_the_example_contract() -> None:
    report = _report("sample_traces/clean_ecommerce_run.jsonl", contracts=True)
    assert report.findings == ()
    assert report.summary.contracts is not None
    assert report.summary.contracts.uncovered_edges == () and report.summary.contracts.unused_contracts == ()


def test_same_input_same_bytes() -> None:
    first = render("json", _report("sample_traces"))
    assert render("json", _report("sample_traces")) == first

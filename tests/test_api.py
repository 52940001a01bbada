"""The Python API: handoff_audit.scan(paths, ...) -> Report with its verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import NATIVE, SAMPLES

import handoff_audit
from handoff_audit.errors import InputError, UsageError
from handoff_audit.contracts import ContractError

LOSS = SAMPLES / "state_loss_removed_field.jsonl"


def test_scan_is_the_package_entry_point_and_judges_the_report() -> None:
    report = handoff_audit.scan(LOSS)
    assert [f.code for f in report.findings] == ["SL101"]
    assert report.verdict is not None and not report.verdict.passed
    assert report.traces == ()  # only kept on request
    assert handoff_audit.scan(str(LOSS), fail_on=["context_drift"]).verdict.passed  # type: ignore[union-attr]


def test_scan_options_match_the_command_line() -> None:
    report = handoff_audit.scan(NATIVE, ignore=["warning"], max_failure_rate={"overall": 0.5, "state_loss": "1%"},
                                min_end_to_end_success="30%", keep_traces=True)
    assert report.summary.findings_by_severity == {"error": 13, "warning": 0}
    assert len(report.traces) == report.summary.traces == 19
    assert report.verdict is not None
    assert [r.split(" ")[0] for r in report.verdict.reasons] == ["13", "state_loss"]


def test_bad_arguments_raise_the_projects_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="ignore: unknown class"):
        handoff_audit.scan(LOSS, ignore=["nope"])
    with pytest.raises(ContractError, match="cannot read contract file"):
        handoff_audit.scan(LOSS, contracts=tmp_path / "c.yaml")
    with pytest.raises(InputError, match="no such file"):
        handoff_audit.scan(tmp_path / "missing.jsonl")


def test_scan_reads_span_formats_and_takes_an_input_format() -> None:
    fixtures = sorted(str(p) for p in (SAMPLES / "frameworks").rglob("*.jsonl"))
    report = handoff_audit.scan(fixtures)  # each file's format told by its content
    assert report.summary.handoffs == 3 and sorted(f.code for f in report.findings) == ["RG301", "SL101", "SL101"]
    with pytest.raises(InputError, match="no usable events"):  # read as native events, every line is skipped
        handoff_audit.scan(fixtures, input_format="native")


def test_scan_takes_a_contract_file() -> None:
    contract = Path(__file__).resolve().parent.parent / "examples" / "ecommerce.contracts.yaml"
    report = handoff_audit.scan(LOSS, contracts=contract)
    assert "SL105" in {f.code for f in report.findings}
    assert report.summary.contracts is not None and report.summary.contracts.file == str(contract)

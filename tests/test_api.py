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


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_format": "xml"}, "input_format: expected one of auto, native"),
        ({"fail_on": [5]}, "fail_on: expected selector strings, not int"),
        ({"ignore": 5}, "ignore: expected selector strings, not int"),
        ({"max_failure_rate": [0.1]}, "max_failure_rate: expected a rate or a mapping"),
        ({"idle_lines": "10"}, "idle_lines: expected a whole number of at least 1, not '10'"),
        ({"idle_lines": 0}, "idle_lines: expected a whole number of at least 1, not 0"),
        ({"idle_lines": 1.5}, "idle_lines: expected a whole number of at least 1"),
        ({"jobs": -1}, "jobs: expected a whole number from 0 to 256, not -1"),
        ({"jobs": "2"}, "jobs: expected a whole number from 0 to 256"),
        ({"progress": "yes"}, "progress: expected True, False or None"),
    ],
)
def test_arguments_of_the_wrong_kind_are_usage_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        handoff_audit.scan(str(SAMPLES), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="paths: expected a path or an iterable of paths, not NoneType"):
        handoff_audit.scan(None)  # type: ignore[arg-type]


def test_one_selector_string_and_auto_are_taken_as_the_command_line_takes_them() -> None:
    faulty = str(SAMPLES / "state_loss_removed_field.jsonl")
    as_list = handoff_audit.scan(faulty, fail_on=["state_loss", "CD203"])
    as_text = handoff_audit.scan(faulty, fail_on="state_loss,CD203", input_format="auto")
    assert as_text.verdict == as_list.verdict and not as_text.verdict.passed


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

"""JUnit XML: read back with junitparser as CI tools do; XML-safe for any character in trace data."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import NATIVE, SAMPLES, T, write_events
from junitparser import Failure, JUnitXml, Skipped

from handoff_audit.api import judge, scan
from handoff_audit.formatters import render
from handoff_audit.formatters.junit import xml_safe
from handoff_audit.pipeline import ScanConfig, run


def _parse(text: str, tmp_path: Path) -> JUnitXml:
    path = tmp_path / "junit.xml"
    path.write_text(text, encoding="utf-8")
    return JUnitXml.fromfile(str(path))


def test_one_suite_per_trace_one_case_per_handoff_and_outcome(tmp_path: Path) -> None:
    report = scan(SAMPLES / "state_loss_removed_field.jsonl", keep_traces=True)
    xml = _parse(render("junit", report), tmp_path)
    suites = {s.name: s for s in xml}
    assert set(suites) == {"trace loss-removed-field"}
    cases = list(suites["trace loss-removed-field"])
    assert [c.name for c in cases] == [
        "handoff loss-removed-field-h1: validator -> inventory",
        "handoff loss-removed-field-h2: inventory -> payment",
        "outcome",
    ]
    failures = [r for r in cases[0].result if isinstance(r, Failure)]
    assert len(failures) == 1
    assert failures[0].type == "state_loss.removed_field"
    assert failures[0].message == "SL101 removed_field state_loss at customer.shipping_address: sent but absent on receipt"
    for expected in ("class: state_loss", "kind: removed_field", "code: SL101", "path: customer.shipping_address"):
        assert expected in failures[0].text
    assert cases[1].is_passed and cases[2].is_passed
    assert (xml.tests, xml.failures, xml.errors) == (3, 1, 0)


def test_every_sample_finding_is_a_failure_or_listed(tmp_path: Path) -> None:
    report = judge(run(ScanConfig(tuple(NATIVE), keep_traces=True)))
    xml = _parse(render("junit", report), tmp_path)
    failures = [r for s in xml for c in s for r in c.result if isinstance(r, Failure)]
    errors = sum(1 for f in report.findings if f.severity == "error")
    assert len(failures) == errors
    outs = "".join(c.system_out or "" for s in xml for c in s)
    for f in report.findings:
        if f.severity == "warning":
            assert f"code: {f.code}" in outs
    skipped = [c for s in xml if s.name == "skipped input lines" for c in s]
    assert len(skipped) == report.summary.skipped == 4
    assert all(isinstance(c.result[0], Skipped) for c in skipped)


def test_trace_findings_fail_the_outcome_case(tmp_path: Path) -> None:
    report = scan(SAMPLES / "responsibility_gap_missing_outcome.jsonl", keep_traces=True)
    xml = _parse(render("junit", report), tmp_path)
    outcome = [c for s in xml for c in s if c.name == "outcome"]
    assert len(outcome) == 1 and outcome[0].result[0].type == "responsibility_gap.missing_outcome"


def test_without_kept_traces_the_failing_handoffs_are_still_cases(tmp_path: Path) -> None:
    report = run(ScanConfig((str(SAMPLES / "state_loss_removed_field.jsonl"),)))
    xml = _parse(render("junit", report), tmp_path)
    assert [c.name for s in xml for c in s] == ["handoff loss-removed-field-h1: validator -> inventory", "outcome"]
    assert xml.failures == 1


def test_rate_thresholds_fail_a_verdict_case(tmp_path: Path) -> None:
    report = scan(SAMPLES / "context_drift_injected_field.jsonl", max_failure_rate="10%", keep_traces=True)
    xml = _parse(render("junit", report), tmp_path)
    verdict = [c for s in xml if s.name == "verdict" for c in s]
    assert len(verdict) == 1
    assert verdict[0].result[0].message.startswith("handoff failure rate 50.0% > 10.0% (validator -> inventory: 1 of 1)")


def test_baseline_known_findings_are_not_failures(tmp_path: Path) -> None:
    base = tmp_path / "base.json"
    first = scan(SAMPLES / "state_loss_removed_field.jsonl")
    base.write_text(render("json", first))
    report = scan(SAMPLES / "state_loss_removed_field.jsonl", baseline=base, keep_traces=True)
    xml = _parse(render("junit", report), tmp_path)
    assert xml.failures == 0
    assert "code: SL101" in "".join(c.system_out or "" for s in xml for c in s)


@pytest.mark.parametrize("char", [chr(c) for c in range(0x20)] + ["\x7f", "\ufffe", "\uffff", "]]>", "&", "<", '"'])
def test_any_character_in_trace_data_stays_well_formed(char: str, tmp_path: Path) -> None:
    text = f"a{char}b"
    sent = {f"k{char}": text, "n": 1}
    events = T(f"t{char}").hop(f"ag{char}", "b", sent, {"n": 2}).outcome("b").events
    path = tmp_path / "t.jsonl"
    write_events(path, events)
    report = scan(path, keep_traces=True)
    xml = _parse(render("junit", report), tmp_path)  # junitparser (lxml or ElementTree) must parse it
    failures = [r for s in xml for c in s for r in c.result if isinstance(r, Failure)]
    assert failures, "the finding must survive"
    assert all("\x00" not in (f.text or "") for f in failures)


def test_xml_safe_escapes_only_what_xml_cannot_carry() -> None:
    assert xml_safe("a\x00b\x1bc\td\ne\rf") == "a\\x00b\\x1bc\td\ne\rf"
    assert xml_safe("\ufffe\ud800é😀") == "\\ufffe\\ud800é😀"


def test_junit_is_byte_stable(tmp_path: Path) -> None:
    t = T("x").hop("a", "b", {"v": 1}, {"v": 2}).outcome("b")
    path = write_events(tmp_path / "x.jsonl", t.events)
    first = render("junit", scan(path, keep_traces=True, max_failure_rate=0.1))
    assert render("junit", scan(path, keep_traces=True, max_failure_rate=0.1)) == first


def test_worker_processes_give_the_same_junit_markdown_and_json() -> None:
    def texts(jobs: int) -> list[str]:
        report = scan(NATIVE, jobs=jobs, keep_traces=True, ignore=["CD205"], max_failure_rate={"state_loss": 0.01})
        return [render(fmt, report) for fmt in ("junit", "markdown", "json")]

    one = texts(1)
    assert "CD205" not in one[0] and "state&#95;loss rate" in one[1]
    assert texts(3) == one


def test_handoffs_without_an_id_get_distinct_names(tmp_path: Path) -> None:
    t = T("n").hop("a", "b", {"x": 1}).send("a", "b", {"x": 2}, hid=None).recv("a", "b", {"x": 2}, hid=None)
    t.send("a", "b", {"x": 3}, hid=None).recv("a", "b", {"x": 3}, hid=None).outcome("b")
    xml = _parse(render("junit", scan(write_events(tmp_path / "n.jsonl", t.events), keep_traces=True)), tmp_path)
    assert [c.name for s in xml for c in s] == ["handoff a-b-0: a -> b", "handoff #2: a -> b", "handoff #3: a -> b", "outcome"]

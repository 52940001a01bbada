"""scan as a CI gate through the CLI: several outputs, the verdict block, thresholds, exit codes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from conftest import NATIVE, SAMPLES
from junitparser import JUnitXml
from typer.testing import CliRunner

from handoff_audit.cli import app

CLEAN = str(SAMPLES / "clean_ecommerce_run.jsonl")
LOSS = str(SAMPLES / "state_loss_removed_field.jsonl")
WARNING_ONLY = str(SAMPLES / "context_drift_injected_field.jsonl")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_one_run_writes_json_junit_markdown_and_csv(runner: CliRunner, tmp_path: Path) -> None:
    paths = [tmp_path / n for n in ("r.json", "r.xml", "r.md", "r.data")]
    args = ["scan", *NATIVE, "-o", str(paths[0]), "-o", str(paths[1]), "-o", str(paths[2]), "-o", f"csv={paths[3]}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert orjson.loads(paths[0].read_bytes())["summary"]["findings"] == 16
    assert JUnitXml.fromfile(str(paths[1])).failures == 13
    assert paths[2].read_text().startswith("## handoff-audit\n")
    assert paths[3].read_text().startswith("trace_id,handoff_id,")


def test_machine_formats_are_written_on_a_clean_run(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", CLEAN, "-o", str(tmp_path / "r.xml"), "-o", str(tmp_path / "r.md")])
    assert result.exit_code == 0
    xml = JUnitXml.fromfile(str(tmp_path / "r.xml"))
    assert xml.tests == 6 and xml.failures == 0
    assert "**PASS**" in (tmp_path / "r.md").read_text()


def test_dash_puts_a_report_on_stdout_next_to_files(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", LOSS, "-o", str(tmp_path / "r.xml"), "-o", "-", "-f", "json"])
    assert orjson.loads(result.stdout)["findings"][0]["code"] == "SL101"
    assert (tmp_path / "r.xml").exists()
    two = runner.invoke(app, ["scan", LOSS, "-o", "-", "-o", "json=-"])
    assert two.exit_code == 2 and "only one report can go to stdout" in two.stderr


def test_no_file_is_written_when_the_run_fails(runner: CliRunner, tmp_path: Path) -> None:
    bad = str(SAMPLES / "skipped_lines_bad_input.jsonl")
    result = runner.invoke(app, ["scan", bad, "--strict", "-o", str(tmp_path / "a.json"), "-o", str(tmp_path / "b.xml")])
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_verdict_block_on_stderr(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        ["scan", *NATIVE, "--max-failure-rate", "10%", "--max-failure-rate", "state_loss=1%",
         "--min-end-to-end-success", "0.9", "-f", "json"],
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines()[1:] == [
        "FAIL: 13 findings of severity error (CD201 changed_value 1, CD203 unit_changed 1, CD204 renamed_field 1, "
        "CD206 reinterpreted_field 1, RG301 orphaned_handoff 1, ...)",
        "FAIL: handoff failure rate 34.1% > 10.0% (validator -> inventory: 8 of 20)",
        "FAIL: state_loss rate 9.8% > 1.0% (validator -> inventory: 3 of 20)",
        "FAIL: end-to-end success 31.6% < 90.0% (6 of 19 traces)",
    ]


def test_rates_alone_can_fail_a_run_without_error_findings(runner: CliRunner) -> None:
    assert runner.invoke(app, ["scan", WARNING_ONLY]).exit_code == 0
    result = runner.invoke(app, ["scan", WARNING_ONLY, "--max-failure-rate", "context_drift=10%"])
    assert result.exit_code == 1
    assert "FAIL: context_drift rate 50.0% > 10.0% (validator -> inventory: 1 of 1)" in result.stderr
    zero = runner.invoke(app, ["scan", WARNING_ONLY, "--max-failure-rate", "context_drift=10%", "--exit-zero"])
    assert zero.exit_code == 0 and "(--exit-zero: exit code 0)" in zero.stderr


def test_ignore_drops_findings_from_every_count(runner: CliRunner) -> None:
    result = runner.invoke(app, ["scan", LOSS, "--ignore", "SL101", "-f", "json"])
    assert result.exit_code == 0
    summary = orjson.loads(result.stdout)["summary"]
    assert summary["findings"] == 0 and summary["failed_handoffs"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-on", "state-loss"], "--fail-on: unknown class, kind or rule code 'state-loss'"),
        (["--max-failure-rate", "5"], "--max-failure-rate: '5' is not between 0 and 1"),
        (["--min-end-to-end-success", "most"], "--min-end-to-end-success: 'most' is not a rate"),
    ],
)
def test_bad_gate_options_are_exit_2(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["scan", LOSS, *args])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"handoff-audit: error: {message}")


def test_agent_names_in_the_verdict_cannot_reach_the_terminal_raw(runner: CliRunner, tmp_path: Path) -> None:
    from conftest import T, write_events

    t = T().hop("a\x1b[31m", "b\u202e", {"x": 1}, {"x": 2}).outcome("b\u202e")
    path = write_events(tmp_path / "e.jsonl", t.events)
    result = runner.invoke(app, ["scan", str(path), "--max-failure-rate", "0", "-f", "json"])
    assert "FAIL: handoff failure rate 100.0% > 0.0% (a\\x1b[31m -> b\\u202e: 1 of 1)" in result.stderr
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr


@pytest.mark.parametrize(
    ("spec", "default", "expected"),
    [
        ("r.json", None, ("json", "r.json")),
        ("R.XML", "csv", ("junit", "R.XML")),
        ("summary.md", None, ("markdown", "summary.md")),
        ("out.txt", None, ("table", "out.txt")),
        ("junit=reports/handoffs", None, ("junit", "reports/handoffs")),
        ("json=-", None, ("json", "-")),
        ("-", "csv", ("csv", "-")),
        ("report", "json", ("json", "report")),
        ("report", None, ("table", "report")),
        ("a=b.json", None, ("json", "a=b.json")),  # 'a' is no format: the whole is the path
    ],
)
def test_output_specs(spec: str, default: str | None, expected: tuple[str, str]) -> None:
    from handoff_audit.cli_ci import parse_output

    assert parse_output(spec, default) == expected

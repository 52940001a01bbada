"""Baselines: fingerprints, reading reports back, --baseline / --write-baseline and compare."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from conftest import SAMPLES, T, write_events
from typer.testing import CliRunner

from handoff_audit.baseline import compare, fingerprint, load_report, normalise_path
from handoff_audit.cli import app
from handoff_audit.errors import InputError

CLEAN = str(SAMPLES / "clean_ecommerce_run.jsonl")
LOSS = str(SAMPLES / "state_loss_removed_field.jsonl")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("order.items[2].qty", "order.items[].qty"),
        ('meta["x[1]"][3]', 'meta["x[1]"][]'),
        ("", ""),
    ],
)
def test_normalise_path(path: str, expected: str) -> None:
    assert normalise_path(path) == expected


def test_fingerprint_ignores_the_trace_and_the_list_index(audit) -> None:  # type: ignore[no-untyped-def]
    one = audit(T("run-1").hop("a", "b", {"items": [{"q": 1}]}, {"items": [{"q": 2}]}).outcome("b").events)
    two = audit(T("run-2").hop("a", "b", {"items": [{"q": 0}, {"q": 1}]}, {"items": [{"q": 0}, {"q": 3}]})
                .outcome("b").events)
    assert fingerprint(one.findings[0]) == fingerprint(two.findings[0]) == '["a","b","changed_value","CD201","items[].q"]'
    assert fingerprint(one.findings[0]) == fingerprint(orjson.loads(_json(one))["findings"][0])


def _json(report) -> str:  # type: ignore[no-untyped-def]
    from handoff_audit.formatters import render

    return render("json", report)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", "not a JSON report (not valid JSON)"),
        (b"[]", "no 'version': 1"),
        (b'{"version": 1, "findings": {}, "summary": {}}', "no 'findings' list"),
        (b'{"version": 1, "findings": [{"kind": 1}], "summary": {}}', "findings[0] lacks"),
    ],
)
def test_a_file_that_is_not_a_report_is_an_input_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        load_report(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_unchanged_baseline_passes_and_a_new_state_loss_fails(tmp_path: Path) -> None:
    runner = CliRunner()
    traces = tmp_path / "traces"
    traces.mkdir()
    (traces / "a.jsonl").write_bytes(Path(LOSS).read_bytes())
    base = tmp_path / "base.json"
    first = runner.invoke(app, ["scan", str(traces), "--write-baseline", str(base), "-q"])
    assert first.exit_code == 1 and base.exists()
    assert load_report(base).findings[0]["kind"] == "removed_field"
    again = runner.invoke(app, ["scan", str(traces), "--baseline", str(base), "-f", "json"])
    assert again.exit_code == 0, again.stderr
    assert "PASS: no finding or rate over the thresholds (1 of 1 findings known in the baseline)" in again.stderr
    assert len(orjson.loads(again.stdout)["findings"]) == 1  # the report still lists every finding
    t = T("new").hop("validator", "inventory", {"customer": {"email": "x@y", "id": 1}}, {"customer": {"id": 1}})
    write_events(traces / "b.jsonl", t.outcome("inventory").events)
    worse = runner.invoke(app, ["scan", str(traces), "--baseline", str(base), "--baseline-tolerance", "100%"])
    assert worse.exit_code == 1
    assert "FAIL: 1 new finding of severity error (SL101 removed_field 1)" in worse.stderr


def test_a_missing_baseline_is_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["scan", CLEAN, "--baseline", str(tmp_path / "nope.json"), "-o", str(out)])
    assert result.exit_code == 2 and not out.exists()
    assert f"{tmp_path / 'nope.json'}: no such file or directory" in result.stderr


def _report_file(tmp_path: Path, name: str, *paths: str) -> Path:
    out = tmp_path / name
    result = CliRunner().invoke(app, ["scan", *paths, "-o", str(out), "-q"])
    assert result.exit_code in (0, 1)
    return out


def test_compare_shows_worse_and_better_and_exits_1_on_regression(tmp_path: Path) -> None:
    old = _report_file(tmp_path, "old.json", CLEAN)
    new = _report_file(tmp_path, "new.json", CLEAN, LOSS)
    runner = CliRunner()
    result = runner.invoke(app, ["compare", str(old), str(new)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "  handoff failure: 0.0% -> 16.7% (worse)" in lines
    assert "  state_loss: 0.0% -> 16.7% (worse)" in lines
    assert "  validator -> inventory state_loss: 0 -> 1 (worse)" in lines
    assert "  +1 validator -> inventory SL101 removed_field customer.shipping_address (0 -> 1)" in lines
    back = runner.invoke(app, ["compare", str(new), str(old)])
    assert back.exit_code == 0
    assert "  -1 validator -> inventory SL101 removed_field customer.shipping_address (1 -> 0)" in back.stdout
    assert back.stdout.endswith("0 regressions\n")
    same = runner.invoke(app, ["compare", str(new), str(new)])
    assert same.exit_code == 0 and "findings by fingerprint: no change" in same.stdout


def test_compare_tolerance_and_bad_input(tmp_path: Path) -> None:
    old = _report_file(tmp_path, "old.json", CLEAN, LOSS)
    new = tmp_path / "new.json"
    data = orjson.loads(old.read_bytes())
    data["summary"]["end_to_end_success_rate"] -= 0.01
    new.write_bytes(orjson.dumps(data))
    assert compare(load_report(old), load_report(new)).regressions == 1
    assert compare(load_report(old), load_report(new), tolerance=0.02).regressions == 0
    result = CliRunner().invoke(app, ["compare", str(old), str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "missing.json: no such file or directory" in result.stderr


def test_a_baseline_without_per_class_counts_is_compared_on_overall_rates(tmp_path: Path) -> None:
    base = _report_file(tmp_path, "base.json", CLEAN, LOSS)
    data = orjson.loads(base.read_bytes())
    del data["summary"]["failed_handoffs_by_class"]
    base.write_bytes(orjson.dumps(data))
    saved = load_report(base).baseline()
    assert saved.class_failure_rates == {"state_loss": None, "context_drift": None, "responsibility_gap": None}
    assert saved.handoff_failure_rate == pytest.approx(1 / 6, abs=1e-6)
    result = CliRunner().invoke(app, ["scan", CLEAN, LOSS, "--baseline", str(base)])
    assert result.exit_code == 0, result.stderr


def test_compare_prints_nothing_from_a_report_raw(tmp_path: Path) -> None:
    # A report file is trace data at one remove: every string in it, keys included, may be hostile.
    evil = "x\x1b]0;pwn\x07\x1b[2J\u202e\u200b"
    old = _report_file(tmp_path, "old.json", CLEAN)
    data = orjson.loads(_report_file(tmp_path, "new.json", CLEAN, LOSS).read_bytes())

    def poison(node):  # type: ignore[no-untyped-def]
        if isinstance(node, dict):
            return {(k + evil if k in ("by_class",) else k): poison(v) for k, v in node.items()}
        if isinstance(node, list):
            return [poison(v) for v in node]
        return node + evil if isinstance(node, str) else node

    data["findings"] = poison(data["findings"])
    data["summary"]["failed_handoffs_by_class"][evil] = 3
    new = tmp_path / "evil.json"
    new.write_bytes(orjson.dumps(data))
    result = CliRunner().invoke(app, ["compare", str(old), str(new)])
    assert result.exit_code == 1
    assert "\\x1b]0;pwn\\x07" in result.stdout
    assert all(line.isprintable() for line in result.stdout.splitlines())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("handoff_failure_rate", "high", "'summary.handoff_failure_rate' is not a rate (a number from 0 to 1, or null)"),
        ("end_to_end_success_rate", [1], "'summary.end_to_end_success_rate' is not a rate"),
        ("agent_success_rate", 1.5, "'summary.agent_success_rate' is not a rate"),
        ("handoff_failure_rate", True, "'summary.handoff_failure_rate' is not a rate"),
        ("handoffs", "98", "'summary.handoffs' is not a count"),
        ("handoffs", -1, "'summary.handoffs' is not a count"),
        ("failed_handoffs_by_class", [], "'summary.failed_handoffs_by_class' is not an object of counts"),
        ("failed_handoffs_by_class", {"state_loss": 1.5}, "'summary.failed_handoffs_by_class' is not an object of counts"),
        ("edges", {}, "'summary.edges' is not a list of edges"),
        ("edges", [{"from": "a"}], "'summary.edges' is not a list of edges"),
    ],
)
def test_a_report_field_of_the_wrong_type_is_an_input_error_naming_it(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    path = _report_file(tmp_path, "base.json", CLEAN, LOSS)
    data = orjson.loads(path.read_bytes())
    data["summary"][field] = value
    path.write_bytes(orjson.dumps(data))
    with pytest.raises(InputError) as err:
        load_report(path)
    assert str(err.value).startswith(f"{path}: {message}")
    runner = CliRunner()
    for args in (["scan", CLEAN, "--baseline", str(path)], ["compare", str(path), str(path)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr.startswith(f"handoff-audit: error: {path}: {message}")


def test_a_report_with_null_rates_is_read_as_having_no_rate(tmp_path: Path) -> None:
    path = _report_file(tmp_path, "base.json", CLEAN)
    data = orjson.loads(path.read_bytes())
    data["summary"]["handoff_failure_rate"] = None
    path.write_bytes(orjson.dumps(data))
    assert load_report(path).baseline().handoff_failure_rate is None

"""The settings file: [tool.handoff-audit] or handoff-audit.toml; the command line wins."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from conftest import SAMPLES
from typer.testing import CliRunner

from handoff_audit.cli import app
from handoff_audit.errors import UsageError
from handoff_audit.settings import discover, load

LOSS = str(SAMPLES / "state_loss_removed_field.jsonl")
WARNING_ONLY = str(SAMPLES / "context_drift_injected_field.jsonl")


def test_pyproject_table_is_read_and_paths_are_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.handoff-audit]\nfail-on = ["state_loss", "CD203"]\nignore = "CD205"\n'
        'max-failure-rate = {overall = 0.2, state_loss = "1%"}\nmin-end-to-end-success = 0.5\n'
        'output = ["reports/r.json", "junit=reports/j"]\nbaseline = "base.json"\nstrict = true\n'
    )
    s = load(tmp_path / "pyproject.toml")
    assert s.source == f"{tmp_path / 'pyproject.toml'} [tool.handoff-audit]"
    assert s.fail_on == ("state_loss", "CD203") and s.ignore == ("CD205",)
    assert s.max_failure_rate == ("overall=0.2", "state_loss=1%")
    assert s.output == (str(tmp_path / "reports/r.json"), f"junit={tmp_path / 'reports/j'}")
    assert s.baseline == str(tmp_path / "base.json") and s.strict


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "handoff-audit.toml"
    path.write_text('fail_on = "state_loss"\n')
    with pytest.raises(UsageError, match=r"handoff-audit.toml: unknown key 'fail_on' \(known keys: "):
        load(path)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("strict = 1", "'strict' must be true or false"),
        ("ignore = [1]", "'ignore' must be a string or a list of strings"),
        ("max-failure-rate = true", "'max-failure-rate' must be a rate"),
        ("fail-on = [", "not valid TOML"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "handoff-audit.toml"
    path.write_text(toml + "\n")
    with pytest.raises(UsageError, match=message):
        load(path)


def test_discovery_walks_up_and_skips_a_pyproject_without_the_table(tmp_path: Path) -> None:
    (tmp_path / "handoff-audit.toml").write_text("strict = true\n")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    (tmp_path / "a" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert discover(sub) == tmp_path / "handoff-audit.toml"
    (tmp_path / "a" / "pyproject.toml").write_text('[tool.handoff-audit]\nstrict = false\n')
    assert discover(sub) == tmp_path / "a" / "pyproject.toml"


def test_cli_uses_the_file_and_flags_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.handoff-audit]\nfail-on = "warning"\noutput = "out.json"\n')
    runner = CliRunner()
    result = runner.invoke(app, ["scan", LOSS])  # the error finding is not selected by fail-on = warning
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and orjson.loads((tmp_path / "out.json").read_bytes())["findings"]
    assert runner.invoke(app, ["scan", WARNING_ONLY]).exit_code == 1
    result = runner.invoke(app, ["scan", LOSS, "--fail-on", "state_loss", "-o", "-", "-f", "csv"])
    assert result.exit_code == 1 and result.stdout.startswith("trace_id,")


def test_cli_reports_a_bad_file_as_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "handoff-audit.toml").write_text("colour = true\n")
    result = CliRunner().invoke(app, ["scan", LOSS])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"handoff-audit: error: {tmp_path.resolve() / 'handoff-audit.toml'}: unknown key 'colour' (known keys: "
        "baseline, baseline-tolerance, fail-on, format, ignore, max-failure-rate, min-end-to-end-success, output, "
        "strict)"
    )
    other = tmp_path / "other.toml"
    other.write_text('ignore = "SL101"\n')
    assert CliRunner().invoke(app, ["scan", LOSS, "--config", str(other)]).exit_code == 0
    missing = CliRunner().invoke(app, ["scan", LOSS, "--config", str(tmp_path / "none.toml")])
    assert missing.exit_code == 2 and "none.toml: no such configuration file" in missing.stderr


def test_a_named_settings_file_that_is_not_utf8_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(UsageError, match=r"pyproject.toml: not valid TOML \(not UTF-8 text at byte 0\)"):
        load(path)
    result = CliRunner().invoke(app, ["scan", LOSS, "--config", str(path)])
    assert result.exit_code == 2
    assert result.stderr == f"handoff-audit: error: {path}: not valid TOML (not UTF-8 text at byte 0)\n"


def test_discovery_passes_over_a_pyproject_that_is_not_utf8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "handoff-audit.toml").write_text('ignore = "SL101"\n')
    sub = tmp_path / "a"
    sub.mkdir()
    (sub / "pyproject.toml").write_bytes(b'[tool.handoff-audit]\nstrict = true # \xff\n')
    assert discover(sub) == tmp_path / "handoff-audit.toml"
    monkeypatch.chdir(sub)
    result = CliRunner().invoke(app, ["scan", LOSS])
    assert result.exit_code == 0, result.stderr  # the file above ignores the one finding

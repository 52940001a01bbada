"""Docs stay true to the code: README commands, CI command, rule docs, help texts."""

from __future__ import annotations

import re

from conftest import REPO
from typer.testing import CliRunner

from handoff_audit.cli import app
from handoff_audit.rules import RULES

README = (REPO / "README.md").read_text(encoding="utf-8")


def _sh_blocks() -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", README, flags=re.S)]


def test_readme_opens_with_the_install_and_run_and_the_test_commands() -> None:
    run_cmd, test_cmd = _sh_blocks()[:2]
    assert "pip install ." in run_cmd and run_cmd.endswith("handoff-audit scan sample_traces/")
    assert "pip install '.[test,openai-agents,langgraph]'" in test_cmd and test_cmd.endswith("python -m pytest")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_cmd = _sh_blocks()[1]
    ci_lines = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci_lines[-1] == test_cmd


def test_every_rule_is_documented_in_the_rules_doc_and_the_readme() -> None:
    rules_doc = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    for kind, rule in RULES.items():
        assert f"## {rule.code} {kind}" in rules_doc
        assert f"| {rule.code} | `{kind}` | {rule.failure_class.value} | {rule.severity.value} |" in README


def test_every_option_in_the_readme_and_the_ci_doc_exists() -> None:
    help_text = "".join(CliRunner().invoke(app, [cmd, "--help"]).stdout for cmd in ("scan", "compare"))
    ci_doc = (REPO / "docs" / "ci.md").read_text(encoding="utf-8")
    for flag in re.findall(r"`(?:-\w, )?(--[a-z-]+)", README + ci_doc):
        if flag != "--handoff-audit":  # the pytest plugin's option, not the command's
            assert flag in help_text, flag


def test_every_scan_option_is_in_the_readme() -> None:
    import typer.main

    scan = typer.main.get_command(app).commands["scan"]  # type: ignore[attr-defined]
    for param in scan.params:
        for opt in param.opts:
            if opt.startswith("--") and opt != "--help":
                assert f"`{opt}" in README or f", {opt}" in README, opt


def test_every_settings_key_is_documented() -> None:
    from pathlib import Path

    from handoff_audit.settings import _keys

    ci_doc = (REPO / "docs" / "ci.md").read_text(encoding="utf-8")
    for key in _keys(Path(".")):
        assert f"| `{key}` |" in ci_doc, key


def test_every_command_has_help_text() -> None:
    import typer.main

    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert command.help, name
        assert name in README

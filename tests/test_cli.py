"""The command line through typer's CliRunner: exit codes, stdout vs stderr, --output, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import SAMPLES, T, write_events
from typer.testing import CliRunner

from handoff_audit.cli import app

CLEAN = str(SAMPLES / "clean_ecommerce_run.jsonl")
FAULTY = str(SAMPLES / "state_loss_removed_field.jsonl")
WARNING_ONLY = str(SAMPLES / "context_drift_injected_field.jsonl")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_clean_run_exits_0_with_report_on_stdout_and_summary_on_stderr(runner: CliRunner) -> None:
    result = runner.invoke(app, ["scan", CLEAN, "--format", "json"])
    assert result.exit_code == 0
    report = orjson.loads(result.stdout)
    assert report["summary"]["traces"] == 2 and report["findings"] == []
    assert result.stderr.startswith("handoff-audit: 2 traces, 4 handoffs, 0 findings")


def test_error_findings_exit_1_and_exit_zero_overrides(runner: CliRunner) -> None:
    assert runner.invoke(app, ["scan", FAULTY]).exit_code == 1
    assert runner.invoke(app, ["scan", FAULTY, "--exit-zero"]).exit_code == 0


def test_warnings_alone_exit_0(runner: CliRunner) -> None:
    result = runner.invoke(app, ["scan", WARNING_ONLY, "-f", "json"])
    assert result.exit_code == 0
    assert [f["severity"] for f in orjson.loads(result.stdout)["findings"]] == ["warning"]


def test_missing_file_is_one_line_on_stderr_and_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"handoff-audit: error: {tmp_path / 'missing.jsonl'}: no such file or directory"]


def test_no_events_is_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "junk.jsonl"
    path.write_text("not json\n")
    result = runner.invoke(app, ["scan", str(path)])
    assert result.exit_code == 2
    assert result.stderr == f"handoff-audit: error: {path}: no usable events (1 line skipped; line 1: not a known trace format (tried native, otlp-json, agents-sdk, otel-console))\n"


def test_strict_turns_a_skipped_line_into_exit_2(runner: CliRunner) -> None:
    bad = str(SAMPLES / "skipped_lines_bad_input.jsonl")
    assert runner.invoke(app, ["scan", bad, "--exit-zero"]).exit_code == 0
    result = runner.invoke(app, ["scan", bad, "--strict"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{bad}:4: 'state' is not an object (and 3 more skipped lines)" in result.stderr


def test_output_is_written_only_after_success(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["scan", FAULTY, "-f", "json", "-o", str(out)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert orjson.loads(out.read_bytes())["summary"]["findings"] == 1
    failed = tmp_path / "never.json"
    result = runner.invoke(app, ["scan", str(tmp_path / "missing.jsonl"), "-o", str(failed)])
    assert result.exit_code == 2 and not failed.exists()
    assert list(tmp_path.iterdir()) == [out]


def test_stdin(runner: CliRunner) -> None:
    data = Path(FAULTY).read_bytes()
    result = runner.invoke(app, ["scan", "-", "-f", "csv"], input=data)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1].split(",")[5] == "removed_field"


def test_unknown_format_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["scan", CLEAN, "--format", "yaml"])
    assert result.exit_code == 2


def test_an_internal_error_names_only_its_type_unless_debug(runner: CliRunner, monkeypatch, tmp_path: Path) -> None:
    from handoff_audit import pipeline

    def boom(config):  # type: ignore[no-untyped-def]
        raise ValueError("customer secret 4111-1111")

    monkeypatch.setattr(pipeline, "run", boom)
    result = runner.invoke(app, ["scan", CLEAN])
    assert result.exit_code == 2
    assert "secret" not in result.stderr and "Traceback" not in result.stderr
    assert "internal error (ValueError)" in result.stderr
    result = runner.invoke(app, ["scan", CLEAN, "--debug"])
    assert result.exit_code == 2  # a traceback as well, but never exit 1, which is a verdict
    assert "Traceback" in result.stderr and "ValueError: customer secret" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["scan", CLEAN, "-f", "json"],
        ["convert", CLEAN],
        ["stats", CLEAN],
        ["contracts", "check", str(Path(__file__).parent.parent / "examples" / "ecommerce.contracts.yaml")],
    ],
)
def test_a_full_disk_on_standard_output_is_exit_2_and_a_closed_pipe_is_quiet(args: list[str]) -> None:
    # Through real processes: what fails is the real standard output.
    full = subprocess.run([sys.executable, "-m", "handoff_audit", *args], stdout=open("/dev/full", "wb"),
                          stderr=subprocess.PIPE, check=False)
    assert full.returncode == 2
    assert full.stderr.decode().splitlines()[-1] == (
        "handoff-audit: error: standard output: cannot write (No space left on device)"
    )
    proc = subprocess.Popen([sys.executable, "-m", "handoff_audit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away before a byte is read, as under | head -c 0
    err = proc.stderr.read().decode()
    assert proc.wait() == 2
    assert "Traceback" not in err and "internal error" not in err and "Exception ignored" not in err


def test_an_empty_fail_on_is_a_usage_error_not_a_pass(runner: CliRunner) -> None:
    faulty = str(SAMPLES / "state_loss_removed_field.jsonl")
    for value in ("", ",", " , "):
        result = runner.invoke(app, ["scan", faulty, "-q", "--fail-on", value])
        assert result.exit_code == 2
        assert "--fail-on: no class, kind or rule code given" in result.stderr
    assert runner.invoke(app, ["scan", faulty, "-q", "--fail-on", "none"]).exit_code == 0
    assert runner.invoke(app, ["scan", faulty, "-q", "--ignore", ""]).exit_code == 1  # ignoring nothing is safe


def test_table_output_escapes_markup_and_control_characters(runner: CliRunner, tmp_path: Path) -> None:
    sent = {"note": "[bold red]pwned[/] \x1b[31mred\x1b[0m"}
    t = T("[link=x]t[/link]").hop("a", "b", sent, {"note": "\x1b]0;title\x07"}).outcome("b")
    path = write_events(tmp_path / "evil.jsonl", t.events)
    result = runner.invoke(app, ["scan", str(path)], env={"COLUMNS": "200"})
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "[bold red]pwned[/]" in result.stdout
    assert "\\u001b]0;title\\u0007" in result.stdout  # JSON-escaped, shown literally
    assert "[link=x]t[/link]" in result.stdout


def test_version_and_help(runner: CliRunner) -> None:
    from handoff_audit import __version__

    assert runner.invoke(app, ["--version"]).stdout.strip() == f"handoff-audit {__version__}"
    help_text = runner.invoke(app, ["scan", "--help"]).stdout
    for flag in ("--format", "--output", "--strict", "--exit-zero", "--debug", "--idle-lines", "--jobs", "--quiet"):
        assert flag in help_text


def test_python_dash_m_runs_the_same_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "handoff_audit", "scan", FAULTY, "-f", "json", "-q"], capture_output=True, check=False
    )
    assert proc.returncode == 1
    assert orjson.loads(proc.stdout)["findings"][0]["kind"] == "removed_field"
    assert proc.stderr == b""


# Every command that writes a file given with -o writes it the same way.
WRITERS = [["scan", CLEAN, "-f", "json"], ["convert", CLEAN]]


@pytest.mark.parametrize("command", WRITERS)
def test_output_to_a_device_writes_through_and_leaves_it_a_device(
    runner: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    import os
    import stat

    # A null device of the test's own where the test may make one: a run as root that replaced the
    # device it was given would otherwise replace the machine's /dev/null.
    device = Path("/dev/null")
    if os.geteuid() == 0:
        device = tmp_path / "null"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        try:
            device.write_bytes(b"")
        except OSError:  # a file system mounted nodev
            pytest.skip("a device made here cannot be opened")
    result = runner.invoke(app, [*command, "-o", str(device)])
    assert result.exit_code == 0
    assert stat.S_ISCHR(device.stat().st_mode)


@pytest.mark.parametrize("command", WRITERS)
def test_output_to_a_pipe_writes_through_it(runner: CliRunner, tmp_path: Path, command: list[str]) -> None:
    import os
    import stat
    import threading

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)  # never holds the run
    reader.start()
    result = runner.invoke(app, [*command, "-o", str(fifo)])
    reader.join(10)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(fifo.stat().st_mode) and got and got[0].strip()


@pytest.mark.parametrize("command", WRITERS)
def test_output_into_a_missing_directory_is_exit_2(runner: CliRunner, tmp_path: Path, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "-o", str(tmp_path / "no" / "r.json")])
    assert result.exit_code == 2
    assert "r.json: cannot write" in result.stderr


@pytest.mark.parametrize("command", WRITERS)
def test_output_file_gets_ordinary_permissions(runner: CliRunner, tmp_path: Path, command: list[str]) -> None:
    import os

    out = tmp_path / "r.json"
    runner.invoke(app, [*command, "-o", str(out)])
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    out.chmod(0o640)
    runner.invoke(app, [*command, "-o", str(out)])
    assert out.stat().st_mode & 0o777 == 0o640


def test_a_progress_bar_goes_to_stderr_only_and_leaves_the_report_alone(tmp_path: Path) -> None:
    # Through a real process: the bar is drawn by a thread on the real stderr.
    args = [sys.executable, "-m", "handoff_audit", "scan", str(SAMPLES), "-f", "json", "--exit-zero"]
    plain = subprocess.run([*args, "--no-progress"], capture_output=True, check=True)
    shown = subprocess.run([*args, "--progress", "--jobs", "2"], capture_output=True, check=True)
    assert shown.stdout == plain.stdout
    assert shown.stderr.strip().splitlines()[-1] == plain.stderr.strip().splitlines()[-1]


def test_the_bar_is_drawn_by_default_only_on_a_terminal_for_large_inputs(monkeypatch, tmp_path: Path) -> None:
    from handoff_audit import progress
    from handoff_audit.sources import Source

    big = tmp_path / "big.jsonl"
    with open(big, "wb") as fh:
        fh.truncate(progress.MIN_BYTES)
    small = Source(str(SAMPLES / "clean_ecommerce_run.jsonl"), str(SAMPLES / "clean_ecommerce_run.jsonl"))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert progress.wanted([Source(str(big), str(big))], None)
    assert not progress.wanted([small], None)
    assert not progress.wanted([Source(str(big), str(big)), Source("<stdin>", None)], None)  # no total to show
    assert progress.wanted([small], True) and not progress.wanted([Source(str(big), str(big))], False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert not progress.wanted([Source(str(big), str(big))], None)


@pytest.mark.parametrize("command", [["scan"], ["convert"], ["stats"], ["show", "t"], ["contracts", "infer"]])
def test_standard_input_named_twice_is_a_usage_error(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "-", "-"], input="{}\n")
    assert result.exit_code == 2
    assert result.stderr == "handoff-audit: error: - (standard input) is named more than once; it can be read only once\n"

"""The command line's CI options: several outputs, thresholds, baselines, the settings file, compare.

``cli.py`` declares these options on ``scan`` (the aliases below) and hands them to ``resolve``,
which merges them with the settings file (the command line wins) into a ``CiOptions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from handoff_audit.errors import UsageError
from handoff_audit.formatters import EXTENSIONS, REGISTRY
from handoff_audit.policy import (
    DEFAULT_BASELINE_TOLERANCE,
    Thresholds,
    parse_failure_rates,
    parse_rate,
    select_codes,
)
from handoff_audit.settings import FileSettings
from handoff_audit.settings import resolve as resolve_settings

STDOUT = "-"

OutputsOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--output",
        "-o",
        metavar="[FORMAT=]PATH",
        help="Write the report to PATH, in FORMAT or the format its extension names (.json, .csv, "
        ".xml for junit, .md for markdown, .txt for table; else --format); repeat for several reports. "
        "'-' is stdout. "
        "Files are written only after the run succeeded.",
        show_default=False,
    ),
]
FailOnOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--fail-on",
        metavar="SELECTOR",
        help="Fail only on findings of these classes, kinds or rule codes (comma-separated or repeated; "
        "'error', 'warning' or 'none' also work). Default: every finding of severity error.",
        show_default=False,
    ),
]
IgnoreOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--ignore",
        metavar="SELECTOR",
        help="Drop findings of these rule codes (or kinds, classes) before anything is counted.",
        show_default=False,
    ),
]
MaxFailureRateOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--max-failure-rate",
        metavar="[CLASS=]RATE",
        help="Fail when the handoff failure rate, or a class's rate (handoffs with a finding of that class), "
        "is above RATE (0.05 or 5%). Repeatable.",
        show_default=False,
    ),
]
MinEndToEndOpt = Annotated[
    Optional[str],
    typer.Option(
        "--min-end-to-end-success",
        metavar="RATE",
        help="Fail when the end-to-end success rate is below RATE.",
        show_default=False,
    ),
]
BaselineOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--baseline",
        metavar="REPORT.json",
        help="Fail only on findings new relative to this JSON report, and on rates worse than its own.",
        dir_okay=False,
        show_default=False,
    ),
]
BaselineToleranceOpt = Annotated[
    Optional[str],
    typer.Option(
        "--baseline-tolerance",
        metavar="RATE",
        help="How much worse than the baseline's a rate may get before the run fails (default 0).",
        show_default=False,
    ),
]
WriteBaselineOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--write-baseline",
        metavar="PATH",
        help="Also write the JSON report to PATH, for a later --baseline.",
        dir_okay=False,
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--config",
        metavar="FILE",
        help="Read defaults from this file (pyproject.toml or handoff-audit.toml) instead of the one found "
        "in the working directory or its parents.",
        dir_okay=False,
        show_default=False,
    ),
]


@dataclass(frozen=True, slots=True)
class CiOptions:
    """The CI options after merging the settings file and the command line."""

    outputs: tuple[tuple[str, str], ...]  # (format, path); path "-" is stdout
    thresholds: Thresholds
    ignore: frozenset[str]
    baseline: str | None
    strict: bool

    @property
    def keep_traces(self) -> bool:
        """Per-trace records are needed only by the JUnit report."""
        return any(fmt == "junit" for fmt, _ in self.outputs)


def parse_output(spec: str, default_format: str | None) -> tuple[str, str]:
    """``[FORMAT=]PATH`` -> (format, path).

    Without ``FORMAT=``, the format comes from the extension; for any other name it is
    ``default_format`` (``--format``), else ``table``.
    """
    fmt, sep, path = spec.partition("=")
    if sep and fmt in REGISTRY:
        if not path:
            raise UsageError(f"--output {spec}: no path after '{fmt}='")
        return fmt, path
    path = spec
    if path == STDOUT:
        return default_format or "table", path
    suffix = Path(path).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix], path
    return default_format or "table", path


def resolve(
    *,
    config: Path | None,
    fmt: str | None,
    outputs: list[str] | None,
    fail_on: list[str] | None,
    ignore: list[str] | None,
    max_failure_rate: list[str] | None,
    min_end_to_end_success: str | None,
    baseline: Path | None,
    baseline_tolerance: str | None,
    write_baseline: Path | None,
    strict: bool,
) -> CiOptions:
    """Merge the command line over the settings file; raises UsageError naming the bad option or key."""
    settings: FileSettings = resolve_settings(None if config is None else str(config))
    where = settings.source or ""

    def opt(name: str) -> str:
        return f"{where}: '{name}'" if where else name

    stdout_format = fmt if fmt is not None else settings.format
    if stdout_format is not None and stdout_format not in REGISTRY:
        raise UsageError(f"{opt('format')}: unknown format {stdout_format!r} (formats: {', '.join(sorted(REGISTRY))})")
    specs = list(outputs) if outputs else list(settings.output)
    parsed = [parse_output(s, stdout_format) for s in specs]
    if not parsed:
        parsed = [(stdout_format or "table", STDOUT)]
    if write_baseline is not None:
        parsed.append(("json", str(write_baseline)))
    if sum(path == STDOUT for _, path in parsed) > 1:
        raise UsageError("--output: only one report can go to stdout")
    for _, path in parsed:
        # Checked before the run, so that no report is written when another one could not be.
        if path != STDOUT and not Path(path).parent.is_dir():
            raise UsageError(f"{path}: cannot write report (no such directory)")

    if fail_on is not None:
        fail_codes = select_codes(fail_on, "--fail-on")
    elif settings.fail_on is not None:
        fail_codes = select_codes(settings.fail_on, opt("fail-on"))
    else:
        fail_codes = None
    ignore_codes = (
        select_codes(ignore, "--ignore", empty_ok=True) if ignore
        else select_codes(settings.ignore, opt("ignore"), empty_ok=True)
    )
    rates = parse_failure_rates(settings.max_failure_rate, opt("max-failure-rate"))
    rates.update(parse_failure_rates(max_failure_rate or (), "--max-failure-rate"))
    if min_end_to_end_success is not None:
        min_e2e: float | None = parse_rate(min_end_to_end_success, "--min-end-to-end-success")
    elif settings.min_end_to_end_success is not None:
        min_e2e = parse_rate(settings.min_end_to_end_success, opt("min-end-to-end-success"))
    else:
        min_e2e = None
    if baseline_tolerance is not None:
        tolerance = parse_rate(baseline_tolerance, "--baseline-tolerance")
    elif settings.baseline_tolerance is not None:
        tolerance = parse_rate(settings.baseline_tolerance, opt("baseline-tolerance"))
    else:
        tolerance = DEFAULT_BASELINE_TOLERANCE
    return CiOptions(
        outputs=tuple(parsed),
        thresholds=Thresholds(fail_codes, rates, min_e2e, tolerance),
        ignore=ignore_codes,
        baseline=str(baseline) if baseline is not None else settings.baseline,
        strict=strict or settings.strict,
    )


OldReportArg = Annotated[Path, typer.Argument(metavar="OLD.json", help="The earlier JSON report.", dir_okay=False)]
NewReportArg = Annotated[Path, typer.Argument(metavar="NEW.json", help="The later JSON report.", dir_okay=False)]
ToleranceOpt = Annotated[
    str,
    typer.Option("--tolerance", metavar="RATE", help="How much worse a rate may get before it counts as a regression."),
]


def compare(old: Path, new: Path, tolerance: str) -> int:
    """Print what got better and worse from OLD to NEW; 1 on any regression, else 0."""
    from handoff_audit.baseline import compare as compare_reports
    from handoff_audit.baseline import load_report
    from handoff_audit.cli import write_stdout

    result = compare_reports(load_report(old), load_report(new), parse_rate(tolerance, "--tolerance"))
    write_stdout("\n".join(result.lines) + "\n")
    return 1 if result.regressions else 0

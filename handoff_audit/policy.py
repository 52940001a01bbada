"""Report -> exit code. Pure, so that it can be table-tested."""

from __future__ import annotations

from handoff_audit.errors import ExitCode
from handoff_audit.models import Report


def verdict(report: Report, *, exit_zero: bool = False) -> ExitCode:
    """FINDINGS when any finding has severity ``error`` (unless ``exit_zero``), else PASSED."""
    if exit_zero:
        return ExitCode.PASSED
    if report.summary.findings_by_severity.get("error", 0) > 0:
        return ExitCode.FINDINGS
    return ExitCode.PASSED

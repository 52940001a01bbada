"""pytest plugin (entry point ``pytest11``): audit trace files from a test suite.

- The ``handoff_audit`` fixture scans traces and asserts on the result::

      def test_checkout_keeps_state(handoff_audit):
          report = handoff_audit.scan("tests/traces/checkout.jsonl")
          handoff_audit.assert_clean(report, "state_loss")

- Opt-in collection (``--handoff-audit`` or ``handoff_audit_collect = true`` in the pytest ini
  settings) turns every file matching ``handoff_audit_glob`` (default ``*.trace.jsonl``) into one
  test item per trace; an item fails when its trace has a finding that fails the run
  (``handoff_audit_fail_on``, default: findings of severity error).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported where used: every pytest run loads this module, most never use it
    from handoff_audit.models import Finding, Report, TraceRecord

DEFAULT_GLOB = "*.trace.jsonl"
VALUE_WIDTH = 60
ABSENT_KINDS = frozenset({"removed_field", "not_forwarded"})  # their ``received`` is absent, not null


def describe(f: Finding) -> str:
    """One finding as one readable line (trace text escaped, values shortened)."""
    from handoff_audit.formatters._text import json_text, printable, shorten

    edge = "(trace)" if f.from_agent is None else f"{f.from_agent} -> {f.to_agent}"
    at = f" ({f.file}:{f.line})" if f.file is not None else ""
    values = ""
    if f.sent is not None or f.received is not None:
        received = "(absent)" if f.kind in ABSENT_KINDS else shorten(json_text(f.received), VALUE_WIDTH)
        values = f" [{shorten(json_text(f.sent), VALUE_WIDTH)} -> {received}]"
    path = f" at {printable(f.path)}" if f.path else ""
    return printable(f"trace {f.trace_id}, {edge}: ") + f"{f.code} {f.kind}{path}: {printable(f.message)}{values}{at}"


def findings_message(findings: Iterable[Finding], what: str) -> str:
    """``N findings of WHAT:`` and one line per finding."""
    items = list(findings)
    head = f"{len(items)} finding{'' if len(items) == 1 else 's'} {what}:"
    return "\n".join([head, *(f"  {describe(f)}" for f in items)])


def assert_clean(report: Report, *selectors: str) -> None:
    """Fail (AssertionError) if ``report`` has a finding of these classes, kinds or codes.

    With no selector: any finding that fails the report's verdict (by default, severity error).
    """
    from handoff_audit.policy import evaluate, select_codes

    __tracebackhide__ = True  # pytest shows the caller's line, not this function
    if selectors:
        codes = select_codes(selectors, "assert_clean")
        bad = [f for f in report.findings if f.code in codes]
        what = "of " + ", ".join(selectors)
    else:
        verdict = report.verdict if report.verdict is not None else evaluate(report)
        bad = [report.findings[i] for i in sorted(verdict.failing)]
        what = "failing the audit"
    if bad:
        raise AssertionError(findings_message(bad, what))


class HandoffAudit:
    """What the ``handoff_audit`` fixture gives a test: ``scan`` and ``assert_clean``."""

    def scan(self, *paths: str | Path, **options: Any) -> Report:
        """``handoff_audit.scan`` over ``paths`` (keyword options as that function takes them)."""
        from handoff_audit.api import scan

        return scan(list(paths), **options)

    def assert_clean(self, report: Report, *selectors: str) -> None:
        """See ``assert_clean``."""
        __tracebackhide__ = True
        assert_clean(report, *selectors)


@pytest.fixture
def handoff_audit() -> HandoffAudit:
    """Audit trace files in a test and assert on the findings."""
    return HandoffAudit()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("handoff-audit")
    group.addoption(
        "--handoff-audit",
        action="store_true",
        dest="handoff_audit_collect",
        help="Collect trace files (handoff_audit_glob) as test items, one per trace.",
    )
    parser.addini("handoff_audit_collect", type="bool", default=False, help="Collect trace files as test items.")
    parser.addini("handoff_audit_glob", type="args", default=[DEFAULT_GLOB], help="File name patterns of trace files.")
    parser.addini(
        "handoff_audit_fail_on",
        type="args",
        default=[],
        help="Classes, kinds or rule codes that fail a trace item (default: findings of severity error).",
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    config = parent.config
    if not (config.getoption("handoff_audit_collect") or config.getini("handoff_audit_collect")):
        return None
    if any(fnmatch.fnmatch(file_path.name, pattern) for pattern in config.getini("handoff_audit_glob")):
        return TraceFile.from_parent(parent, path=file_path)
    return None


class TraceFile(pytest.File):
    """A trace file: one item per trace in it."""

    def collect(self) -> Iterator[pytest.Item]:
        from handoff_audit.api import scan
        from handoff_audit.errors import HandoffAuditError
        from handoff_audit.formatters._text import printable

        fail_on = self.config.getini("handoff_audit_fail_on") or None
        try:
            report = scan(str(self.path), fail_on=fail_on, keep_traces=True)
        except HandoffAuditError as err:
            raise self.CollectError(f"handoff-audit: {err}") from None
        assert report.verdict is not None
        failing_ids = {id(report.findings[i]) for i in report.verdict.failing}
        for trace in report.traces:
            yield TraceItem.from_parent(self, name=printable(trace.trace_id), trace=trace, failing_ids=failing_ids)
        if report.summary.skipped:
            yield SkippedLinesItem.from_parent(self, name="skipped input lines", report=report)


class TraceAuditFailure(Exception):
    """A trace has findings that fail the audit."""


class TraceItem(pytest.Item):
    """One trace: fails when it has a finding that fails the audit."""

    def __init__(self, *, trace: TraceRecord, failing_ids: set[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trace = trace
        self.failing_ids = failing_ids

    def runtest(self) -> None:
        found = [f for h in self.trace.handoffs for f in h.findings] + list(self.trace.findings)
        bad = [f for f in found if id(f) in self.failing_ids]
        if bad:
            raise TraceAuditFailure(findings_message(bad, "failing the audit"))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, TraceAuditFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"trace {self.name}"


class SkippedLinesItem(pytest.Item):
    """Lines of the file that could not be used: shown as a skipped test with the first reason."""

    def __init__(self, *, report: Report, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.report = report

    def runtest(self) -> None:
        first = self.report.skipped[0]
        n = self.report.summary.skipped
        pytest.skip(f"{n} input line{'' if n == 1 else 's'} skipped, first {first.file}:{first.line}: {first.reason}")

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, "skipped input lines"

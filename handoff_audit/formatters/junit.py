"""JUnit XML report, for CI test panels: one testsuite per trace, one testcase per handoff.

Each trace also gets an ``outcome`` testcase (the trace-level checks, RG303 and RG304). A finding
that fails the run is a ``failure`` of its testcase; findings that do not (warnings under the default
thresholds, findings known in a baseline) are listed in the testcase's ``system-out``. Skipped input
lines are ``skipped`` testcases in a ``skipped input lines`` suite, and rate thresholds or baseline
rates that failed are failures of a ``verdict`` testcase.

Text from a trace is made safe for XML 1.0 and for a terminal: control characters (C0, C1),
bidirectional overrides and the characters XML cannot carry at all (lone surrogates, U+FFFE,
U+FFFF) become visible escapes (``\\x1b``); the rest is escaped by the XML serializer.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from handoff_audit.formatters._text import json_text, printable
from handoff_audit.models import Finding, HandoffRecord, Report, TraceRecord, Verdict

# Everything outside XML 1.0's Char production: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """Replace characters XML 1.0 cannot carry with visible escapes."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text)


def _el(parent: ET.Element, tag: str, **attrs: str) -> ET.Element:
    return ET.SubElement(parent, tag, {k: xml_safe(printable(v)) for k, v in attrs.items()})


def _describe(f: Finding) -> str:
    where = f"{f.file}:{f.line}" if f.file is not None else "(end of trace)"
    # Each line is made printable: a carriage return or an escape sequence in trace text (an agent
    # named in a message, a path) must not act on a terminal showing the report.
    return "\n".join(
        printable(line)
        for line in [
            f"class: {f.failure_class}",
            f"kind: {f.kind}",
            f"code: {f.code}",
            f"severity: {f.severity}",
            f"path: {f.path or '-'}",
            f"sent: {json_text(f.sent)}",
            f"received: {json_text(f.received)}",
            f"message: {f.message}",
            *([f"rule: {f.rule}"] if f.rule is not None else []),
            f"at: {where}",
        ]
    )


def _headline(f: Finding) -> str:
    rule = f" (contract rule {f.rule})" if f.rule is not None else ""
    return f"{f.code} {f.kind} {f.failure_class}" + (f" at {f.path}" if f.path else "") + f": {f.message}{rule}"


class _Suite:
    def __init__(self, parent: ET.Element, name: str) -> None:
        self.el = _el(parent, "testsuite", name=name)
        self.tests = self.failures = self.skipped = 0

    def case(self, classname: str, name: str, file: str | None, line: int | None) -> ET.Element:
        self.tests += 1
        attrs = {"classname": classname, "name": name}
        if file is not None:
            attrs["file"] = file
        if line is not None:
            attrs["line"] = str(line)
        return _el(self.el, "testcase", **attrs)

    def findings(self, case: ET.Element, found: Iterable[tuple[Finding, bool]]) -> None:
        quiet: list[str] = []
        failed = False
        for f, failing in found:
            if failing:
                failure = _el(case, "failure", message=_headline(f), type=f"{f.failure_class}.{f.kind}")
                failure.text = xml_safe(_describe(f))
                failed = True
            else:
                quiet.append(_describe(f))
        if quiet:
            out = _el(case, "system-out")
            out.text = xml_safe("not failing the run:\n" + "\n\n".join(quiet))
        self.failures += failed

    def close(self) -> None:
        self.el.set("tests", str(self.tests))
        self.el.set("failures", str(self.failures))
        self.el.set("errors", "0")
        self.el.set("skipped", str(self.skipped))


def _traces(report: Report) -> tuple[TraceRecord, ...]:
    """The report's trace records, or records rebuilt from the findings when none were kept."""
    if report.traces:
        return report.traces
    by_trace: dict[str, tuple[dict[tuple[object, ...], list[Finding]], list[Finding]]] = {}
    for f in report.findings:
        handoffs, trace_level = by_trace.setdefault(f.trace_id, ({}, []))
        if f.from_agent is None:
            trace_level.append(f)
        else:
            handoffs.setdefault((f.order, f.handoff_id, f.from_agent, f.to_agent), []).append(f)
    return tuple(
        TraceRecord(
            tid,
            tuple(
                HandoffRecord(fs[0].handoff_id, fs[0].from_agent or "", fs[0].to_agent or "", fs[0].file, fs[0].line,
                              tuple(fs))
                for fs in handoffs.values()
            ),
            tuple(trace_level),
            False,
            False,
        )
        for tid, (handoffs, trace_level) in sorted(by_trace.items())
    )


def render(report: Report) -> str:
    """The report as JUnit XML, with an XML declaration and a final newline."""
    from handoff_audit.policy import evaluate

    verdict: Verdict = report.verdict if report.verdict is not None else evaluate(report)
    failing_ids = {id(report.findings[i]) for i in verdict.failing}
    root = ET.Element("testsuites", {"name": "handoff-audit"})
    suites: list[_Suite] = []
    for trace in _traces(report):
        suite = _Suite(root, f"trace {trace.trace_id}")
        suites.append(suite)
        for n, h in enumerate(trace.handoffs, 1):
            # A handoff without an id is named by its place in the trace, so that names stay distinct.
            name = f"handoff {h.handoff_id if h.handoff_id is not None else f'#{n}'}: {h.from_agent} -> {h.to_agent}"
            case = suite.case(trace.trace_id, name, h.file, h.line)
            suite.findings(case, ((f, id(f) in failing_ids) for f in h.findings))
        # The outcome check points at its first finding's event, else at the trace's first handoff.
        at: Finding | HandoffRecord | None = next(
            (f for f in trace.findings if f.file is not None), trace.handoffs[0] if trace.handoffs else None
        )
        case = suite.case(trace.trace_id, "outcome", at.file if at else None, at.line if at else None)
        suite.findings(case, ((f, id(f) in failing_ids) for f in trace.findings))
    if report.summary.skipped:
        suite = _Suite(root, "skipped input lines")
        suites.append(suite)
        for k in report.skipped:
            case = suite.case("input", f"{k.file}:{k.line}", k.file, k.line)
            _el(case, "skipped", message=k.reason)
            suite.skipped += 1
        unlisted = report.summary.skipped - len(report.skipped)
        if unlisted > 0:
            case = suite.case("input", f"{unlisted:,} more skipped lines", None, None)
            _el(case, "skipped", message="not listed (see summary.skipped in the JSON report)")
            suite.skipped += 1
    rate_reasons = verdict.reasons[1:] if verdict.failing else verdict.reasons
    if rate_reasons:
        suite = _Suite(root, "verdict")
        suites.append(suite)
        case = suite.case("handoff-audit", "thresholds", None, None)
        for reason in rate_reasons:
            failure = _el(case, "failure", message=reason, type="threshold")
            failure.text = xml_safe(reason)
        suite.failures += bool(rate_reasons)
    for suite in suites:
        suite.close()
    root.set("tests", str(sum(s.tests for s in suites)))
    root.set("failures", str(sum(s.failures for s in suites)))
    root.set("errors", "0")
    root.set("skipped", str(sum(s.skipped for s in suites)))
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

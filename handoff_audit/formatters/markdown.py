"""Markdown report, for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

The verdict (when the report has one), a summary table, the worst edges, a Mermaid flowchart of the
agents (edges labelled with handoff count and failure rate), then the top findings. The whole text
stays under ``MAX_BYTES``; rows that would not fit are left out with a note saying how many.

Text from a trace is inert: control characters become visible escapes, Markdown and HTML syntax
characters become character references (so ``<b>``, ``|``, backticks, ``@name`` and ``#12`` show as
typed, and never format, link or mention anything), and Mermaid labels use Mermaid's own entity codes.
"""

from __future__ import annotations

import re

from handoff_audit.formatters._text import json_text, plural, printable, shorten
from handoff_audit.models import EdgeStats, Finding, Report
from handoff_audit.rules import RULES, FailureClass

MAX_BYTES = 1024 * 1024 - 1  # GitHub's step summary limit is 1 MiB
MAX_FINDING_ROWS = 100
MAX_EDGE_ROWS = 20
MAX_GRAPH_EDGES = 60
TEXT_WIDTH = 80  # characters of one cell taken from a trace
ABSENT_KINDS = frozenset({"removed_field", "not_forwarded"})

# Characters that Markdown or HTML would read as syntax, ':' '.' that start autolinks, and '$' that
# starts GitHub's math.
_MD_SPECIAL = re.compile(r"[\\`*_{}\[\]()<>#+\-.!|&~@:$]")


def md(text: str, width: int = TEXT_WIDTH) -> str:
    """Trace text as inert Markdown: shortened, controls escaped, syntax as character references."""
    return _MD_SPECIAL.sub(lambda m: f"&#{ord(m.group())};", printable(shorten(text, width)))


def mermaid_label(text: str, width: int = 40) -> str:
    """Text for a quoted Mermaid label: quotes, brackets, pipes and markup as Mermaid entity codes."""
    safe = printable(shorten(text, width))
    return re.sub(r"[^A-Za-z0-9 _.,:/\-]", lambda m: f"#{ord(m.group())};", safe)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"


def _edge_name(e: EdgeStats) -> str:
    return f"{md(e.from_agent, 40)} &#45;&gt; {md(e.to_agent, 40)}"


def _verdict(report: Report) -> list[str]:
    v = report.verdict
    if v is None:
        return []
    if v.passed:
        notes = f" ({'; '.join(v.notes)})" if v.notes else ""
        return [f"**PASS**: no finding or rate over the thresholds{notes}", ""]
    return ["**FAIL**", "", *[f"- {md(reason, 400)}" for reason in v.reasons], ""]


def _summary(report: Report) -> list[str]:
    s = report.summary
    by_class = ", ".join(f"{c.value} {s.findings_by_class.get(c.value, 0):,}" for c in FailureClass)
    sev = s.findings_by_severity
    return [
        "| measure | value |",
        "|---|---|",
        f"| handoff failure rate | {_pct(s.handoff_failure_rate)} ({s.failed_handoffs:,} of {s.handoffs:,} handoffs) |",
        f"| agent success rate | {_pct(s.agent_success_rate)} ({s.agent_ends_ok:,} of {s.agent_ends:,} agent turns) |",
        f"| end-to-end success rate | {_pct(s.end_to_end_success_rate)} ({s.traces_succeeded:,} of {s.traces:,} traces) |",
        f"| findings | {s.findings:,}: {by_class} ({sev.get('error', 0):,} error, {sev.get('warning', 0):,} warning) |",
        f"| inputs | {len(s.inputs):,} files, {s.events:,} events, {s.skipped:,} lines skipped |",
        "",
    ]


def _worst_edges(report: Report) -> list[str]:
    edges = sorted(
        (e for e in report.summary.edges if e.failed_handoffs),
        key=lambda e: (-(e.failure_rate or 0.0), -e.failed_handoffs, e.from_agent, e.to_agent),
    )
    if not edges:
        return ["No edge has a failed handoff.", ""]
    lines = [
        "### Worst edges",
        "",
        "| from -> to | handoffs | failed | failure rate | state_loss | context_drift | responsibility_gap |".replace(
            "->", "&#45;&gt;"
        ),
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for e in edges[:MAX_EDGE_ROWS]:
        c = e.findings_by_class
        lines.append(
            f"| {_edge_name(e)} | {e.handoffs:,} | {e.failed_handoffs:,} | {_pct(e.failure_rate)} | "
            f"{c.get('state_loss', 0):,} | {c.get('context_drift', 0):,} | {c.get('responsibility_gap', 0):,} |"
        )
    if len(edges) > MAX_EDGE_ROWS:
        lines += ["", f"{len(edges) - MAX_EDGE_ROWS:,} more edges with failed handoffs are left out."]
    return [*lines, ""]


def _graph(report: Report) -> list[str]:
    edges = sorted(report.summary.edges, key=lambda e: (-e.handoffs, e.from_agent, e.to_agent))
    shown = sorted(edges[:MAX_GRAPH_EDGES], key=lambda e: (e.from_agent, e.to_agent))
    if not shown:
        return []
    ids: dict[str, str] = {}
    for e in shown:
        for agent in (e.from_agent, e.to_agent):
            ids.setdefault(agent, f"a{len(ids)}")
    lines = ["### Handoffs between agents", "", "```mermaid", "flowchart LR"]
    lines += [f'  {node}["{mermaid_label(agent)}"]' for agent, node in ids.items()]
    for e in shown:
        label = f"{plural(e.handoffs, 'handoff')}, {_pct(e.failure_rate)} failed"
        arrow = "-.->" if not e.failed_handoffs else "-->"
        lines.append(f'  {ids[e.from_agent]} {arrow}|"{mermaid_label(label)}"| {ids[e.to_agent]}')
    lines += ["```", ""]
    if len(edges) > MAX_GRAPH_EDGES:
        lines += [f"The {len(edges) - MAX_GRAPH_EDGES:,} edges with the fewest handoffs are left out of the chart.", ""]
    return lines


def _values(f: Finding) -> str:
    if f.rule is not None:  # a contract finding: its message and the rule it broke
        return f"{md(f.message)} (rule: {md(f.rule)})"
    if f.kind == "renamed_field":
        return md(f.message)
    if f.sent is None and f.received is None and f.kind not in ABSENT_KINDS:
        return md(f.message)
    received = "(absent)" if f.kind in ABSENT_KINDS else json_text(f.received)
    return f"{md(json_text(f.sent), 40)} &#45;&gt; {md(received, 40)}"


def _finding_row(f: Finding, failing: bool, known: bool) -> str:
    edge = "(trace)" if f.from_agent is None else f"{md(f.from_agent, 40)} &#45;&gt; {md(f.to_agent or '', 40)}"
    mark = "**fails**" if failing else "in baseline" if known else f.severity
    return (
        f"| {mark} | {md(f.trace_id, 40)} | {edge} | {f.failure_class} | {f.kind} {f.code} | "
        f"{md(f.path or '-')} | {_values(f)} |"
    )


def render(report: Report) -> str:
    """The report as GitHub-flavoured Markdown with a Mermaid chart, under ``MAX_BYTES``."""
    head = ["## handoff-audit", "", *_verdict(report), *_summary(report), *_worst_edges(report), *_graph(report)]
    text = "\n".join(head) + "\n"
    findings = list(enumerate(report.findings))
    known: frozenset[int] = frozenset()
    if report.verdict is not None:
        failing, known = report.verdict.failing, report.verdict.known
        findings.sort(key=lambda item: item[0] not in failing)  # stable: failing findings first
    else:
        failing = frozenset(i for i, f in findings if RULES[f.kind].severity.value == "error")
    if findings:
        rows = ["### Findings", "", "| status | trace | from -> to | class | kind | path | sent -> received |"
                .replace("->", "&#45;&gt;"), "|---|---|---|---|---|---|---|"]
        size = len(text.encode()) + sum(len(r.encode()) + 1 for r in rows) + 200  # room for the note
        shown = 0
        for i, f in findings[:MAX_FINDING_ROWS]:
            row = _finding_row(f, i in failing, i in known)
            size += len(row.encode()) + 1
            if size > MAX_BYTES:
                break
            rows.append(row)
            shown += 1
        left = len(findings) - shown
        if left:
            rows += ["", f"{left:,} more findings are left out; the JSON and CSV reports have all of them."]
        text += "\n".join(rows) + "\n"
    if report.summary.skipped:
        text += f"\n{report.summary.skipped:,} input lines were skipped; the JSON report lists them.\n"
    return text

"""Terminal report (rich): summary panel, counts by class and kind, the per-edge table, findings.

Everything taken from a trace goes in as ``rich.text.Text`` built from escaped text, so it is never
read as markup and never reaches the terminal as a control sequence.
"""

from __future__ import annotations

import io

from rich.cells import cell_len
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from handoff_audit.formatters._text import json_text, plural, printable, shorten
from handoff_audit.models import Finding, Report
from handoff_audit.rules import RULES, FailureClass

MAX_FINDING_ROWS = 200
VALUE_WIDTH = 32
MIN_NAME = 16  # columns of an agent name kept in a table before the numbers may run over the width
ABSENT_KINDS = frozenset({"removed_field", "not_forwarded"})
CLASS_STYLE = {"state_loss": "red", "context_drift": "yellow", "responsibility_gap": "magenta"}


def _t(text: str, style: str = "") -> Text:
    return Text(printable(text), style=style)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def fit_numbers(table: Table) -> Table:
    """Keep a table's numbers whole: every right-aligned column gets the width of its widest cell,
    unwrapped, and the text columns fold, keeping at least ``MIN_NAME`` columns where a name is that
    long. Print it with ``print_table``."""
    for col in table.columns:
        widths = [cell_len(_plain(t)) for t in col.cells]
        if col.justify == "right":
            col.no_wrap = True
            col.min_width = max([cell_len(str(col.header)), *widths])
        else:
            col.min_width = min(MIN_NAME, max([0, *widths]))
    return table


def print_table(console: Console, table: Table) -> None:
    """Print ``table``, or, where the console is too narrow for its columns' least widths, each row as
    a block of ``header: value`` lines, which fold to any width and cut nothing."""
    least = sum(col.min_width or 1 for col in table.columns) + 3 * len(table.columns) + 1
    if least <= console.width:
        console.print(table)
        return
    if table.title:
        console.print(Text(str(table.title)), overflow="fold")
    columns = [list(col.cells) for col in table.columns]
    headers = [str(col.header) for col in table.columns]
    for i in range(table.row_count):
        first = columns[0][i]
        console.print(first if isinstance(first, Text) else Text(str(first)), overflow="fold")
        for header, cells in zip(headers[1:], columns[1:]):
            cell = cells[i]
            if _plain(cell):
                line = Text(f"  {header}: ")
                line.append(cell if isinstance(cell, Text) else Text(str(cell)))
                console.print(line, overflow="fold")


def _plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _edge(f: Finding) -> str:
    return "(trace)" if f.from_agent is None else f"{f.from_agent} -> {f.to_agent}"


def _values(f: Finding) -> str:
    if f.kind == "renamed_field":
        return f.message
    if f.sent is None and f.received is None and f.kind not in ABSENT_KINDS:
        return ""
    sent = shorten(json_text(f.sent), VALUE_WIDTH)
    received = "(absent)" if f.kind in ABSENT_KINDS else shorten(json_text(f.received), VALUE_WIDTH)
    return f"{sent} -> {received}"


def _contract_values(f: Finding) -> list[str]:
    """A contract finding: its message, then the values where they help."""
    if f.kind == "contract_required_missing" and f.sent is not None:
        return [f.message, f"sent {shorten(json_text(f.sent), VALUE_WIDTH)} -> (absent)"]
    if f.kind == "contract_schema_mismatch":
        return [f.message, f"{shorten(json_text(f.sent), VALUE_WIDTH)} -> {shorten(json_text(f.received), VALUE_WIDTH)}"]
    if f.kind == "contract_output_mismatch" and f.sent is not None:
        return [f.message, f"sent {shorten(json_text(f.sent), VALUE_WIDTH)}"]
    return [f.message]


def text_console(buf: io.StringIO, width: int, color: bool) -> Console:
    """A console writing to ``buf`` that never reads markup, emoji codes or highlights in the text it is
    given (trace text is shown as it is), with ANSI colour only if ``color``."""
    return Console(
        file=buf,
        width=width,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
        markup=False,
        emoji=False,
        legacy_windows=False,
    )


def render(report: Report, *, width: int = 120, color: bool = False) -> str:
    """The report as terminal text, ``width`` columns wide, with ANSI colour only if ``color``."""
    buf = io.StringIO()
    console = text_console(buf, width, color)
    console.print(_summary_panel(report))
    s = report.summary
    if s.findings:
        print_table(console, _kinds_table(report))
    if s.edges:
        print_table(console, _edges_table(report))
    if report.findings:
        console.print(_findings_table(report))
    if s.skipped:
        console.print(_skipped_table(report))
    return buf.getvalue()


def _summary_panel(report: Report) -> Panel:
    s = report.summary
    lines = Text()
    counts = [(len(s.inputs), "input"), (s.events, "event"), (s.traces, "trace"), (s.handoffs, "handoff")]
    lines.append(", ".join(plural(n, noun) for n, noun in counts))
    if s.retries:
        lines.append(f" ({s.retries:,} retries)")
    lines.append(f", {plural(s.skipped, 'line')} skipped\n")
    lines.append(f"agent success {_pct(s.agent_success_rate)}", style="bold")
    lines.append(" | ")
    lines.append(f"handoff failure {_pct(s.handoff_failure_rate)}", style="bold")
    lines.append(f" ({s.failed_handoffs:,} of {s.handoffs:,})")
    lines.append(" | ")
    lines.append(f"end-to-end success {_pct(s.end_to_end_success_rate)}", style="bold")
    lines.append(f" ({s.traces_succeeded:,} of {s.traces:,})\n")
    lines.append(f"{s.findings:,} findings: ")
    lines.append(
        ", ".join(f"{c.value} {s.findings_by_class.get(c.value, 0):,}" for c in FailureClass)
    )
    sev = s.findings_by_severity
    lines.append(f" ({sev.get('error', 0):,} error, {sev.get('warning', 0):,} warning)")
    if s.filters:
        lines.append("\nfiltered: " + printable(" ".join(s.filters)))
    if s.unknown_types:
        kinds = ", ".join(f"{printable(k)} {n:,}" for k, n in s.unknown_types.items())
        lines.append(f"\nunknown event types kept: {kinds}")
    c = s.contracts
    if c is not None:
        covered = sum(1 for e in s.edges if e.contract is not None)
        lines.append(
            f"\ncontracts {printable(c.file)}: {plural(c.contracts, 'edge contract')}, "
            f"{covered:,} of {plural(len(s.edges), 'edge')} covered"
        )
        if c.outcome_owner is not None:
            lines.append(f", outcome owner {printable(c.outcome_owner)}")
        if c.uncovered_edges:
            lines.append("\nedges without a contract: " + ", ".join(printable(f"{a} -> {b}") for a, b in c.uncovered_edges))
        if c.unused_contracts:
            lines.append(
                "\ncontracts whose edge never occurred: " + ", ".join(printable(f"{a} -> {b}") for a, b in c.unused_contracts)
            )
    return Panel(lines, title="handoff-audit", title_align="left")


def _kinds_table(report: Report) -> Table:
    table = Table(title="Findings by class and kind", title_justify="left")
    for col in ("class", "kind", "code", "severity"):
        table.add_column(col)
    table.add_column("count", justify="right")
    kinds = report.summary.findings_by_kind
    for kind, rule in RULES.items():
        if kinds.get(kind):
            cls = rule.failure_class.value
            table.add_row(Text(cls, style=CLASS_STYLE[cls]), kind, rule.code, rule.severity.value, f"{kinds[kind]:,}")
    return fit_numbers(table)


def _edges_table(report: Report) -> Table:
    table = Table(title="Edges", title_justify="left")
    table.add_column("from -> to", overflow="fold")
    for col in ("handoffs", "loss", "drift", "gap", "failure", "p50 ms", "p95 ms"):
        table.add_column(col, justify="right")
    with_contracts = report.summary.contracts is not None
    if with_contracts:
        table.add_column("contract", overflow="fold")
    for e in report.summary.edges:
        c = e.findings_by_class
        extra = [_t(e.contract) if e.contract is not None else Text("none", style="bold red")] if with_contracts else []
        table.add_row(
            _t(f"{e.from_agent} -> {e.to_agent}"),
            f"{e.handoffs:,}",
            f"{c['state_loss']:,}",
            f"{c['context_drift']:,}",
            f"{c['responsibility_gap']:,}",
            _pct(e.failure_rate),
            _ms(e.latency_p50_ms),
            _ms(e.latency_p95_ms),
            *extra,
        )
    return fit_numbers(table)


def _findings_table(report: Report) -> Group | Table:
    table = Table(title="Findings", title_justify="left", expand=True)
    table.add_column("trace / from -> to", overflow="fold", ratio=4)
    table.add_column("kind / path", overflow="fold", ratio=4)
    table.add_column("sent -> received", overflow="fold", ratio=5)
    for f in report.findings[:MAX_FINDING_ROWS]:
        where = _t(f.trace_id)
        where.append("\n" + printable(_edge(f)), style="dim")
        what = Text(f.kind, style=CLASS_STYLE[f.failure_class])
        what.append(f" {f.code}", style="dim")
        what.append("\n" + printable(f.path or "-"))
        if f.rule is not None:
            what.append("\n" + printable(f.rule), style="dim")
        if f.rule is not None:
            # Escaped line by line: the break between message and values is the table's own.
            table.add_row(where, what, Text("\n").join(_t(line) for line in _contract_values(f)))
        else:
            table.add_row(where, what, _t(_values(f) or f.message))
    left = len(report.findings) - MAX_FINDING_ROWS
    if left > 0:
        note = Text(f"... and {left:,} more findings: use --format json or --format csv for all of them")
        return Group(table, note)
    return table


def _skipped_table(report: Report) -> Group | Table:
    table = Table(title="Skipped input lines", title_justify="left")
    table.add_column("where", overflow="fold")
    table.add_column("reason", overflow="fold")
    for k in report.skipped[:MAX_FINDING_ROWS]:
        table.add_row(_t(f"{k.file}:{k.line}"), _t(k.reason))
    left = report.summary.skipped - min(len(report.skipped), MAX_FINDING_ROWS)
    if left > 0:
        return Group(table, Text(f"... and {left:,} more skipped lines"))
    return table

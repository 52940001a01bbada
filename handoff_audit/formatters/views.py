"""Terminal and CSV renderings of the investigation views (show, lineage, stats).

Each function takes the view's data (the same dict ``--format json`` prints) and returns text. Trace
text goes in as ``rich.text.Text`` built from escaped text: never read as markup, never a control
sequence. Lines are cut to the width with ``…`` rather than wrapped, so a tree stays one line per node.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from handoff_audit.formatters._text import json_text, plural, printable, shorten
from handoff_audit.formatters.csv_ import cell
from handoff_audit.formatters.table import CLASS_STYLE, fit_numbers, print_table, text_console
from handoff_audit.rules import RULES

OP_MARK = {"removed": ("-", "red"), "changed": ("~", "yellow"), "added": ("+", "cyan"), "renamed": (">", "yellow")}
MIN_VALUE = 12
MAX_SENTENCES = 10  # lineage: the most frequent fates, as sentences
MAX_TABLE_ROWS = 200


def _print(parts: list[RenderableType], width: int, color: bool) -> str:
    buf = io.StringIO()
    console = text_console(buf, width, color)
    for part in parts:
        if isinstance(part, Text):
            # Console.print wraps a Text unless told otherwise, whatever the Text's own setting.
            console.print(part, no_wrap=part.no_wrap, overflow=part.overflow)
        elif isinstance(part, Table):
            print_table(console, part)
        else:
            console.print(part)
    return buf.getvalue()


def _line(*pieces: tuple[str, str] | str) -> Text:
    """One line of escaped trace text, cut with an ellipsis where it does not fit."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for piece in pieces:
        if isinstance(piece, str):
            text.append(printable(piece))
        else:
            text.append(printable(piece[0]), style=piece[1])
    return text


def _t(text: str, style: str = "") -> Text:
    """Escaped trace text that may wrap (a table cell)."""
    return Text(printable(text), style=style)


def _skipped_note(view: dict[str, Any]) -> list[RenderableType]:
    """A line on the input lines the read could not use, if any: an event there is missing here."""
    skipped = view.get("skipped") or {"count": 0, "lines": []}
    if not skipped["count"]:
        return []
    first = skipped["lines"][0] if skipped["lines"] else None
    return [_t(skipped_sentence(skipped["count"], first, bool(skipped.get("not_read"))), "yellow")]


def skipped_sentence(count: int, first: dict[str, Any] | None = None, partial: bool = False) -> str:
    """``4 input lines could not be used (first: FILE:LINE: REASON); scan lists them all``; with
    ``partial``, the lines read were only those that name a trace id asked for."""
    where = f" (first: {first['file']}:{first['line']}: {first['reason']})" if first else ""
    if partial:
        return (f"{plural(count, 'input line')} naming the trace id could not be used{where};"
                " scan checks every line")
    return f"{plural(count, 'input line')} could not be used{where}; scan lists them all"


def _pct(x: float | None) -> str:
    if x is None:
        return "n/a"
    return "<0.1%" if 0 < x < 0.0005 else f"{x * 100:.1f}%"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _offset(entry: dict[str, Any]) -> str:
    off = entry.get("offset_ms")
    return " " * 8 if off is None else f"+{off / 1000:.3f}s".rjust(8)


def _value(v: Any, limit: int) -> str:
    return shorten(json_text(v), limit)


def _finding_mark(codes: list[str]) -> list[tuple[str, str] | str]:
    out: list[tuple[str, str] | str] = []
    for code in codes:
        rule = next(r for r in RULES.values() if r.code == code)
        out += ["  ", ("\u2717 " + code, CLASS_STYLE[rule.failure_class.value])]
    return out


# --- show -------------------------------------------------------------------------------------------


def render_show(view: dict[str, Any], *, width: int = 120, color: bool = False) -> str:
    """The trace as a tree: agent turns holding their events, each handoff holding its diff and findings."""
    limit = max(MIN_VALUE, (width - 40) // 2)
    s = view["summary"]
    head = _line(("trace ", "bold"), (view["trace_id"], "bold"))
    by_class = ", ".join(f"{c} {n}" for c, n in s["findings_by_class"].items() if n)
    outcome = "; ".join(f"{o['agent']} claimed {o['status']}" for o in s["outcomes"]) or "no outcome claimed"
    facts = _t(
        f"{plural(s['events'], 'event')}, {plural(s['handoffs'], 'handoff')}, {plural(s['findings'], 'finding')}"
        + (f" ({by_class})" if by_class else "")
        + f"; {outcome}; end to end: {'succeeded' if s['succeeded'] else 'failed'}"
    )
    llm = s["llm"]
    spend = _t(
        f"model spend: {plural(llm['calls'], 'call')}, {llm['input_tokens']:,} in + {llm['output_tokens']:,} out tokens,"
        f" ${llm['cost_usd']:.4f}"
    )
    tree = Tree(_line(("timeline", "bold"), " (time from the first timed event)"), guide_style="dim")
    names = [e["agent"] for e in view["timeline"] if isinstance(e.get("agent"), str)]
    pad = min(16, max((len(printable(n)) for n in names), default=0))
    for entry in view["timeline"]:
        agent = entry.get("agent")
        who = (printable(agent) if isinstance(agent, str) else "").ljust(pad)
        lead: list[tuple[str, str] | str] = [_offset(entry), "  ", (who, "bold"), "  "]
        typ = entry["type"]
        if typ == "agent.start":
            tree.add(_line(*lead, ("turn starts", "dim")))
        elif typ == "agent.end":
            status = entry.get("status")
            shown = status if isinstance(status, str) else json_text(status)
            tree.add(_line(*lead, ("turn ends: ", "dim"), (shown, "green" if status == "ok" else "red")))
        elif typ == "handoff":
            _handoff_node(tree, lead, entry, limit)
        elif typ == "retry":
            tree.add(_line(*lead, f"handoff -> {entry['to']}  attempt {entry['attempt']} (a retry)"))
        elif typ == "llm.call":
            tokens = f"{entry['input_tokens'] or 0:,} in + {entry['output_tokens'] or 0:,} out tokens"
            cost = "" if entry["cost_usd"] is None else f"  ${entry['cost_usd']:.4f}"
            purpose = "" if entry.get("purpose") is None else f"  purpose {shorten(json_text(entry['purpose']), 24)}"
            model = entry.get("model")
            tree.add(_line(*lead, "llm.call ", model if isinstance(model, str) else "?", "  ", tokens, cost, purpose))
        elif typ == "tool.call":
            tool = entry.get("tool")
            args = " ".join(f"{printable(k)}={_value(v, limit)}" for k, v in sorted(entry["args"].items()))
            tree.add(_line(*lead, "tool.call ", tool if isinstance(tool, str) else "?", " ", args,
                           *_finding_mark(entry.get("findings", []))))
        elif typ == "outcome":
            status = entry.get("status")
            shown = status if isinstance(status, str) else json_text(status)
            tree.add(_line(*lead, "claims the outcome: ", (shown, "bold"), *_finding_mark(entry.get("findings", []))))
        elif typ == "trace":
            node = tree.add(_line(*lead, ("end of trace", "bold")))
            for f in entry["findings"]:
                node.add(_finding_line(f))
        else:
            tree.add(_line(*lead, typ, " (event type not audited)"))
    return _print([head, facts, spend, *_skipped_note(view), tree], width, color)


def _handoff_node(parent: Tree, lead: list[tuple[str, str] | str], entry: dict[str, Any], limit: int) -> None:
    codes = [f["code"] for f in entry["findings"]]
    status = entry["status"]
    latency = entry["latency_ms"]
    detail = {
        "delivered": "" if latency is None else (
            f"  received in {_ms(latency)} ms" if latency >= 0
            else f"  receipt timed {_ms(-latency)} ms before the send (clock skew)"
        ),
        "orphaned": "  never received",
        "unsolicited": "  received, never sent",
    }[status]
    attempts = f"  {entry['attempts']} attempts" if entry["attempts"] > 1 else ""
    hid = "" if entry["handoff_id"] is None else f"  [{entry['handoff_id']}]"
    # Findings first: on a narrow terminal the end of the line is what gets cut.
    label = _line(*lead, "handoff -> ", (entry["to"], "bold"), *_finding_mark(codes), detail, attempts, hid)
    node = parent.add(label)
    if status == "delivered" and not entry["changes"]:
        node.add(_line(("= received exactly as sent", "green")))
    for c in entry["changes"]:
        mark, style = OP_MARK[c["op"]]
        if c["op"] == "removed":
            node.add(_line((f"{mark} {c['path']}", style), "  ", _value(c["sent"], limit), " -> (absent)"))
        elif c["op"] == "added":
            node.add(_line((f"{mark} {c['path']}", style), "  ", "(not sent) -> ", _value(c["received"], limit)))
        elif c["op"] == "renamed":
            node.add(_line((f"{mark} {c['path']}", style), " renamed to ", (c["to"], style), "  ", _value(c["sent"], limit)))
        else:
            node.add(_line((f"{mark} {c['path']}", style), "  ", _value(c["sent"], limit), " -> ", _value(c["received"], limit)))
    for f in entry["findings"]:
        node.add(_finding_line(f))


def _finding_line(f: dict[str, Any]) -> Text:
    where = f" {f['path']}" if f["path"] else ""
    return _line(("\u2717 ", CLASS_STYLE[f["class"]]), (f"{f['code']} {f['kind']}", CLASS_STYLE[f["class"]]),
                 f" {f['severity']}{where}: {f['message']}")


# --- lineage ----------------------------------------------------------------------------------------


def render_lineage(view: dict[str, Any], *, width: int = 120, color: bool = False) -> str:
    """Per trace: a line per hop; aggregated: one sentence per fate that is not ``kept``, then a table."""
    limit = max(MIN_VALUE, (width - 50) // 2)
    parts: list[RenderableType] = []
    field = view["field"]
    if "trace_hops" in view:
        for trace in view["trace_hops"]:
            table = Table(title=_t(f"trace {trace['trace_id']}  {field}"), title_justify="left")
            for col in ("from -> to", "path", "fate", "sent", "received"):
                table.add_column(col, overflow="fold")
            for hop in trace["hops"]:
                table.add_row(*_hop_cells(hop, limit))
            parts.append(table if trace["hops"] else _t(f"trace {trace['trace_id']}: no handoff carried {field}"))
        return _print([*parts, *_skipped_note(view)], width, color)
    total = view["traces"]
    head = _line((field, "bold"), f": carried in {view['traces_with_field']:,} of {plural(total, 'trace')}")
    parts.append(head)
    events = [(fate, edge) for edge in view["edges"] for fate in edge["fates"] if fate["fate"] != "kept"]
    # Findings first, most frequent first; stable, so edges stay in name order within a count.
    events.sort(key=lambda fe: (fe[0]["code"] is None, -fe[0]["traces"]))
    for fate, edge in events[:MAX_SENTENCES]:
        sentence = _line("  ", _sentence(edge, fate, total))
        sentence.no_wrap, sentence.overflow = False, "fold"  # a sentence wraps rather than lose its numbers
        parts.append(sentence)
    if len(events) > MAX_SENTENCES:
        parts.append(_t(f"  ... and {len(events) - MAX_SENTENCES:,} more, in the table below"))
    table = Table(title="Per edge", title_justify="left")
    table.add_column("from -> to", overflow="fold")
    for col in ("carried",):
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    table.add_column("fate", overflow="fold")
    for col in ("traces", "% carried", "% all"):
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    rows = 0
    for edge in view["edges"]:
        first = True
        for fate in edge["fates"]:
            rows += 1
            if rows > MAX_TABLE_ROWS:
                continue
            name = _fate_name(fate)
            table.add_row(
                _t(f"{edge['from']} -> {edge['to']}") if first else "",
                f"{edge['traces_carrying']:,}" if first else "",
                _t(name, CLASS_STYLE.get(fate["class"] or "", "")),
                f"{fate['traces']:,}",
                _pct(fate["share_of_carrying"]),
                _pct(fate["share_of_traces"]),
            )
            first = False
    if view["edges"]:
        parts.append(table)
    if rows > MAX_TABLE_ROWS:
        parts.append(_t(f"... and {rows - MAX_TABLE_ROWS:,} more rows: use --format json for all of them, or --edge"))
    return _print([*parts, *_skipped_note(view)], width, color)


def _fate_name(fate: dict[str, Any]) -> str:
    name = fate["fate"] if fate["code"] is None else f"{fate['fate']} {fate['code']}"
    return f"{name} to {fate['renamed_to']}" if fate.get("renamed_to") else name


_VERB = {
    "state_loss": "lost",
    "context_drift": "drifted",
    "responsibility_gap": "unowned",
}


def _sentence(edge: dict[str, Any], fate: dict[str, Any], total: int) -> str:
    share = "" if fate["share_of_traces"] is None else f" ({_pct(fate['share_of_traces'])})"
    if fate["fate"] == "renamed_field":
        what = f"renamed to {fate['renamed_to']}"
    elif fate["code"] is not None:
        what = f"{_VERB[fate['class']]} ({fate['fate']} {fate['code']})"
    else:
        what = fate["fate"].replace("_", " ")
    return f"{what} at {edge['from']} -> {edge['to']} in {fate['traces']:,} of {plural(total, 'trace')}{share}"


def _hop_cells(hop: dict[str, Any], limit: int) -> tuple[Text, ...]:
    fate = hop["fate"]
    style = CLASS_STYLE.get(hop["class"] or "", "green" if fate == "kept" else "")
    name = fate if hop["code"] is None else f"{fate} {hop['code']}"
    if fate == "renamed_field":
        name += f" to {hop['renamed_to']}"
    elif fate == "changed_inside":
        name += ": " + ", ".join(hop["kinds_inside"])
    sent = "(not sent)" if fate in ("injected_field", "not_handed_on", "not_forwarded") else _value(hop["sent"], limit)
    if fate == "never_received":
        received = "(never received)"
    elif fate in ("removed_field", "not_handed_on", "not_forwarded") or not hop.get("arrived", True):
        received = "(absent)"
    else:
        received = _value(hop["received"], limit)
    return (_t(f"{hop['from']} -> {hop['to']}"), _t(hop["path"]), _t(name, style), _t(sent), _t(received))


# --- stats ------------------------------------------------------------------------------------------


def render_stats(view: dict[str, Any], tables: tuple[str, ...], *, width: int = 120, color: bool = False) -> str:
    """The chosen tables of ``stats`` for the terminal."""
    parts: list[RenderableType] = []
    s = view["summary"]
    headline = _line(
        f"{plural(s['traces'], 'trace')}, {plural(s['handoffs'], 'handoff')}, end-to-end success "
        f"{_pct(s['end_to_end_success_rate'])} ({s['traces_succeeded']:,} of {s['traces']:,})"
        + (f"; filtered: {' '.join(view['filters'])}" if view.get("filters") else "")
    )
    headline.no_wrap, headline.overflow = False, "fold"  # wraps rather than lose its numbers
    parts.append(headline)
    if s.get("skipped"):
        parts.append(_t(skipped_sentence(s["skipped"]), "yellow"))
    if "edges" in tables:
        t = Table(title="Edges", title_justify="left")
        t.add_column("from -> to", overflow="fold")
        for col in ("handoffs", "p50 ms", "p95 ms", "p99 ms", "failure", "loss", "drift", "gap"):
            t.add_column(col, justify="right")
        for e in view["edges"]:
            c = e["failure_rate_by_class"]
            t.add_row(_t(f"{e['from']} -> {e['to']}"), f"{e['handoffs']:,}", _ms(e["latency_p50_ms"]),
                      _ms(e["latency_p95_ms"]), _ms(e["latency_p99_ms"]), _pct(e["failure_rate"]),
                      _pct(c["state_loss"]), _pct(c["context_drift"]), _pct(c["responsibility_gap"]))
        parts.append(fit_numbers(t))
    if "agents" in tables:
        t = Table(title="Agents: own success vs end to end", title_justify="left")
        t.add_column("agent", overflow="fold")
        for col in ("turns", "ok", "own success", "traces", "succeeded", "end to end"):
            t.add_column(col, justify="right")
        for a in view["agents"]:
            t.add_row(_t(a["agent"]), f"{a['ends']:,}", f"{a['ok']:,}", _pct(a["success_rate"]),
                      f"{a['traces']:,}", f"{a['traces_succeeded']:,}", _pct(a["end_to_end_success_rate"]))
        parts.append(fit_numbers(t))
    if "tax" in tables:
        t = Table(title="Orchestration tax (llm.call spend)", title_justify="left")
        t.add_column("category", no_wrap=True)
        for col in ("calls", "input tok", "output tok", "tokens", "USD", "token share", "USD share"):
            t.add_column(col, justify="right")
        for row in view["tax"]:
            t.add_row(row["category"].replace("_", " "), f"{row['calls']:,}", f"{row['input_tokens']:,}",
                      f"{row['output_tokens']:,}", f"{row['tokens']:,}", f"{row['cost_usd']:,.4f}",
                      _pct(row["token_share"]), _pct(row["cost_share"]))
        tot = view["tax_total"]
        t.add_section()
        t.add_row("total", f"{tot['calls']:,}", f"{tot['input_tokens']:,}", f"{tot['output_tokens']:,}",
                  f"{tot['tokens']:,}", f"{tot['cost_usd']:,.4f}", _pct(1.0 if tot["tokens"] else None),
                  _pct(1.0 if tot["cost_usd"] else None))
        t.add_row("orchestration tax", "", "", "", "", "", _pct(tot["orchestration_tax_token_share"]),
                  _pct(tot["orchestration_tax_cost_share"]), style="bold")
        notes = []
        if tot["calls_without_cost"]:
            notes.append(f"{plural(tot['calls_without_cost'], 'call')} without cost_usd (counted as $0)")
        if tot["calls_without_tokens"]:
            notes.append(f"{plural(tot['calls_without_tokens'], 'call')} without token counts")
        parts.append(fit_numbers(t))
        parts.extend(_line(n) for n in notes)
    return _print(parts, width, color)


STATS_COLUMNS = {
    "edges": ("from", "to", "handoffs", "failed_handoffs", "failure_rate", "state_loss_rate", "context_drift_rate",
              "responsibility_gap_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms"),
    "agents": ("agent", "ends", "ok", "success_rate", "traces", "traces_succeeded", "end_to_end_success_rate"),
    "tax": ("category", "calls", "input_tokens", "output_tokens", "tokens", "cost_usd", "token_share", "cost_share"),
}


def stats_csv(view: dict[str, Any], table: str) -> str:
    """One table of ``stats`` as CSV (CRLF rows, formula-safe cells, empty cell for null)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    columns = STATS_COLUMNS[table]
    writer.writerow(columns)
    for row in view[table]:
        flat = dict(row)
        for c, rate in row.get("failure_rate_by_class", {}).items():
            flat[f"{c}_rate"] = rate
        writer.writerow(_csv_value(flat[c]) for c in columns)
    return buf.getvalue()


def _csv_value(v: Any) -> str:
    if type(v) in (int, float):
        return str(v)
    return cell(v)

"""The investigation commands: ``show``, ``lineage`` and ``stats`` (registered by ``cli.py``).

Like ``scan``: flags -> config -> a run over the inputs -> a view -> text. The views are built in
``show.py``, ``lineage.py`` and ``stats.py`` and drawn by ``formatters/views.py``.
"""

# No ``from __future__ import annotations`` here: typer reads the commands' annotations at run time,
# and the shared option types they use are imported inside ``register``, after cli.py defined them.
import enum
import math
import os
import sys
from typing import Annotated, Any, Optional

import orjson
import typer

from handoff_audit.config import DEFAULT_IDLE_LINES, ScanConfig
from handoff_audit.errors import UsageError
from handoff_audit.formatters._text import json_safe


class ViewFormat(str, enum.Enum):
    """Formats of show and lineage."""

    table = "table"
    json = "json"


class StatsFormat(str, enum.Enum):
    """Formats of stats."""

    table = "table"
    json = "json"
    csv = "csv"


class StatsTable(str, enum.Enum):
    """The tables of stats."""

    edges = "edges"
    agents = "agents"
    tax = "tax"


def _json(data: Any) -> str:
    # Characters a terminal would act on are written as \u escapes, as in the scan report.
    try:
        text = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        # A sum of counts from a trace (tokens) can pass 2**64, which orjson cannot write; the standard
        # encoder writes any integer, in the same layout.
        import json

        text = json.dumps(_finite(data), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return json_safe(text) + "\n"


def _finite(value: Any) -> Any:
    """``value`` with every float that is not finite as None, as orjson writes it."""
    if type(value) is dict:
        return {k: _finite(v) for k, v in value.items()}
    if type(value) is list or type(value) is tuple:
        return [_finite(v) for v in value]
    if type(value) is float and not math.isfinite(value):
        return None
    return value


def register(app: typer.Typer) -> None:
    """Add show, lineage and stats to ``app``."""
    from handoff_audit.cli import (
        AgentOpt,
        ClassOpt,
        DebugOpt,
        EdgeOpt,
        IdleOpt,
        KindOpt,
        OutputOpt,
        PathsArg,
        SinceOpt,
        TraceOpt,
        UntilOpt,
        _emit,
        _guard,
        _note,
        _width,
    )

    def terminal(output: Any) -> tuple[int, bool]:
        to_tty = output is None and sys.stdout.isatty()
        return _width(to_tty), to_tty and "NO_COLOR" not in os.environ

    @app.command()
    def show(
        trace_id: Annotated[str, typer.Argument(help="A trace id, or the start of one.", metavar="TRACE_ID", show_default=False)],
        paths: PathsArg,
        fmt: Annotated[ViewFormat, typer.Option("--format", "-f", help="Output format.")] = ViewFormat.table,
        output: OutputOpt = None,
        agent: AgentOpt = None,
        edge: EdgeOpt = None,
        class_: ClassOpt = None,
        kind: KindOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        idle_lines: IdleOpt = DEFAULT_IDLE_LINES,
        debug: DebugOpt = False,
    ) -> None:
        """Show one trace as a timeline: agent turns, model calls, each handoff with its sent -> received
        diff, the outcome claim, and every finding at the hop where it happened.

        TRACE_ID may be the start of an id; an ambiguous start lists the matching ids and exits 2, as
        does an id no trace has. Exit codes: 0 shown, 2 usage or input error.

        \b
        Example: handoff-audit show drift-unit sample_traces/
        """
        from handoff_audit import show as show_mod
        from handoff_audit.filters import parse_filter
        from handoff_audit.formatters.views import render_show

        def work() -> int:
            flt = parse_filter(None, agent, edge, class_, kind, since, until)
            rec, skipped = show_mod.find_trace(ScanConfig(tuple(paths), idle_lines=idle_lines), trace_id)
            view = show_mod.build(rec, flt, skipped)
            width, color = terminal(output)
            _emit(_json(view) if fmt is ViewFormat.json else render_show(view, width=width, color=color), output)
            return 0

        raise typer.Exit(_guard(work, debug))

    @app.command()
    def lineage(
        field_path: Annotated[
            str, typer.Argument(help="A field path: customer.shipping_address, order.items[*].qty.", metavar="FIELD_PATH",
                                show_default=False)
        ],
        paths: PathsArg,
        fmt: Annotated[ViewFormat, typer.Option("--format", "-f", help="Output format.")] = ViewFormat.table,
        output: OutputOpt = None,
        trace: TraceOpt = None,
        agent: AgentOpt = None,
        edge: EdgeOpt = None,
        class_: ClassOpt = None,
        kind: KindOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        idle_lines: IdleOpt = DEFAULT_IDLE_LINES,
        debug: DebugOpt = False,
    ) -> None:
        """Follow one field through every hop: where it was kept, dropped, nulled, truncated, changed,
        converted or renamed (a rename is followed to the new key).

        With --trace, the field's value at each hop of each selected trace; without, counts per edge
        over all traces. [*] matches every list index. Exit codes: 0 reported, 2 usage or input error.

        \b
        Example: handoff-audit lineage customer.shipping_address sample_traces/incident_checkout.jsonl
        """
        from handoff_audit import lineage as lin
        from handoff_audit.filters import parse_filter
        from handoff_audit import pipeline
        from handoff_audit.whole_trace import skipped_view
        from handoff_audit.formatters.views import render_lineage

        def work() -> int:
            pattern = lin.parse_pattern(field_path)
            flt = parse_filter(trace, agent, edge, class_, kind, since, until)
            per_trace: list[dict[str, Any]] = []
            agg = lin.Aggregate()

            def on_trace(rec: Any) -> None:
                if flt.select(rec) is None:
                    return None
                hops = lin.trace_hops(rec, pattern, flt)
                if trace:
                    shown = [h.to_dict() for h in hops if lin.fate_ok(flt, h.fate)]
                    per_trace.append({"trace_id": rec.trace_id, "hops": shown})
                else:
                    agg.add(hops, flt)
                return None

            # With --trace, only the named traces are kept and audited, and lines that cannot be
            # theirs are passed over unread (see run_traces).
            report, read = pipeline.run_traces(
                ScanConfig(tuple(paths), idle_lines=idle_lines),
                on_trace,
                only=flt.trace_id_ok if trace else None,
                mention=pipeline.mentions(flt.trace_id_texts()) if trace else None,
            )
            field = lin.format_pattern(pattern)
            if trace:
                if not per_trace:
                    raise UsageError(f"--trace {' '.join(trace)}: no such trace in the input (a prefix needs a final *)")
                view: dict[str, Any] = {"field": field, "trace_hops": sorted(per_trace, key=lambda t: t["trace_id"])}
            else:
                view = agg.to_dict(field)
            view["version"] = 1
            view["skipped"] = skipped_view(report, read.passed_over)
            if flt.active:
                view["filters"] = list(flt.given)
            width, color = terminal(output)
            _emit(_json(view) if fmt is ViewFormat.json else render_lineage(view, width=width, color=color), output)
            return 0

        raise typer.Exit(_guard(work, debug))

    @app.command()
    def stats(
        paths: PathsArg,
        fmt: Annotated[StatsFormat, typer.Option("--format", "-f", help="Output format; csv writes one table.")] = StatsFormat.table,
        table: Annotated[
            Optional[list[StatsTable]],
            typer.Option("--table", help="Only this table (repeatable); --format csv needs exactly one."),
        ] = None,
        output: OutputOpt = None,
        trace: TraceOpt = None,
        agent: AgentOpt = None,
        edge: EdgeOpt = None,
        class_: ClassOpt = None,
        kind: KindOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        idle_lines: IdleOpt = DEFAULT_IDLE_LINES,
        debug: DebugOpt = False,
    ) -> None:
        """Per edge: handoffs, latency p50/p95/p99 and failure rates by class. Per agent: its own success
        beside the end-to-end success of the traces it took part in. And the orchestration tax: model
        spend split into direct work, handoff retries, clarification loops and context re-injection.

        Exit codes: 0 reported, 2 usage or input error.

        \b
        Example: handoff-audit stats sample_traces/ --format csv --table tax -o tax.csv
        """
        from handoff_audit.filters import parse_filter
        from handoff_audit.formatters.views import render_stats, skipped_sentence, stats_csv
        from handoff_audit.stats import run_stats

        def work() -> int:
            flt = parse_filter(trace, agent, edge, class_, kind, since, until)
            chosen = tuple(dict.fromkeys(t.value for t in table)) if table else tuple(t.value for t in StatsTable)
            if fmt is StatsFormat.csv and len(chosen) != 1:
                raise UsageError("--format csv writes one table: add --table edges, --table agents or --table tax")
            view, _ = run_stats(ScanConfig(tuple(paths), idle_lines=idle_lines), flt)
            if fmt is StatsFormat.csv:
                text = stats_csv(view, chosen[0])
                if view["summary"]["skipped"]:  # a CSV table has no room for it
                    _note("handoff-audit: " + skipped_sentence(view["summary"]["skipped"]))
            elif fmt is StatsFormat.json:
                text = _json({k: v for k, v in view.items() if k not in TABLE_KEYS or TABLE_KEYS[k] in chosen})
            else:
                width, color = terminal(output)
                text = render_stats(view, chosen, width=width, color=color)
            _emit(text, output)
            return 0

        raise typer.Exit(_guard(work, debug))


TABLE_KEYS = {"edges": "edges", "agents": "agents", "tax": "tax", "tax_total": "tax"}

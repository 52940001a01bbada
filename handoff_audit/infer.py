"""Draft a contract file from traces: what every edge was observed to carry when nothing went wrong.

For each edge with at least one clean handoff (sent, received, and no finding), the draft holds a JSON
Schema of the received states (GenSON: a key present in every observed object is ``required``, types
come from the values), a ``timeout_ms`` from the edge's latencies, and the agent that claimed outcomes
as the outcome owner when one agent claimed every outcome. The draft is a starting point for a person to tighten, not a verdict.
"""

from __future__ import annotations

import json
import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import yaml
from genson import SchemaBuilder

from handoff_audit.classify import Refine, TraceResult
from handoff_audit.config import ScanConfig
from handoff_audit.formatters._text import has_unsafe, json_safe
from handoff_audit.pairing import Timeline
from handoff_audit.summary import percentile

__all__ = ["Draft", "draft_contracts"]


@dataclass(slots=True)
class _Edge:
    builder: SchemaBuilder = field(default_factory=lambda: SchemaBuilder(schema_uri=None))
    shapes: set[Any] = field(default_factory=set)  # the shapes already given to the builder
    clean: int = 0
    handoffs: int = 0
    latencies: array = field(default_factory=lambda: array("d"))


class _Drafter:
    """A trace hook that collects clean states, latencies and outcome claims."""

    refine: Refine | None = None  # the diff as it is: drafting draws only from handoffs it found clean

    def __init__(self) -> None:
        self.edges: dict[tuple[str, str], _Edge] = {}
        self.claims: Counter[str] = Counter()

    def check(self, tl: Timeline, result: TraceResult) -> None:
        for _, agent, _ in tl.outcomes:
            self.claims[agent] += 1
        for h in result.handoffs:
            edge = self.edges.get((h.from_agent, h.to_agent))
            if edge is None:
                edge = self.edges[(h.from_agent, h.to_agent)] = _Edge()
            edge.handoffs += 1
            if h.sent is None or h.received is None:
                continue
            first = h.first_send_pos if h.first_send_pos is not None else h.send_pos
            sent_ts = tl.events[first].ts if first is not None else None
            if sent_ts is not None and h.received.ts is not None and h.received.ts >= sent_ts:
                edge.latencies.append((h.received.ts - sent_ts) * 1000.0)  # as the timeout check measures it
            if not h.findings and h.received.state is not None:
                state = h.received_state
                shape = _shape(state)
                if shape not in edge.shapes:  # the schema depends only on keys and types: add each shape once
                    edge.shapes.add(shape)
                    edge.builder.add_object(state)
                edge.clean += 1


@dataclass(frozen=True, slots=True)
class Draft:
    """The drafted contract file and what it was drawn from."""

    text: str
    edges: int  # edge contracts drafted
    edges_seen: int
    clean_handoffs: int
    traces: int
    skipped: int = 0  # input lines that could not be used
    first_skipped: dict[str, Any] | None = None  # the first of them: file, line, reason


def draft_contracts(config: ScanConfig, *, as_json: bool = False) -> Draft:
    """Scan ``config.paths`` and draft a contract file from the clean handoffs: YAML (with a comment
    on what each edge was drawn from), or JSON when ``as_json``."""
    from handoff_audit import pipeline

    drafter = _Drafter()
    report = pipeline.run(ScanConfig(config.paths, idle_lines=config.idle_lines), hook=drafter)
    doc: dict[str, Any] = {"version": 1, "edges": []}
    notes: list[str] = []
    for (frm, to), edge in sorted(drafter.edges.items()):
        if not edge.clean:
            notes.append(f"{frm} -> {to}: no clean handoff among {edge.handoffs}; no contract drafted")
            continue
        schema = edge.builder.to_schema()
        schema.pop("$schema", None)
        entry: dict[str, Any] = {"from": frm, "to": to, "input": {"schema": _sorted(schema)}}
        note = f"{frm} -> {to}: {edge.clean} clean of {edge.handoffs} handoffs"
        if edge.latencies:
            # Rounded to the microsecond first: 0.15 s in binary floating point is not 150 ms exactly.
            p99 = math.ceil(round(percentile(edge.latencies, 0.99) or 0.0, 3))
            slowest = math.ceil(round(max(edge.latencies), 3))
            # The slowest observed receipt, when it is slower than the p99, keeps the draft true of the
            # traces it came from; the comment gives both so that a person can tighten it.
            entry["timeout_ms"] = max(p99, slowest, 1)
            note += f"; latency p99 {p99:,} ms, slowest {slowest:,} ms"
        doc["edges"].append(entry)
        notes.append(note)
    if drafter.claims:
        claims = ", ".join(f"{a} {n}" for a, n in sorted(drafter.claims.items(), key=lambda kv: (-kv[1], kv[0])))
        if len(drafter.claims) == 1:
            doc["outcome"] = {"owner": next(iter(drafter.claims))}
            notes.append(f"outcome claimed by {claims}")
        else:
            # Several pipelines, or a conflict: an owner picked here would be wrong for some traces.
            notes.append(f"outcome claimed by more than one agent ({claims}); no owner drafted")
    header = [
        "# Drafted by handoff-audit contracts infer from "
        f"{report.summary.traces} traces and {sum(e.clean for e in drafter.edges.values())} clean handoffs.",
        *([f"# {report.summary.skipped:,} input lines could not be used; scan lists them."]
          if report.summary.skipped else []),
        "# Review it: the schemas say what was observed, not what is needed. Per edge:",
        *(f"#   {_comment(n)}" for n in notes),
    ]
    if as_json:
        text = json_safe(json.dumps(doc, indent=2, ensure_ascii=False)) + "\n"
    else:
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's emitter where PyYAML has it

        def dump(allow_unicode: bool) -> str:
            return str(yaml.dump(doc, Dumper=dumper, sort_keys=False, allow_unicode=allow_unicode,
                                 default_flow_style=False, width=100))

        body = dump(True)
        if has_unsafe(body):
            # YAML counts bidirectional controls, zero-width and line-separator characters as printable
            # and would write them raw; escaped, every non-ASCII character is then written \uXXXX.
            body = dump(False)
        text = "\n".join(header) + "\n" + body
    first = report.skipped[0] if report.skipped else None
    return Draft(
        text,
        len(doc["edges"]),
        len(drafter.edges),
        sum(e.clean for e in drafter.edges.values()),
        report.summary.traces,
        report.summary.skipped,
        None if first is None else {"file": first.file, "line": first.line, "reason": first.reason},
    )


def _shape(value: Any) -> Any:
    """Keys and JSON types of a value, without the values: what the drafted schema depends on."""
    t = type(value)
    if t is dict:
        return frozenset((k, _shape(v)) for k, v in value.items())
    if t is list:
        return ("list", frozenset(_shape(v) for v in value))
    return t


def _comment(text: str) -> str:
    """One comment line: agent names come from traces, so no line break may end the comment early."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _sorted(value: Any) -> Any:
    if type(value) is dict:
        return {k: _sorted(value[k]) for k in sorted(value)}
    if type(value) is list:
        return [_sorted(v) for v in value]
    return value

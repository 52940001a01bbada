"""``stats``: per-edge latency and failure rates, per-agent success, and the orchestration tax.

The orchestration tax splits model spend (``llm.call`` events) into four categories. Each call goes to
the first that applies (docs/investigate.md states the rules):

1. its ``purpose`` is ``retry``, ``clarification`` or ``reinjection``: that category;
2. ``handoff_retries``: made by the sender of a retried handoff after its first attempt was sent and
   before (or at) its last attempt;
3. ``clarification_loops``: made by either agent of a CD207 clarification loop after the hand-back (the
   receiver handing back to its sender) and before (or at) the re-send;
4. ``context_reinjection``: the first call of an agent after it received a state again (the re-send of a
   clarification loop, or a duplicate delivery): the part of its input tokens the repeated state takes,
   estimated at one token per 4 bytes of the state's compact JSON, and the same share of its cost;
5. ``direct_work``: everything else.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from handoff_audit import pipeline
from handoff_audit.classify import TraceResult, clarification_loops
from handoff_audit.config import ScanConfig
from handoff_audit.filters import Filter
from handoff_audit.models import Report
from handoff_audit.whole_trace import Extra, WholeTrace
from handoff_audit.rules import FailureClass
from handoff_audit.show import count, usd
from handoff_audit.summary import Aggregator, percentile

CATEGORIES = ("direct_work", "handoff_retries", "clarification_loops", "context_reinjection")
PURPOSES = {"retry": "handoff_retries", "clarification": "clarification_loops", "reinjection": "context_reinjection"}
BYTES_PER_TOKEN = 4
TABLES = ("edges", "agents", "tax")


@dataclass(slots=True)
class _Spend:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(slots=True)
class _AgentAcc:
    ends: int = 0
    ok: int = 0
    traces: int = 0
    traces_succeeded: int = 0


@dataclass(slots=True)
class Stats:
    """Accumulates selected traces; ``to_dict`` gives the three tables."""

    flt: Filter
    agents: dict[str, _AgentAcc] = field(default_factory=dict)
    edge_class: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)  # handoffs with a finding of class
    spend: dict[str, _Spend] = field(default_factory=lambda: {c: _Spend() for c in CATEGORIES})
    calls: int = 0  # llm.call events booked (a call split between two categories counts in both)
    calls_without_cost: int = 0
    calls_without_tokens: int = 0

    def on_trace(self, rec: WholeTrace) -> TraceResult | None:
        """Fold one trace (the FullCollector callback)."""
        selected = self.flt.select(rec)
        if selected is None:
            return None
        for h in selected.handoffs:
            classes = self.edge_class.setdefault((h.from_agent, h.to_agent), Counter())
            for c in {f.failure_class for f in h.findings}:
                classes[c] += 1
        succeeded = rec.succeeded
        for agent in rec.agents():
            if self.flt.agent_ok(agent):
                acc = self.agents.setdefault(agent, _AgentAcc())
                acc.traces += 1
                acc.traces_succeeded += succeeded
        for agent, status in self.flt.agent_ends(rec):
            acc = self.agents.setdefault(agent, _AgentAcc())
            acc.ends += 1
            acc.ok += status == "ok"
        self._tax(rec)
        return selected

    def _tax(self, rec: WholeTrace) -> None:
        calls = [x for x in rec.extras if x.type == "llm.call" and self.flt.agent_ok(x.agent) and self.flt.time_ok(x.ts)]
        if not calls:
            return
        merged = rec.merged()
        index = {id(item): i for i, item in enumerate(merged)}
        tl = rec.timeline
        windows: list[tuple[str, int, int, set[str]]] = []  # (category, after, up to, agents)
        for h in tl.handoffs:
            if h.attempts > 1 and h.first_send_pos is not None:
                attempts = [ev for ev in tl.events if ev.type == "handoff.sent" and ev.handoff_id == h.handoff_id
                            and ev.frm == h.from_agent and ev.to == h.to_agent]
                windows.append(("handoff_retries", index[id(tl.events[h.first_send_pos])], index[id(attempts[-1])],
                                {h.from_agent}))
        resent: list[tuple[int, str, bytes]] = []  # (receipt index, receiver, the repeated state)
        for again, first in clarification_loops(tl.handoffs):
            if again.sent is not None and first.sent is not None:
                # The loop runs from the hand-back (the receiver asking its sender) to the re-send.
                back = next((h for h in tl.handoffs if h.sent is not None and h.from_agent == first.to_agent
                             and h.to_agent == first.from_agent and first.pos < h.pos < again.pos), first)
                assert back.sent is not None
                windows.append(("clarification_loops", index[id(back.sent)], index[id(again.sent)],
                                {first.from_agent, first.to_agent}))
                if again.received is not None and first.sent.state is not None:
                    resent.append((index[id(again.received)], again.to_agent, first.sent.state))
        for dup, original in tl.duplicate_receipts:
            if dup.received is not None and dup.received.state is not None:
                resent.append((index[id(dup.received)], dup.to_agent, dup.received.state))
        reread: dict[int, int] = {}  # call index -> input tokens taken by a repeated state
        for at, agent, state in resent:
            # The agent's first call after the repeat in event order (the calls are in read order).
            nxt = min((x for x in calls if index[id(x)] > at and x.agent == agent), key=lambda x: index[id(x)],
                      default=None)
            if nxt is not None:
                reread[index[id(nxt)]] = reread.get(index[id(nxt)], 0) + math.ceil(len(state) / BYTES_PER_TOKEN)
        for x in calls:
            i = index[id(x)]
            self._book(x, _category(x, i, windows), reread.get(i, 0))

    def _book(self, x: Extra, category: str, reread: int) -> None:
        inp, out = count(x.data.get("input_tokens")), count(x.data.get("output_tokens"))
        cost = usd(x.data.get("cost_usd"))
        if inp is None and out is None:
            self.calls_without_tokens += 1
        if cost is None:
            self.calls_without_cost += 1
        inp, out, cost = inp or 0, out or 0, cost or 0.0
        moved = min(reread, inp) if category == "direct_work" else 0
        self.calls += 1
        if moved:
            # The cost of a call is split in proportion to its tokens: the events carry one cost per call.
            share = moved / (inp + out)
            self._add("context_reinjection", moved, 0, cost * share)
            self._add(category, inp - moved, out, cost * (1 - share))
        else:
            self._add(category, inp, out, cost)

    def _add(self, category: str, inp: int, out: int, cost: float) -> None:
        s = self.spend[category]
        s.calls += 1
        s.input_tokens += inp
        s.output_tokens += out
        s.cost_usd += cost

    def to_dict(self, agg: Aggregator) -> dict[str, Any]:
        """The three tables as data; ``agg`` is the aggregate the selected traces were folded into."""
        edges = []
        for (frm, to), e in sorted(agg.edges.items()):
            by_class = self.edge_class.get((frm, to), Counter())
            edges.append({
                "from": frm,
                "to": to,
                "handoffs": e.handoffs,
                "failed_handoffs": e.failed,
                "failure_rate": _rate(e.failed, e.handoffs),
                "failure_rate_by_class": {c.value: _rate(by_class[c.value], e.handoffs) for c in FailureClass},
                "latency_p50_ms": _ms(percentile(e.latencies, 0.50)),
                "latency_p95_ms": _ms(percentile(e.latencies, 0.95)),
                "latency_p99_ms": _ms(percentile(e.latencies, 0.99)),
            })
        agents = [
            {
                "agent": name,
                "ends": a.ends,
                "ok": a.ok,
                "success_rate": _rate(a.ok, a.ends),
                "traces": a.traces,
                "traces_succeeded": a.traces_succeeded,
                "end_to_end_success_rate": _rate(a.traces_succeeded, a.traces),
            }
            for name, a in sorted(self.agents.items())
        ]
        total = _Spend(calls=self.calls)
        for s in self.spend.values():
            total.input_tokens += s.input_tokens
            total.output_tokens += s.output_tokens
            total.cost_usd += s.cost_usd
        all_tokens = total.input_tokens + total.output_tokens
        tax = [
            {
                "category": c,
                "calls": s.calls,
                "input_tokens": s.input_tokens,
                "output_tokens": s.output_tokens,
                "tokens": s.input_tokens + s.output_tokens,
                "cost_usd": round(s.cost_usd, 6),
                "token_share": _rate(s.input_tokens + s.output_tokens, all_tokens),
                "cost_share": _rate_f(s.cost_usd, total.cost_usd),
            }
            for c, s in self.spend.items()
        ]
        return {
            "edges": edges,
            "agents": agents,
            "tax": tax,
            "tax_total": {
                "calls": total.calls,
                "input_tokens": total.input_tokens,
                "output_tokens": total.output_tokens,
                "tokens": all_tokens,
                "cost_usd": round(total.cost_usd, 6),
                "orchestration_tax_cost_share": _rate_f(total.cost_usd - self.spend["direct_work"].cost_usd, total.cost_usd),
                "orchestration_tax_token_share": _rate(
                    all_tokens - self.spend["direct_work"].input_tokens - self.spend["direct_work"].output_tokens, all_tokens
                ),
                "calls_without_cost": self.calls_without_cost,
                "calls_without_tokens": self.calls_without_tokens,
            },
        }


def _category(x: Extra, i: int, windows: list[tuple[str, int, int, set[str]]]) -> str:
    purpose = x.data.get("purpose")
    if type(purpose) is str and purpose in PURPOSES:
        return PURPOSES[purpose]
    for category in ("handoff_retries", "clarification_loops"):
        for cat, lo, hi, agents in windows:
            if cat == category and lo < i <= hi and x.agent in agents:
                return category
    return "direct_work"


def _rate(n: int, d: int) -> float | None:
    return None if d == 0 else round(n / d, 6)


def _rate_f(n: float, d: float) -> float | None:
    # Costs from a trace can add up past the largest float: a share of infinity is no share.
    return None if d <= 0 or not math.isfinite(d) else round(n / d, 6)


def _ms(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def run_stats(config: ScanConfig, flt: Filter) -> tuple[dict[str, Any], Report]:
    """Read the inputs and return (the stats tables, the filtered scan report)."""
    stats = Stats(flt)
    report, agg = pipeline.run_traces(config, stats.on_trace)
    data = stats.to_dict(agg)
    data["summary"] = {
        "traces": report.summary.traces,
        "events": report.summary.events,
        "handoffs": report.summary.handoffs,
        "skipped": report.summary.skipped,
        "end_to_end_success_rate": _rate(report.summary.traces_succeeded, report.summary.traces),
        "traces_succeeded": report.summary.traces_succeeded,
    }
    if flt.active:
        data["filters"] = list(flt.given)
    data["version"] = 1
    return data, report



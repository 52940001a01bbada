"""Write sample_traces/: one clean e-commerce run, and one small trace per finding kind; and
examples/ecommerce_contract_violations.jsonl: runs that break examples/ecommerce.contracts.yaml.

Run from the repository root: ``python scripts/make_sample_traces.py``. Each file is written in the
native format, one event per line, so the files stay readable as documentation. The pipeline is the
one the README uses: validator -> inventory -> payment.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "sample_traces"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
T0 = 1767261600.0  # 2026-01-01T10:00:00Z

ORDER = {
    "order": {
        "id": "ord-1001",
        "items": [
            {"sku": "KB-01", "qty": 1, "price": 49.9},
            {"sku": "MS-02", "qty": 2, "price": 19.5},
        ],
        "total": 88.9,
        "currency": "EUR",
    },
    "customer": {
        "id": "cus-77",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "shipping_address": {"street": "12 Analytical Way", "city": "London", "zip": "N1 7GU"},
    },
    "notes": "Leave the parcel with the neighbour at number 14 if nobody answers.",
}


class Trace:
    """Builds one trace's events with increasing timestamps."""

    def __init__(self, trace_id: str, start: float = T0, rfc3339: bool = False) -> None:
        self.trace_id = trace_id
        self.t = start
        self.rfc3339 = rfc3339
        self.events: list[dict[str, Any]] = []
        self.n = 0

    def _ts(self, step: float) -> Any:
        self.t = round(self.t + step, 3)
        if self.rfc3339:
            from datetime import datetime, timezone

            return datetime.fromtimestamp(self.t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return self.t

    def ev(self, type_: str, step: float = 0.2, **fields: Any) -> dict[str, Any]:
        event = {"ts": self._ts(step), "trace_id": self.trace_id, "type": type_, **fields}
        self.events.append(event)
        return event

    def start(self, agent: str) -> None:
        self.ev("agent.start", agent=agent)

    def end(self, agent: str, status: str = "ok") -> None:
        self.ev("agent.end", agent=agent, status=status)

    def llm(self, agent: str, inp: int, out: int, cost: float) -> None:
        self.ev("llm.call", step=0.9, agent=agent, model="gpt-4.1-mini", input_tokens=inp, output_tokens=out, cost_usd=cost)

    def send(self, frm: str, to: str, state: dict[str, Any], hid: str | None = None, **extra: Any) -> str:
        self.n += 1
        hid = hid or f"{self.trace_id}-h{self.n}"
        self.ev("handoff.sent", agent=frm, handoff_id=hid, **{"from": frm, "to": to}, state=state, **extra)
        return hid

    def recv(self, frm: str, to: str, state: dict[str, Any], hid: str, step: float = 0.15) -> None:
        self.ev("handoff.received", step=step, agent=to, handoff_id=hid, **{"from": frm, "to": to}, state=state)

    def handoff(self, frm: str, to: str, sent: dict[str, Any], received: dict[str, Any] | None = None) -> str:
        hid = self.send(frm, to, sent)
        self.recv(frm, to, sent if received is None else received, hid)
        return hid

    def tool(self, agent: str, tool: str, **args: Any) -> None:
        self.ev("tool.call", agent=agent, tool=tool, args=args)

    def outcome(self, agent: str, status: str = "success", **result: Any) -> None:
        self.ev("outcome", agent=agent, status=status, **({"result": result} if result else {}))


def state() -> dict[str, Any]:
    return copy.deepcopy(ORDER)


def with_stock(s: dict[str, Any]) -> dict[str, Any]:
    s = copy.deepcopy(s)
    s["inventory"] = {"reserved": True, "warehouse": "LHR-2"}
    return s


def pipeline(
    tr: Trace,
    *,
    v_to_i: tuple[dict[str, Any], dict[str, Any]] | None = None,
    i_to_p: tuple[dict[str, Any], dict[str, Any]] | None = None,
    charge: dict[str, Any] | None = None,
    claim: bool = True,
) -> None:
    """The e-commerce run; each hop's (sent, received) can be replaced to inject one fault."""
    s1 = state()
    tr.start("validator")
    tr.llm("validator", 812, 95, 0.0012)
    sent, got = v_to_i or (s1, s1)
    tr.handoff("validator", "inventory", sent, got)
    tr.end("validator")
    tr.start("inventory")
    tr.tool("inventory", "reserve_stock", skus=["KB-01", "MS-02"], warehouse="LHR-2")
    s2 = with_stock(got)
    sent, got2 = i_to_p or (s2, s2)
    tr.handoff("inventory", "payment", sent, got2)
    tr.end("inventory")
    tr.start("payment")
    tr.llm("payment", 640, 72, 0.0009)
    order = got2.get("order", {})
    args = charge or {"total": order.get("total", 88.9), "currency": order.get("currency", "EUR"), "customer_id": "cus-77"}
    tr.tool("payment", "charge_card", **args)
    if claim:
        tr.outcome("payment", "success", order_id="ord-1001", charged=args.get("total"))
    tr.end("payment")


def write(name: str, *traces: Trace, interleave: bool = False, out: Path = OUT) -> None:
    events = [e for t in traces for e in t.events]
    if interleave:
        # Production logs: traces interleaved, and lines written out of time order.
        events = sorted(events, key=lambda e: (str(e["ts"])[-5:], e["trace_id"]))
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    (out / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def edit(s: dict[str, Any], fn: Any) -> dict[str, Any]:
    s = copy.deepcopy(s)
    fn(s)
    return s


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.jsonl"):
        old.unlink()

    # A clean run: two traces, interleaved and out of order, one with RFC 3339 times.
    a, b = Trace("clean-0001"), Trace("clean-0002", start=T0 + 0.05, rfc3339=True)
    pipeline(a)
    pipeline(b)
    write("clean_ecommerce_run.jsonl", a, b, interleave=True)

    s = state()

    # state_loss
    t = Trace("loss-removed-field")
    pipeline(t, v_to_i=(s, edit(s, lambda x: x["customer"].pop("shipping_address"))))
    write("state_loss_removed_field.jsonl", t)

    t = Trace("loss-nulled-field")
    pipeline(t, v_to_i=(s, edit(s, lambda x: x["customer"].update(email=None))))
    write("state_loss_nulled_field.jsonl", t)

    t = Trace("loss-truncated-value")
    pipeline(t, v_to_i=(s, edit(s, lambda x: x.update(notes="Leave the parcel with the neighbour..."))))
    write("state_loss_truncated_value.jsonl", t)

    t = Trace("loss-not-forwarded")
    fwd = with_stock(edit(s, lambda x: x["customer"].pop("shipping_address")))
    pipeline(t, i_to_p=(fwd, fwd))
    write("state_loss_not_forwarded.jsonl", t)

    # context_drift
    t = Trace("drift-changed-value")
    pipeline(t, v_to_i=(s, edit(s, lambda x: x["order"].update(currency="USD"))))
    write("context_drift_changed_value.jsonl", t)

    t = Trace("drift-type-changed")
    pipeline(t, v_to_i=(s, edit(s, lambda x: x["order"]["items"][1].update(qty="2"))))
    write("context_drift_type_changed.jsonl", t)

    t = Trace("drift-unit-changed")
    s2 = with_stock(s)
    pipeline(t, i_to_p=(s2, edit(s2, lambda x: x["order"].update(total=8890))), charge={"total": 8890, "currency": "EUR"})
    write("context_drift_unit_changed.jsonl", t)

    t = Trace("drift-renamed-field")

    def rename(x: dict[str, Any]) -> None:
        x["customer"]["address"] = x["customer"].pop("shipping_address")

    pipeline(t, v_to_i=(s, edit(s, rename)))
    write("context_drift_renamed_field.jsonl", t)

    t = Trace("drift-injected-field")
    pipeline(t, v_to_i=(s, edit(s, lambda x: x["order"].update(priority="express"))))
    write("context_drift_injected_field.jsonl", t)

    t = Trace("drift-reinterpreted-field")
    pipeline(t, charge={"total": 88.9, "currency": "USD", "customer_id": "cus-77"})
    write("context_drift_reinterpreted_field.jsonl", t)

    t = Trace("drift-clarification-loop")
    t.start("validator")
    t.handoff("validator", "inventory", s)
    t.handoff("inventory", "validator", {"question": "Which warehouse ships to N1 7GU?", "order_id": "ord-1001"})
    t.llm("validator", 1210, 40, 0.0016)
    t.handoff("validator", "inventory", s)
    t.end("validator")
    t.start("inventory")
    t.handoff("inventory", "payment", with_stock(s))
    t.end("inventory")
    t.start("payment")
    t.outcome("payment", "success", order_id="ord-1001")
    t.end("payment")
    write("context_drift_clarification_loop.jsonl", t)

    # responsibility_gap
    t = Trace("gap-orphaned-handoff")
    t.start("validator")
    t.handoff("validator", "inventory", s)
    t.end("validator")
    t.start("inventory")
    t.send("inventory", "payment", with_stock(s))
    t.end("inventory")
    t.outcome("inventory", "failure", reason="payment did not answer")
    write("responsibility_gap_orphaned_handoff.jsonl", t)

    t = Trace("gap-unsolicited-receipt")
    pipeline(t)
    t.recv("validator", "payment", {"order": {"id": "ord-1001", "total": 88.9}}, hid="gap-unsolicited-receipt-x9")
    write("responsibility_gap_unsolicited_receipt.jsonl", t)

    t = Trace("gap-missing-outcome")
    pipeline(t, claim=False)
    write("responsibility_gap_missing_outcome.jsonl", t)

    t = Trace("gap-conflicting-outcome")
    pipeline(t)
    t.outcome("inventory", "failure", reason="stock reservation expired")
    write("responsibility_gap_conflicting_outcome.jsonl", t)

    t = Trace("gap-premature-termination")
    t.start("validator")
    t.handoff("validator", "inventory", s)
    t.end("validator")
    t.start("inventory")
    hid = t.send("inventory", "payment", with_stock(s))
    t.outcome("inventory", "success", note="handed to payment")
    t.end("inventory")
    t.recv("inventory", "payment", with_stock(s), hid, step=2.5)
    t.start("payment")
    t.end("payment")
    write("responsibility_gap_premature_termination.jsonl", t)

    incident()

    # Input that is partly unusable: the good lines are still audited.
    t = Trace("mixed-bad-lines")
    pipeline(t)
    lines = [json.dumps(e, ensure_ascii=False) for e in t.events]
    lines.insert(3, '{"trace_id": "mixed-bad-lines", "type": "handoff.sent", "from": "validator", "to": "inventory", "state": "not an object"}')
    lines.insert(6, "this line is not JSON")
    lines.insert(9, '{"type": "agent.start", "agent": "inventory"}')
    lines.insert(12, '["a", "list", "not", "an", "object"]')
    (OUT / "skipped_lines_bad_input.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    contract_violations(s)


def contract_violations(s: dict[str, Any]) -> None:
    """Runs whose handoffs arrive as sent (no diff finding) but break the example contract."""
    EXAMPLES.mkdir(exist_ok=True)
    traces = []

    # The validator hands on an order without items: the input schema wants one (minItems), the
    # validator's success criterion wants one, and the same state arrives.
    t = Trace("contract-no-items")
    empty = edit(s, lambda x: x["order"].update(items=[]))
    pipeline(t, v_to_i=(empty, empty))
    traces.append(t)

    # The customer id is missing from what the validator sends: an audit path, and required downstream.
    t = Trace("contract-no-customer-id")
    anon = edit(s, lambda x: x["customer"].pop("id"))
    pipeline(t, v_to_i=(anon, anon))
    traces.append(t)

    # Inventory hands on without its reservation: its output schema requires one, and so does payment's input.
    t = Trace("contract-no-reservation")
    pipeline(t, i_to_p=(s, s))
    traces.append(t)

    # A negative total and a currency outside the enum arrive exactly as sent.
    t = Trace("contract-bad-values")
    bad = with_stock(edit(s, lambda x: x["order"].update(total=-88.9, currency="XBT")))
    pipeline(t, i_to_p=(bad, bad), charge={"total": -88.9, "currency": "XBT", "customer_id": "cus-77"})
    traces.append(t)

    # Payment answers late and inventory never falls back to manual review.
    t = Trace("contract-timeout")
    t.start("validator")
    t.handoff("validator", "inventory", s)
    t.end("validator")
    t.start("inventory")
    hid = t.send("inventory", "payment", with_stock(s))
    t.recv("inventory", "payment", with_stock(s), hid, step=3.2)
    t.end("inventory")
    t.start("payment")
    t.outcome("payment", "success", order_id="ord-1001")
    t.end("payment")
    traces.append(t)

    # Inventory answers late too, but the validator falls back to manual review: no timeout finding,
    # and the fallback edge has no contract of its own (a finding with --require-contracts).
    t = Trace("contract-timeout-with-fallback")
    t.start("validator")
    hid = t.send("validator", "inventory", s)
    t.handoff("validator", "manual_review", s)
    t.recv("validator", "inventory", s, hid, step=2.4)
    t.end("validator")
    t.start("manual_review")
    t.outcome("payment", "success", order_id="ord-1001")
    t.end("manual_review")
    traces.append(t)

    # Inventory claims the outcome, which the contract gives to payment.
    t = Trace("contract-wrong-owner")
    pipeline(t, claim=False)
    t.outcome("inventory", "success", order_id="ord-1001")
    traces.append(t)

    write("ecommerce_contract_violations.jsonl", *traces, out=EXAMPLES)


def incident() -> None:
    """A production-like log for docs/investigate.md: 24 checkout runs interleaved, with model calls.

    Most runs are clean. Inventory drops the shipping address on its way to payment in some, the
    validator renames it in others; some handoffs to payment are retried after a model call, and some
    runs go through a clarification loop, where inventory asks the validator again and then re-reads
    the whole order. Seeded, so the file is the same on every run.
    """
    rng = random.Random(7)
    faults = {3: "lost", 8: "lost", 14: "lost", 19: "lost", 5: "renamed", 17: "renamed",
              6: "retry", 11: "retry", 21: "retry", 9: "clarify", 15: "clarify", 22: "unit"}
    traces = []
    for i in range(24):
        tid = f"checkout-{4100 + i * 7:04d}"
        t = Trace(tid, start=T0 + i * 0.45)
        fault = faults.get(i)
        s1 = state()
        s1["order"]["id"] = f"ord-{2000 + i}"
        t.start("validator")
        t.llm("validator", 780 + rng.randint(0, 90), 90 + rng.randint(0, 20), 0.0012)
        got = s1
        if fault == "renamed":
            got = edit(s1, lambda x: x["customer"].__setitem__("address", x["customer"].pop("shipping_address")))
        hid = t.send("validator", "inventory", s1)
        t.recv("validator", "inventory", got, hid, step=round(rng.uniform(0.08, 0.3), 3))
        t.end("validator")
        t.start("inventory")
        t.llm("inventory", 1020 + rng.randint(0, 120), 60 + rng.randint(0, 30), 0.0014)
        if fault == "clarify":
            q = t.send("inventory", "validator", {"question": "Which warehouse ships to this address?", "order_id": s1["order"]["id"]})
            t.recv("inventory", "validator", {"question": "Which warehouse ships to this address?", "order_id": s1["order"]["id"]}, q)
            t.llm("validator", 1210, 40, 0.0016)
            again = t.send("validator", "inventory", s1)
            t.recv("validator", "inventory", s1, again)
            t.llm("inventory", 1190, 70, 0.0016)
        t.tool("inventory", "reserve_stock", skus=["KB-01", "MS-02"], warehouse="LHR-2")
        sent = with_stock(got)
        arrived = sent
        if fault == "lost":
            arrived = edit(sent, lambda x: x["customer"].pop("shipping_address"))
        elif fault == "unit":
            arrived = edit(sent, lambda x: x["order"].update(total=8890))
        hid = f"{tid}-pay"
        if fault == "retry":
            t.send("inventory", "payment", sent, hid=hid, attempt=1)
            t.llm("inventory", 1460, 85, 0.0019)
            t.send("inventory", "payment", sent, hid=hid, step=2.0, attempt=2)
        else:
            t.send("inventory", "payment", sent, hid=hid)
        t.recv("inventory", "payment", arrived, hid, step=round(rng.uniform(0.1, 0.9), 3))
        t.end("inventory")
        t.start("payment")
        t.llm("payment", 640 + rng.randint(0, 60), 72, 0.0009)
        total = arrived["order"]["total"]
        t.tool("payment", "charge_card", total=total, currency="EUR", customer_id="cus-77")
        t.outcome("payment", "success", order_id=s1["order"]["id"], charged=total)
        t.end("payment")
        traces.append(t)
    write("incident_checkout.jsonl", *traces, interleave=True)


if __name__ == "__main__":
    main()

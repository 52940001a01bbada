"""Record a two-agent run with the plain recording API, then audit it.

    python examples/record_api.py runs/api.jsonl && handoff-audit scan runs/api.jsonl

No framework is needed: any orchestrator can call the recorder where a handoff happens. Here the
payment agent gets the order without its shipping address, which ``scan`` reports as state_loss.
"""

from __future__ import annotations

import sys
from pathlib import Path

from handoff_audit.record import Recorder, Redact


def main(path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    order = {
        "order": {"id": "ord-1001", "total": 88.9},
        "customer": {"email": "ann@example.com", "shipping_address": {"street": "12 Acacia Ave", "city": "London"}},
    }
    # The customer's email never reaches the file; a changed or dropped email still shows as "[redacted]".
    with Recorder(path, mode="w", redact=Redact(mask=["customer.email"])) as rec:
        t = rec.trace("order-ord-1001")
        t.agent_start("validator")
        t.llm_call("validator", "gpt-4.1-mini", 812, 95, cost_usd=0.0012)
        hid = t.handoff_sent("validator", "payment", order)
        t.agent_end("validator")
        t.agent_start("payment")
        # What the payment agent was really given: its prompt builder kept only the order and the email.
        t.handoff_received(
            "validator", "payment", {"order": order["order"], "customer": {"email": "ann@example.com"}}, handoff_id=hid
        )
        t.tool_call("payment", "charge_card", {"order_id": "ord-1001", "amount": 88.9})
        t.outcome("payment", "success", result={"charged": 88.9})
        t.agent_end("payment")
    print(f"recorded {rec.written} events to {path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "api.jsonl")

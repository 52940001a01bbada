"""Record a LangGraph order pipeline offline, then audit it.

    pip install 'handoff-audit[langgraph]'
    python examples/langgraph_orders.py runs/orders.jsonl && handoff-audit scan runs/orders.jsonl

The graph validates an order (with a scripted chat model: no network), reserves stock, runs a
payment subgraph and confirms. Two runs are recorded:

1. an order of 88.90: the payment subgraph's state schema has no ``shipping_address``, so LangGraph
   silently leaves it out at the subgraph boundary (state_loss, removed_field);
2. an order of 1,250.00: the router sends it to manual review and the run ends without the
   ``confirm`` node claiming the outcome (responsibility_gap, missing_outcome).
"""

from __future__ import annotations

import operator
import sys
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from handoff_audit.integrations.langgraph import AuditCallback
from handoff_audit.record import Recorder


class OrderState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    order: dict[str, Any]
    shipping_address: dict[str, str]
    log: Annotated[list[str], operator.add]
    status: str


class PaymentState(TypedDict, total=False):
    order: dict[str, Any]
    shipping_address_verified: bool
    status: str


def validate(state: OrderState) -> dict[str, Any]:
    usage = {"input_tokens": 420, "output_tokens": 12, "total_tokens": 432}
    model = GenericFakeChatModel(messages=iter([AIMessage("The order is valid.", usage_metadata=usage)]))
    return {"messages": [model.invoke(state["messages"])], "log": ["validated"]}


def reserve(state: OrderState) -> dict[str, Any]:
    return {"log": ["reserved"], "status": "reserved"}


def charge(state: PaymentState) -> dict[str, Any]:
    return {"status": f"charged {state['order']['total']:.2f}"}


def confirm(state: OrderState) -> dict[str, Any]:
    return {"status": "confirmed", "log": ["confirmed"]}


def review(state: OrderState) -> dict[str, Any]:
    return {"status": "held for review"}


def build() -> Any:
    payment = StateGraph(PaymentState)
    payment.add_node("charge", charge)
    payment.add_edge(START, "charge")
    payment.add_edge("charge", END)

    g = StateGraph(OrderState)
    g.add_node("validate", validate)
    g.add_node("reserve", reserve)
    g.add_node("payment", payment.compile())
    g.add_node("confirm", confirm)
    g.add_node("review", review)
    g.add_edge(START, "validate")
    g.add_conditional_edges("validate", lambda s: "review" if s["order"]["total"] > 1000 else "reserve")
    g.add_edge("reserve", "payment")
    g.add_edge("payment", "confirm")
    g.add_edge("confirm", END)
    g.add_edge("review", END)
    return g.compile()


def main(path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    graph = build()
    address = {"street": "12 Acacia Ave", "city": "London"}
    with Recorder(path, mode="w") as rec:
        audit = AuditCallback(rec, outcome_node="confirm")
        for order_id, total in (("ord-1001", 88.9), ("ord-1002", 1250.0)):
            final = graph.invoke(
                {"messages": [HumanMessage(f"Place order {order_id}")], "order": {"id": order_id, "total": total},
                 "shipping_address": address},
                config={"callbacks": [audit]},
            )
            print(f"{order_id}: {final['status']}", file=sys.stderr)
    print(f"recorded {rec.written} events to {path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "orders.jsonl")

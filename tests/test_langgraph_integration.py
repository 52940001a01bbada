"""The LangGraph integration: real graphs with scripted chat models, recorded, then scanned."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import orjson
import pytest
from conftest import kinds, require

require("langgraph", "langgraph")

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.graph.message import add_messages  # noqa: E402
from langgraph.types import Command  # noqa: E402

from handoff_audit.integrations.langgraph import AuditCallback  # noqa: E402
from handoff_audit.pipeline import ScanConfig, run  # noqa: E402
from handoff_audit.record import Recorder  # noqa: E402


class OrderState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    order: dict[str, Any]
    shipping_address: dict[str, str]
    log: Annotated[list[str], operator.add]
    status: str


class PaymentState(TypedDict, total=False):  # declares no shipping_address
    order: dict[str, Any]
    status: str


ORDER = {"id": "ord-1001", "total": 88.9}
ADDRESS = {"street": "12 Acacia Ave", "city": "London"}


@tool
def lookup_stock(sku: str, qty: int) -> str:
    """Check stock for an item."""
    return "in stock"


def _model(text: str) -> GenericFakeChatModel:
    usage = {"input_tokens": 120, "output_tokens": 15, "total_tokens": 135}
    return GenericFakeChatModel(messages=iter([AIMessage(content=text, usage_metadata=usage)]))  # type: ignore[arg-type]


def validate(state: OrderState) -> dict[str, Any]:
    reply = _model("Order looks valid.").invoke(state["messages"])
    return {"messages": [reply], "order": ORDER, "shipping_address": ADDRESS, "log": ["validated"]}


def stock(state: OrderState) -> Command[Any]:
    lookup_stock.invoke({"sku": "A-1", "qty": 2})
    return Command(update={"log": ["stocked"], "status": "reserved"}, goto="payment")


def charge(state: PaymentState) -> dict[str, Any]:
    return {"status": f"charged {state['order']['total']}"}


def charge_full(state: OrderState) -> dict[str, Any]:  # LangGraph gives a node the keys its annotation declares
    return {"status": f"charged {state['order']['total']}"}


def ship(state: OrderState) -> dict[str, Any]:
    return {"messages": [AIMessage(content=f"Shipping to {state['shipping_address']['city']}.")], "status": "shipped"}


def _graph(payment: Any) -> Any:
    g = StateGraph(OrderState)
    g.add_node("validate", validate)
    g.add_node("stock", stock)
    g.add_node("payment", payment)
    g.add_node("ship", ship)
    g.add_edge(START, "validate")
    g.add_edge("validate", "stock")
    g.add_edge("payment", "ship")
    g.add_edge("ship", END)
    return g.compile()


def _payment_subgraph(schema: type) -> Any:
    sub = StateGraph(schema)
    sub.add_node("charge", charge if schema is PaymentState else charge_full)
    sub.add_edge(START, "charge")
    sub.add_edge("charge", END)
    return sub.compile()


def _record(tmp_path: Path, graph: Any, outcome_node: str = "ship") -> Path:
    path = tmp_path / "run.jsonl"
    with Recorder(path) as rec:
        graph.invoke({"messages": [HumanMessage("Order 2 of A-1")]},
                     config={"callbacks": [AuditCallback(rec, outcome_node=outcome_node)]})
    return path


def _events(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_a_graph_whose_subgraph_shares_the_state_scans_clean(tmp_path: Path) -> None:
    path = _record(tmp_path, _graph(_payment_subgraph(OrderState)))
    events = _events(path)
    edges = [(e["from"], e["to"]) for e in events if e["type"] == "handoff.sent"]
    assert edges == [("validate", "stock"), ("stock", "payment"), ("payment", "payment/charge"), ("payment", "ship")]
    sent = {(e["from"], e["to"]): e["state"] for e in events if e["type"] == "handoff.sent"}
    assert sent[("stock", "payment")] == {"log": ["stocked"], "status": "reserved"}  # the Command's update
    assert sent[("payment", "payment/charge")]["shipping_address"] == ADDRESS
    llm = next(e for e in events if e["type"] == "llm.call")
    assert (llm["agent"], llm["input_tokens"], llm["output_tokens"]) == ("validate", 120, 15)
    call = next(e for e in events if e["type"] == "tool.call")
    assert (call["agent"], call["tool"], call["args"]) == ("stock", "lookup_stock", {"sku": "A-1", "qty": 2})
    outcome = next(e for e in events if e["type"] == "outcome")
    assert outcome["agent"] == "ship" and outcome["result"]["status"] == "shipped"

    report = run(ScanConfig((str(path),)))
    assert report.findings == () and report.summary.skipped == 0
    assert report.summary.handoffs == 4 and report.summary.end_to_end_success_rate == 1.0


def test_keys_a_subgraph_does_not_declare_are_state_loss(tmp_path: Path) -> None:
    path = _record(tmp_path, _graph(_payment_subgraph(PaymentState)))
    report = run(ScanConfig((str(path),)))
    assert sorted((f.failure_class, f.kind, f.from_agent, f.to_agent, f.path) for f in report.findings) == [
        ("state_loss", "removed_field", "payment", "payment/charge", "log"),
        ("state_loss", "removed_field", "payment", "payment/charge", "messages"),
        ("state_loss", "removed_field", "payment", "payment/charge", "shipping_address"),
    ]
    assert next(f for f in report.findings if f.path == "shipping_address").sent == ADDRESS


def test_a_node_with_a_narrower_input_schema_loses_what_it_was_not_given(tmp_path: Path) -> None:
    class ShipInput(TypedDict):
        order: dict[str, Any]

    def ship_blind(state: ShipInput) -> dict[str, Any]:
        return {"status": "shipped"}

    g = StateGraph(OrderState)
    g.add_node("validate", validate)
    g.add_node("ship", ship_blind, input_schema=ShipInput)
    g.add_edge(START, "validate")
    g.add_edge("validate", "ship")
    g.add_edge("ship", END)
    report = run(ScanConfig((str(_record(tmp_path, g.compile())),)))
    assert sorted((f.kind, f.from_agent, f.to_agent, f.path) for f in report.findings) == [
        ("removed_field", "validate", "ship", "log"),
        ("removed_field", "validate", "ship", "messages"),
        ("removed_field", "validate", "ship", "shipping_address"),
    ]


def test_a_run_that_ends_before_the_outcome_node_has_no_outcome(tmp_path: Path) -> None:
    g = StateGraph(OrderState)
    g.add_node("validate", validate)
    g.add_node("ship", ship)
    g.add_edge(START, "validate")
    g.add_conditional_edges("validate", lambda s: END if s["order"]["total"] > 50 else "ship")  # held for review
    g.add_edge("ship", END)
    report = run(ScanConfig((str(_record(tmp_path, g.compile())),)))
    assert kinds(report) == ["missing_outcome"]
    assert report.findings[0].failure_class == "responsibility_gap"


def test_a_node_that_raises_ends_its_turn_in_error_and_leaves_no_outcome(tmp_path: Path) -> None:
    def broken(state: OrderState) -> dict[str, Any]:
        raise RuntimeError("carrier down")

    g = StateGraph(OrderState)
    g.add_node("validate", validate)
    g.add_node("ship", broken)
    g.add_edge(START, "validate")
    g.add_edge("validate", "ship")
    path = tmp_path / "run.jsonl"
    with Recorder(path) as rec:
        with pytest.raises(RuntimeError):
            g.compile().invoke({"messages": []}, config={"callbacks": [AuditCallback(rec, outcome_node="ship")]})
    ends = [(e["agent"], e["status"]) for e in _events(path) if e["type"] == "agent.end"]
    assert ends == [("validate", "ok"), ("ship", "error")]
    report = run(ScanConfig((str(path),)))
    assert kinds(report) == ["missing_outcome"] and report.summary.agent_success_rate == 0.5


def test_ainvoke_records_the_same_transitions(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    graph = _graph(_payment_subgraph(PaymentState))
    with Recorder(path) as rec:
        asyncio.run(graph.ainvoke({"messages": [HumanMessage("hi")]},
                                  config={"callbacks": [AuditCallback(rec, outcome_node="ship")]}))
    report = run(ScanConfig((str(path),)))
    assert report.summary.handoffs == 4
    assert sorted(f.path for f in report.findings) == ["log", "messages", "shipping_address"]


def test_two_runs_with_one_callback_are_two_traces(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    graph = _graph(_payment_subgraph(OrderState))
    with Recorder(path) as rec:
        callback = AuditCallback(rec, outcome_node="ship")
        for _ in range(2):
            graph.invoke({"messages": [HumanMessage("hi")]}, config={"callbacks": [callback]})
    report = run(ScanConfig((str(path),)))
    assert report.summary.traces == 2 and report.summary.handoffs == 8 and report.findings == ()


def test_parallel_branches_joined_by_reducers_scan_clean(tmp_path: Path) -> None:
    def fraud(state: OrderState) -> dict[str, Any]:
        return {"log": ["fraud-checked"]}

    def reserve(state: OrderState) -> dict[str, Any]:
        return {"log": ["reserved"], "status": "reserved"}

    g = StateGraph(OrderState)
    g.add_node("validate", validate)
    g.add_node("fraud", fraud)
    g.add_node("reserve", reserve)
    g.add_node("ship", ship)
    g.add_edge(START, "validate")
    g.add_edge("validate", "fraud")
    g.add_edge("validate", "reserve")
    g.add_edge(["fraud", "reserve"], "ship")
    g.add_edge("ship", END)
    path = _record(tmp_path, g.compile())
    edges = sorted((e["from"], e["to"]) for e in _events(path) if e["type"] == "handoff.sent")
    assert edges == [("fraud", "ship"), ("reserve", "ship"), ("validate", "fraud"), ("validate", "reserve")]
    report = run(ScanConfig((str(path),)))
    assert report.findings == ()


def test_a_graph_invoked_inside_a_node_is_sent_what_it_was_invoked_with(tmp_path: Path) -> None:
    inner = _payment_subgraph(PaymentState)

    def pay_by_hand(state: OrderState) -> dict[str, Any]:
        return {"status": inner.invoke({"order": state["order"], "status": "reserved"})["status"]}

    path = tmp_path / "run.jsonl"
    with Recorder(path) as rec:
        for _ in _graph(pay_by_hand).stream({"messages": []}, config={"callbacks": [AuditCallback(rec, "ship")]}):
            pass
    events = _events(path)
    sent = next(e for e in events if e["type"] == "handoff.sent" and e["to"] == "payment/charge")
    assert sent["from"] == "payment" and sent["state"] == {"order": ORDER, "status": "reserved"}
    report = run(ScanConfig((str(path),)))
    assert report.findings == () and report.summary.handoffs == 4

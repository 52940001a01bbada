"""The Agents SDK integration: real SDK runs with scripted models, recorded, then scanned."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import kinds, require

require("agents", "openai-agents")

from agents import Agent, ModelResponse, RunConfig, Runner, Usage, function_tool, handoff  # noqa: E402
from agents.extensions import handoff_filters  # noqa: E402
from agents.models.interface import Model  # noqa: E402
from agents.tracing import set_tracing_disabled  # noqa: E402
from openai.types.responses import (  # noqa: E402
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from pydantic import BaseModel  # noqa: E402

from handoff_audit.integrations.openai_agents import AuditHooks  # noqa: E402
from handoff_audit.pipeline import ScanConfig, run  # noqa: E402
from handoff_audit.record import Recorder  # noqa: E402

set_tracing_disabled(True)  # nothing leaves the machine; each run gets its own trace id


class Scripted(Model):
    """A model that answers each call with the next scripted list of output items."""

    def __init__(self, *turns: list[Any]) -> None:
        self.turns = list(turns)
        self.inputs: list[Any] = []

    async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any) -> ModelResponse:
        self.inputs.append(input)
        return ModelResponse(
            output=self.turns.pop(0),
            usage=Usage(requests=1, input_tokens=100 + len(self.inputs), output_tokens=20, total_tokens=121),
            response_id=None,
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def call(name: str, args: dict[str, Any], call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        id=call_id, call_id=call_id, type="function_call", name=name, arguments=json.dumps(args)
    )


def say(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="msg", type="message", role="assistant", status="completed",
        content=[ResponseOutputText(text=text, type="output_text", annotations=[])],
    )


ORDER = {"order_id": "ord-1001", "total": 88.9, "shipping_address": {"street": "12 Acacia Ave", "city": "London"}}


@function_tool
def lookup_order(order_id: str) -> str:
    """Look an order up."""
    return json.dumps({**ORDER, "order_id": order_id})


class Escalation(BaseModel):
    reason: str
    order_id: str


def _support(input_filter: Callable[..., Any] | None = None, *, multi: bool = False) -> Agent[Any]:
    refunds = Agent(name="refunds", model=Scripted([say("Refund of 88.90 issued for ord-1001.")]))
    shipping = Agent(name="shipping", model=Scripted([say("Address updated.")]))

    async def on_escalate(ctx: Any, data: Escalation) -> None:
        return None

    triage_turns: list[list[Any]] = [
        [call("lookup_order", {"order_id": "ord-1001"}, "call_lookup")],
        [say("Handing you to refunds."), call("transfer_to_refunds", {"reason": "damaged", "order_id": "ord-1001"},
                                               "call_refunds")]
        + ([call("transfer_to_shipping", {}, "call_shipping")] if multi else []),
    ]
    return Agent(
        name="triage",
        tools=[lookup_order],
        handoffs=[
            handoff(refunds, on_handoff=on_escalate, input_type=Escalation, input_filter=input_filter),
            shipping,
        ],
        model=Scripted(*triage_turns),
    )


def _record(tmp_path: Path, agent: Agent[Any], **kwargs: Any) -> tuple[Path, Any]:
    path = tmp_path / "run.jsonl"
    with Recorder(path) as rec:
        result = Runner.run_sync(agent, "My parcel arrived damaged, order ord-1001.", hooks=AuditHooks(rec), **kwargs)
    return path, result


def _events(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_a_plain_handoff_records_both_sides_equal_and_scans_clean(tmp_path: Path) -> None:
    path, result = _record(tmp_path, _support())
    assert result.final_output.startswith("Refund of 88.90")
    events = _events(path)
    assert [e["type"] for e in events] == [
        "agent.start", "llm.call", "tool.call", "llm.call", "handoff.sent", "agent.end",
        "agent.start", "handoff.received", "llm.call", "outcome", "agent.end",
    ]
    sent = next(e for e in events if e["type"] == "handoff.sent")
    received = next(e for e in events if e["type"] == "handoff.received")
    assert (sent["from"], sent["to"], sent["handoff_id"]) == ("triage", "refunds", "call_refunds")
    assert sent["state"] == received["state"]
    assert sent["state"]["handoff_arguments"] == {"reason": "damaged", "order_id": "ord-1001"}
    assert sent["state"] == {
        "messages": [{"user": "My parcel arrived damaged, order ord-1001."}, {"assistant": "Handing you to refunds."}],
        "tool_calls": {"call_lookup": {"tool": "lookup_order", "arguments": {"order_id": "ord-1001"}}},
        "tool_outputs": {"call_lookup": ORDER},
        "handoff_arguments": {"reason": "damaged", "order_id": "ord-1001"},
    }
    tool = next(e for e in events if e["type"] == "tool.call")
    assert (tool["agent"], tool["tool"], tool["args"]) == ("triage", "lookup_order", {"order_id": "ord-1001"})
    llm = [e for e in events if e["type"] == "llm.call"]
    assert [(e["agent"], e["input_tokens"], e["output_tokens"]) for e in llm] == [
        ("triage", 101, 20), ("triage", 102, 20), ("refunds", 101, 20)
    ]
    outcome = next(e for e in events if e["type"] == "outcome")
    assert (outcome["agent"], outcome["status"], outcome["result"]) == ("refunds", "success", result.final_output)

    report = run(ScanConfig((str(path),)))
    assert report.findings == () and report.summary.skipped == 0
    assert report.summary.handoffs == 1 and report.summary.end_to_end_success_rate == 1.0


def test_an_input_filter_that_strips_tool_outputs_is_state_loss(tmp_path: Path) -> None:
    path, _ = _record(tmp_path, _support(handoff_filters.remove_all_tools))
    report = run(ScanConfig((str(path),)))
    lost = sorted((f.failure_class, f.kind, f.path, orjson.dumps(f.sent).decode()) for f in report.findings)
    assert lost == [
        ("state_loss", "nulled_field", "tool_calls",
         '{"call_lookup":{"tool":"lookup_order","arguments":{"order_id":"ord-1001"}}}'),
        ("state_loss", "nulled_field", "tool_outputs", orjson.dumps({"call_lookup": ORDER}).decode()),
        ("state_loss", "removed_field", "handoff_arguments", '{"reason":"damaged","order_id":"ord-1001"}'),
    ]
    assert {(f.from_agent, f.to_agent, f.handoff_id) for f in report.findings} == {("triage", "refunds", "call_refunds")}


def test_a_custom_filter_that_drops_tool_outputs_is_state_loss(tmp_path: Path) -> None:
    def drop_outputs(data: Any) -> Any:
        def keep(item: Any) -> bool:
            return getattr(item, "type", "") != "tool_call_output_item"

        return data.clone(
            pre_handoff_items=tuple(i for i in data.pre_handoff_items if keep(i)),
            new_items=tuple(i for i in data.new_items if keep(i)),
        )

    path, _ = _record(tmp_path, _support(drop_outputs))
    report = run(ScanConfig((str(path),)))
    # The SDK also leaves out a call whose output is gone, so the receiver gets neither; the handoff
    # call and its answer are kept by this filter, so its arguments arrive.
    assert sorted((f.kind, f.path) for f in report.findings) == [
        ("nulled_field", "tool_calls"), ("nulled_field", "tool_outputs")
    ]


def test_several_handoffs_at_once_leave_the_ignored_one_unowned(tmp_path: Path) -> None:
    path, result = _record(tmp_path, _support(multi=True))
    assert result.last_agent.name == "refunds"  # the SDK keeps the first handoff only
    report = run(ScanConfig((str(path),)))
    assert [(f.failure_class, f.kind, f.from_agent, f.to_agent, f.handoff_id) for f in report.findings] == [
        ("responsibility_gap", "orphaned_handoff", "triage", "shipping", "call_shipping")
    ]


def test_nested_history_is_read_back_from_the_summary(tmp_path: Path) -> None:
    path, _ = _record(tmp_path, _support(), run_config=RunConfig(nest_handoff_history=True))
    received = next(e for e in _events(path) if e["type"] == "handoff.received")
    assert received["state"]["tool_outputs"] == {"call_lookup": ORDER}
    report = run(ScanConfig((str(path),)))
    assert report.findings == ()


def test_a_history_mapper_that_keeps_only_the_last_item_loses_the_conversation(tmp_path: Path) -> None:
    # The last transcript item is the SDK's answer to the handoff call: the receiver gets nothing else.
    config = RunConfig(nest_handoff_history=True, handoff_history_mapper=lambda transcript: transcript[-1:])
    path, _ = _record(tmp_path, _support(), run_config=config)
    report = run(ScanConfig((str(path),)))
    assert sorted((f.failure_class, f.kind, f.path) for f in report.findings) == [
        ("state_loss", "nulled_field", "messages"), ("state_loss", "nulled_field", "tool_calls"),
        ("state_loss", "nulled_field", "tool_outputs"), ("state_loss", "removed_field", "handoff_arguments"),
    ]


def test_a_run_that_fails_after_the_handoff_has_no_outcome(tmp_path: Path) -> None:
    class Broken(Scripted):
        async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
            raise RuntimeError("model unavailable")

    agent = _support()
    refunds = agent.handoffs[0].agent_name
    assert refunds == "refunds"
    target = next(h for h in agent.handoffs if getattr(h, "agent_name", None) == "refunds")
    target._agent_ref().model = Broken()  # type: ignore[union-attr]
    path = tmp_path / "run.jsonl"
    with Recorder(path) as rec:
        with pytest.raises(RuntimeError):
            Runner.run_sync(agent, "My parcel arrived damaged.", hooks=AuditHooks(rec))
    report = run(ScanConfig((str(path),)))
    assert kinds(report) == ["missing_outcome"]
    assert report.summary.end_to_end_success_rate == 0.0


def test_runs_recorded_into_one_file_stay_apart(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    with Recorder(path) as rec:
        hooks = AuditHooks(rec)
        Runner.run_sync(_support(), "first", hooks=hooks)
        Runner.run_sync(_support(handoff_filters.remove_all_tools), "second", hooks=hooks)
    report = run(ScanConfig((str(path),)))
    assert report.summary.traces == 2 and report.summary.handoffs == 2
    assert len({f.trace_id for f in report.findings}) == 1


def test_one_stripped_tool_output_is_named_by_its_call_id(tmp_path: Path) -> None:
    @function_tool
    def lookup_customer(email: str) -> str:
        """Look a customer up."""
        return json.dumps({"email": email, "tier": "gold"})

    def drop_customer_output(data: Any) -> Any:
        def keep(item: Any) -> bool:
            raw = getattr(item, "raw_item", None)
            call_id = raw.get("call_id") if isinstance(raw, dict) else getattr(raw, "call_id", None)
            return not (item.type == "tool_call_output_item" and call_id == "call_customer")

        return data.clone(pre_handoff_items=tuple(i for i in data.pre_handoff_items if keep(i)))

    refunds = Agent(name="refunds", model=Scripted([say("Refunded.")]))
    triage = Agent(
        name="triage",
        tools=[lookup_order, lookup_customer],
        handoffs=[handoff(refunds, input_filter=drop_customer_output)],
        model=Scripted(
            [call("lookup_order", {"order_id": "ord-1001"}, "call_lookup"),
             call("lookup_customer", {"email": "ann@example.com"}, "call_customer")],
            [call("transfer_to_refunds", {}, "call_refunds")],
        ),
    )
    path, _ = _record(tmp_path, triage)
    report = run(ScanConfig((str(path),)))
    assert sorted((f.kind, f.path, orjson.dumps(f.sent).decode()) for f in report.findings) == [
        ("removed_field", "tool_calls.call_customer", '{"tool":"lookup_customer","arguments":{"email":"ann@example.com"}}'),
        ("removed_field", "tool_outputs.call_customer", '{"email":"ann@example.com","tier":"gold"}'),
    ]


def test_concurrent_runs_sharing_the_hooks_stay_apart(tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "runs.jsonl"

    async def both(hooks: AuditHooks) -> None:
        await asyncio.gather(
            Runner.run(_support(), "first", hooks=hooks),
            Runner.run(_support(handoff_filters.remove_all_tools), "second", hooks=hooks),
        )

    with Recorder(path) as rec:
        asyncio.run(both(AuditHooks(rec)))
    report = run(ScanConfig((str(path),)))
    assert report.summary.traces == 2 and report.summary.handoffs == 2
    assert report.summary.end_to_end_success_rate == 0.5
    assert len({f.trace_id for f in report.findings}) == 1
    assert sorted(f.path for f in report.findings) == ["handoff_arguments", "tool_calls", "tool_outputs"]

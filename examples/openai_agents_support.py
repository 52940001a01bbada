"""Record an OpenAI Agents SDK support desk offline, then audit it.

    pip install 'handoff-audit[openai-agents]'
    python examples/openai_agents_support.py runs/support.jsonl && handoff-audit scan runs/support.jsonl

Three runs of one triage agent, each with scripted model answers (no network, no API key):

1. a plain handoff to refunds: clean;
2. the same handoff with ``handoff_filters.remove_all_tools`` as its input filter: refunds never sees
   the order lookup or the handoff's arguments (state_loss);
3. a model that asks for refunds and shipping at once: the SDK keeps the first and ignores the
   other, so shipping never gets the case (responsibility_gap, orphaned_handoff).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from agents import Agent, ModelResponse, Runner, Usage, function_tool, handoff
from agents.extensions import handoff_filters
from agents.models.interface import Model
from agents.tracing import set_tracing_disabled
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText
from pydantic import BaseModel

from handoff_audit.integrations.openai_agents import AuditHooks
from handoff_audit.record import Recorder


class ScriptedModel(Model):
    """Answers each model call with the next scripted list of output items."""

    def __init__(self, *turns: list[Any]) -> None:
        self.turns = list(turns)

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        usage = Usage(requests=1, input_tokens=350, output_tokens=40, total_tokens=390)
        return ModelResponse(output=self.turns.pop(0), usage=usage, response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("this example does not stream")


def call(name: str, args: dict[str, Any], call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(id=call_id, call_id=call_id, type="function_call", name=name,
                                    arguments=json.dumps(args))


def say(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(id="msg", type="message", role="assistant", status="completed",
                                 content=[ResponseOutputText(text=text, type="output_text", annotations=[])])


@function_tool
def lookup_order(order_id: str) -> str:
    """Look an order up."""
    return json.dumps({"order_id": order_id, "total": 88.9, "item": "kettle", "damaged": True})


class Escalation(BaseModel):
    reason: str
    order_id: str


async def note_escalation(ctx: Any, data: Escalation) -> None:
    return None


def support_desk(input_filter: Any = None, ask_both: bool = False) -> Agent[Any]:
    refunds = Agent(name="refunds", instructions="Issue refunds.",
                    model=ScriptedModel([say("Refunded 88.90 for ord-1001.")]))
    shipping = Agent(name="shipping", instructions="Fix deliveries.", model=ScriptedModel([say("Resent.")]))
    second = [call("transfer_to_refunds", {"reason": "damaged kettle", "order_id": "ord-1001"}, "call_refunds")]
    if ask_both:
        second.append(call("transfer_to_shipping", {}, "call_shipping"))
    return Agent(
        name="triage",
        instructions="Route the customer.",
        tools=[lookup_order],
        handoffs=[handoff(refunds, on_handoff=note_escalation, input_type=Escalation, input_filter=input_filter),
                  shipping],
        model=ScriptedModel([call("lookup_order", {"order_id": "ord-1001"}, "call_lookup")], second),
    )


def main(path: str) -> None:
    set_tracing_disabled(True)  # offline: no trace export
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    question = "My kettle from order ord-1001 arrived broken."
    with Recorder(path, mode="w") as rec:
        hooks = AuditHooks(rec)
        for agent in (support_desk(), support_desk(handoff_filters.remove_all_tools), support_desk(ask_both=True)):
            result = Runner.run_sync(agent, question, hooks=hooks)
            print(f"{result.last_agent.name}: {result.final_output}", file=sys.stderr)
    print(f"recorded {rec.written} events to {path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "support.jsonl")

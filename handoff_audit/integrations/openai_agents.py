"""Record every handoff of an OpenAI Agents SDK run: what the sender had, and what the receiver was given.

    from handoff_audit.integrations.openai_agents import AuditHooks

    with Recorder("traces/support.jsonl") as rec:
        result = await Runner.run(triage, "Where is my refund?", hooks=AuditHooks(rec))

``AuditHooks`` is a ``RunHooks``. For each handoff it records:

- ``handoff.sent``: the conversation the sending agent had when it handed off (its last model input,
  that model call's output items and the outputs of the tools it ran in that step) and the
  arguments of the handoff call (``handoff_arguments``, when the call has any). The SDK keeps only
  the first of several handoffs requested in one model response; each of them is recorded as sent,
  so the ones the SDK ignored show up as ``orphaned_handoff``.
- ``handoff.received``: the input the receiving agent's model is actually given on its first call,
  after any ``input_filter``, ``RunConfig.handoff_input_filter``, nested handoff history or
  ``call_model_input_filter``. A nested history summary is read back into the items it carries.

Both sides have one shape: ``messages`` (``{"user": text}``, ``{"assistant": text}``, in order),
``tool_calls`` (call id -> ``{"tool": name, "arguments": {...}}``), ``tool_outputs`` (call id ->
output), ``other`` (items of other types, when there are any) and ``handoff_arguments``; JSON
strings are parsed. Keyed by call id, a tool output that does not arrive is named by ``scan``
(``tool_outputs.call_abc``). The handoff calls of the handing-off step and the SDK's answers to them
are left out of the conversation on both sides (the taken call's arguments are
``handoff_arguments``). It also records
``agent.start`` / ``agent.end``, one ``llm.call`` per model call with its token counts, one
``tool.call`` per function tool call with its arguments, and an ``outcome`` (``success``, with the
final output as ``result``) from the agent that produces the final output. A run that fails records
no outcome, which ``scan`` reports as ``missing_outcome``.

The ``trace_id`` is the SDK's trace id for the run, so the file lines up with the SDK's own traces;
with tracing disabled each run gets a random one.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, cast

from agents import Agent, Handoff, ItemHelpers, RunHooks
from agents.tracing import get_current_trace
from openai.types.responses import ResponseFunctionToolCall

from handoff_audit.record import Recorder

__all__ = ["AuditHooks", "conversation_state"]

MAX_OPEN_RUNS = 1024  # runs that never finish (an exception) are forgotten, oldest first, past this


class _Run:
    """What one run's hooks have seen so far."""

    __slots__ = ("trace_id", "last_input", "last_output", "tool_outputs", "pending", "handoff_calls")

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        self.last_input: list[Any] = []
        self.last_output: list[dict[str, Any]] = []
        self.tool_outputs: dict[str, Any] = {}  # call_id -> output item, for the current step
        self.pending: dict[str, tuple[str, str, set[str]]] = {}  # receiver -> (handoff_id, sender, step call ids)
        self.handoff_calls: list[tuple[str, str]] = []  # (call_id, receiver) of the sender's last model output


class AuditHooks(RunHooks[Any]):
    """``RunHooks`` that record a run's handoffs, turns, model and tool calls and outcome to ``recorder``.

    Subclass it to add hooks of your own, and call ``super()`` in each method you override.
    """

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._runs: OrderedDict[int, _Run] = OrderedDict()

    # --- run state -------------------------------------------------------------------------------

    def _run(self, context: Any) -> _Run:
        # The usage object is shared by every context wrapper of one run (hook contexts included).
        key = id(context.usage)
        run = self._runs.get(key)
        if run is None:
            trace = get_current_trace()
            tid = getattr(trace, "trace_id", None)
            run = _Run(tid if isinstance(tid, str) and tid and tid != "no-op" else uuid.uuid4().hex)
            self._runs[key] = run
            while len(self._runs) > MAX_OPEN_RUNS:
                self._runs.popitem(last=False)
        return run

    # --- hooks -----------------------------------------------------------------------------------

    async def on_agent_start(self, context: Any, agent: Any) -> None:
        self.recorder.agent_start(self._run(context).trace_id, agent.name)

    async def on_llm_start(self, context: Any, agent: Any, system_prompt: str | None, input_items: list[Any]) -> None:
        run = self._run(context)
        pending = run.pending.pop(agent.name, None)
        if pending is not None:
            handoff_id, sender, step_calls = pending
            items = _expand_nested_history(list(input_items))
            state = _state(items, step_calls, handoff_id)
            self.recorder.handoff_received(run.trace_id, sender, agent.name, state, handoff_id=handoff_id)
        run.last_input = list(input_items)
        run.last_output = []
        run.tool_outputs = {}
        run.handoff_calls = []

    async def on_llm_end(self, context: Any, agent: Any, response: Any) -> None:
        run = self._run(context)
        run.last_output = [_dump(item) for item in response.output]
        names = _handoff_targets(agent)
        run.handoff_calls = [
            (item["call_id"], names[item["name"]])
            for item in run.last_output
            if item.get("type") == "function_call" and item.get("name") in names
        ]
        usage = response.usage
        self.recorder.llm_call(
            run.trace_id, agent.name, _model_name(agent), int(usage.input_tokens or 0), int(usage.output_tokens or 0)
        )

    async def on_tool_start(self, context: Any, agent: Any, tool: Any) -> None:
        name = str(getattr(context, "tool_name", None) or getattr(tool, "name", None) or "tool")
        raw = getattr(context, "tool_arguments", None)
        args = _parse(raw) if isinstance(raw, str) else {}
        self.recorder.tool_call(self._run(context).trace_id, agent.name, name, args if isinstance(args, dict) else {})

    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: object) -> None:
        call_id = getattr(context, "tool_call_id", None)
        if not isinstance(call_id, str):
            return
        call = ResponseFunctionToolCall(
            id=call_id, call_id=call_id, type="function_call", name=getattr(context, "tool_name", "tool") or "tool",
            arguments=getattr(context, "tool_arguments", "") or "",
        )
        try:
            # The same conversion the SDK applies before the output reaches the next model call.
            item = dict(ItemHelpers.tool_call_output_item(call, result))
        except Exception:
            item = {"type": "function_call_output", "call_id": call_id, "output": str(result)}
        self._run(context).tool_outputs[call_id] = item

    async def on_handoff(self, context: Any, from_agent: Any, to_agent: Any) -> None:
        run = self._run(context)
        # Without a handoff call seen in the sender's output, the handoff still gets an id of its own.
        calls = run.handoff_calls or [(uuid.uuid4().hex[:16], to_agent.name)]
        step_calls = {call_id for call_id, _ in calls}
        had = [*run.last_input, *run.last_output]
        # Tool outputs follow the model's output items, in the order the calls were made.
        order = [c.get("call_id") for c in run.last_output if c.get("type") == "function_call"]
        had += [run.tool_outputs[cid] for cid in order if cid in run.tool_outputs]
        # The SDK takes the first handoff call (to this receiver); the others are sent and never received.
        taken = next((call_id for call_id, to in calls if to == to_agent.name), None)
        for call_id, to in calls:
            state = _state(had, step_calls, call_id)
            self.recorder.handoff_sent(run.trace_id, from_agent.name, to, state, handoff_id=call_id)
            if call_id == taken:
                run.pending[to_agent.name] = (call_id, from_agent.name, step_calls)
        self.recorder.agent_end(run.trace_id, from_agent.name, "ok")

    async def on_agent_end(self, context: Any, agent: Any, output: Any) -> None:
        run = self._run(context)
        self.recorder.outcome(run.trace_id, agent.name, "success", result=output)
        self.recorder.agent_end(run.trace_id, agent.name, "ok")
        self._runs.pop(id(context.usage), None)


# --- item forms ------------------------------------------------------------------------------------


def _dump(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return dict(item)
    dump = getattr(item, "model_dump", None)
    return dump(exclude_unset=True) if callable(dump) else {"type": type(item).__name__}


def _handoff_targets(agent: Any) -> dict[str, str]:
    """Handoff tool name -> receiving agent name, for the handoffs ``agent`` offers."""
    names: dict[str, str] = {}
    for h in getattr(agent, "handoffs", ()) or ():
        if isinstance(h, Handoff):
            names[h.tool_name] = h.agent_name
        elif isinstance(h, Agent):
            names[Handoff.default_tool_name(h)] = h.name
    return names


def _model_name(agent: Any) -> str | None:
    model = getattr(agent, "model", None)
    if model is None or isinstance(model, str):
        return model
    name = getattr(model, "model", None)
    return name if isinstance(name, str) else type(model).__name__


def _parse(text: Any) -> Any:
    """A JSON string as its value (objects and arrays only); anything else unchanged."""
    if isinstance(text, str) and text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _text(content: Any) -> Any:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") if isinstance(p, dict) else None for p in content]
        if all(isinstance(p, str) for p in parts):
            return "".join(parts)  # type: ignore[arg-type]
        return [_dump(p) for p in content]
    return content


def conversation_state(items: list[Any], skip_call_ids: Iterable[str] = ()) -> dict[str, Any]:
    """Model input items as a state: ``messages`` in order, ``tool_calls`` and ``tool_outputs`` by call id.

    Keying tool calls and outputs by their call id names each one that goes missing. Items of
    other types go to ``other``, in order, when there are any. Calls and outputs with an id in
    ``skip_call_ids`` are left out.
    """
    skip = set(skip_call_ids)
    messages: list[Any] = []
    calls: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    other: list[Any] = []
    for raw in items:
        item = _dump(raw)
        kind = item.get("type")
        call_id = item.get("call_id")
        if call_id in skip:
            continue
        if kind == "function_call" and isinstance(call_id, str):
            calls[call_id] = {"tool": item.get("name"), "arguments": _parse(item.get("arguments"))}
        elif kind == "function_call_output" and isinstance(call_id, str):
            outputs[call_id] = _parse(_text(item.get("output")))
        elif isinstance(item.get("role"), str) and kind in (None, "message"):
            messages.append({item["role"]: _text(item.get("content"))})
        else:
            other.append({k: v for k, v in item.items() if k not in ("id", "status", "provider_data")})
    state: dict[str, Any] = {"messages": messages, "tool_calls": calls, "tool_outputs": outputs}
    if other:
        state["other"] = other
    return state


def _state(items: list[Any], step_calls: set[str], handoff_id: str) -> dict[str, Any]:
    state = conversation_state(items, step_calls)
    for raw in items:
        item = _dump(raw)
        if item.get("type") == "function_call" and item.get("call_id") == handoff_id:
            args = _parse(item.get("arguments"))
            if args:
                state["handoff_arguments"] = args
    return state


def _expand_nested_history(items: list[Any]) -> list[Any]:
    """Items with a nested-history summary message replaced by the transcript it carries.

    The summary is read back with the SDK's own parser; where that is unavailable (another SDK
    version), the summary stays one message.
    """
    try:
        from agents.handoffs.history import _extract_nested_history_transcript
    except ImportError:
        return items
    out: list[Any] = []
    for item in items:
        transcript = _extract_nested_history_transcript(cast(Any, item)) if isinstance(item, dict) else None
        out.extend(transcript if transcript is not None else [item])
    return out

"""Record every node-to-node and graph-to-subgraph transition of a LangGraph run as a handoff.

    from handoff_audit.integrations.langgraph import AuditCallback

    with Recorder("traces/orders.jsonl") as rec:
        graph.invoke(inputs, config={"callbacks": [AuditCallback(rec, outcome_node="confirm")]})

``AuditCallback`` is a LangChain callback handler, so it works with ``invoke``, ``ainvoke``,
``stream`` and ``astream`` alike. Every node is an agent, named by its path (``payment/charge`` for
the node ``charge`` of the subgraph run by the node ``payment``). It records:

- **node to node** (within one graph): for each node and each node of the same graph that ran in
  the step before it, ``handoff.sent`` is the update the earlier node returned (a dict, or the
  ``update`` of the ``Command`` it returned) and ``handoff.received`` is the later node's input under
  the same keys. A key the earlier node wrote that the later node was not given (a narrower input
  schema, a reducer that dropped it) is ``removed_field``; a value that changed is drift. Where the
  update's value is a list and the input's is a longer list ending with it (an appending reducer
  such as ``add_messages``), the received value is that tail. A node that returned
  ``Command(goto=...)`` hands off only to the nodes it named. Nodes started by ``Send`` get their own
  argument, not the state, and are not paired.
- **graph to subgraph**: ``handoff.sent`` is the state the subgraph was invoked with (for a
  subgraph added as a node, the state that node was given in the parent graph), and
  ``handoff.received`` is what the subgraph's first node was given, so keys the subgraph's state
  schema does not declare are ``removed_field``.
- ``agent.start`` / ``agent.end`` per node (``error`` if it raised), ``tool.call`` per LangChain
  tool call and ``llm.call`` per chat model call with its token usage, each under the node it ran
  in, and an ``outcome`` (``success``, with the node's update as ``result``) when a node named in
  ``outcome_node`` finishes. A run that ends without reaching it has no outcome, which ``scan``
  reports as ``missing_outcome``.

The ``trace_id`` is the root run's id unless ``trace_id`` is given.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson
from langchain_core.callbacks import BaseCallbackHandler

from handoff_audit.record import Recorder, _default

__all__ = ["AuditCallback"]

MAX_OPEN_RUNS = 1024  # runs that never end are forgotten, oldest first, past this


@dataclass(slots=True)
class _Node:
    """One node task: where it ran, what it was given, what it returned."""

    trace_id: str
    name: str  # path of node names: payment/charge
    graph_ns: str  # checkpoint namespace of the graph it belongs to ("" for the root graph)
    own_ns: str  # its own checkpoint namespace (a subgraph it runs has this as its graph_ns)
    step: int
    pushed: bool  # started by Send: its input is the Send argument, not the state
    input: Any
    parent_run: UUID | None = None  # for a subgraph's node: the run of the graph it belongs to
    update: dict[str, Any] | None = None
    goto: set[str] | None = None


@dataclass(slots=True)
class _Graph:
    """The finished nodes of one graph run, by step."""

    steps: dict[int, list[_Node]] = field(default_factory=dict)


def _jsonable(value: Any) -> Any:
    """The value as plain JSON data (messages and other models dumped), or its text if it is not JSON."""
    try:
        return orjson.loads(orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONEncodeError):
        return repr(value)


def _node_path(ns: str) -> str:
    return "/".join(part.split(":", 1)[0] for part in ns.split("|") if part)


def _update_of(output: Any) -> tuple[dict[str, Any], set[str] | None]:
    """A node's return value as (update, goto targets or None)."""
    update, goto = output, None
    if type(output).__name__ == "Command" and hasattr(output, "update"):
        update = output.update
        targets = output.goto if isinstance(output.goto, (list, tuple)) else [output.goto]
        names = {t for t in targets if isinstance(t, str)}
        goto = names or None
    if update is None:
        return {}, goto
    if isinstance(update, (list, tuple)):  # Command(update=[(key, value), ...])
        update = {u[0]: u[1] for u in update if isinstance(u, (list, tuple)) and len(u) == 2}
    data = _jsonable(update)
    return (data if isinstance(data, dict) else {"__value__": data}), goto


def _received_under(update: dict[str, Any], given: Any) -> dict[str, Any]:
    """The part of ``given`` under the keys of ``update``; a list the update was appended to is cut to it."""
    if not isinstance(given, dict):
        return {}
    out: dict[str, Any] = {}
    for key, sent in update.items():
        if key not in given:
            continue
        got = given[key]
        if isinstance(sent, list) and isinstance(got, list) and len(got) > len(sent) and _contains_run(got, sent):
            got = sent
        out[key] = got
    return out


def _contains_run(items: list[Any], run: list[Any]) -> bool:
    """True when ``run`` occurs in ``items`` as consecutive items (always for an empty ``run``)."""
    n = len(run)
    return any(items[i : i + n] == run for i in range(len(items) - n + 1))


class AuditCallback(BaseCallbackHandler):
    """A callback handler that records a LangGraph run's transitions, node turns and outcome.

    ``outcome_node`` names the node (or nodes, by name or path) whose completion claims the run's
    outcome. ``trace_id`` fixes the trace id (use a new handler per run then).
    """

    run_inline = True  # keep the events in the order the graph runs them, also under ainvoke
    raise_error = False

    def __init__(
        self,
        recorder: Recorder,
        outcome_node: str | Iterable[str] | None = None,
        *,
        trace_id: str | None = None,
    ) -> None:
        self.recorder = recorder
        self.outcome_nodes = {outcome_node} if isinstance(outcome_node, str) else set(outcome_node or ())
        self.trace_id = trace_id
        self._lock = threading.RLock()
        self._traces: dict[UUID, str] = {}  # run id -> trace id, for every run seen
        self._nodes: dict[UUID, _Node] = {}  # node run id -> node
        self._owner: dict[UUID, _Node] = {}  # any run inside a node -> that node
        self._graphs: dict[tuple[str, str], _Graph] = {}  # (trace id, graph ns) -> finished nodes
        self._by_own_ns: dict[tuple[str, str], _Node] = {}  # (trace id, node ns) -> node (subgraph parents)
        self._roots: dict[UUID, str] = {}
        self._invocations: dict[UUID, Any] = {}  # run started directly by a node -> its input

    # --- chains: the graph and its nodes --------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            trace_id = self._trace_of(run_id, parent_run_id)
            owner = self._owner.get(parent_run_id) if parent_run_id is not None else None
            meta = metadata or {}
            node_name = meta.get("langgraph_node")
            is_task = node_name is not None and kwargs.get("name") == node_name and any(
                t.startswith("graph:step:") for t in tags or ()
            )
            if not is_task:
                if owner is not None:
                    self._owner[run_id] = owner
                    if self._nodes.get(parent_run_id) is owner:  # type: ignore[arg-type]
                        # Run directly by a node: a subgraph's invocation keeps what it was invoked with.
                        self._invocations[run_id] = inputs
                return
            own_ns = str(meta.get("langgraph_checkpoint_ns") or node_name)
            graph_ns = own_ns.rpartition("|")[0]
            path: Any = meta.get("langgraph_path") or ()
            node = _Node(
                trace_id, _node_path(own_ns), graph_ns, own_ns, int(meta.get("langgraph_step") or 0),
                bool(path) and path[0] == "__pregel_push", _jsonable(inputs), parent_run_id,
            )
            self._nodes[run_id] = node
            self._owner[run_id] = node
            self._by_own_ns[(trace_id, own_ns)] = node
        self.recorder.agent_start(trace_id, node.name)
        self._record_arrival(node)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        with self._lock:
            node = self._nodes.pop(run_id, None)
            if node is not None:
                node.update, node.goto = _update_of(outputs)
                self._graphs.setdefault((node.trace_id, node.graph_ns), _Graph()).steps.setdefault(node.step, []).append(node)
            root_trace = self._roots.pop(run_id, None)
        if node is not None:
            self.recorder.agent_end(node.trace_id, node.name, "ok")
            if node.name in self.outcome_nodes or node.name.rpartition("/")[2] in self.outcome_nodes:
                self.recorder.outcome(node.trace_id, node.name, "success", result=node.update)
        if root_trace is not None:
            self._forget(root_trace)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        with self._lock:
            node = self._nodes.pop(run_id, None)
            root_trace = self._roots.pop(run_id, None)
        if node is not None:
            self.recorder.agent_end(node.trace_id, node.name, "error")
        if root_trace is not None:
            self._forget(root_trace)

    # --- model and tool calls inside a node -----------------------------------------------------

    def on_chat_model_start(self, serialized: dict[str, Any] | None, messages: Any, *, run_id: UUID,
                            parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._adopt(run_id, parent_run_id)

    def on_llm_start(self, serialized: dict[str, Any] | None, prompts: Any, *, run_id: UUID,
                     parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._adopt(run_id, parent_run_id)

    def on_llm_end(self, response: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        node = self._owner.get(run_id)
        if node is None:
            return
        tokens_in = tokens_out = 0
        model = None
        for gens in getattr(response, "generations", None) or ():
            for gen in gens:
                message = getattr(gen, "message", None)
                usage = getattr(message, "usage_metadata", None) or {}
                tokens_in += int(usage.get("input_tokens") or 0)
                tokens_out += int(usage.get("output_tokens") or 0)
                meta = getattr(message, "response_metadata", None) or {}
                model = model or meta.get("model_name") or meta.get("model")
        self.recorder.llm_call(node.trace_id, node.name, model, tokens_in, tokens_out)

    def on_tool_start(self, serialized: dict[str, Any] | None, input_str: str, *, run_id: UUID,
                      parent_run_id: UUID | None = None, inputs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        node = self._adopt(run_id, parent_run_id)
        if node is None:
            return
        name = kwargs.get("name") or (serialized or {}).get("name") or "tool"
        args = _jsonable(inputs) if isinstance(inputs, dict) else {}
        self.recorder.tool_call(node.trace_id, node.name, str(name), args if isinstance(args, dict) else {})

    # --- bookkeeping -------------------------------------------------------------------------------

    def _adopt(self, run_id: UUID, parent_run_id: UUID | None) -> _Node | None:
        with self._lock:
            node = self._owner.get(parent_run_id) if parent_run_id is not None else None
            if node is not None:
                self._owner[run_id] = node
            return node

    def _trace_of(self, run_id: UUID, parent_run_id: UUID | None) -> str:
        if parent_run_id is not None and parent_run_id in self._traces:
            trace_id = self._traces[parent_run_id]
        else:
            trace_id = self.trace_id or str(run_id)
            self._roots[run_id] = trace_id
            if len(self._roots) > MAX_OPEN_RUNS:
                self._forget(self._roots.pop(next(iter(self._roots))))
        self._traces[run_id] = trace_id
        return trace_id

    def _forget(self, trace_id: str) -> None:
        with self._lock:
            for run_id in [k for k in self._invocations if self._traces.get(k) == trace_id]:
                del self._invocations[run_id]
            for table in (self._traces, self._nodes, self._owner):
                for key in [k for k, v in table.items() if v == trace_id or getattr(v, "trace_id", None) == trace_id]:
                    del table[key]
            for pair in [k for k in self._graphs if k[0] == trace_id]:
                del self._graphs[pair]
            for pair in [k for k in self._by_own_ns if k[0] == trace_id]:
                del self._by_own_ns[pair]

    def _record_arrival(self, node: _Node) -> None:
        """Record the handoffs into ``node``: from the nodes of the step before, or from the subgraph's parent."""
        if node.pushed:
            return
        with self._lock:
            graph = self._graphs.get((node.trace_id, node.graph_ns))
            earlier = [s for s in graph.steps if s < node.step] if graph is not None else []
            senders = graph.steps[max(earlier)] if graph is not None and earlier else []
            parent = self._by_own_ns.get((node.trace_id, node.graph_ns)) if not senders and node.graph_ns else None
            invoked = self._invocations.get(node.parent_run) if node.parent_run is not None else None
        rec = self.recorder
        if parent is not None:
            # What the subgraph was invoked with: the node's own input when the subgraph is the node.
            sent = _jsonable(invoked) if invoked is not None else parent.input
            state = sent if isinstance(sent, dict) else {"__value__": sent}
            given = node.input if isinstance(node.input, dict) else {"__value__": node.input}
            hid = rec.handoff_sent(node.trace_id, parent.name, node.name, state)
            rec.handoff_received(node.trace_id, parent.name, node.name, given, handoff_id=hid)
            return
        short = node.name.rpartition("/")[2]
        for sender in senders:
            if sender.goto is not None and short not in sender.goto:
                continue
            update = sender.update or {}
            hid = rec.handoff_sent(node.trace_id, sender.name, node.name, update)
            rec.handoff_received(node.trace_id, sender.name, node.name, _received_under(update, node.input), handoff_id=hid)

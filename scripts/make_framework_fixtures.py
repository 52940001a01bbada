"""Write trace exports made by the real frameworks and exporters, for the adapters' tests.

Needs the ``fixtures`` extra (``pip install -e '.[fixtures]'``); nothing else in the project does.
Every flow runs offline: the OpenAI Agents SDK talks to a scripted Chat Completions endpoint served by
an in-process HTTP transport, and the LangGraph graphs are plain-function nodes. Each run is exported
by the frameworks' own code:

- the Agents SDK's trace and span ``export()`` payloads, one JSON object per line, as a custom
  tracing processor writes them (``agents_sdk/``);
- OTLP JSON as the OpenTelemetry Collector's file exporter writes it, one
  ``ExportTraceServiceRequest`` per line, encoded by the OTLP exporter's own protobuf encoder and
  protobuf's JSON mapping with the ids in hex as OTLP/JSON requires: spans made by the OpenInference
  instrumentations (``otlp_openinference/``, ``langgraph/``) and by the OpenTelemetry GenAI
  instrumentation of the Agents SDK (``otlp_genai/``);
- the OpenTelemetry SDK's ``ConsoleSpanExporter`` output (``console/``).

The ``refund_tool_only_in_model_output*`` runs leave every tool span out as it is exported (the
exporters and the tracing processor below drop them), as when the tools run outside the
instrumentation: their tool calls are recorded only in the model's output.

Run from the repository root:  .venv/bin/python scripts/make_framework_fixtures.py [agents] [langgraph]
(``tool-in-output`` writes only the ``refund_tool_only_in_model_output*`` files).
Then rerun the tests and review the diff: ids and times change on every run.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import operator
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any, TypedDict

import httpx
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter, SpanExportResult

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "frameworks"
SAMPLES = ROOT / "sample_traces" / "frameworks"  # a few of them, beside the native samples


# --- exporters -------------------------------------------------------------------------------


def is_tool_span(span: ReadableSpan) -> bool:
    """An OpenInference TOOL span that is not a handoff, or a GenAI ``execute_tool`` span."""
    attrs = span.attributes or {}
    if attrs.get("openinference.span.kind") == "TOOL":
        return not span.name.startswith("handoff to ")
    return attrs.get("gen_ai.operation.name") == "execute_tool"


class MemoryExporter(SpanExporter):
    """Holds finished spans until they are written in Collector file-exporter batches."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.drop_tools = False  # leave tool spans out, as when the tools run outside the instrumentation

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(s for s in spans if not (self.drop_tools and is_tool_span(s)))
        return SpanExportResult.SUCCESS

    def take(self) -> list[ReadableSpan]:
        spans, self.spans = self.spans, []
        return spans


def _hex_ids(node: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex, where protobuf's JSON mapping gives base64."""
    if isinstance(node, dict):
        return {
            k: (base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") and v else _hex_ids(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def otlp_json(spans: list[ReadableSpan]) -> dict[str, Any]:
    """One ExportTraceServiceRequest as the Collector's file exporter writes it."""
    message = encode_spans(spans)
    return _hex_ids(json_format.MessageToDict(message, use_integers_for_enums=True))


def write_otlp_lines(path: Path, spans: list[ReadableSpan], batch: int = 3, reverse: bool = False) -> None:
    """Spans in export batches of ``batch``, one request per line; ``reverse`` writes the batches backwards."""
    batches = [spans[i : i + batch] for i in range(0, len(spans), batch)]
    if reverse:
        batches.reverse()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for b in batches:
            fh.write(json.dumps(otlp_json(b), separators=(",", ":")) + "\n")
    print(f"wrote {path.relative_to(ROOT)} ({len(spans)} spans)")


def write_otlp_document(path: Path, spans: list[ReadableSpan]) -> None:
    """All spans as one pretty-printed request body (OTLP/HTTP JSON saved to a file)."""
    path.write_text(json.dumps(otlp_json(spans), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)} ({len(spans)} spans)")


def write_console(path: Path, spans: list[ReadableSpan]) -> None:
    """The ConsoleSpanExporter's own output for these spans."""
    out = io.StringIO()
    ConsoleSpanExporter(out=out).export(spans)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(out.getvalue(), encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)} ({len(spans)} spans)")


def provider(service: str) -> tuple[TracerProvider, MemoryExporter]:
    exporter = MemoryExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": service}))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp, exporter


# --- OpenAI Agents SDK ------------------------------------------------------------------------


def agents_flows(only: set[str] | None = None) -> None:
    from agents import (
        Agent,
        OpenAIChatCompletionsModel,
        OpenAIResponsesModel,
        RunConfig,
        Runner,
        function_tool,
        handoff,
        add_trace_processor,
    )
    from agents.exceptions import MaxTurnsExceeded
    from agents.extensions import handoff_filters
    from agents.tracing import TracingProcessor
    from openai import AsyncOpenAI
    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor as OpenInferenceAgents
    from opentelemetry.instrumentation.openai_agents import OpenAIAgentsInstrumentor as GenAIAgents

    class ExportProcessor(TracingProcessor):
        """A tracing processor that keeps the SDK's own export() payloads."""

        def __init__(self) -> None:
            self.lines: list[dict[str, Any]] = []
            self.drop_tools = False  # leave function spans out, like MemoryExporter.drop_tools

        def on_trace_start(self, trace: Any) -> None:
            if (payload := trace.export()) is not None:
                self.lines.append(payload)

        def on_trace_end(self, trace: Any) -> None:
            pass

        def on_span_start(self, span: Any) -> None:
            pass

        def on_span_end(self, span: Any) -> None:
            if self.drop_tools and span.span_data.type == "function":
                return
            if (payload := span.export()) is not None:
                self.lines.append(payload)

        def shutdown(self) -> None:
            pass

        def force_flush(self) -> None:
            pass

        def take(self) -> list[dict[str, Any]]:
            lines, self.lines = self.lines, []
            return lines

    script: dict[str, list[dict[str, Any]]] = {}

    def chat_endpoint(request: httpx.Request) -> httpx.Response:
        """The scripted model: each agent's instructions start with its name; it answers in turn."""
        body = json.loads(request.content)
        agent = body["messages"][0]["content"].split(":")[0]
        message = script[agent].pop(0)
        return httpx.Response(
            200,
            json={
                "id": f"chatcmpl-{agent}-{len(script[agent])}",
                "object": "chat.completion",
                "created": 1767261600,
                "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
                "usage": {"prompt_tokens": 120 + 10 * len(body["messages"]), "completion_tokens": 18, "total_tokens": 0},
            },
        )

    def responses_endpoint(request: httpx.Request) -> httpx.Response:
        """The same script served as the Responses API, the SDK's default model interface."""
        body = json.loads(request.content)
        agent = body["instructions"].split(":")[0]
        message = script[agent].pop(0)
        n = len(script[agent])
        output: list[dict[str, Any]] = []
        for tc in message.get("tool_calls") or ():
            fn = tc["function"]
            output.append({"type": "function_call", "id": f"fc_{tc['id']}", "call_id": tc["id"], "name": fn["name"],
                           "arguments": fn["arguments"], "status": "completed"})
        if message.get("content"):
            output.append({"type": "message", "id": f"msg_{agent}_{n}", "role": "assistant", "status": "completed",
                           "content": [{"type": "output_text", "text": message["content"], "annotations": []}]})
        return httpx.Response(
            200,
            json={
                "id": f"resp_{agent}_{n}",
                "object": "response",
                "created_at": 1767261600,
                "model": body["model"],
                "status": "completed",
                "output": output,
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "usage": {"input_tokens": 120 + 10 * len(body["input"]), "output_tokens": 18, "total_tokens": 0,
                          "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
            },
        )

    def endpoint(request: httpx.Request) -> httpx.Response:
        return responses_endpoint(request) if request.url.path.endswith("/responses") else chat_endpoint(request)

    client = AsyncOpenAI(
        api_key="offline",
        base_url="http://model.invalid/v1",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(endpoint)),
    )
    chat_model = OpenAIChatCompletionsModel(model="gpt-4.1-mini", openai_client=client)
    responses_model = OpenAIResponsesModel(model="gpt-4.1-mini", openai_client=client)
    model: Any = chat_model

    def call(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}],
        }

    def say(text: str) -> dict[str, Any]:
        return {"role": "assistant", "content": text}

    @function_tool
    def lookup_order(order_id: str) -> dict[str, Any]:
        """Look up an order by id."""
        return {"order_id": order_id, "total": 42.5, "currency": "USD", "status": "delivered"}

    @function_tool
    def issue_refund(order_id: str, amount: float) -> str:
        """Refund an amount on an order."""
        return f"refunded {amount} on {order_id}"

    exporter = ExportProcessor()
    oi_tp, oi_spans = provider("support-desk")
    OpenInferenceAgents().instrument(tracer_provider=oi_tp)
    genai_tp, genai_spans = provider("support-desk")
    GenAIAgents().instrument(tracer_provider=genai_tp)
    # The instrumentations install their processors; ours joins them. The SDK's default processor,
    # which would upload to the OpenAI backend, is not among them.
    add_trace_processor(exporter)

    def run(name: str, starting: Any, text: str, max_turns: int = 10, sensitive: bool = True,
            drop_tools: bool = False) -> None:
        if only is not None and name not in only:
            return
        for sink in (exporter, oi_spans, genai_spans):
            sink.drop_tools = drop_tools
        config = RunConfig(workflow_name=name, trace_include_sensitive_data=sensitive)
        try:
            asyncio.run(Runner.run(starting, text, run_config=config, max_turns=max_turns))
        except MaxTurnsExceeded:
            pass
        lines = exporter.take()
        path = OUT / "agents_sdk" / f"{name}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)} ({len(lines)} objects)")
        write_otlp_lines(OUT / "otlp_openinference" / f"{name}.jsonl", oi_spans.take())
        write_otlp_lines(OUT / "otlp_genai" / f"{name}.jsonl", genai_spans.take())

    def support(billing_filter: Any = None) -> Any:
        billing = Agent(
            name="billing", instructions="billing: settle refunds", model=model, tools=[issue_refund]
        )
        to_billing = handoff(billing, input_filter=billing_filter) if billing_filter else billing
        return Agent(
            name="triage", instructions="triage: route the customer", model=model, tools=[lookup_order], handoffs=[to_billing]
        )

    refund_script = {
        "triage": [
            call("call_lookup", "lookup_order", {"order_id": "A-17"}),
            call("call_transfer", "transfer_to_billing", {}),
        ],
        "billing": [
            call("call_refund", "issue_refund", {"order_id": "A-17", "amount": 42.5}),
            say("Refunded 42.50 USD on order A-17."),
        ],
    }

    # A clean handoff: billing sees the whole conversation, tool output included.
    script.update(json.loads(json.dumps(refund_script)))
    run("clean_handoff", support(), "Please refund order A-17, it arrived broken.")

    # The same flow with a handoff input filter that strips tool calls and their outputs: billing
    # never sees the looked-up order, and refunds from what the customer said.
    script.update(json.loads(json.dumps(refund_script)))
    run("input_filter_drops_tool_output", support(handoff_filters.remove_all_tools), "Please refund order A-17, it arrived broken.")

    # Billing receives the looked-up order and refunds another one: it acts on a handed-over field
    # with another value.
    script.update(json.loads(json.dumps(refund_script)))
    script["billing"][0] = call("call_refund", "issue_refund", {"order_id": "A-71", "amount": 42.5})
    run("refund_acts_on_another_order", support(), "Please refund order A-17, it arrived broken.")

    # The same, with the tools outside the instrumentation: no tool span is exported, so billing's
    # refund call is recorded only in its model's output.
    wrong_order = json.loads(json.dumps(refund_script))
    wrong_order["billing"][0] = call("call_refund", "issue_refund", {"order_id": "A-71", "amount": 42.5})
    script.update(json.loads(json.dumps(wrong_order)))
    run("refund_tool_only_in_model_output", support(), "Please refund order A-17, it arrived broken.", drop_tools=True)

    # The Responses API, the SDK's default: its own export carries response ids and usage, no messages.
    model = responses_model
    script.update(json.loads(json.dumps(refund_script)))
    run("clean_handoff_responses_api", support(), "Please refund order A-17, it arrived broken.")
    script.update(json.loads(json.dumps(refund_script)))
    run("input_filter_drops_tool_output_responses_api", support(handoff_filters.remove_all_tools),
        "Please refund order A-17, it arrived broken.")
    # The GenAI instrumentation records a model's output messages for Responses API calls only.
    script.update(json.loads(json.dumps(wrong_order)))
    run("refund_tool_only_in_model_output_responses_api", support(), "Please refund order A-17, it arrived broken.",
        drop_tools=True)
    model = chat_model

    # A stock export without message content (trace_include_sensitive_data=False).
    script.update(json.loads(json.dumps(refund_script)))
    run("no_content", support(), "Please refund order A-17, it arrived broken.", sensitive=False)

    # Two agents handing the customer back and forth until the run gives up.
    script["triage"] = [call(f"call_t{i}", "transfer_to_billing", {}) for i in range(3)]
    script["billing"] = [call(f"call_b{i}", "transfer_to_triage", {}) for i in range(3)]
    billing = Agent(name="billing", instructions="billing: settle refunds", model=model)
    triage = Agent(name="triage", instructions="triage: route the customer", model=model, handoffs=[billing])
    billing.handoffs = [triage]
    run("handoff_loop", triage, "Why was I charged twice?", max_turns=4)

    # The model asks for two handoffs at once; the SDK takes the first and records the error.
    script["triage"] = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_h1", "type": "function", "function": {"name": "transfer_to_billing", "arguments": "{}"}},
                {"id": "call_h2", "type": "function", "function": {"name": "transfer_to_shipping", "arguments": "{}"}},
            ],
        }
    ]
    script["billing"] = [say("The duplicate charge was reversed.")]
    billing = Agent(name="billing", instructions="billing: settle refunds", model=model)
    shipping = Agent(name="shipping", instructions="shipping: track parcels", model=model)
    triage = Agent(name="triage", instructions="triage: route the customer", model=model, handoffs=[billing, shipping])
    run("multiple_handoffs", triage, "I was charged twice and my parcel is late.")


# --- LangGraph --------------------------------------------------------------------------------

# LangGraph reads the state schemas' type hints, so they live at module level.


class Order(TypedDict, total=False):
    request: str
    customer: dict[str, Any]
    order: dict[str, Any]
    shipping_address: dict[str, Any]
    quote: dict[str, Any]
    answer: str


class Fulfilment(TypedDict, total=False):
    customer: dict[str, Any]
    order: dict[str, Any]
    answer: str


class Checkout(TypedDict, total=False):
    request: str
    order_id: str
    amount: float
    currency: str
    answer: str


class Payment(TypedDict, total=False):
    order_ref: str
    amount: int
    receipt: str


class Answer(TypedDict, total=False):
    answer: str


class Draft(TypedDict, total=False):
    request: str
    draft: str
    notes: Annotated[list[str], operator.add]
    answer: str



def langgraph_flows() -> None:
    from langgraph.graph import END, START, StateGraph
    from openinference.instrumentation.langchain import LangChainInstrumentor

    tp, spans = provider("order-graph")
    LangChainInstrumentor().instrument(tracer_provider=tp)

    def save(name: str, **kw: Any) -> list[ReadableSpan]:
        taken = spans.take()
        write_otlp_lines(OUT / "langgraph" / f"{name}.jsonl", taken, **kw)
        return taken


    customer = {"id": "C-9", "name": "Ada Lovelace", "tier": "gold"}
    order = {"id": "A-17", "items": [{"sku": "KB-01", "qty": 1}], "total_usd": 42.5}
    address = {"street": "12 Analytical Way", "city": "London", "postcode": "N1 7AA"}

    # Clean: intake -> pricing -> writer; every node sees what the one before it wrote.
    def intake(state: Order) -> Order:
        return {"customer": customer, "order": order, "shipping_address": address}

    def pricing(state: Order) -> Order:
        return {"quote": {"order_id": state["order"]["id"], "amount_usd": state["order"]["total_usd"]}}

    def writer(state: Order) -> Order:
        return {"answer": f"Order {state['order']['id']} ships to {state['shipping_address']['city']}."}

    g = StateGraph(Order)
    g.add_node("intake", intake)
    g.add_node("pricing", pricing)
    g.add_node("writer", writer)
    g.add_edge(START, "intake")
    g.add_edge("intake", "pricing")
    g.add_edge("pricing", "writer")
    g.add_edge("writer", END)
    g.compile().invoke({"request": "ship order A-17"})
    clean = save("clean_pipeline", reverse=True)  # batches written backwards: a trace arrives out of order
    SAMPLES.mkdir(parents=True, exist_ok=True)
    write_otlp_document(SAMPLES / "langgraph_clean_pipeline.otlp.json", clean)
    write_console(OUT / "console" / "clean_pipeline.txt", clean)

    # A subgraph with a narrower state schema: the shipping address is not one of its keys.

    def pack(state: Fulfilment) -> Fulfilment:
        return {"answer": f"Packed {state['order']['id']} for {state['customer']['name']}."}

    sub = StateGraph(Fulfilment)
    sub.add_node("pack", pack)
    sub.add_edge(START, "pack")
    sub.add_edge("pack", END)
    g = StateGraph(Order)
    g.add_node("intake", intake)
    g.add_node("fulfilment", sub.compile())
    g.add_edge(START, "intake")
    g.add_edge("intake", "fulfilment")
    g.add_edge("fulfilment", END)
    g.compile().invoke({"request": "ship order A-17"})
    loss = save("subgraph_drops_keys")
    write_console(OUT / "console" / "subgraph_drops_keys.txt", loss)

    # A node that calls the payments graph with the order id renamed and the amount in cents.
    def price(state: Checkout) -> Checkout:
        return {"order_id": "A-17", "amount": 42.5, "currency": "USD"}

    def charge(state: Payment) -> Payment:
        return {"receipt": f"charged {state['amount']} cents on {state['order_ref']}"}

    payments = StateGraph(Payment)
    payments.add_node("charge", charge)
    payments.add_edge(START, "charge")
    payments.add_edge("charge", END)
    payments_graph = payments.compile()

    def pay(state: Checkout) -> Checkout:
        result = payments_graph.invoke({"order_ref": state["order_id"], "amount": round(state["amount"] * 100)})
        return {"answer": result["receipt"]}

    g = StateGraph(Checkout)
    g.add_node("price", price)
    g.add_node("pay", pay)
    g.add_edge(START, "price")
    g.add_edge("price", "pay")
    g.add_edge("pay", END)
    g.compile().invoke({"request": "pay order A-17"})
    save("renamed_to_cents")

    # A router sends the run to END before any node writes the answer the graph returns.

    def classify(state: Order) -> Order:
        return {"order": order}

    def route(state: Order) -> str:
        return "writer" if state.get("request", "").startswith("ship") else END

    g = StateGraph(Order, output_schema=Answer)
    g.add_node("classify", classify)
    g.add_node("writer", writer)
    g.add_edge(START, "classify")
    g.add_conditional_edges("classify", route, ["writer", END])
    g.add_edge("writer", END)
    g.compile().invoke({"request": "cancel order A-17"})
    save("route_to_end_without_answer")

    # Two agents handing a draft back and forth.

    def drafter(state: Draft) -> Draft:
        return {"draft": f"Dear customer, about {state['request']}."}

    def reviewer(state: Draft) -> Draft:
        if len(state.get("notes", [])) < 2:
            return {"notes": ["please clarify the refund amount"]}
        return {"answer": state["draft"]}

    def review_route(state: Draft) -> str:
        return END if state.get("answer") else "drafter"

    g = StateGraph(Draft)
    g.add_node("drafter", drafter)
    g.add_node("reviewer", reviewer)
    g.add_edge(START, "drafter")
    g.add_edge("drafter", "reviewer")
    g.add_conditional_edges("reviewer", review_route, ["drafter", END])
    g.compile().invoke({"request": "the refund for A-17"})
    save("back_and_forth")


def langgraph_chat_flows() -> None:
    """Agents that talk through a shared message list (MessagesState), with scripted chat models."""
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage
    from langgraph.graph import END, START, MessagesState, StateGraph
    from openinference.instrumentation.langchain import LangChainInstrumentor

    tp, spans = provider("research-desk")
    LangChainInstrumentor().instrument(tracer_provider=tp)
    researcher_model = FakeMessagesListChatModel(responses=[AIMessage(content="Order A-17 shipped on 2 March; 42.50 USD.")])
    writer_model = FakeMessagesListChatModel(responses=[AIMessage(content="Your order A-17 shipped on 2 March.")])

    def researcher(state: MessagesState) -> dict[str, Any]:
        return {"messages": [researcher_model.invoke(state["messages"])]}

    def writer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [writer_model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("researcher", researcher)
    g.add_node("writer", writer)
    g.add_edge(START, "researcher")
    g.add_edge("researcher", "writer")
    g.add_edge("writer", END)
    g.compile().invoke({"messages": [("user", "Where is order A-17?")]})
    write_otlp_lines(OUT / "langgraph" / "clean_chat_agents.jsonl", spans.take())


def main() -> None:
    which = set(sys.argv[1:]) or {"agents", "langgraph"}
    if "tool-in-output" in which and "agents" not in which:
        agents_flows({"refund_tool_only_in_model_output", "refund_tool_only_in_model_output_responses_api"})
    if "agents" in which:
        agents_flows()
        SAMPLES.mkdir(parents=True, exist_ok=True)
        for fmt, name in (("agents_sdk", "input_filter_drops_tool_output"), ("otlp_openinference", "multiple_handoffs")):
            target = SAMPLES / f"{fmt}_{name}.jsonl"
            shutil.copyfile(OUT / fmt / f"{name}.jsonl", target)
            print(f"wrote {target.relative_to(ROOT)}")
    if "langgraph" in which:
        langgraph_flows()
    if "langgraph-chat" in which or "langgraph" in which:
        langgraph_chat_flows()


if __name__ == "__main__":
    main()

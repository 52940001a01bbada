"""The span formats (OTLP JSON, Agents SDK export, console output), read from files the frameworks wrote.

The fixtures under tests/fixtures/frameworks come from scripts/make_framework_fixtures.py, which runs
the OpenAI Agents SDK, LangGraph and their instrumentations; these tests need none of them.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from conftest import REPO
from typer.testing import CliRunner

from handoff_audit.adapters import detect
from handoff_audit.cli import app
from handoff_audit.convert import Conversion, convert
from handoff_audit.errors import InputError
from handoff_audit.pipeline import ScanConfig, run

FIXTURES = REPO / "tests" / "fixtures" / "frameworks"
AGENT_FORMATS = ("agents_sdk", "otlp_openinference", "otlp_genai")


def _scan(*paths: Path | str, input_format: str | None = None):  # type: ignore[no-untyped-def]
    return run(ScanConfig(tuple(str(p) for p in paths), input_format=input_format))


def _found(report) -> set[tuple[str, str | None, str | None, str]]:  # type: ignore[no-untyped-def]
    return {(f.kind, f.from_agent, f.to_agent, f.path) for f in report.findings}


@pytest.mark.parametrize("fmt", AGENT_FORMATS)
def test_a_clean_agents_sdk_handoff_comes_out_clean_in_every_format(fmt: str) -> None:
    report = _scan(FIXTURES / fmt / "clean_handoff.jsonl")
    assert report.findings == ()
    assert report.skipped == ()
    assert [(e.from_agent, e.to_agent, e.handoffs) for e in report.summary.edges] == [("triage", "billing", 1)]
    assert report.summary.end_to_end_success_rate == 1.0  # billing's final answer is claimed as the outcome


@pytest.mark.parametrize("fmt", AGENT_FORMATS)
def test_an_input_filter_that_strips_tool_output_is_state_loss(fmt: str) -> None:
    report = _scan(FIXTURES / fmt / "input_filter_drops_tool_output.jsonl")
    assert _found(report) == {
        ("removed_field", "triage", "billing", "tool_calls"),
        ("removed_field", "triage", "billing", "tool_outputs"),
    }
    lost = {f.path: f.sent for f in report.findings}
    assert lost["tool_calls"]["call_lookup"]["arguments"] == {"order_id": "A-17"}


@pytest.mark.parametrize("fmt", AGENT_FORMATS)
def test_agents_handing_back_and_forth_is_a_clarification_loop(fmt: str) -> None:
    report = _scan(FIXTURES / fmt / "handoff_loop.jsonl")
    assert {f.kind for f in report.findings} == {"clarification_loop"}
    assert report.summary.handoffs == 4
    # Max turns ran out while triage held the run: its turn ended in error, and it claims a failure.
    assert report.summary.end_to_end_success_rate == 0.0
    assert report.summary.agent_success_rate is not None and report.summary.agent_success_rate < 1.0
    # The last receiver made no model call, so what it got cannot be known: said, not passed as clean.
    assert [s.reason for s in report.skipped] == [
        "handoff billing -> triage: the receiver made no model call before the run ended, so what it got is unknown"
    ]


@pytest.mark.parametrize("fmt", AGENT_FORMATS)
def test_multiple_handoffs_requested_leave_the_ignored_one_orphaned(fmt: str) -> None:
    report = _scan(FIXTURES / fmt / "multiple_handoffs.jsonl")
    assert _found(report) == {("orphaned_handoff", "triage", "shipping", "")}


@pytest.mark.parametrize("fmt", AGENT_FORMATS)
def test_an_export_without_content_says_the_state_was_not_compared(fmt: str) -> None:
    report = _scan(FIXTURES / fmt / "no_content.jsonl")
    assert report.findings == ()
    assert report.summary.handoffs == 1
    assert len(report.skipped) == 1
    assert "no message content, so the state handed over was not compared" in report.skipped[0].reason
    assert "recording integration" in report.skipped[0].reason


def _convert(path: Path | str, result: Conversion | None = None) -> bytes:
    buf = io.BytesIO()
    convert((str(path),), result or Conversion(buf.write))
    return buf.getvalue()


def test_token_counts_and_tool_calls_become_native_events() -> None:
    events = [json.loads(line) for line in _convert(FIXTURES / "agents_sdk" / "clean_handoff.jsonl").splitlines()]
    llm = [e for e in events if e["type"] == "llm.call"]
    assert llm and all(e["input_tokens"] > 0 and e["output_tokens"] == 18 for e in llm)
    tools = [(e["agent"], e["tool"], e["args"]) for e in events if e["type"] == "tool.call"]
    assert tools == [
        ("triage", "lookup_order", {"order_id": "A-17"}),
        ("billing", "issue_refund", {"order_id": "A-17", "amount": 42.5}),
    ]
    assert [(e["agent"], e["status"]) for e in events if e["type"] == "outcome"] == [("billing", "success")]


def test_a_clean_langgraph_pipeline_comes_out_clean() -> None:
    report = _scan(FIXTURES / "langgraph" / "clean_pipeline.jsonl")
    assert report.findings == ()
    assert [(e.from_agent, e.to_agent) for e in report.summary.edges] == [("intake", "pricing"), ("pricing", "writer")]
    assert report.summary.end_to_end_success_rate == 1.0


def test_a_subgraph_with_a_narrower_schema_loses_keys() -> None:
    report = _scan(FIXTURES / "langgraph" / "subgraph_drops_keys.jsonl")
    assert _found(report) == {
        ("removed_field", "fulfilment", "pack", "request"),
        ("removed_field", "fulfilment", "pack", "shipping_address"),
    }


def test_a_node_that_renames_a_key_and_converts_to_cents_is_drift() -> None:
    report = _scan(FIXTURES / "langgraph" / "renamed_to_cents.jsonl")
    assert _found(report) == {
        ("renamed_field", "pay", "charge", "order_id"),
        ("unit_changed", "pay", "charge", "amount"),
    }
    unit = next(f for f in report.findings if f.kind == "unit_changed")
    assert (unit.sent, unit.received) == (42.5, 4250)


def test_a_route_to_end_before_any_node_answers_is_a_gap() -> None:
    report = _scan(FIXTURES / "langgraph" / "route_to_end_without_answer.jsonl")
    assert {f.kind for f in report.findings} == {"missing_outcome"}


def test_langgraph_nodes_handing_a_draft_back_and_forth_loop() -> None:
    report = _scan(FIXTURES / "langgraph" / "back_and_forth.jsonl")
    assert {f.kind for f in report.findings} == {"clarification_loop"}


def test_console_output_reads_like_the_same_spans_in_otlp() -> None:
    for name in ("clean_pipeline", "subgraph_drops_keys"):
        console = _scan(FIXTURES / "console" / f"{name}.txt")
        otlp = _scan(FIXTURES / "langgraph" / f"{name}.jsonl")
        assert _found(console) == _found(otlp)
        assert console.summary.handoffs == otlp.summary.handoffs


def test_a_single_pretty_printed_otlp_request_is_read_whole() -> None:
    report = _scan(REPO / "sample_traces" / "frameworks" / "langgraph_clean_pipeline.otlp.json")
    assert report.findings == () and report.summary.handoffs == 2


ALL_FIXTURES = sorted(p for p in FIXTURES.rglob("*") if p.is_file())


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scanning_the_converted_file_gives_the_same_findings(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "native.jsonl"
    out.write_bytes(_convert(path))
    original, converted = _scan(path), _scan(out, input_format="native")
    key = lambda r: sorted((f.kind, f.from_agent, f.to_agent, f.path, json.dumps(f.sent), json.dumps(f.received))
                           for f in r.findings)  # noqa: E731
    assert key(converted) == key(original)
    assert converted.summary.handoffs == original.summary.handoffs
    assert converted.summary.events == original.summary.events


def test_a_directory_mixing_formats_is_read_file_by_file(tmp_path: Path) -> None:
    for src in (FIXTURES / "agents_sdk" / "clean_handoff.jsonl", FIXTURES / "langgraph" / "clean_pipeline.jsonl",
                REPO / "sample_traces" / "clean_ecommerce_run.jsonl"):
        (tmp_path / src.name.replace(".jsonl", f"-{src.parent.name}.jsonl")).write_bytes(src.read_bytes())
    (tmp_path / "console.jsonl").write_bytes((FIXTURES / "console" / "clean_pipeline.txt").read_bytes())
    report = _scan(tmp_path)
    assert report.findings == () and report.skipped == ()
    # The console output holds the same spans as the LangGraph export: each span counts once.
    alone = [_scan(p).summary for p in sorted(tmp_path.glob("*-*.jsonl"))]
    assert report.summary.traces == sum(s.traces for s in alone)
    assert report.summary.handoffs == sum(s.handoffs for s in alone)


def test_detection_reads_only_the_first_lines_and_gives_them_back() -> None:
    data = (FIXTURES / "otlp_genai" / "clean_handoff.jsonl").read_bytes()
    fmt, lines = detect(io.BufferedReader(io.BytesIO(data)))  # type: ignore[arg-type]
    assert fmt == "otlp-json"
    assert b"".join(lines) == data


def test_forcing_a_format_reads_the_file_as_that_format() -> None:
    with pytest.raises(InputError, match="no usable events"):
        _scan(FIXTURES / "agents_sdk" / "clean_handoff.jsonl", input_format="otlp-json")


def test_a_file_in_no_known_format_gets_one_line_naming_the_formats_tried(tmp_path: Path) -> None:
    junk = tmp_path / "notes.jsonl"
    junk.write_text("hello\nworld\n" * 50)
    good = FIXTURES / "agents_sdk" / "clean_handoff.jsonl"
    report = _scan(junk, good)
    assert [(s.file, s.line, s.reason) for s in report.skipped] == [
        (str(junk), 1, "not a known trace format (tried native, otlp-json, agents-sdk, otel-console)")
    ]


def test_broken_spans_are_skipped_counted_and_listed_with_their_line(tmp_path: Path) -> None:
    lines = (FIXTURES / "otlp_openinference" / "clean_handoff.jsonl").read_text().splitlines()
    doc = json.loads(lines[0])
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    del spans[0]["spanId"]
    spans[1]["attributes"].append({"key": "bad", "value": {"intValue": "twelve"}})
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([json.dumps(doc), "{not json", *lines[1:]]) + "\n")
    report = _scan(broken)
    reasons = [(s.line, s.reason) for s in report.skipped]
    assert (1, "resourceSpans[0].scopeSpans[0].spans[0]: missing 'spanId'") in reasons
    assert (1, "resourceSpans[0].scopeSpans[0].spans[1]: attribute 'bad': 'intValue' is not a readable value") in reasons
    assert (2, "not valid JSON") in reasons
    assert report.summary.skipped == len(report.skipped) >= 3


def test_a_gzipped_export_is_read(tmp_path: Path) -> None:
    gz = tmp_path / "export.jsonl.gz"
    gz.write_bytes(gzip.compress((FIXTURES / "agents_sdk" / "input_filter_drops_tool_output.jsonl").read_bytes()))
    assert {f.kind for f in _scan(gz).findings} == {"removed_field"}


def test_convert_command_writes_native_events_and_scan_reads_them(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    src = str(FIXTURES / "langgraph" / "renamed_to_cents.jsonl")
    result = CliRunner().invoke(app, ["convert", src, "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "events written, 0 lines skipped" in result.stderr
    assert all(json.loads(line)["trace_id"] for line in out.read_text().splitlines())
    scanned = CliRunner().invoke(app, ["scan", "-f", "json", str(out)])
    assert scanned.exit_code == 1
    assert {f["kind"] for f in json.loads(scanned.stdout)["findings"]} == {"renamed_field", "unit_changed"}


def test_convert_writes_nothing_a_terminal_would_act_on_and_keeps_every_value(tmp_path: Path) -> None:
    hostile = "x\x85y\x9bz\u202e\u2066\u200b\u2028\U000e0041\x1b[31m"
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"trace_id": "t" + hostile, "type": "agent.start", "agent": hostile}) + "\n",
                   encoding="utf-8")
    bad = tmp_path / f"f{hostile[:9]}.jsonl"
    bad.write_text("{\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["convert", str(src), str(bad)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.isascii() and result.stdout.count("\n") == 1
    assert json.loads(result.stdout) == {"trace_id": "t" + hostile, "type": "agent.start", "agent": hostile}
    [note] = [line for line in result.stderr.splitlines() if "skipped" in line and ":1:" in line]
    assert note.isprintable() and "\\u202e\\u2066\\u200b" in note  # \u, never the ambiguous \x202e


def test_convert_skips_the_native_lines_scan_skips(tmp_path: Path) -> None:
    lines = [
        '{"trace_id":"t","type":"outcome","agent":"a","ts":"2026-01-01T10:00:00"}',  # no offset
        '{"trace_id":"t","type":"outcome","agent":"a","ts":"2026-02-30T10:00:00Z"}',  # no such day
        '{"trace_id":"t","type":"tool.call","agent":"a","tool":"x","args":{},"ts":true}',
        '{"trace_id":"t","type":"agent.start","agent":"a","ts":true}',  # not kept: its time is not read
        '{"trace_id":"t","type":"handoff.sent","from":"a","to":"b","state":[]}',
        '{"trace_id":"t","type":"outcome","agent":"a","ts":"2026-01-01T10:00:00Z"}',
        "{oops",
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    converted = CliRunner().invoke(app, ["convert", str(src)])
    skipped = [line for line in converted.stderr.splitlines() if "skipped " in line and "in.jsonl:" in line]
    scanned = json.loads(CliRunner().invoke(app, ["scan", "-f", "json", "--exit-zero", str(src)]).stdout)
    expected = [f"handoff-audit: skipped {src}:{s['line']}: {s['reason']}" for s in scanned["skipped"]]
    assert skipped == expected and len(expected) == 5
    assert len(converted.stdout.splitlines()) == 2


def test_convert_of_nothing_usable_exits_2_with_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jsonl"
    junk.write_text("hello\n")
    result = CliRunner().invoke(app, ["convert", str(junk), "-o", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 2
    assert "not a known trace format" in result.stderr
    assert "no usable events" in result.stderr
    assert not (tmp_path / "out.jsonl").exists()  # an output file appears only after a successful run
    assert not list(tmp_path.glob(".out.jsonl.*"))


def test_scan_input_format_option_is_offered_and_checked() -> None:
    result = CliRunner().invoke(app, ["scan", "--input-format", "yaml", "x.jsonl"])
    assert result.exit_code == 2


def test_a_conversion_counts_what_it_wrote() -> None:
    lines: list[bytes] = []
    result = Conversion(lines.append)
    convert((str(FIXTURES / "agents_sdk" / "no_content.jsonl"),), result)
    assert result.events == len(lines) > 0
    assert len(result.skipped) == 1


def _many_traces(path: Path, copies: int) -> Path:
    """The OpenInference exports, each copied under new trace ids, one copy after another."""
    out = path / "many.jsonl"
    with open(out, "w") as fh:
        for n in range(copies):
            for src in sorted((FIXTURES / "otlp_openinference").glob("*.jsonl")):
                for line in src.read_text().splitlines():
                    doc = json.loads(line)
                    for rs in doc["resourceSpans"]:
                        for ss in rs["scopeSpans"]:
                            for sp in ss["spans"]:
                                sp["traceId"] = f"{n:08x}" + sp["traceId"][8:]
                    fh.write(json.dumps(doc) + "\n")
    return out


def test_complete_traces_are_converted_while_the_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from handoff_audit.adapters import spans

    path = _many_traces(tmp_path, 30)
    whole = _scan(path)
    held: list[int] = []
    emit = spans._emit

    def watch(sink, tid, trace_spans):  # type: ignore[no-untyped-def]
        held.append(sum(len(v) for b in spans._buffers.values() for v in b.traces.values()))
        emit(sink, tid, trace_spans)

    monkeypatch.setattr(spans, "SPAN_WINDOW", 40)
    monkeypatch.setattr(spans, "_CHECK_EVERY", 8)
    monkeypatch.setattr(spans, "_emit", watch)
    windowed = _scan(path)
    assert [f.to_dict() for f in windowed.findings] == [f.to_dict() for f in whole.findings]
    assert windowed.skipped == whole.skipped
    assert windowed.summary == whole.summary
    total = sum(1 for line in path.read_text().splitlines() for _ in json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"])
    # Traces were converted during the read, and no more than a window's worth of spans was held at once.
    assert len(held) == 30 * len(list((FIXTURES / "otlp_openinference").glob("*.jsonl")))
    assert max(held[:-1]) < 40 + 8 + 30 < total


def test_a_span_after_its_trace_was_converted_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from handoff_audit.adapters import spans

    path = _many_traces(tmp_path, 20)
    first = (FIXTURES / "otlp_openinference" / "clean_handoff.jsonl").read_text().splitlines()[0]
    with open(path, "a") as fh:
        doc = json.loads(first)
        for sp in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:
            sp["traceId"] = "00000000" + sp["traceId"][8:]
        fh.write(json.dumps(doc) + "\n")
    monkeypatch.setattr(spans, "SPAN_WINDOW", 40)
    monkeypatch.setattr(spans, "_CHECK_EVERY", 8)
    report = _scan(path)
    late = [s for s in report.skipped if s.reason.startswith("span of a trace already converted")]
    assert late and all(s.line == len(path.read_text().splitlines()) for s in late)


@pytest.mark.parametrize("fmt", ("otlp_openinference", "otlp_genai"))
def test_responses_api_runs_are_compared_where_the_instrumentation_recorded_the_messages(fmt: str) -> None:
    clean = _scan(FIXTURES / fmt / "clean_handoff_responses_api.jsonl")
    assert clean.findings == () and clean.skipped == ()
    assert clean.summary.end_to_end_success_rate == 1.0
    lossy = _scan(FIXTURES / fmt / "input_filter_drops_tool_output_responses_api.jsonl")
    assert {(f.kind, f.path) for f in lossy.findings} == {("removed_field", "tool_calls"), ("removed_field", "tool_outputs")}


def test_the_sdks_own_export_of_a_responses_api_run_has_edges_but_no_state() -> None:
    for name in ("clean_handoff_responses_api", "input_filter_drops_tool_output_responses_api"):
        report = _scan(FIXTURES / "agents_sdk" / f"{name}.jsonl")
        assert report.findings == ()
        assert [(e.from_agent, e.to_agent) for e in report.summary.edges] == [("triage", "billing")]
        assert len(report.skipped) == 1 and "no message content" in report.skipped[0].reason


def test_langgraph_agents_sharing_a_message_list_come_out_clean() -> None:
    report = _scan(FIXTURES / "langgraph" / "clean_chat_agents.jsonl")
    assert report.findings == () and report.skipped == ()
    assert [(e.from_agent, e.to_agent) for e in report.summary.edges] == [("researcher", "writer")]
    assert report.summary.end_to_end_success_rate == 1.0  # the writer appended the answer the graph returned


def _rewrite_spans(src: Path, dst: Path, change) -> Path:  # type: ignore[no-untyped-def]
    with open(dst, "w") as fh:
        for line in src.read_text().splitlines():
            doc = json.loads(line)
            for rs in doc["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    ss["spans"] = [change(sp) for sp in ss["spans"]]
            fh.write(json.dumps(doc) + "\n")
    return dst


def test_messages_recorded_only_as_flattened_attributes_are_read(tmp_path: Path) -> None:
    def drop_values(sp):  # type: ignore[no-untyped-def]
        kinds = [a["value"].get("stringValue") for a in sp.get("attributes", []) if a["key"] == "openinference.span.kind"]
        if kinds == ["LLM"]:
            sp["attributes"] = [a for a in sp["attributes"] if a["key"] not in ("input.value", "output.value")]
        return sp

    src = FIXTURES / "otlp_openinference" / "input_filter_drops_tool_output.jsonl"
    flat = _rewrite_spans(src, tmp_path / "flat.jsonl", drop_values)
    assert "input.value" in src.read_text() and _found(_scan(flat)) == _found(_scan(src))
    assert len(_scan(flat).findings) == 2


def test_otlp_json_with_the_proto_field_names_is_read(tmp_path: Path) -> None:
    names = {"traceId": "trace_id", "spanId": "span_id", "parentSpanId": "parent_span_id",
             "startTimeUnixNano": "start_time_unix_nano", "endTimeUnixNano": "end_time_unix_nano"}
    src = FIXTURES / "langgraph" / "subgraph_drops_keys.jsonl"
    snake = tmp_path / "snake.jsonl"
    with open(snake, "w") as fh:
        for line in src.read_text().splitlines():
            doc = json.loads(line)
            fh.write(json.dumps({"resource_spans": [
                {"resource": rs.get("resource"), "scope_spans": [
                    {"scope": ss.get("scope"), "spans": [{names.get(k, k): v for k, v in sp.items()} for sp in ss["spans"]]}
                    for ss in rs["scopeSpans"]]}
                for rs in doc["resourceSpans"]]}) + "\n")
    assert _found(_scan(snake)) == _found(_scan(src)) != set()


def test_agents_sdk_batches_as_the_backend_exporter_sends_them_are_read(tmp_path: Path) -> None:
    src = FIXTURES / "agents_sdk" / "input_filter_drops_tool_output.jsonl"
    items = [json.loads(line) for line in src.read_text().splitlines()]
    batched = tmp_path / "batches.jsonl"
    batched.write_text("".join(json.dumps({"data": items[i:i + 4]}) + "\n" for i in range(0, len(items), 4)))
    assert _found(_scan(batched)) == _found(_scan(src)) != set()


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_ids = st.sampled_from(["0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "", "zz", None, 7])
_otlp_value = st.one_of(
    st.builds(lambda v: {"stringValue": v}, _json), st.builds(lambda v: {"intValue": v}, _json),
    st.builds(lambda v: {"arrayValue": v}, _json), st.builds(lambda v: {"kvlistValue": v}, _json), _json,
)
_keys = st.sampled_from(["openinference.span.kind", "input.value", "output.value", "gen_ai.operation.name",
                         "metadata", "agent.name", "llm.input_messages.0.message.role", "graph.node.id", "x"])
_otlp_span = st.fixed_dictionaries(
    {"traceId": _ids, "spanId": _ids, "name": _json},
    optional={"parentSpanId": _ids, "startTimeUnixNano": _json, "status": _json,
              "attributes": st.lists(st.fixed_dictionaries({"key": _keys, "value": _otlp_value}), max_size=5)},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_otlp_span, max_size=6), st.lists(_json, max_size=3))
def test_any_otlp_json_is_read_or_skipped_with_a_reason(spans: list, junk: list) -> None:  # type: ignore[type-arg]
    import tempfile

    doc = {"resourceSpans": [{"scopeSpans": [{"spans": spans + junk}]}]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.jsonl"
        path.write_text(json.dumps(doc) + "\n")
        try:
            report = _scan(path)
        except InputError as err:
            assert "no usable events" in str(err)
            return
        assert all(s.reason for s in report.skipped)


_sdk_span = st.fixed_dictionaries(
    {"object": st.just("trace.span"), "trace_id": st.sampled_from(["trace_1", "", None]),
     "id": st.sampled_from(["span_1", "span_2", "span_3", None]),
     "span_data": st.fixed_dictionaries({"type": st.sampled_from(["agent", "handoff", "generation", "function", "x"])},
                                        optional={"name": _json, "from_agent": _json, "to_agent": _json,
                                                  "input": _json, "output": _json, "usage": _json})},
    optional={"parent_id": st.sampled_from(["span_1", "span_2", None]), "error": _json,
              "started_at": st.sampled_from(["2026-01-01T10:00:00+00:00", "2026-01-01T10:00:01+00:00", "x", None]),
              "ended_at": st.sampled_from(["2026-01-01T10:00:02+00:00", 5, None])},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_sdk_span, min_size=1, max_size=8))
def test_any_agents_sdk_export_is_read_or_skipped_with_a_reason(items: list) -> None:  # type: ignore[type-arg]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.jsonl"
        path.write_text("".join(json.dumps(i) + "\n" for i in items))
        try:
            report = _scan(path)
        except InputError as err:
            assert "no usable events" in str(err)
            return
        assert all(s.reason for s in report.skipped)


@pytest.mark.parametrize("fmt", AGENT_FORMATS)
def test_a_tool_call_acting_on_another_value_than_was_handed_over_is_reinterpreted(fmt: str) -> None:
    report = _scan(FIXTURES / fmt / "refund_acts_on_another_order.jsonl")
    assert [(f.kind, f.to_agent, f.path, f.sent, f.received) for f in report.findings] == [
        ("reinterpreted_field", "billing", "tool_calls.call_lookup.arguments.order_id", "A-17", "A-71")
    ]


def test_worker_processes_give_the_same_report_for_span_formats() -> None:
    from handoff_audit.formatters import render

    paths = (str(FIXTURES / "agents_sdk"), str(FIXTURES / "langgraph"), str(FIXTURES / "otlp_genai"))
    one = render("json", run(ScanConfig(paths, jobs=1)))
    assert render("json", run(ScanConfig(paths, jobs=2))) == one


# --- tool calls recorded only in a model's output ------------------------------------------------


def _otlp_spans(path: Path):  # type: ignore[no-untyped-def]
    for line in path.read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                yield from ss["spans"]


def _attr(span, key):  # type: ignore[no-untyped-def]
    return next((a["value"].get("stringValue") for a in span.get("attributes", []) if a["key"] == key), None)


def _tool_spans(path: Path) -> list[str]:
    """The names of the tool spans (not handoffs) in a fixture, read straight from the file."""
    if path.parent.name == "agents_sdk":
        items = [json.loads(line) for line in path.read_text().splitlines()]
        return [i["span_data"]["name"] for i in items if i.get("span_data", {}).get("type") == "function"]
    return [_attr(sp, "tool.name") or _attr(sp, "gen_ai.tool.name") or sp["name"] for sp in _otlp_spans(path)
            if (_attr(sp, "openinference.span.kind") == "TOOL" and not sp["name"].startswith("handoff to "))
            or _attr(sp, "gen_ai.operation.name") == "execute_tool"]


def _tool_calls(path: Path) -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    events = [json.loads(line) for line in _convert(path).splitlines()]
    return [(e["agent"], e["tool"], e["args"]) for e in events if e["type"] == "tool.call"]


REFUND_CALLS = [
    ("triage", "lookup_order", {"order_id": "A-17"}),
    ("billing", "issue_refund", {"order_id": "A-71", "amount": 42.5}),
]
# Where each export records a model's output: the GenAI instrumentation records output messages for
# Responses API calls only, the SDK's own export for Chat Completions calls only.
OUTPUT_ONLY = (
    ("agents_sdk", "refund_tool_only_in_model_output"),
    ("otlp_openinference", "refund_tool_only_in_model_output"),
    ("otlp_openinference", "refund_tool_only_in_model_output_responses_api"),
    ("otlp_genai", "refund_tool_only_in_model_output_responses_api"),
)


@pytest.mark.parametrize(("fmt", "name"), OUTPUT_ONLY)
def test_a_tool_call_recorded_only_in_the_models_output_is_reinterpreted(fmt: str, name: str) -> None:
    path = FIXTURES / fmt / f"{name}.jsonl"
    assert _tool_spans(path) == []  # the export really holds no tool span
    assert _tool_calls(path) == REFUND_CALLS
    report = _scan(path)
    assert [(f.kind, f.to_agent, f.path.rsplit(".", 2)[-2:], f.sent, f.received) for f in report.findings] == [
        ("reinterpreted_field", "billing", ["arguments", "order_id"], "A-17", "A-71")
    ]
    assert report.skipped == ()


def test_a_tool_call_is_unseen_where_the_export_holds_neither_tool_span_nor_model_output() -> None:
    # The GenAI instrumentation records no output messages for Chat Completions calls, the SDK's own
    # export no messages at all for Responses API calls: with the tool spans gone, nothing shows the call.
    for path in (FIXTURES / "otlp_genai" / "refund_tool_only_in_model_output.jsonl",
                 FIXTURES / "agents_sdk" / "refund_tool_only_in_model_output_responses_api.jsonl"):
        assert _tool_spans(path) == [] and _tool_calls(path) == []
        assert _scan(path).findings == ()


@pytest.mark.parametrize("fmt", AGENT_FORMATS)
@pytest.mark.parametrize("name", ("clean_handoff", "refund_acts_on_another_order", "clean_handoff_responses_api"))
def test_a_tool_call_in_both_a_tool_span_and_the_models_output_counts_once(fmt: str, name: str) -> None:
    path = FIXTURES / fmt / f"{name}.jsonl"
    calls = _tool_calls(path)
    assert [(agent, tool) for agent, tool, _ in calls] == [("triage", "lookup_order"), ("billing", "issue_refund")]
    assert sorted(_tool_spans(path)) == ["issue_refund", "lookup_order"]


def _without_tool_spans(src: Path, dst: Path) -> Path:
    with open(dst, "w") as fh:
        for line in src.read_text().splitlines():
            doc = json.loads(line)
            for rs in doc["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    ss["spans"] = [sp for sp in ss["spans"] if _attr(sp, "openinference.span.kind") != "TOOL"
                                   or sp["name"].startswith("handoff to ")]
            fh.write(json.dumps(doc) + "\n")
    return dst


def test_the_models_output_gives_the_same_tool_calls_the_tool_spans_gave(tmp_path: Path) -> None:
    # The calls a tool span already gave are in the model's output too: without the tool spans they
    # come from there, so with both they were counted once, not left out.
    src = FIXTURES / "otlp_openinference" / "refund_acts_on_another_order.jsonl"
    bare = _without_tool_spans(src, tmp_path / "bare.jsonl")
    assert _tool_spans(bare) == [] and _tool_spans(src) != []
    assert _tool_calls(bare) == _tool_calls(src) == REFUND_CALLS
    assert _found(_scan(bare)) == _found(_scan(src)) != set()


def test_a_tool_span_with_the_call_id_is_the_call_even_with_other_arguments(tmp_path: Path) -> None:
    src = FIXTURES / "otlp_genai" / "clean_handoff_responses_api.jsonl"

    def tag(sp):  # type: ignore[no-untyped-def]
        if _attr(sp, "gen_ai.tool.name") == "issue_refund":
            sp["attributes"] = [a for a in sp["attributes"] if a["key"] != "gen_ai.tool.call.arguments"] + [
                {"key": "gen_ai.tool.call.id", "value": {"stringValue": "call_refund"}},
                {"key": "gen_ai.tool.call.arguments", "value": {"stringValue": '{"order_id": "A-17", "amount": 40}'}},
            ]
        return sp

    with_id = _rewrite_spans(src, tmp_path / "id.jsonl", tag)
    assert _tool_calls(with_id)[1] == ("billing", "issue_refund", {"order_id": "A-17", "amount": 40})
    assert len(_tool_calls(with_id)) == 2
    # Without the id, a tool span with other arguments is another call: the model's call counts too
    # (at the end of the model call, before the tool span started).
    no_id = _rewrite_spans(with_id, tmp_path / "no_id.jsonl",
                           lambda sp: {**sp, "attributes": [a for a in sp.get("attributes", [])
                                                            if a["key"] != "gen_ai.tool.call.id"]})
    assert [c[2] for c in _tool_calls(no_id) if c[1] == "issue_refund"] == [
        {"order_id": "A-17", "amount": 42.5}, {"order_id": "A-17", "amount": 40}
    ]


@pytest.mark.parametrize("fmt", ("agents_sdk", "otlp_openinference"))
@pytest.mark.parametrize("name", ("handoff_loop", "multiple_handoffs"))
def test_handoff_calls_in_a_models_output_are_not_tool_calls(fmt: str, name: str) -> None:
    path = FIXTURES / fmt / f"{name}.jsonl"
    assert "transfer_to_billing" in path.read_text()
    assert _tool_calls(path) == []


def test_a_model_call_with_unparseable_arguments_is_a_tool_call_without_arguments(tmp_path: Path) -> None:
    src = FIXTURES / "agents_sdk" / "refund_tool_only_in_model_output.jsonl"
    broken = tmp_path / "broken.jsonl"
    broken.write_text(src.read_text().replace('{\\"order_id\\": \\"A-71\\", \\"amount\\": 42.5}', "{order A-71"))
    assert broken.read_text() != src.read_text()
    assert _tool_calls(broken) == [REFUND_CALLS[0], ("billing", "issue_refund", {})]
    assert _scan(broken).findings == ()


# --- odd values in one span -----------------------------------------------------------------------

GENAI_CLEAN = FIXTURES / "otlp_genai" / "clean_handoff.jsonl"


def _first_span_changed(dst: Path, change) -> Path:  # type: ignore[no-untyped-def]
    """The GenAI clean handoff with its first span changed by ``change``."""
    lines = GENAI_CLEAN.read_text().splitlines()
    doc = json.loads(lines[0])
    change(doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0])
    dst.write_text("\n".join([json.dumps(doc), *lines[1:]]) + "\n")
    return dst


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("attr", {"intValue": "\u00b2"}, "attribute 'x': 'intValue' is not a readable value"),
    ("attr", {"intValue": "--5"}, "attribute 'x': 'intValue' is not a readable value"),
    ("attr", {"intValue": "1" * 5000}, "attribute 'x': 'intValue' is not a readable value"),
    ("attr", {"arrayValue": {"values": 5}}, "attribute 'x': 'arrayValue' is not a readable value"),
    ("attr", {"kvlistValue": {"values": "ab"}}, "attribute 'x': 'kvlistValue' is not a readable value"),
    ("startTimeUnixNano", "1" * 5000, "'startTimeUnixNano' or 'endTimeUnixNano' is not a number of nanoseconds"),
    ("startTimeUnixNano", "9" * 400, "'startTimeUnixNano' or 'endTimeUnixNano' is not a number of nanoseconds"),
    ("endTimeUnixNano", "\u00b2", "'startTimeUnixNano' or 'endTimeUnixNano' is not a number of nanoseconds"),
])
def test_an_odd_value_skips_its_span_with_the_reason_and_the_rest_is_read(
    tmp_path: Path, field: str, value: object, reason: str
) -> None:
    def change(sp):  # type: ignore[no-untyped-def]
        if field == "attr":
            sp["attributes"].append({"key": "x", "value": value})
        else:
            sp[field] = value

    odd = _first_span_changed(tmp_path / "odd.jsonl", change)
    report = _scan(odd, FIXTURES / "agents_sdk" / "clean_handoff.jsonl")
    assert (str(odd), 1, f"resourceSpans[0].scopeSpans[0].spans[0]: {reason}") in [
        (s.file, s.line, s.reason) for s in report.skipped
    ]
    assert report.summary.traces == 2 and report.summary.handoffs == 2
    assert _convert(odd)  # convert reads it too


def test_a_console_span_with_a_time_out_of_range_is_skipped_with_the_reason(tmp_path: Path) -> None:
    src = (FIXTURES / "console" / "clean_pipeline.txt").read_text()
    first = src.index('"start_time": "')
    odd = tmp_path / "odd.txt"
    odd.write_text(src[:first] + '"start_time": "0001-01-01T00:00:00"' + src[src.index(",", first):])
    report = _scan(odd)
    assert [(s.line, s.reason) for s in report.skipped] == [(1, "'start_time' or 'end_time' is not a time")]
    assert report.summary.traces == 1


def _with_llm_attributes(src: Path, dst: Path, extra: list) -> Path:  # type: ignore[type-arg]
    """``src`` with ``extra`` attributes added to its first model-call span."""
    done = False

    def add(sp):  # type: ignore[no-untyped-def]
        nonlocal done
        if not done and (_attr(sp, "openinference.span.kind") == "LLM" or _attr(sp, "gen_ai.operation.name") == "chat"):
            sp["attributes"] = sp["attributes"] + extra
            done = True
        return sp

    return _rewrite_spans(src, dst, add)


BIG = "99999999999999999999"  # over 64 bits


@pytest.mark.parametrize(("fmt", "extra"), [
    ("otlp_genai", [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": BIG}}]),
    ("otlp_openinference", [{"key": "llm.input_messages.0.message.role", "value": {"stringValue": "user"}},
                            {"key": "llm.input_messages.0.message.content", "value": {"intValue": BIG}}]),
    ("otlp_openinference", [{"key": "gen_ai.tool.call.id", "value": {"kvlistValue": {"values": [
        {"key": "n", "value": {"intValue": "-" + BIG}}]}}}]),
])
def test_an_integer_over_64_bits_skips_its_span_in_scan_and_convert_alike(tmp_path: Path, fmt: str, extra: list) -> None:  # type: ignore[type-arg]
    big = _with_llm_attributes(FIXTURES / fmt / "clean_handoff.jsonl", tmp_path / "big.jsonl", extra)
    key = extra[-1]["key"]
    report = _scan(big)
    [reason] = [s.reason for s in report.skipped if "spans[" in s.reason]
    assert f"attribute '{key}': " in reason and reason.endswith("'intValue' is not a readable value")
    written = io.BytesIO()
    result = Conversion(written.write)
    convert((str(big),), result)
    out = tmp_path / "converted.jsonl"
    out.write_bytes(written.getvalue())
    assert [(s.line, s.reason) for s in result.skipped] == [(s.line, s.reason) for s in report.skipped]
    assert _found(_scan(out)) == _found(report)


BAD_CALLS = (
    [{"id": ["c1"], "type": "function", "function": {"name": "lookup_order", "arguments": "{}"}}],
    [{"id": {"c": 1}, "function": {"name": "lookup_order"}}],
    [{"id": "c9", "function": "x"}],
    True,
    5,
)


@pytest.mark.parametrize("calls", BAD_CALLS, ids=range(len(BAD_CALLS)))
def test_malformed_tool_calls_in_agents_sdk_messages_are_absent(tmp_path: Path, calls: object) -> None:
    src = FIXTURES / "agents_sdk" / "clean_handoff.jsonl"
    items = [json.loads(line) for line in src.read_text().splitlines()]
    for item in items:
        if item.get("span_data", {}).get("type") == "generation":
            item["span_data"]["input"].append({"role": "assistant", "content": "ok", "tool_calls": calls})
    odd = tmp_path / "odd.jsonl"
    odd.write_text("".join(json.dumps(i) + "\n" for i in items))
    report = _scan(odd)
    assert report.summary.handoffs == 1 and report.skipped == ()
    assert _tool_calls(odd) == _tool_calls(src)  # no call read from them; the others as before


@pytest.mark.parametrize("calls", BAD_CALLS, ids=range(len(BAD_CALLS)))
def test_malformed_tool_calls_in_otlp_messages_are_absent(tmp_path: Path, calls: object) -> None:
    src = FIXTURES / "otlp_genai" / "clean_handoff.jsonl"
    odd_messages = [{"role": "assistant", "content": "ok", "tool_calls": calls},
                    {"role": "assistant", "parts": [{"type": "tool_call", "id": ["c2"], "name": "lookup_order"}]}]

    def change(sp):  # type: ignore[no-untyped-def]
        for a in sp.get("attributes", []):
            if a["key"] == "gen_ai.input.messages":
                a["value"]["stringValue"] = json.dumps(json.loads(a["value"]["stringValue"]) + odd_messages)
            if a["key"] == "gen_ai.tool.name":  # a tool span's call id that is no id
                sp["attributes"] = sp["attributes"] + [
                    {"key": "gen_ai.tool.call.id", "value": {"arrayValue": {"values": [{"stringValue": "c1"}]}}}]
        return sp

    odd = _rewrite_spans(src, tmp_path / "odd.jsonl", change)
    assert '\\"c2\\"' in odd.read_text() and "gen_ai.tool.call.id" in odd.read_text()
    report = _scan(odd)
    assert report.summary.handoffs == 1
    assert [s.reason for s in report.skipped] == [s.reason for s in _scan(src).skipped]
    assert _tool_calls(odd) == _tool_calls(src)


# --- a corrupt first line of OTLP JSON Lines -------------------------------------------------------

CUT_SOURCE = FIXTURES / "otlp_openinference" / "input_filter_drops_tool_output.jsonl"


@pytest.mark.parametrize("keep", [100, 1])  # a cut line 1 that starts a JSON object, or is a lone '{'
def test_a_cut_first_line_of_otlp_json_lines_is_skipped_and_the_rest_read(tmp_path: Path, keep: int) -> None:
    lines = CUT_SOURCE.read_text().splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join([lines[0][:keep], *lines[1:]]) + "\n")
    report = _scan(cut)
    assert [(s.line, s.reason) for s in report.skipped] == [(1, "not valid JSON")]
    # The requests after it are read: as when the same cut is on another line, only that line is lost.
    lines2 = tmp_path / "cut2.jsonl"
    lines2.write_text("\n".join([lines[0], lines[1][:keep], *lines[2:]]) + "\n")
    other = _scan(lines2)
    assert [(s.line, s.reason) for s in other.skipped] == [(2, "not valid JSON")]
    assert report.summary.traces == other.summary.traces == 1
    assert report.summary.events > 0 and report.summary.skipped == 1


def test_a_pretty_printed_otlp_request_that_does_not_parse_lists_every_line(tmp_path: Path) -> None:
    pretty = (REPO / "sample_traces" / "frameworks" / "langgraph_clean_pipeline.otlp.json").read_text()
    assert pretty.startswith("{\n")
    broken = tmp_path / "broken.jsonl"
    lines = CUT_SOURCE.read_text().splitlines()
    broken.write_text(pretty.rstrip()[:-1] + "\n" + "\n".join(lines[1:]) + "\n")  # its closing '}' lost
    count = sum(1 for line in broken.read_text().splitlines() if line.strip())
    report = _scan(broken, input_format="otlp-json")
    assert report.summary.skipped == count - len(lines[1:])  # each line of the document, by itself
    assert {s.reason for s in report.skipped} <= {"not valid JSON", "not an OTLP JSON request (no 'resourceSpans' list)"}
    assert report.summary.traces == 1  # the requests after it are read


# --- parent cycles ----------------------------------------------------------------------------------


def test_a_span_that_is_its_own_parent_is_skipped_with_the_reason(tmp_path: Path) -> None:
    def own_parent(sp):  # type: ignore[no-untyped-def]
        if sp["name"] == "triage.agent":
            sp["parentSpanId"] = sp["spanId"]
        return sp

    odd = _rewrite_spans(GENAI_CLEAN, tmp_path / "odd.jsonl", own_parent)
    report = _scan(odd)
    line = next(n for n, text in enumerate(odd.read_text().splitlines(), 1) if '"triage.agent"' in text)
    assert (line, "span is its own ancestor (parent cycle)") in [(s.line, s.reason) for s in report.skipped]
    assert not any("no message content" in s.reason for s in report.skipped)  # the content is there
    assert ("handoff triage -> billing: no agent span of the sender was read, so the state handed over was "
            "not compared") in [s.reason for s in report.skipped]


def test_spans_whose_parents_loop_are_skipped_with_the_reason(tmp_path: Path) -> None:
    src = FIXTURES / "agents_sdk" / "clean_handoff.jsonl"
    items = [json.loads(line) for line in src.read_text().splitlines()]
    agents = [i for i in items if i.get("span_data", {}).get("type") == "agent"]
    assert len(agents) == 2
    agents[0]["parent_id"], agents[1]["parent_id"] = agents[1]["id"], agents[0]["id"]
    looped = tmp_path / "looped.jsonl"
    looped.write_text("".join(json.dumps(i) + "\n" for i in items))
    report = _scan(looped)
    lines = [n for n, i in enumerate(items, 1) if i in agents]
    assert [(s.line, s.reason) for s in report.skipped if "cycle" in s.reason] == [
        (n, "span is its own ancestor (parent cycle)") for n in lines
    ]
    result = Conversion(io.BytesIO().write)
    convert((str(looped),), result)
    assert [(s.line, s.reason) for s in result.skipped] == [(s.line, s.reason) for s in report.skipped]

"""show, lineage, stats and the filters, through the CLI and through their modules."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import SAMPLES, T, write_events
from typer.testing import CliRunner

from handoff_audit.cli import app
from handoff_audit.config import Limits, ScanConfig
from handoff_audit.errors import UsageError
from handoff_audit.filters import Filter, parse_filter, run_filtered
from handoff_audit.lineage import format_pattern, parse_pattern
from handoff_audit import pipeline
from handoff_audit.pipeline import run
from handoff_audit.show import build, find_trace

INCIDENT = str(SAMPLES / "incident_checkout.jsonl")
LOST = ["checkout-4121", "checkout-4156", "checkout-4198", "checkout-4233"]  # inventory drops the address
RENAMED = ["checkout-4135", "checkout-4219"]  # the validator's receipt has customer.address


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _json(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr
    return orjson.loads(result.stdout)


# --- the whole-trace reader agrees with scan ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.jsonl")) + [""])
def test_reading_every_event_audits_exactly_as_scan_does(name: str) -> None:
    config = ScanConfig((str(SAMPLES / name) if name else str(SAMPLES),))
    plain = run(config)
    full = run_filtered(config, Filter())
    assert full.findings == plain.findings
    assert full.skipped == plain.skipped
    assert dataclasses.replace(full.summary, filters=()) == plain.summary


# --- filters -----------------------------------------------------------------------------------------


def test_filters_never_change_what_is_read_or_skipped(runner: CliRunner) -> None:
    bad = str(SAMPLES / "skipped_lines_bad_input.jsonl")
    whole = _json(runner.invoke(app, ["scan", bad, INCIDENT, "-f", "json", "--exit-zero"]))["summary"]
    for args in (["--edge", "inventory:payment"], ["--trace", "nothing-has-this-id"], ["--class", "state_loss"],
                 ["--since", "2030-01-01T00:00:00Z"], ["--agent", "payment"]):
        part = _json(runner.invoke(app, ["scan", bad, INCIDENT, "-f", "json", "--exit-zero", *args]))["summary"]
        for key in ("events", "skipped", "inputs", "unknown_types"):
            assert part[key] == whole[key], (args, key)
        assert part["filters"] == [" ".join(args)]


def test_edge_filter_keeps_that_edge_and_its_findings_only(runner: CliRunner) -> None:
    report = _json(runner.invoke(app, ["scan", INCIDENT, "-f", "json", "--exit-zero", "--edge", "inventory:payment"]))
    assert [(e["from"], e["to"]) for e in report["summary"]["edges"]] == [("inventory", "payment")]
    assert {(f["from"], f["to"]) for f in report["findings"]} == {("inventory", "payment")}
    assert sorted(f["trace_id"] for f in report["findings"] if f["kind"] == "removed_field") == LOST
    assert report["summary"]["handoffs"] == 24
    # Agent turns under --edge: the turns of the edge's two agents.
    assert [a["agent"] for a in report["summary"]["agents"]] == ["inventory", "payment"]


def test_class_filter_sets_the_exit_code_from_what_it_selects(runner: CliRunner) -> None:
    warn_only = runner.invoke(app, ["scan", INCIDENT, "-f", "json", "--kind", "clarification_loop"])
    assert warn_only.exit_code == 0
    assert {f["code"] for f in orjson.loads(warn_only.stdout)["findings"]} == {"CD207"}
    errors = runner.invoke(app, ["scan", INCIDENT, "-f", "json", "--class", "state_loss"])
    assert errors.exit_code == 1
    summary = orjson.loads(errors.stdout)["summary"]
    assert summary["findings_by_class"] == {"state_loss": 4, "context_drift": 0, "responsibility_gap": 0}
    # End-to-end success is the trace's own, whatever the class filter hides.
    assert summary["traces_succeeded"] == 17 and summary["traces"] == 24


def test_trace_filter_takes_ids_and_prefixes_written_with_a_star(runner: CliRunner) -> None:
    one = _json(runner.invoke(app, ["scan", INCIDENT, "-f", "json", "--exit-zero", "--trace", "checkout-4121"]))
    assert one["summary"]["traces"] == 1 and [f["trace_id"] for f in one["findings"]] == ["checkout-4121"]
    none = _json(runner.invoke(app, ["scan", INCIDENT, "-f", "json", "--trace", "checkout-41"]))
    assert none["summary"]["traces"] == 0
    some = _json(runner.invoke(app, ["scan", INCIDENT, "-f", "json", "--exit-zero", "--trace", "checkout-41*"]))
    assert some["summary"]["traces"] == 15


def test_time_window_is_half_open_on_event_time(tmp_path: Path, runner: CliRunner) -> None:
    t = T("w").hop("a", "b", {"x": 1}, {"x": 2}).hop("b", "c", {"y": 1}, {"y": 3}).outcome("c")
    path = str(write_events(tmp_path / "w.jsonl", t.events))
    # The sends are at 1001 and 1003; --until is exclusive, --since inclusive.
    report = _json(runner.invoke(app, ["scan", path, "-f", "json", "--exit-zero", "--since", "1003"]))
    assert [f["from"] for f in report["findings"]] == ["b"]
    report = _json(runner.invoke(app, ["scan", path, "-f", "json", "--exit-zero", "--until", "1003"]))
    assert [f["from"] for f in report["findings"]] == ["a"]


def test_bad_filter_values_exit_2_before_reading(runner: CliRunner) -> None:
    for args, message in (
        (["--class", "loss"], "--class loss: not a class"),
        (["--kind", "XX999"], "--kind XX999: not a finding kind or rule code"),
        (["--edge", "a"], "--edge a: expected FROM:TO"),
        (["--since", "monday"], "--since monday: expected an RFC 3339 date-time"),
    ):
        result = runner.invoke(app, ["scan", "does-not-exist.jsonl", *args])
        assert result.exit_code == 2
        assert message in result.stderr


def test_parse_filter_accepts_codes_and_arrow_edges() -> None:
    flt = parse_filter(kinds=["cd204"], edges=["a:b->c"])
    assert flt.kinds == ("renamed_field",) and flt.edges == (("a:b", "c"),)
    with pytest.raises(UsageError):
        parse_filter(since="nan")


# --- show --------------------------------------------------------------------------------------------


def test_show_points_at_the_hop_and_the_field(runner: CliRunner) -> None:
    result = runner.invoke(app, ["show", "checkout-4121", INCIDENT])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    hop = next(i for i, line in enumerate(lines) if "handoff -> payment" in line)
    assert "SL101" in lines[hop]
    assert "- customer.shipping_address" in lines[hop + 1] and "(absent)" in lines[hop + 1]
    assert "SL101 removed_field error customer.shipping_address" in lines[hop + 2]
    assert len(lines) < 40  # one screen


def test_show_json_is_the_same_view_as_data(runner: CliRunner) -> None:
    view = _json(runner.invoke(app, ["show", "checkout-4135", INCIDENT, "-f", "json"]))
    assert view["trace_id"] == "checkout-4135" and view["summary"]["succeeded"] is False
    handoffs = [e for e in view["timeline"] if e["type"] == "handoff"]
    assert [(h["from"], h["to"]) for h in handoffs] == [("validator", "inventory"), ("inventory", "payment")]
    assert handoffs[0]["changes"] == [
        {"op": "renamed", "path": "customer.shipping_address", "to": "customer.address",
         "sent": {"city": "London", "street": "12 Analytical Way", "zip": "N1 7GU"},
         "received": {"city": "London", "street": "12 Analytical Way", "zip": "N1 7GU"}}
    ]
    assert [f["code"] for f in handoffs[0]["findings"]] == ["CD204"]
    calls = [e for e in view["timeline"] if e["type"] == "llm.call"]
    assert view["summary"]["llm"]["calls"] == len(calls) == 3
    assert view["summary"]["llm"]["input_tokens"] == sum(c["input_tokens"] for c in calls)


def test_show_marks_retries_and_clarification_loops(runner: CliRunner) -> None:
    view = _json(runner.invoke(app, ["show", "checkout-4142", INCIDENT, "-f", "json"]))
    assert [e["attempt"] for e in view["timeline"] if e["type"] == "retry"] == [2]
    view = _json(runner.invoke(app, ["show", "checkout-4163", INCIDENT, "-f", "json"]))
    assert [f["code"] for f in view["findings"]] == ["CD207"]


def test_show_filters_the_timeline(runner: CliRunner) -> None:
    view = _json(runner.invoke(app, ["show", "checkout-4135", INCIDENT, "-f", "json", "--edge", "inventory:payment"]))
    assert {(e["from"], e["to"]) for e in view["timeline"] if e["type"] == "handoff"} == {("inventory", "payment")}
    assert {e["agent"] for e in view["timeline"]} == {"inventory", "payment"}
    assert view["findings"] == [] and view["filters"] == ["--edge inventory:payment"]
    view = _json(runner.invoke(app, ["show", "checkout-4135", INCIDENT, "-f", "json", "--kind", "SL101"]))
    assert view["summary"]["handoffs"] == 2 and view["findings"] == []


def test_show_takes_a_unique_prefix_and_lists_an_ambiguous_one(runner: CliRunner) -> None:
    assert "trace checkout-4233" in runner.invoke(app, ["show", "checkout-423", INCIDENT]).stdout
    result = runner.invoke(app, ["show", "checkout-41", INCIDENT])
    assert result.exit_code == 2 and result.stdout == ""
    assert "trace id prefix 'checkout-41' is ambiguous: 15 traces match: checkout-4100, checkout-4107" in result.stderr
    result = runner.invoke(app, ["show", "nope", INCIDENT])
    assert result.exit_code == 2
    assert "no trace with id or id prefix 'nope'" in result.stderr


@pytest.mark.parametrize(
    "names, idle",
    [
        (["incident_checkout.jsonl", "skipped_lines_bad_input.jsonl"], 10),  # interleaved, closed by the window
        (["incident_checkout.jsonl"], 200_000),
        (["frameworks/otlp_openinference_multiple_handoffs.jsonl", "frameworks/agents_sdk_input_filter_drops_tool_output.jsonl"], 5),
    ],
)
def test_show_audits_only_its_trace_yet_shows_it_as_a_read_of_every_trace_does(names: list[str], idle: int) -> None:
    config = ScanConfig(tuple(str(SAMPLES / n) for n in names), idle_lines=idle)
    every: dict[str, Any] = {}
    whole, _ = pipeline.run_traces(config, lambda rec: every.setdefault(rec.trace_id, rec) and None)
    assert len(every) > 1
    late = "trace was closed after"
    lines = {(str(SAMPLES / n), i): raw for n in names for i, raw in enumerate(_lines(SAMPLES / n), 1)}
    native = {key for key in lines if "frameworks" not in key[0]}  # the others are span exports: read whole
    for tid, rec in every.items():
        found, skipped = find_trace(config, tid)
        assert build(found, Filter(), skipped) == build(rec, Filter(), whole) | {"skipped": skipped}
        # A native line is read when it names the id or escapes something; every unusable one of those is
        # counted, and of the late events only this trace's are seen.
        read = {k for k in lines if k not in native or tid.encode() in lines[k] or b"\\" in lines[k]}
        shown = {(k["file"], k["line"]) for k in skipped["lines"]}
        assert {(k.file, k.line) for k in whole.skipped if not k.reason.startswith(late)} & read <= shown
        assert shown <= {(k.file, k.line) for k in whole.skipped} & read
        assert skipped["count"] == len(shown) and skipped["not_read"] == len(set(lines) - read)
        handed: list[str] = []
        pipeline.run_traces(config, lambda rec: handed.append(rec.trace_id), only=lambda t: t.startswith(tid))
        assert sorted(handed) == sorted(t for t in every if t.startswith(tid))


def _lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    return lines[:-1] if data.endswith(b"\n") else lines


def test_show_finds_its_trace_where_a_line_escapes_the_id_or_is_too_long(tmp_path: Path) -> None:
    t = T("esc-1").hop("a", "b", {"x": 1}).hop("b", "c", {"x": 1}).outcome("c")
    path = write_events(tmp_path / "e.jsonl", t.events + T("other").hop("a", "b", {"x": 2}).events)
    text = path.read_bytes().replace(b'"esc-1"', b'"\\u0065sc-1"', 2)  # the first two lines name it escaped
    path.write_bytes(text + b'{"trace_id": "esc-1", "type": "outcome", "agent": "' + b"z" * 200 + b'"}\n')
    plain = tmp_path / "p.jsonl"
    plain.write_bytes(text.replace(b'"\\u0065sc-1"', b'"esc-1"'))
    rec, skipped = find_trace(ScanConfig((str(path),), limits=Limits(max_line_bytes=150)), "esc-1")
    escaped = build(rec, Filter(), skipped)
    rec, skipped = find_trace(ScanConfig((str(plain),)), "esc-1")
    unescaped = build(rec, Filter(), skipped)
    def events(view: dict[str, Any]) -> list[Any]:
        return [{k: v for k, v in entry.items() if k != "file"} for entry in view["timeline"]]

    assert events(escaped) == events(unescaped) and escaped["summary"]["events"] == 5
    assert escaped["skipped"]["count"] == 1 and escaped["skipped"]["lines"][0]["reason"].startswith("line longer than")
    assert escaped["skipped"]["not_read"] == unescaped["skipped"]["not_read"] == 2  # the other trace's lines


def test_show_lineage_and_stats_say_that_input_lines_could_not_be_used(runner: CliRunner) -> None:
    bad = str(SAMPLES / "skipped_lines_bad_input.jsonl")
    # show reads the lines that name its trace: of the four unusable lines, only line 4 does.
    view = _json(runner.invoke(app, ["show", "mixed-bad-lines", bad, "-f", "json"]))
    assert view["skipped"] == {"count": 1, "lines": [{"file": bad, "line": 4, "reason": "'state' is not an object"}],
                               "not_read": 3}
    clean = _json(runner.invoke(app, ["show", "checkout-4121", INCIDENT, "-f", "json"]))["skipped"]
    assert clean["count"] == 0 and clean["lines"] == [] and clean["not_read"] > 0
    text = runner.invoke(app, ["show", "mixed-bad-lines", bad], env={"COLUMNS": "200"}).stdout
    assert (f"1 input line naming the trace id could not be used (first: {bad}:4: 'state' is not an object);"
            " scan checks every line") in text
    view = _json(runner.invoke(app, ["lineage", "order.total", bad, INCIDENT, "-f", "json", "--trace", "mixed-bad-lines"]))
    assert view["skipped"]["count"] == 1 and view["skipped"]["not_read"] > 3
    text = runner.invoke(app, ["lineage", "order.total", bad, INCIDENT, "--trace", "mixed*"], env={"COLUMNS": "200"}).stdout
    assert "1 input line naming the trace id could not be used" in text
    view = _json(runner.invoke(app, ["lineage", "order.total", bad, INCIDENT, "-f", "json"]))
    assert view["skipped"]["count"] == 4 and view["skipped"]["not_read"] == 0
    text = runner.invoke(app, ["lineage", "order.total", bad, INCIDENT], env={"COLUMNS": "200"}).stdout
    assert f"4 input lines could not be used (first: {bad}:4: 'state' is not an object); scan lists them all" in text
    assert "could not be used" not in runner.invoke(app, ["show", "checkout-4121", INCIDENT]).stdout
    stats = runner.invoke(app, ["stats", bad, INCIDENT], env={"COLUMNS": "200"})
    assert "4 input lines could not be used; scan lists them all" in stats.stdout
    stats = runner.invoke(app, ["stats", bad, "--format", "csv", "--table", "edges"])
    assert stats.exit_code == 0 and "could not be used" not in stats.stdout
    assert stats.stderr == "handoff-audit: 4 input lines could not be used; scan lists them all\n"
    clean = runner.invoke(app, ["stats", INCIDENT, "--format", "csv", "--table", "edges"])
    assert clean.stderr == "" and "could not be used" not in runner.invoke(app, ["stats", INCIDENT]).stdout


def test_show_prefers_the_exact_id_over_longer_ones(tmp_path: Path, runner: CliRunner) -> None:
    events = T("run-1").hop("a", "b", {"x": 1}).outcome("b").events + T("run-10").hop("a", "b", {"x": 1}).events
    path = str(write_events(tmp_path / "r.jsonl", events))
    assert _json(runner.invoke(app, ["show", "run-1", path, "-f", "json"]))["trace_id"] == "run-1"


def test_show_output_fits_the_width_and_prints_trace_text_literally(tmp_path: Path, runner: CliRunner) -> None:
    hostile = "[bold red]\x1b[31mEVIL\x1b]8;;http://x\x07"
    long = "x" * 500
    t = T("t\x1b[2J").hop("agent[/]", hostile, {"note": long, "k": hostile}, {"note": "short", "k": 1})
    t.tool(hostile, "charge", k=hostile).outcome(hostile)
    path = str(write_events(tmp_path / "h.jsonl", t.events))
    for width in ("60", "100"):
        result = runner.invoke(app, ["show", "t", path], env={"COLUMNS": width})
        assert result.exit_code == 0, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "[bold red]\\x1b[31mEVIL" in result.stdout  # markup shown as text, escapes made visible
        assert all(len(line) <= int(width) for line in result.stdout.splitlines())
        assert "x" * 100 not in result.stdout and "\u2026" in result.stdout


# --- lineage -----------------------------------------------------------------------------------------


def test_lineage_names_the_edge_and_how_often(runner: CliRunner) -> None:
    result = runner.invoke(app, ["lineage", "customer.shipping_address", INCIDENT])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "customer.shipping_address: carried in 24 of 24 traces",
        "  lost (removed_field SL101) at inventory -> payment in 4 of 24 traces (16.7%)",
        "  renamed to customer.address at validator -> inventory in 2 of 24 traces (8.3%)",
    ]
    view = _json(runner.invoke(app, ["lineage", "customer.shipping_address", INCIDENT, "-f", "json"]))
    pay = next(e for e in view["edges"] if (e["from"], e["to"]) == ("inventory", "payment"))
    assert pay["traces_carrying"] == 24
    assert {f["fate"]: f["traces"] for f in pay["fates"]} == {"kept": 20, "removed_field": 4}


def test_lineage_of_one_trace_follows_a_rename(runner: CliRunner) -> None:
    view = _json(runner.invoke(app, ["lineage", "customer.shipping_address.city", INCIDENT, "--trace", RENAMED[0],
                                     "-f", "json"]))
    hops = view["trace_hops"][0]["hops"]
    assert [(h["from"], h["to"], h["path"], h["fate"]) for h in hops] == [
        ("validator", "inventory", "customer.shipping_address.city", "renamed_field"),
        ("inventory", "payment", "customer.address.city", "kept"),
    ]
    assert hops[0]["renamed_to"] == "customer.address.city" and hops[1]["received"] == "London"


def test_lineage_unknown_trace_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(app, ["lineage", "order.total", INCIDENT, "--trace", "checkout-41"])
    assert result.exit_code == 2 and "a prefix needs a final *" in result.stderr


def test_lineage_wildcard_over_list_items(tmp_path: Path, runner: CliRunner) -> None:
    items = [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]
    changed = [{"sku": "A", "qty": 1}, {"sku": "B", "qty": "2"}]
    events = (T("w1").hop("a", "b", {"order": {"items": items}}, {"order": {"items": changed}}).events
              + T("w2").hop("a", "b", {"order": {"items": items}}).events)
    path = str(write_events(tmp_path / "w.jsonl", events))
    view = _json(runner.invoke(app, ["lineage", "order.items[*].qty", path, "-f", "json"]))
    assert view["field"] == "order.items[*].qty" and view["traces_with_field"] == 2
    fates = {f["fate"]: f["traces"] for f in view["edges"][0]["fates"]}
    assert fates == {"kept": 2, "type_changed": 1}  # w1 kept items[0] and converted items[1]
    per = _json(runner.invoke(app, ["lineage", "order.items[*].qty", path, "-f", "json", "--trace", "w1"]))
    assert [(h["path"], h["fate"]) for h in per["trace_hops"][0]["hops"]] == [
        ("order.items[0].qty", "kept"), ("order.items[1].qty", "type_changed")]


def test_lineage_counts_a_rename_above_a_wildcard_as_the_new_pattern(tmp_path: Path, runner: CliRunner) -> None:
    order = {"items": [{"qty": 1}, {"qty": 2}], "id": "o-17"}
    t = T("r").hop("a", "b", {"order": order}, {"purchase": order}).hop("b", "c", {"purchase": order})
    path = str(write_events(tmp_path / "r.jsonl", t.events))
    view = _json(runner.invoke(app, ["lineage", "order.items[*].qty", path, "-f", "json"]))
    fates = {(e["from"], f["fate"], f["renamed_to"], f["traces"]) for e in view["edges"] for f in e["fates"]}
    assert fates == {("a", "renamed_field", "purchase.items[*].qty", 1), ("b", "kept", None, 1)}


def test_lineage_sees_a_field_not_handed_on(tmp_path: Path, runner: CliRunner) -> None:
    sent = {"customer": {"id": 1, "address": "x"}}
    t = T("n").hop("a", "b", sent).hop("b", "c", {"customer": {"id": 1}})
    path = str(write_events(tmp_path / "n.jsonl", t.events))
    per = _json(runner.invoke(app, ["lineage", "customer.address", path, "-f", "json", "--trace", "n"]))
    assert [(h["from"], h["fate"], h["code"]) for h in per["trace_hops"][0]["hops"]] == [
        ("a", "kept", None), ("b", "not_forwarded", "SL104")]


@pytest.mark.parametrize("text", ["order.items[*].qty", 'meta["x.y"][2]', "a", '["a b"].c'])
def test_patterns_read_back_as_written(text: str) -> None:
    assert format_pattern(parse_pattern(text)) == text


@pytest.mark.parametrize("text", ["", "a..b", "a[", "a[x]", "a]", ".a"])
def test_bad_patterns_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_pattern(text)


# --- stats -------------------------------------------------------------------------------------------


def _llm(t: T, agent: str, inp: int, out: int, cost: float, **extra: Any) -> T:
    return t._add("llm.call", agent=agent, model="m", input_tokens=inp, output_tokens=out, cost_usd=cost, **extra)


def test_orchestration_tax_splits_spend_by_the_documented_rules(tmp_path: Path, runner: CliRunner) -> None:
    state = {"order": {"id": "o-1", "note": "x" * 368}}  # 400 bytes of compact JSON: 100 tokens
    assert len(orjson.dumps(state)) == 400
    t = T("tax")
    _llm(t, "a", 1000, 100, 0.011)  # direct
    t.send("a", "b", state, hid="h1").recv("a", "b", state, hid="h1")
    t.send("b", "a", {"q": "?"}, hid="h2").recv("b", "a", {"q": "?"}, hid="h2")
    _llm(t, "a", 500, 50, 0.0055)  # inside the clarification loop
    t.send("a", "b", state, hid="h3").recv("a", "b", state, hid="h3")
    _llm(t, "b", 300, 100, 0.004)  # re-reads the re-sent state: 100 of its input tokens are re-injection
    t.send("b", "c", state, hid="h4", attempt=1)
    _llm(t, "b", 200, 20, 0.0022)  # between two attempts: retry
    t.send("b", "c", state, hid="h4", attempt=2).recv("b", "c", state, hid="h4")
    _llm(t, "c", 100, 10, 0.0011, purpose="clarification")  # an explicit purpose wins
    t.outcome("c")
    path = str(write_events(tmp_path / "tax.jsonl", t.events))
    view = _json(runner.invoke(app, ["stats", path, "-f", "json"]))
    tax = {row["category"]: row for row in view["tax"]}
    assert {c: (r["calls"], r["input_tokens"], r["output_tokens"]) for c, r in tax.items()} == {
        "direct_work": (2, 1200, 200),
        "handoff_retries": (1, 200, 20),
        "clarification_loops": (2, 600, 60),
        "context_reinjection": (1, 100, 0),
    }
    assert tax["context_reinjection"]["cost_usd"] == pytest.approx(0.001)  # 100 of the call's 400 tokens
    assert view["tax_total"]["calls"] == 5 + 0 and view["tax_total"]["tokens"] == 2380
    assert view["tax_total"]["cost_usd"] == pytest.approx(0.0238)
    shares = [r["cost_share"] for r in view["tax"]]
    assert sum(shares) == pytest.approx(1.0, abs=1e-5)


def test_stats_edges_and_agents(tmp_path: Path, runner: CliRunner) -> None:
    events: list[dict[str, Any]] = []
    for n in range(100):
        t = T(f"s{n}")
        t.ts = 1000.0 + n * 10
        t.send("a", "b", {"x": 1}, hid="h")
        t.ts += n / 1000 - 1  # latency n ms
        t.recv("a", "b", {"x": 1} if n % 4 else {}, hid="h")
        t.end("a").end("b", "ok" if n % 10 else "error").outcome("b")
        events += t.events
    path = str(write_events(tmp_path / "s.jsonl", events))
    view = _json(runner.invoke(app, ["stats", path, "-f", "json"]))
    (edge,) = view["edges"]
    assert (edge["latency_p50_ms"], edge["latency_p95_ms"], edge["latency_p99_ms"]) == pytest.approx((49, 94, 98))
    assert edge["failure_rate_by_class"] == {"state_loss": 0.25, "context_drift": 0.0, "responsibility_gap": 0.0}
    agents = {a["agent"]: a for a in view["agents"]}
    assert agents["a"]["success_rate"] == 1.0 and agents["a"]["end_to_end_success_rate"] == 0.75
    assert agents["b"]["success_rate"] == 0.9 and agents["b"]["traces"] == 100


def test_stats_csv_writes_one_table(tmp_path: Path, runner: CliRunner) -> None:
    out = tmp_path / "tax.csv"
    result = runner.invoke(app, ["stats", INCIDENT, "-f", "csv", "--table", "tax", "-o", str(out)])
    assert result.exit_code == 0 and result.stdout == ""
    rows = out.read_bytes().decode().split("\r\n")
    assert rows[0] == "category,calls,input_tokens,output_tokens,tokens,cost_usd,token_share,cost_share"
    assert [r.split(",")[0] for r in rows[1:5]] == [
        "direct_work", "handoff_retries", "clarification_loops", "context_reinjection"]
    edges = runner.invoke(app, ["stats", INCIDENT, "-f", "csv", "--table", "edges"]).stdout_bytes.decode()
    assert edges.startswith("from,to,handoffs,failed_handoffs,failure_rate,state_loss_rate")
    result = runner.invoke(app, ["stats", INCIDENT, "-f", "csv"])
    assert result.exit_code == 2 and "--format csv writes one table" in result.stderr


def test_stats_csv_neutralises_formulas(tmp_path: Path, runner: CliRunner) -> None:
    path = str(write_events(tmp_path / "f.jsonl", T("f").hop("=cmd|x", "@b", {"x": 1}).events))
    text = runner.invoke(app, ["stats", path, "-f", "csv", "--table", "edges"]).stdout_bytes.decode()
    assert "\r\n'=cmd|x,'@b," in text


# --- help --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["scan", "show", "lineage", "stats"])
def test_every_command_help_has_an_example(command: str, runner: CliRunner) -> None:
    text = runner.invoke(app, [command, "--help"]).stdout
    assert f"Example: handoff-audit {command} " in text
    for flag in ("--agent", "--edge", "--class", "--kind", "--since", "--until"):
        assert flag in text


# --- the walk-through shows real output -----------------------------------------------------------------


def test_every_command_in_the_investigation_page_prints_what_the_page_shows(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re
    import shlex

    from conftest import REPO

    monkeypatch.chdir(REPO)
    page = (REPO / "docs" / "investigate.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```\n\$ handoff-audit ([^\n]*)\n(.*?)```", page, flags=re.S)
    assert len(blocks) >= 9
    for command, shown in blocks:
        result = runner.invoke(app, shlex.split(command), env={"COLUMNS": "100"})
        assert result.exit_code in (0, 1), (command, result.stderr)
        out = result.stdout_bytes.decode().replace("\r\n", "\n")
        assert [line.rstrip() for line in out.splitlines()] == shown.splitlines(), command


def _on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run the CLI with stdout on a pseudo-terminal; return what it printed."""
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    base = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    proc = subprocess.Popen([sys.executable, "-m", "handoff_audit", *args], stdout=follower, stderr=subprocess.DEVNULL,
                            env={**base, "COLUMNS": "100", **env})
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait()
    os.close(leader)
    return b"".join(chunks).decode()


def test_colour_only_on_a_terminal_and_never_with_no_color(tmp_path: Path) -> None:
    t = T("c\x1b[31m").hop("a", "b", {"x": 1}, {"x": 2}).outcome("b")
    path = str(write_events(tmp_path / "c.jsonl", t.events))
    coloured = _on_a_terminal(["show", "c", path], {})
    assert "\x1b[" in coloured  # our own styles
    assert "c\\x1b[31m" in coloured  # the trace's escape, made visible
    plain = _on_a_terminal(["show", "c", path], {"NO_COLOR": "1"})
    assert "\x1b" not in plain and "c\\x1b[31m" in plain


def test_full_collector_keeps_the_same_events_through_add_and_through_the_native_reader() -> None:
    from handoff_audit.adapters.native import NativeAdapter, make_event
    from handoff_audit.whole_trace import FullCollector, WholeTrace
    from handoff_audit.summary import Aggregator

    def collect(feed: Any) -> dict[str, list[tuple[Any, ...]]]:
        seen: dict[str, list[tuple[Any, ...]]] = {}

        def on_trace(rec: WholeTrace) -> None:
            seen[rec.trace_id] = [(x.seq, x.type, x.agent, x.ts, x.line, x.data.get("status")) for x in rec.extras]
            return None

        sink = FullCollector(200_000, Aggregator(), on_trace)
        feed(sink)
        sink.close_all()
        return seen

    def via_add(sink: FullCollector) -> None:
        with open(INCIDENT, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                sink.add(make_event(orjson.loads(raw), sink.seq + 1, INCIDENT, lineno))

    def via_feed(sink: FullCollector) -> None:
        with open(INCIDENT, "rb") as fh:
            NativeAdapter().feed(fh, INCIDENT, sink)

    native = collect(via_feed)
    assert native == collect(via_add)
    assert len(native) == 24
    assert {e[1] for extras in native.values() for e in extras} == {"agent.start", "agent.end", "llm.call"}


@pytest.mark.parametrize("width", [40, 72, 140])
@pytest.mark.parametrize(
    "args",
    [
        ["stats", INCIDENT],
        ["lineage", "customer.shipping_address", INCIDENT],
        ["lineage", "customer.shipping_address", INCIDENT, "--trace", "checkout-4135"],
        ["show", "checkout-4163", INCIDENT],
    ],
)
def test_terminal_views_fit_the_width(args: list[str], width: int, runner: CliRunner) -> None:
    result = runner.invoke(app, args, env={"COLUMNS": str(width)})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= width
    assert "\x1b" not in result.stdout  # not a terminal: no colour


def test_odd_traces_show_absence_and_clock_skew_plainly(tmp_path: Path, runner: CliRunner) -> None:
    events = [
        {"trace_id": "o", "type": "handoff.sent", "handoff_id": "h", "from": "a", "to": "b", "state": {"y": {"z": None}}, "ts": 5},
        {"trace_id": "o", "type": "handoff.received", "handoff_id": "h", "from": "a", "to": "b", "state": {"y": {}}, "ts": 4},
        {"trace_id": "o", "type": "llm.call", "agent": "b", "input_tokens": "many", "cost_usd": "1"},
    ]
    path = str(write_events(tmp_path / "o.jsonl", events))
    per = _json(runner.invoke(app, ["lineage", "y.z", path, "-f", "json", "--trace", "o"]))
    (hop,) = per["trace_hops"][0]["hops"]
    assert (hop["fate"], hop["sent"], hop["received"], hop["arrived"]) == ("nulled_field", None, None, False)
    shown = runner.invoke(app, ["show", "o", path]).stdout
    assert "receipt timed 1,000 ms before the send (clock skew)" in shown
    stats = _json(runner.invoke(app, ["stats", path, "-f", "json"]))["tax_total"]
    assert (stats["calls"], stats["calls_without_tokens"], stats["calls_without_cost"]) == (1, 1, 1)


def test_model_spend_from_span_formats_matches_their_native_conversion(tmp_path: Path, runner: CliRunner) -> None:
    spans = str(SAMPLES / "frameworks" / "agents_sdk_input_filter_drops_tool_output.jsonl")
    native = tmp_path / "native.jsonl"
    assert runner.invoke(app, ["convert", spans, "-o", str(native)]).exit_code == 0
    direct = _json(runner.invoke(app, ["stats", spans, "-f", "json"]))
    converted = _json(runner.invoke(app, ["stats", str(native), "-f", "json"]))
    assert direct["tax_total"]["tokens"] > 0
    for key in ("tax", "tax_total", "agents", "edges"):
        assert direct[key] == converted[key], key


def test_token_totals_past_64_bits_and_costs_past_the_largest_float_are_written(tmp_path: Path) -> None:
    big = 10**19  # each within what a trace may hold (orjson reads up to 2**64 - 1); their sum is not
    call = {"trace_id": "t", "type": "llm.call", "agent": "a", "input_tokens": big, "cost_usd": 1e308}
    path = str(write_events(tmp_path / "t.jsonl", [call, call]))
    for args in (["stats", path], ["show", "t", path]):
        result = CliRunner().invoke(app, [*args, "-f", "json"])
        assert result.exit_code == 0, result.output
        assert str(2 * big) in result.stdout
        assert isinstance(__import__("json").loads(result.stdout), dict)  # one JSON document
    tax = orjson.loads(CliRunner().invoke(app, ["stats", path, "-f", "json"]).stdout)["tax_total"]
    assert tax["input_tokens"] == 2 * big and tax["cost_usd"] is None  # as orjson writes infinity
    assert tax["orchestration_tax_cost_share"] is None


def test_lineage_class_and_kind_filters_keep_the_carrying_counts(runner: CliRunner) -> None:
    args = ["lineage", "customer.shipping_address", INCIDENT, "-f", "json"]
    whole = _json(runner.invoke(app, args))
    lost = _json(runner.invoke(app, [*args, "--class", "state_loss"]))
    assert lost["traces_with_field"] == whole["traces_with_field"] == 24
    carrying = {(e["from"], e["to"]): e["traces_carrying"] for e in whole["edges"]}
    assert {(e["from"], e["to"]): e["traces_carrying"] for e in lost["edges"]} == carrying
    fates = {(e["from"], e["to"], f["fate"]): f["share_of_carrying"] for e in lost["edges"] for f in e["fates"]}
    assert fates == {("inventory", "payment", "removed_field"): round(4 / 24, 6)}


def test_a_repeated_state_is_booked_on_the_first_call_after_it_in_event_order(tmp_path: Path, runner: CliRunner) -> None:
    sent = {"trace_id": "R", "type": "handoff.sent", "ts": 1, "handoff_id": "h1", "from": "a", "to": "b", "state": {"x": 1}}
    got = {**sent, "type": "handoff.received", "ts": 1.1}
    again = {**got, "ts": 2}  # a duplicate delivery: the state is read again
    late = {"trace_id": "R", "type": "llm.call", "ts": 6, "agent": "b", "input_tokens": 100, "cost_usd": 0.5}
    early = {**late, "ts": 5, "input_tokens": 200, "cost_usd": 0.2}  # written after, happened before
    path = str(write_events(tmp_path / "r.jsonl", [sent, got, again, late, early]))
    tax = {row["category"]: row for row in _json(runner.invoke(app, ["stats", path, "-f", "json"]))["tax"]}
    # 7 bytes of state, 2 tokens of the early call's 200, and the same share of its cost.
    assert (tax["context_reinjection"]["input_tokens"], tax["context_reinjection"]["cost_usd"]) == (2, 0.002)


def test_lineage_finds_a_list_item_where_the_alignment_put_it(tmp_path: Path, runner: CliRunner) -> None:
    sent = {"trace_id": "L", "type": "handoff.sent", "ts": 1, "handoff_id": "h1", "from": "a", "to": "b",
            "state": {"items": [{"qty": 1}, {"qty": 2}, {"qty": 3}]}}
    got = {**sent, "type": "handoff.received", "ts": 1.1, "state": {"items": [{"qty": 1}, {"qty": 3}]}}
    path = str(write_events(tmp_path / "l.jsonl", [sent, got]))
    view = _json(runner.invoke(app, ["lineage", "items[*].qty", path, "--trace", "L", "-f", "json"]))
    hops = [(h["path"], h["fate"], h["sent"], h["received"], h["arrived"]) for h in view["trace_hops"][0]["hops"]]
    assert hops == [
        ("items[0].qty", "kept", 1, 1, True),
        ("items[1].qty", "removed_field", 2, None, False),  # the middle item was dropped
        ("items[2].qty", "kept", 3, 3, True),  # it arrived at index 1
    ]


def test_show_puts_an_untimed_event_where_the_audit_does(tmp_path: Path, runner: CliRunner) -> None:
    sent = {"trace_id": "O", "type": "handoff.sent", "ts": 10, "handoff_id": "h1", "from": "a", "to": "b", "state": {"x": 1}}
    events = [
        sent,
        {"trace_id": "O", "type": "agent.start", "ts": 5, "agent": "b"},  # written late
        {"trace_id": "O", "type": "tool.call", "agent": "b", "tool": "t", "args": {}},  # no ts: the send's time
        {"trace_id": "O", "type": "llm.call", "ts": 7, "agent": "b"},
        {**sent, "type": "handoff.received", "ts": 10.2},
    ]
    view = _json(runner.invoke(app, ["show", "O", str(write_events(tmp_path / "o.jsonl", events)), "-f", "json"]))
    order = [(e["type"], e["offset_ms"]) for e in view["timeline"]]
    assert order == [("agent.start", 0.0), ("llm.call", 2000.0), ("handoff", 5000.0), ("tool.call", 5000.0), ("trace", 5200.0)]

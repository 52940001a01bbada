"""Contracts: loading and its errors, every contract rule, diff options, coverage, inference, the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import REPO, SAMPLES, T, write_events
from typer.testing import CliRunner

from handoff_audit.cli import app
from handoff_audit.config import ScanConfig
from handoff_audit.contracts import ContractError, glob_match, load_contracts, parse_path
from handoff_audit.errors import UsageError
from handoff_audit.formatters import render
from handoff_audit.infer import draft_contracts
from handoff_audit.models import Report
from handoff_audit.pipeline import run
from handoff_audit.rules import RULES

CONTRACT_KINDS = {k for k, r in RULES.items() if r.contract}
ORDER = {"order": {"id": "o-1", "total": 12.5, "items": [{"sku": "A", "qty": 1}]}, "customer": {"id": "c-1"}}


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def load_error(tmp_path: Path, text: str, name: str = "c.yaml") -> str:
    with pytest.raises(ContractError) as info:
        load_contracts(write(tmp_path, text, name))
    return str(info.value)


def scan(tmp_path: Path, events: list[dict[str, Any]], contract: str, *, require: bool = False) -> Report:
    traces = write_events(tmp_path / "t.jsonl", events)
    cs = load_contracts(write(tmp_path, contract))
    return run(ScanConfig((str(traces),), contracts=cs, require_contracts=require))


def of_kind(report: Report, kind: str) -> list[Any]:
    return [f for f in report.findings if f.kind == kind]


# --- loading ---------------------------------------------------------------------------------------


def test_the_example_contract_loads() -> None:
    cs = load_contracts(str(REPO / "examples" / "ecommerce.contracts.yaml"))
    assert [ec.label for ec in cs.edges] == ["validator -> inventory", "inventory -> payment"]
    assert cs.outcome_owner == "payment"
    assert cs.defaults is not None and cs.defaults.tolerance == 0.005


def test_a_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    msg = load_error(tmp_path, "version: 1\nedges:\n  - from: a\n    to: [b\n")
    assert msg.startswith(f"{tmp_path / 'c.yaml'}:") and "invalid YAML" in msg
    assert msg.split(":")[1] in ("4", "5")


def test_an_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    msg = load_error(tmp_path, "version: 1\nedges:\n  - from: a\n    to: b\n    timeout: 5\n")
    assert msg.startswith(f"{tmp_path / 'c.yaml'}:3: edges[0]: ")
    assert "timeout" in msg


def test_a_wrong_value_names_its_own_line(tmp_path: Path) -> None:
    msg = load_error(tmp_path, "version: 1\nedges:\n  - from: a\n    to: b\n    timeout_ms: -5\n")
    assert msg.startswith(f"{tmp_path / 'c.yaml'}:5: edges[0].timeout_ms: ")


def test_the_version_is_required(tmp_path: Path) -> None:
    assert "version" in load_error(tmp_path, "edges: []\n")
    assert ":1: version:" in load_error(tmp_path, "version: 2\n")


def test_an_invalid_json_schema_is_refused_at_load(tmp_path: Path) -> None:
    text = "version: 1\nedges:\n  - from: a\n    to: b\n    input:\n      schema:\n        type: objekt\n"
    msg = load_error(tmp_path, text)
    assert msg.startswith(f"{tmp_path / 'c.yaml'}:7: edges[0].input.schema.type: not a valid JSON Schema")


def test_a_remote_reference_is_not_fetched(tmp_path: Path) -> None:
    text = "version: 1\nedges:\n  - from: a\n    to: b\n    input:\n      schema: {$ref: 'https://example.com/s.json'}\n"
    assert "edges[0].input.schema" in load_error(tmp_path, text)


def test_an_invalid_jmespath_expression_is_refused_at_load(tmp_path: Path) -> None:
    text = (
        "version: 1\nedges:\n  - from: a\n    to: b\n    input:\n      invariants:\n"
        "        - name: x\n          expr: \"__import__('os').system('true')\"\n"
    )
    msg = load_error(tmp_path, text)
    assert msg.startswith(f"{tmp_path / 'c.yaml'}:8: edges[0].input.invariants[0].expr: invalid JMESPath")
    assert "unknown function __import__, system" in msg
    text = text.replace("\"__import__('os').system('true')\"", "\"order.total >\"")
    assert "invalid JMESPath expression" in load_error(tmp_path, text)


def test_python_tags_are_not_constructed(tmp_path: Path) -> None:
    msg = load_error(tmp_path, "version: 1\nx-a: !!python/object/apply:os.system ['true']\n")
    assert msg.startswith(f"{tmp_path / 'c.yaml'}:2: invalid YAML")


def test_alias_expansion_is_bounded(tmp_path: Path) -> None:
    lines = ["version: 1", 'x-a: &a ["l","l","l","l","l","l","l","l","l"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"x-{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    msg = load_error(tmp_path, "\n".join(lines) + "\n")
    assert "aliases repeat more than" in msg


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    text = (
        "version: 1\nedges:\n  - from: a\n    to: b\n    input: {schema: &s {type: object, required: [x]}}\n"
        "  - from: b\n    to: c\n    input: {schema: *s}\n"
    )
    assert len(load_contracts(write(tmp_path, text)).edges) == 2


def test_duplicate_keys_and_edges_are_refused(tmp_path: Path) -> None:
    assert "duplicate key 'to'" in load_error(tmp_path, "version: 1\nedges:\n  - from: a\n    to: b\n    to: c\n")
    msg = load_error(tmp_path, "version: 1\nedges:\n  - {from: a, to: b}\n  - {from: a, to: b}\n")
    assert ":4: edges[1]: a second contract for a -> b" in msg


def test_dates_stay_strings_and_other_yaml_types_are_refused(tmp_path: Path) -> None:
    ok = "version: 1\nedges:\n  - from: a\n    to: b\n    input: {schema: {const: 2026-01-01}}\n"
    assert load_contracts(write(tmp_path, ok)).edges[0].input_schema.is_valid("2026-01-01")
    assert "not a JSON value" in load_error(tmp_path, "version: 1\nx-s: !!set {a: null}\n")
    assert "is not a string" in load_error(tmp_path, "version: 1\nx-m: {1: a}\n")


def test_a_json_contract_file_and_its_errors(tmp_path: Path) -> None:
    good = {"version": 1, "edges": [{"from": "a", "to": "b", "input": {"schema": {"type": "object"}}}]}
    assert len(load_contracts(write(tmp_path, json.dumps(good), "c.json")).edges) == 1
    bad = '{"version": 1,\n "edges": [\n  {"from": "a", "to": "b", "audit": [3]}\n ]\n}\n'
    assert load_error(tmp_path, bad, "c.json").startswith(f"{tmp_path / 'c.json'}:3: edges[0].audit[0]: ")
    assert ":2: invalid JSON" in load_error(tmp_path, '{"version": 1,\n "edges": [,]}\n', "c.json")


def test_duplicate_keys_in_a_json_contract_file_are_refused_with_their_line(tmp_path: Path) -> None:
    text = '{"version": 1, "edges": [{"from": "a", "to": "b", "timeout_ms": 1}],\n "edges": []}\n'
    assert load_error(tmp_path, text, "c.json") == f"{tmp_path / 'c.json'}:2: duplicate key 'edges'"
    nested = '{"version": 1,\n "edges": [\n  {"from": "a",\n   "to": "b", "from": "c"}\n ]\n}\n'
    assert load_error(tmp_path, nested, "c.json") == f"{tmp_path / 'c.json'}:4: duplicate key 'from'"
    result = CliRunner().invoke(app, ["contracts", "check", str(tmp_path / "c.json")])
    assert result.exit_code == 2
    assert result.stderr == f"handoff-audit: error: {tmp_path / 'c.json'}:4: duplicate key 'from'\n"
    # The same key in different objects is not a duplicate; a key repeated where YAML has no line for it
    # (a merge key) is still refused, without a line.
    fine = {"version": 1, "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}], "x-n": {"from": 1}}
    assert len(load_contracts(write(tmp_path, json.dumps(fine), "c.json")).edges) == 2
    merge = '{"version": 1, "x-a": {"<<": 1, "<<": 2}}'
    assert load_error(tmp_path, merge, "c.json") == f"{tmp_path / 'c.json'}: duplicate key '<<'"


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="cannot read contract file"):
        load_contracts(str(tmp_path / "nope.yaml"))


def test_paths_and_globs() -> None:
    assert parse_path("order.items[2].qty") == ("order", "items", 2, "qty")
    assert parse_path('meta["x.y"]') == ("meta", "x.y")
    for bad in ("", "a..b", "a[x]", ".a", "a*"):
        with pytest.raises(ValueError):
            parse_path(bad)
    assert glob_match(parse_path("*.updated_at", glob=True), ("order", "updated_at"))
    assert not glob_match(parse_path("*.updated_at", glob=True), ("order", "items", 0, "updated_at"))
    assert glob_match(parse_path("**.updated_at", glob=True), ("order", "items", 0, "updated_at"))
    assert glob_match(parse_path("order.items[*].note", glob=True), ("order", "items", 3, "note", "text"))
    assert not glob_match(parse_path('["a*"]', glob=True), ("abc",))
    assert glob_match(parse_path("meta", glob=True), ("meta", "request_id"))


# --- checks ----------------------------------------------------------------------------------------

SCHEMA_CONTRACT = """
version: 1
edges:
  - from: a
    to: b
    input:
      schema:
        type: object
        required: [order, customer]
        properties:
          order:
            type: object
            required: [id, total]
            properties:
              total: {type: number}
      invariants:
        - name: positive_total
          expr: "order.total > `0`"
        - name: has_items
          expr: "length(order.items) > `0`"
"""


def test_a_missing_required_field_is_state_loss_naming_the_schema_rule(tmp_path: Path) -> None:
    got = json.loads(json.dumps(ORDER))
    del got["customer"]
    report = scan(tmp_path, T().hop("a", "b", ORDER, got).outcome("b").events, SCHEMA_CONTRACT)
    [f] = of_kind(report, "contract_required_missing")
    assert (f.code, f.failure_class, f.path, f.sent, f.received) == ("SL105", "state_loss", "customer", {"id": "c-1"}, None)
    assert f.rule == "a -> b: input.schema#/required"
    assert [x.kind for x in report.findings if x.rule is None] == ["removed_field"]


def test_a_type_mismatch_and_a_false_invariant_are_drift(tmp_path: Path) -> None:
    got = json.loads(json.dumps(ORDER))
    got["order"]["total"] = "12.5"
    sent = json.loads(json.dumps(got))
    report = scan(tmp_path, T().hop("a", "b", sent, got).outcome("b").events, SCHEMA_CONTRACT)
    [f] = of_kind(report, "contract_schema_mismatch")
    assert (f.code, f.path, f.received) == ("CD208", "order.total", "12.5")
    assert f.rule == "a -> b: input.schema#/properties/order/properties/total/type"
    assert "'type'" in f.message
    [inv] = of_kind(report, "contract_invariant_failed")
    assert inv.rule == "a -> b: input.invariants.positive_total" and inv.code == "CD209"


def test_an_expression_that_cannot_be_evaluated_does_not_hold(tmp_path: Path) -> None:
    got = json.loads(json.dumps(ORDER))
    got["order"]["items"] = 5  # length() of a number is a type error in JMESPath
    report = scan(tmp_path, T().hop("a", "b", got, got).outcome("b").events, SCHEMA_CONTRACT)
    [inv] = of_kind(report, "contract_invariant_failed")
    assert inv.rule.endswith("has_items") and "could not be evaluated" in inv.message


def test_a_clean_handoff_passes(tmp_path: Path) -> None:
    report = scan(tmp_path, T().hop("a", "b", ORDER).outcome("b").events, SCHEMA_CONTRACT)
    assert report.findings == ()


OUTPUT_CONTRACT = """
version: 1
edges:
  - from: a
    to: b
    output:
      schema: {type: object, required: [order], properties: {order: {required: [id]}}}
      success: ["order.total > `100`"]
    audit: ["order.id", "customer.id", 'meta["trace.id"]']
"""


def test_the_sent_state_is_checked_on_the_sending_side(tmp_path: Path) -> None:
    sent = {"order": {"total": 12.5}, "customer": {"id": None}}
    report = scan(tmp_path, T().hop("a", "b", sent).outcome("b").events, OUTPUT_CONTRACT)
    [out] = of_kind(report, "contract_output_mismatch")
    assert (out.code, out.path, out.rule) == ("CD210", "order.id", "a -> b: output.schema#/properties/order/required")
    [succ] = of_kind(report, "contract_success_failed")
    assert (succ.code, succ.rule) == ("CD211", "a -> b: output.success[0]")
    audits = of_kind(report, "missing_audit_field")
    assert [(a.path, a.rule) for a in audits] == [
        ("customer.id", "a -> b: audit[1]"),  # present but null counts as missing
        ('meta["trace.id"]', "a -> b: audit[2]"),
        ("order.id", "a -> b: audit[0]"),
    ]
    assert {a.line for a in [out, succ, *audits]} == {1}  # the send's line


TIMEOUT_CONTRACT = """
version: 1
edges:
  - {from: a, to: b, timeout_ms: 500, fallback: review}
  - {from: c, to: d, timeout_ms: 500}
outcome:
  owner: b
"""


def _late(t: T, frm: str, to: str, delay: float, fallback: str | None = None) -> T:
    t.send(frm, to, {"x": 1})
    if fallback:
        t.send(frm, fallback, {"x": 1}).recv(frm, fallback, {"x": 1})
    t.ts += delay
    return t.recv(frm, to, {"x": 1})


def test_a_late_receipt_without_fallback_is_a_timeout(tmp_path: Path) -> None:
    report = scan(tmp_path, _late(T(), "a", "b", 2.0).outcome("b").events, TIMEOUT_CONTRACT)
    [f] = of_kind(report, "handoff_timeout")
    assert (f.code, f.sent, f.received, f.rule) == ("RG306", 500.0, 3000.0, "a -> b: timeout_ms")
    assert "handed nothing to the fallback review" in f.message


def test_a_late_receipt_with_a_handoff_to_the_fallback_is_fine(tmp_path: Path) -> None:
    report = scan(tmp_path, _late(T(), "a", "b", 2.0, fallback="review").outcome("b").events, TIMEOUT_CONTRACT)
    assert of_kind(report, "handoff_timeout") == []
    report = scan(tmp_path, _late(T(), "c", "d", 2.0).outcome("b").events, TIMEOUT_CONTRACT)
    assert "names no fallback" in of_kind(report, "handoff_timeout")[0].message
    report = scan(tmp_path, T().hop("a", "b", {"x": 1}).outcome("b").events, TIMEOUT_CONTRACT)  # 1 s apart
    assert of_kind(report, "handoff_timeout") != []
    fast = T()
    fast.send("a", "b", {"x": 1})
    fast.ts -= 0.7  # the next event comes 0.3 s later
    report = scan(tmp_path, fast.recv("a", "b", {"x": 1}).outcome("b").events, TIMEOUT_CONTRACT)
    assert of_kind(report, "handoff_timeout") == []


def test_an_outcome_claimed_by_another_agent(tmp_path: Path) -> None:
    report = scan(tmp_path, T().hop("a", "b", {"x": 1}).outcome("a").outcome("b").events, TIMEOUT_CONTRACT)
    [f] = of_kind(report, "wrong_outcome_owner")
    assert (f.code, f.sent, f.received, f.rule, f.handoff_id) == ("RG307", "b", "a", "outcome.owner", None)


def test_edges_match_exact_names_before_wildcards(tmp_path: Path) -> None:
    contract = """
version: 1
edges:
  - {from: "*", to: "*", audit: [w]}
  - {from: a, to: "*", audit: [x]}
  - {from: "*", to: b, audit: [y]}
  - {from: a, to: b, audit: [z]}
"""
    cs = load_contracts(write(tmp_path, contract))
    assert cs.edge_for("a", "b").audit[0][0] == "z"  # type: ignore[union-attr]
    assert cs.edge_for("a", "c").audit[0][0] == "x"  # type: ignore[union-attr]
    assert cs.edge_for("c", "b").audit[0][0] == "y"  # type: ignore[union-attr]
    assert cs.edge_for("c", "d").audit[0][0] == "w"  # type: ignore[union-attr]


def test_coverage_and_require_contracts(tmp_path: Path) -> None:
    contract = "version: 1\nedges:\n  - {from: a, to: b}\n  - {from: x, to: y}\n"
    events = T().hop("a", "b", {"k": 1}).hop("b", "c", {"k": 1}).outcome("c").events
    report = scan(tmp_path, events, contract)
    c = report.summary.contracts
    assert c is not None
    assert c.uncovered_edges == (("b", "c"),) and c.unused_contracts == (("x", "y"),)
    assert report.findings == ()
    assert [e.contract for e in report.summary.edges] == ["a -> b", None]
    report = scan(tmp_path, events, contract, require=True)
    [f] = report.findings
    assert (f.kind, f.code, f.from_agent, f.to_agent, f.rule) == ("uncovered_edge", "RG309", "b", "c", "edges")


def test_require_contracts_needs_a_contract_file(tmp_path: Path) -> None:
    traces = write_events(tmp_path / "t.jsonl", T().hop("a", "b", {"k": 1}).outcome("b").events)
    with pytest.raises(UsageError):
        run(ScanConfig((str(traces),), require_contracts=True))


# --- diff options ----------------------------------------------------------------------------------

DIFF_CONTRACT = """
version: 1
defaults:
  ignore: ["*.updated_at", "meta.request_id"]
  tolerance: 0.005
edges:
  - {from: a, to: b}
  - {from: c, to: d, ignore: ["notes"], tolerance: 0}
"""


def test_ignore_and_tolerance_apply_to_the_diff(tmp_path: Path) -> None:
    sent = {"order": {"total": 88.9, "updated_at": "10:00"}, "meta": {"request_id": "r1"}, "notes": "n"}
    got = {"order": {"total": 88.903, "updated_at": "10:01"}, "meta": {"request_id": "r2"}, "notes": "m"}
    without = write_events(tmp_path / "plain.jsonl", T().hop("a", "b", sent, got).outcome("b").events)
    assert len(run(ScanConfig((str(without),))).findings) == 4
    report = scan(tmp_path, T().hop("a", "b", sent, got).outcome("b").events, DIFF_CONTRACT)
    assert [(f.kind, f.path) for f in report.findings] == [("changed_value", "notes")]
    # Per-edge options replace the defaults: here only notes is ignored, and there is no tolerance.
    report = scan(tmp_path, T().hop("c", "d", sent, got).outcome("d").events, DIFF_CONTRACT)
    assert sorted(f.path for f in report.findings) == ["meta.request_id", "order.total", "order.updated_at"]
    # An edge without a contract takes the defaults.
    report = scan(tmp_path, T().hop("x", "y", sent, got).outcome("y").events, DIFF_CONTRACT)
    assert [f.path for f in report.findings] == ["notes"]


def test_tolerance_does_not_hide_a_real_change(tmp_path: Path) -> None:
    sent, got = {"total": 88.9, "flag": True}, {"total": 8890, "flag": 1}
    report = scan(tmp_path, T().hop("a", "b", sent, got).outcome("b").events, DIFF_CONTRACT)
    assert sorted(f.kind for f in report.findings) == ["type_changed", "unit_changed"]


# --- reports ---------------------------------------------------------------------------------------


def test_every_format_carries_the_rule(tmp_path: Path) -> None:
    got = json.loads(json.dumps(ORDER))
    del got["customer"]
    report = scan(tmp_path, T().hop("a", "b", got, got).outcome("b").events, SCHEMA_CONTRACT)
    rule = "a -> b: input.schema#/required"
    data = json.loads(render("json", report))
    assert [f["rule"] for f in data["findings"]] == [rule]
    assert data["summary"]["contracts"]["uncovered_edges"] == []
    assert data["summary"]["edges"][0]["contract"] == "a -> b"
    csv_text = render("csv", report)
    assert csv_text.splitlines()[0].endswith(",rule") and csv_text.splitlines()[1].endswith("," + rule)
    table = render("table", report, width=200)
    assert rule in table and "1 of 1 edge covered" in table


def test_trace_text_in_contract_findings_is_escaped(tmp_path: Path) -> None:
    events = T().hop("a\x1b[31m", "b", {"k": 1}).outcome("b").events
    contract = 'version: 1\nedges:\n  - {from: "a\\e[31m", to: b, audit: [x]}\n'
    report = scan(tmp_path, events, contract)
    assert len(report.findings) == 1
    table = render("table", report, width=200)
    assert "\x1b" not in table and "a\\x1b[31m -> b" in table


# --- inference -------------------------------------------------------------------------------------


def _infer_and_rescan(tmp_path: Path, paths: tuple[str, ...]) -> tuple[str, Report]:
    draft = draft_contracts(ScanConfig(paths))
    contract = tmp_path / "draft.yaml"
    contract.write_text(draft.text, encoding="utf-8")
    cs = load_contracts(str(contract))  # the draft passes the checks of `contracts check`
    return draft.text, run(ScanConfig(paths, contracts=cs))


def test_a_draft_of_the_clean_run_round_trips(tmp_path: Path) -> None:
    text, report = _infer_and_rescan(tmp_path, (str(SAMPLES / "clean_ecommerce_run.jsonl"),))
    assert report.findings == ()
    c = report.summary.contracts
    assert c is not None and c.uncovered_edges == () and c.unused_contracts == ()
    doc = __import__("yaml").safe_load(text)
    assert doc["outcome"] == {"owner": "payment"}
    first = doc["edges"][0]
    assert (first["from"], first["to"], first["timeout_ms"]) == ("inventory", "payment", 150)
    assert "shipping_address" in first["input"]["schema"]["properties"]["customer"]["required"]


@pytest.mark.parametrize("as_json", [False, True])
def test_a_draft_writes_no_invisible_or_control_character_raw(tmp_path: Path, as_json: bool) -> None:
    # YAML counts bidirectional, zero-width and line-separator characters as printable.
    frm, to = "plan\u202e\u2028er\x85", "b\u200bx\U000e0041"
    events = T("t").hop(frm, to, {"k": 1}).outcome(to).events + T("u").hop("a", "caf\u00e9", {"k": 1}).events
    path = str(write_events(tmp_path / "t.jsonl", events))
    draft = draft_contracts(ScanConfig((path,)), as_json=as_json)
    assert all(line.isprintable() for line in draft.text.split("\n"))
    contract = tmp_path / ("draft.json" if as_json else "draft.yaml")
    contract.write_text(draft.text, encoding="utf-8")
    cs = load_contracts(str(contract))
    assert {(ec.from_agent, ec.to_agent) for ec in cs.edges} == {(frm, to), ("a", "caf\u00e9")}


def test_a_draft_says_how_many_input_lines_could_not_be_used(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_events(path, T("t").hop("a", "b", {"k": 1}).outcome("b").events)
    path.write_bytes(path.read_bytes() + b"garbage\n" * 3)
    result = CliRunner().invoke(app, ["contracts", "infer", "-q", str(path)])
    assert result.exit_code == 0
    assert "# 3 input lines could not be used; scan lists them." in result.stdout
    assert result.stderr == f"handoff-audit: 3 input lines could not be used (first: {path}:4: not valid JSON); scan lists them all\n"
    clean = tmp_path / "clean.jsonl"
    write_events(clean, T("t").hop("a", "b", {"k": 1}).outcome("b").events)
    quiet = CliRunner().invoke(app, ["contracts", "infer", "-q", str(clean)])
    assert quiet.stderr == "" and "could not be used" not in quiet.stdout


def test_a_draft_holds_only_what_every_clean_state_had(tmp_path: Path) -> None:
    events = (
        T("t1").hop("a", "b", {"k": 1, "opt": "x", "n": 1}).outcome("b").events
        + T("t2").hop("a", "b", {"k": 2, "n": 1.5}).outcome("b").events
        + T("t3").hop("a", "b", {"k": 3, "n": 1}, {"n": 1}).outcome("b").events  # faulty: not drawn from
    )
    path = str(write_events(tmp_path / "t.jsonl", events))
    text, report = _infer_and_rescan(tmp_path, (path,))
    schema = __import__("yaml").safe_load(text)["edges"][0]["input"]["schema"]
    assert schema["required"] == ["k", "n"] and schema["properties"]["n"] == {"type": "number"}
    # The faulty handoff breaks the draft as it breaks the diff; the clean ones do not.
    assert {f.trace_id for f in report.findings if f.rule is not None} == {"t3"}


def test_a_draft_of_a_clean_corpus_round_trips(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from corpus import generate
    finally:
        sys.path.pop(0)
    path = tmp_path / "corpus.jsonl"
    generate(str(path), 4000, 0.0, 7)
    _, report = _infer_and_rescan(tmp_path, (str(path),))
    assert report.summary.handoffs > 300
    assert [f for f in report.findings if f.rule is not None] == []


# --- command line ----------------------------------------------------------------------------------


def test_contracts_check_command(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["contracts", "check", str(REPO / "examples" / "ecommerce.contracts.yaml")])
    assert ok.exit_code == 0 and ": ok: 2 edge contracts" in ok.stdout
    bad = write(tmp_path, "version: 1\nedges:\n  - from: a\n")
    result = runner.invoke(app, ["contracts", "check", bad])
    assert result.exit_code == 2
    assert result.stderr == f"handoff-audit: error: {bad}:3: edges[0]: \"to\" is a required property\n"


def test_scan_with_contracts_command(tmp_path: Path) -> None:
    runner = CliRunner()
    contract = str(REPO / "examples" / "ecommerce.contracts.yaml")
    clean = str(SAMPLES / "clean_ecommerce_run.jsonl")
    result = runner.invoke(app, ["scan", "--contracts", contract, clean, "-f", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["summary"]["contracts"]["file"] == contract
    result = runner.invoke(app, ["scan", "--require-contracts", clean])
    assert result.exit_code == 2 and "--require-contracts needs" in result.stderr
    result = runner.invoke(app, ["scan", "--contracts", str(tmp_path / "none.yaml"), clean])
    assert result.exit_code == 2 and "cannot read contract file" in result.stderr


def test_contracts_infer_command(tmp_path: Path) -> None:
    out = tmp_path / "draft.json"
    result = CliRunner().invoke(app, ["contracts", "infer", str(SAMPLES / "clean_ecommerce_run.jsonl"), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "drafted 2 edge contracts of 2 edges" in result.stderr
    doc = orjson.loads(out.read_bytes())
    assert doc["version"] == 1 and len(doc["edges"]) == 2
    assert CliRunner().invoke(app, ["contracts", "check", str(out)]).exit_code == 0


def test_jobs_give_the_same_report_with_contracts(tmp_path: Path) -> None:
    import pickle

    cs = load_contracts(str(REPO / "examples" / "ecommerce.contracts.yaml"))
    again = pickle.loads(pickle.dumps(cs))
    assert [ec.label for ec in again.edges] == [ec.label for ec in cs.edges]
    paths = (str(SAMPLES), str(REPO / "examples" / "ecommerce_contract_violations.jsonl"))
    one = run(ScanConfig(paths, contracts=cs, require_contracts=True))
    two = run(ScanConfig(paths, contracts=cs, require_contracts=True, jobs=2))
    assert render("json", two) == render("json", one)
    assert any(f.rule is not None for f in one.findings)

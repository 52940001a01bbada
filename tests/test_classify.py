"""The classify stage: every kind from a constructed trace, and the cases that must not fire."""

from __future__ import annotations

import copy
from typing import Any

from conftest import T, kinds

ORDER: dict[str, Any] = {
    "order": {"id": "o-1", "total": 88.9, "currency": "EUR", "items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]},
    "customer": {"id": "c-7", "name": "Ada", "address": {"street": "1 Main St", "city": "Oslo", "zip": "0150"}},
    "notes": "Ring twice, then leave the parcel with the neighbour.",
}


def state(**changes: Any) -> dict[str, Any]:
    s = copy.deepcopy(ORDER)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = s
        for p in parents:
            node = node[p]
        if value is _DROP:
            del node[last]
        else:
            node[last] = value
    return s


_DROP = object()


def test_a_clean_pipeline_has_no_findings(audit) -> None:
    s = state()
    fwd = {**state(), "inventory": {"reserved": True}}
    t = T().hop("validator", "inventory", s).hop("inventory", "payment", fwd)
    t.tool("payment", "charge", total=88.9, currency="EUR").outcome("payment").end("payment")
    report = audit(t.events)
    assert report.findings == ()
    assert report.summary.end_to_end_success_rate == 1.0


def test_removed_nulled_truncated(audit) -> None:
    sent = state()
    got = state(customer__address=_DROP, customer__name=None, notes="Ring twice, then leave...")
    report = audit(T().hop("a", "b", sent, got).outcome("b").events)
    assert sorted((f.kind, f.path) for f in report.findings) == [
        ("nulled_field", "customer.name"),
        ("removed_field", "customer.address"),
        ("truncated_value", "notes"),
    ]
    assert {f.failure_class for f in report.findings} == {"state_loss"}
    removed = next(f for f in report.findings if f.kind == "removed_field")
    assert removed.sent == ORDER["customer"]["address"] and removed.received is None
    assert (removed.from_agent, removed.to_agent) == ("a", "b")


def test_a_renamed_field_is_one_finding_not_a_loss_plus_an_injection(audit) -> None:
    got = state()
    got["customer"]["shipping_address"] = got["customer"].pop("address")
    report = audit(T().hop("a", "b", state(), got).outcome("b").events)
    assert [(f.kind, f.path) for f in report.findings] == [("renamed_field", "customer.address")]
    assert report.findings[0].failure_class == "context_drift"


def test_a_weak_value_does_not_pair_across_parents(audit) -> None:
    sent = {"a": {"flag": True}, "b": {}}
    got = {"a": {}, "b": {"other": True}}
    report = audit(T().hop("x", "y", {"k": 1, **sent}, {"k": 1, **got}).outcome("y").events)
    assert sorted(kinds(report)) == ["injected_field", "nulled_field"]


def test_dollars_to_cents_is_unit_changed(audit) -> None:
    report = audit(T().hop("a", "b", state(), state(order__total=8890)).outcome("b").events)
    assert [(f.kind, f.sent, f.received) for f in report.findings] == [("unit_changed", 88.9, 8890)]


def test_type_changed_and_changed_value_and_injected(audit) -> None:
    got = state(order__currency="USD", order__total="88.9", order__priority="express")
    report = audit(T().hop("a", "b", state(), got).outcome("b").events)
    assert sorted((f.kind, f.path) for f in report.findings) == [
        ("changed_value", "order.currency"),
        ("injected_field", "order.priority"),
        ("type_changed", "order.total"),
    ]


def test_not_forwarded_sits_on_the_outgoing_edge(audit) -> None:
    fwd = state()
    del fwd["customer"]["address"]["zip"]
    del fwd["notes"]  # a top-level key not passed on is scoping, not a loss
    report = audit(T().hop("a", "b", state()).hop("b", "c", fwd).outcome("c").events)
    assert [(f.kind, f.path, f.from_agent, f.to_agent) for f in report.findings] == [
        ("not_forwarded", "customer.address.zip", "b", "c")
    ]
    assert report.findings[0].sent == "0150"


def test_not_forwarded_ignores_a_hand_back_to_the_sender(audit) -> None:
    back = {"order": {"id": "o-1"}, "question": "which warehouse?"}
    report = audit(T().hop("a", "b", state()).hop("b", "a", back).outcome("a").events)
    assert report.findings == ()


def test_a_tool_argument_that_differs_from_a_received_field_is_reinterpreted(audit) -> None:
    t = T().hop("a", "b", state()).tool("b", "charge", currency="USD", total=88.9, id="x").outcome("b")
    report = audit(t.events)
    # "id" is not unique in the state (order.id and customer.id), so it is not compared.
    assert [(f.kind, f.path, f.sent, f.received, f.from_agent, f.to_agent) for f in report.findings] == [
        ("reinterpreted_field", "order.currency", "EUR", "USD", "a", "b")
    ]


def test_a_tool_argument_with_the_same_number_as_text_is_not_reinterpreted(audit) -> None:
    report = audit(T().hop("a", "b", state()).tool("b", "charge", total="88.90").outcome("b").events)
    assert report.findings == ()


def test_clarification_loop(audit) -> None:
    s = state()
    t = T().hop("a", "b", s).hop("b", "a", {"question": "which one?"}).hop("a", "b", s).outcome("b")
    report = audit(t.events)
    assert [(f.kind, f.from_agent, f.to_agent, f.handoff_id) for f in report.findings] == [
        ("clarification_loop", "a", "b", "a-b-2")
    ]


def test_a_retry_with_the_same_handoff_id_is_one_handoff(audit) -> None:
    s = state()
    t = T().send("a", "b", s, hid="h1").send("a", "b", s, hid="h1").recv("a", "b", s, hid="h1").outcome("b")
    report = audit(t.events)
    assert report.findings == ()
    assert report.summary.handoffs == 1 and report.summary.retries == 1


def test_responsibility_gaps(audit) -> None:
    s = state()
    orphan = T("t-orphan").send("a", "b", s).outcome("a", "failure")
    unsolicited = T("t-unsolicited").recv("a", "b", s, hid="zz").outcome("b")
    missing = T("t-missing").hop("a", "b", s)
    conflict = T("t-conflict").hop("a", "b", s).outcome("a").outcome("b", "failure")
    premature = T("t-premature").send("a", "b", s, hid="p1").outcome("a").recv("a", "b", s, hid="p1")
    events = orphan.events + unsolicited.events + missing.events + conflict.events + premature.events
    report = audit(events)
    assert sorted((f.trace_id, f.kind) for f in report.findings) == [
        ("t-conflict", "conflicting_outcome"),
        ("t-missing", "missing_outcome"),
        ("t-orphan", "orphaned_handoff"),
        ("t-premature", "premature_termination"),
        ("t-unsolicited", "unsolicited_receipt"),
    ]
    assert {f.failure_class for f in report.findings} == {"responsibility_gap"}


def test_the_same_agent_claiming_twice_is_not_a_conflict(audit) -> None:
    report = audit(T().hop("a", "b", state()).outcome("b").outcome("b").events)
    assert report.findings == ()


def test_a_duplicate_receipt_is_unsolicited(audit) -> None:
    s = state()
    report = audit(T().send("a", "b", s, hid="h").recv("a", "b", s, hid="h").recv("a", "b", s, hid="h").outcome("b").events)
    assert kinds(report) == ["unsolicited_receipt"]


def test_extreme_numbers_do_not_crash(audit) -> None:
    report = audit(T().hop("a", "b", {"x": 1e-300, "y": 1e300}, {"x": 1e300, "y": 1e-300}).outcome("b").events)
    assert kinds(report) == ["changed_value", "changed_value"]


def test_a_rename_that_turns_12_into_12_0_is_still_one_rename(audit) -> None:
    report = audit(T().hop("a", "b", {"o": {"qty": 12}}, {"o": {"quantity": 12.0}}).outcome("b").events)
    assert kinds(report) == ["renamed_field"]


def test_only_json_number_strings_count_as_numbers() -> None:
    from handoff_audit.classify import classify_value_change

    assert classify_value_change(1000, "1_000")[0] == "type_changed"
    assert classify_value_change(1000, "1e3")[0] == "type_changed"  # same number, as text
    assert classify_value_change(10, "1e3")[0] == "unit_changed"


def test_each_hand_back_makes_at_most_one_clarification_loop(audit) -> None:
    s = state()
    t = T().hop("a", "b", s).hop("b", "a", {"q": "?"}).hop("a", "b", s).hop("a", "b", s).outcome("b")
    assert kinds(audit(t.events)) == ["clarification_loop"]


def test_a_receipt_with_the_same_id_between_other_agents_is_not_that_handoffs_receipt(audit) -> None:
    s = state()
    t = T().send("a", "b", s, hid="h1").recv("a", "c", s, hid="h1").outcome("c")
    assert sorted(kinds(audit(t.events))) == ["orphaned_handoff", "unsolicited_receipt"]


def test_a_duplicate_receipt_does_not_count_as_another_handoff(audit) -> None:
    s = state()
    t = T().send("a", "b", s, hid="h").recv("a", "b", s, hid="h").recv("a", "b", s, hid="h").outcome("b")
    report = audit(t.events)
    assert report.summary.handoffs == 1 and report.summary.failed_handoffs == 1


def test_a_tool_argument_is_not_matched_inside_another_key_name(audit) -> None:
    # 'cur' occurs as a key once, but the compact encoding also holds it inside the key 'x"cur'.
    s = {"a": {"cur": "EUR"}, 'x"cur': 1}
    report = audit(T().hop("a", "b", s).tool("b", "pay", cur="USD").outcome("b").events)
    assert [(f.kind, f.path) for f in report.findings] == [("reinterpreted_field", "a.cur")]


def test_a_re_send_that_adds_an_answer_is_still_a_clarification_loop(audit) -> None:
    s = state()
    t = T().hop("a", "b", s).hop("b", "a", {"q": "which?"}).hop("a", "b", {**s, "answer": "LHR-2"}).outcome("b")
    assert kinds(audit(t.events)) == ["clarification_loop"]


def test_a_re_send_with_other_content_is_new_work_not_a_loop(audit) -> None:
    t = T().hop("a", "b", state()).hop("b", "a", {"done": True}).hop("a", "b", state(order__id="o-2")).outcome("b")
    assert kinds(audit(t.events)) == []


def test_a_claim_between_two_attempts_of_a_retried_handoff_is_premature(audit) -> None:
    s = state()
    t = T().send("a", "b", s, hid="h").outcome("a").send("a", "b", s, hid="h").recv("a", "b", s, hid="h")
    assert kinds(audit(t.events)) == ["premature_termination"]


def test_a_tool_argument_that_is_a_prefix_of_the_received_number_is_still_reinterpreted(audit) -> None:
    report = audit(T().hop("a", "b", {"order": {"total": 88.9, "n": 1}}).tool("b", "pay", total=88).outcome("b").events)
    assert [(f.kind, f.sent, f.received) for f in report.findings] == [("reinterpreted_field", 88.9, 88)]


def test_carries_is_a_sound_shortcut() -> None:
    from handoff_audit.classify import carries

    assert carries(b'{"a":1,"b":2}', b'{"a":1}')
    assert carries(b'{"a":1}', b'{"a":1}')
    assert not carries(b'{"a":12}', b'{"a":1}')  # a longer number is another value
    assert not carries(b'{"b":2,"a":1}', b'{"a":1}')  # may hold it, but only parsing can tell
    assert not carries(b'{"a":1,"b":2}', b"{}")  # an empty object is decided by parsing
    assert not carries(None, b'{"a":1}')

"""The diff stage: unit cases and properties over arbitrary JSON."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from handoff_audit.classify import classify_value_change, handoff_findings
from handoff_audit.diffing import diff_states, format_path, get_path, same
from handoff_audit.models import Handoff

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
keys = st.text(alphabet="abcdexyz_.[]\"", min_size=1, max_size=4)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=5)),
    max_leaves=30,
)
states = st.dictionaries(keys, json_values, max_size=6)


def _exists(state: Any, path: tuple[Any, ...]) -> bool:
    try:
        get_path(state, path)
    except (KeyError, IndexError, TypeError):
        return False
    return True


def test_a_change_inside_a_list_item_that_moved_is_named_by_its_sent_index() -> None:
    # The item sent at index 1 arrives at index 2, behind an inserted one, with a key added.
    changes = diff_states({"items": [{"a": 1}, {"b": 2}]}, {"items": [None, {"a": 1}, {"b": 2, "c": 3}]})
    assert [(c.op, c.path) for c in changes] == [("item_added", ("items", 0)), ("added", ("items", 1, "c"))]


def test_the_counterpart_of_a_sent_path_follows_the_list_alignment() -> None:
    from handoff_audit.diffing import counterpart

    sent = {"items": [{"q": 1}, {"q": 2}, {"q": 3}], "n": [1, 2], "cut": [1, 2, 3]}
    got = {"items": [None, {"q": 1}, {"q": 2.5}, {"q": 3}, {"q": 4}], "n": [5, 2], "cut": [1, 2]}
    assert counterpart(sent, got, ("items", 0, "q")) == ("items", 1, "q")
    assert counterpart(sent, got, ("items", 1, "q")) == ("items", 2, "q")  # paired with the item that replaced it
    assert counterpart(sent, got, ("items", 2, "q")) == ("items", 3, "q")
    dropped = {"items": [None, {"q": 1}, {"q": 3}, {"q": 4}]}
    assert counterpart(sent, dropped, ("items", 1, "q")) is None  # removed from the middle
    assert counterpart(sent, got, ("n", 0)) == ("n", 0)  # same length: position by position
    assert counterpart(sent, got, ("cut", 2)) is None and counterpart(sent, got, ("cut", 1)) == ("cut", 1)
    assert counterpart(sent, got, ("gone",)) is None and counterpart(sent, got, ()) == ()


@given(states)
def test_diff_of_a_state_with_itself_is_empty(a: dict[str, Any]) -> None:
    assert diff_states(a, a) == []
    assert diff_states(a, copy.deepcopy(a)) == []


@given(states, states)
@settings(max_examples=300)
def test_removed_paths_exist_in_sent_and_not_in_received(a: dict[str, Any], b: dict[str, Any]) -> None:
    for c in diff_states(a, b):
        # Items of aligned lists are compared in pairs under the sent index (docs/rules.md): below such
        # an index, a change's path leads through the sent state, not necessarily the received one.
        indexed = [n for n, seg in enumerate(c.path[:-1]) if type(seg) is int]
        if c.op in ("added", "item_added") and indexed:
            assert _exists(a, c.path[: indexed[-1] + 1])
            continue
        if c.op == "removed":
            assert _exists(a, c.path) and not _exists(b, c.path)
        elif c.op == "added":
            assert _exists(b, c.path) and not _exists(a, c.path)
        elif c.op == "item_removed":  # indexed in the sent list
            assert get_path(a, c.path) == c.sent
        elif c.op == "item_added":  # indexed in the received list
            assert get_path(b, c.path) == c.received
        else:
            assert c.op == "changed"
            assert get_path(a, c.path) == c.sent  # list indices are those of the sent list
            if not any(type(seg) is int for seg in c.path):
                assert get_path(b, c.path) == c.received


@given(states, states)
@settings(max_examples=300)
def test_arbitrary_json_never_raises_and_every_change_is_named(a: dict[str, Any], b: dict[str, Any]) -> None:
    h = Handoff("t", "h", "a", "b")
    changes = diff_states(a, b)
    findings = handoff_findings(h, changes)
    assert (changes == []) == (findings == [])
    assert (changes == []) == same(a, b)


@given(states, st.data())
def test_a_constructed_rename_is_one_renamed_field(a: dict[str, Any], data: st.DataObject) -> None:
    value = data.draw(st.one_of(st.text(min_size=3, max_size=10), st.integers(min_value=10, max_value=10**6)))
    a = {**a, "orig_key": {"inner": value, "other": 1}}
    b = copy.deepcopy(a)
    b["renamed_key"] = b.pop("orig_key")
    findings = handoff_findings(Handoff("t", "h", "a", "b"), diff_states(a, b))
    assert [(f.kind, f.path) for f in findings] == [("renamed_field", "orig_key")]
    assert "renamed_key" in findings[0].message


@given(
    st.one_of(
        st.integers(min_value=1, max_value=10**6), st.floats(min_value=0.01, max_value=1e6, allow_nan=False)
    ),
    st.sampled_from([-3, -2, -1, 1, 2, 3, 6]),
    st.booleans(),
)
def test_a_constructed_unit_change_is_found(x: float, k: int, negative: bool) -> None:
    sent = -x if negative else x
    received = sent * 10**k
    assert classify_value_change(sent, received)[0] == "unit_changed"
    findings = handoff_findings(Handoff("t", "h", "a", "b"), diff_states({"amt": sent}, {"amt": received}))
    assert [f.kind for f in findings] == ["unit_changed"]


@given(st.text(min_size=2, max_size=40), st.integers(min_value=0), st.sampled_from(["", "...", "\u2026", " ..."]))
def test_a_string_cut_short_is_truncated(text: str, cut: int, mark: str) -> None:
    assume(text.strip())
    keep = cut % len(text)
    received = text[:keep] + mark
    assume(received != text and len(text[:keep].rstrip()) < len(text.rstrip()))
    kind = classify_value_change(text, received)[0]
    assert kind in ("truncated_value", "nulled_field")
    if received:
        assert kind == "truncated_value"


def test_nested_paths_are_rendered_with_dots_and_indices() -> None:
    sent = {"order": {"items": [{"qty": 1}, {"qty": 2}, {"qty": 3}]}}
    received = copy.deepcopy(sent)
    received["order"]["items"][2]["qty"] = 4
    [change] = diff_states(sent, received)
    assert format_path(change.path) == "order.items[2].qty"
    assert format_path(("meta", "x.y", 0)) == 'meta["x.y"][0]'


def test_a_middle_list_item_dropped_is_one_removal() -> None:
    items = [{"sku": s} for s in "abcd"]
    changes = diff_states({"items": items}, {"items": items[:1] + items[2:]})
    assert [(c.op, c.path) for c in changes] == [("item_removed", ("items", 1))]


def test_a_list_cut_short_is_one_change_on_the_list() -> None:
    changes = diff_states({"items": [1, 2, 3]}, {"items": [1, 2]})
    assert [(c.op, c.path) for c in changes] == [("changed", ("items",))]
    assert classify_value_change([1, 2, 3], [1, 2])[0] == "truncated_value"


@pytest.mark.parametrize(
    ("sent", "received", "kind"),
    [
        ("abc", None, "nulled_field"),
        ({"a": 1}, {}, "nulled_field"),
        ([1], [], "nulled_field"),
        ("abc", "", "nulled_field"),
        (12.5, "12.50", "type_changed"),
        (True, 1, "type_changed"),
        ({"a": 1}, "a=1", "type_changed"),
        (12.5, 1250, "unit_changed"),
        (19.99, 1999, "unit_changed"),
        ("12.50", 1250, "unit_changed"),
        (1500, 1.5, "unit_changed"),
        (12.5, 13.5, "changed_value"),
        (5, -5, "changed_value"),
        ("EUR", "USD", "changed_value"),
        ("Leave at the back door", "Leave at the back d...", "truncated_value"),
        ("Leave at the back door", "Leave at the\u2026", "truncated_value"),
        ("Leave at the back door", "Leave at the", "truncated_value"),
        ("Leave at the back door", "Leave at the front door", "changed_value"),
    ],
)
def test_value_changes_are_named(sent: Any, received: Any, kind: str) -> None:
    assert classify_value_change(sent, received)[0] == kind


def test_json_equality_rules() -> None:
    assert diff_states({"n": 12}, {"n": 12.0}) == []
    assert diff_states({"a": 1, "b": 2}, {"b": 2, "a": 1}) == []
    [change] = diff_states({"flag": True}, {"flag": 1})
    assert change.path == ("flag",)
    [change] = diff_states({"x": {"flags": [True]}}, {"x": {"flags": [1]}})
    assert change.path == ("x", "flags", 0)

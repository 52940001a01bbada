"""The pairing stage: ordering, matching by id or by order, retries, out-of-order input."""

from __future__ import annotations

from typing import Any

from conftest import T, kinds

from handoff_audit.adapters.native import make_event
from handoff_audit.models import Event
from handoff_audit.pairing import build_timeline, order_events

S: dict[str, Any] = {"order": {"id": "o-1", "total": 10}}


def _events(raw: list[dict[str, Any]]) -> list[Event]:
    return [make_event(e, i, "f.jsonl", i) for i, e in enumerate(raw, 1)]


def test_events_are_put_in_time_order_and_untimed_events_keep_their_place() -> None:
    raw = [
        {"trace_id": "t", "type": "x", "ts": 5.0, "tool": 1},
        {"trace_id": "t", "type": "x", "tool": 2},
        {"trace_id": "t", "type": "x", "ts": 1.0, "tool": 3},
        {"trace_id": "t", "type": "x", "ts": 5.0, "tool": 4},
    ]
    assert [e.tool for e in order_events(_events(raw))] == [3, 1, 2, 4]


def test_a_receipt_read_before_its_send_still_pairs(audit) -> None:
    t = T().hop("a", "b", S).outcome("b")
    t.events.reverse()
    report = audit(t.events)
    assert report.findings == ()
    assert report.summary.handoffs == 1


def test_without_handoff_id_the_nth_send_pairs_with_the_nth_receipt() -> None:
    s1, s2 = {"n": 1}, {"n": 2}
    t = T().send("a", "b", s1, hid=None).send("a", "b", s2, hid=None).recv("a", "b", s1, hid=None).recv("a", "b", s2, hid=None)
    tl = build_timeline("t1", _events(t.events))
    assert [(h.sent_state, h.received_state) for h in tl.handoffs] == [(s1, s1), (s2, s2)]


def test_a_retry_is_compared_with_the_last_attempt_before_the_receipt() -> None:
    first, second = {"v": 1}, {"v": 2}
    t = T().send("a", "b", first, hid="h").send("a", "b", second, hid="h").recv("a", "b", second, hid="h")
    tl = build_timeline("t1", _events(t.events))
    [h] = tl.handoffs
    assert h.attempts == 2 and tl.retries == 1
    assert h.sent_state == second


def test_traces_interleaved_in_one_file_are_audited_separately(audit) -> None:
    a = T("ta").hop("x", "y", S).outcome("y")
    b = T("tb").hop("x", "y", S, {"order": {"id": "o-1"}}).outcome("y")
    interleaved = [e for pair in zip(a.events, b.events) for e in pair]
    report = audit(interleaved)
    assert [(f.trace_id, f.kind) for f in report.findings] == [("tb", "removed_field")]
    assert report.summary.traces == 2


def test_a_trace_spread_over_two_files_is_one_trace(tmp_path) -> None:
    from conftest import write_events

    from handoff_audit.pipeline import ScanConfig, run

    t = T().hop("a", "b", S).outcome("b")
    write_events(tmp_path / "sender.jsonl", [t.events[0]])
    write_events(tmp_path / "receiver.jsonl", t.events[1:])
    report = run(ScanConfig((str(tmp_path),)))
    assert report.summary.traces == 1 and report.findings == ()


def test_an_idle_trace_is_closed_and_a_late_event_is_skipped_with_a_reason(tmp_path) -> None:
    from conftest import write_events

    from handoff_audit.pipeline import ScanConfig, run

    early = T("early").send("a", "b", S)
    filler = T("filler")
    for _ in range(9000):
        filler.outcome("z")
    late = T("early").recv("a", "b", S, hid=early.events[0]["handoff_id"])
    path = write_events(tmp_path / "t.jsonl", early.events + filler.events + late.events)
    report = run(ScanConfig((str(path),), idle_lines=4096))
    assert "orphaned_handoff" in kinds(report)
    assert report.summary.skipped == 1
    assert "closed after 4096 idle lines" in report.skipped[0].reason

"""The aggregate stage: the three rates, per-edge counts and latency percentiles."""

from __future__ import annotations

from array import array

from conftest import T

from handoff_audit.summary import percentile


def test_nearest_rank_percentiles() -> None:
    values = array("d", range(1, 101))
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(array("d", [7.0]), 0.95) == 7.0
    assert percentile(array("d"), 0.5) is None


def test_rates_side_by_side(audit) -> None:
    s = {"order": {"id": 1}}
    good = T("good").hop("a", "b", s).end("a").end("b").outcome("b")
    bad = T("bad").hop("a", "b", s, {"order": {}}).end("a").end("b").outcome("b")
    warn = T("warn").hop("a", "b", s, {"order": {"id": 1}, "extra": 1}).end("a").end("b", "error").outcome("b")
    report = audit(good.events + bad.events + warn.events)
    summary = report.summary
    assert summary.agent_success_rate == 5 / 6
    assert summary.handoff_failure_rate == 2 / 3  # a warning-only handoff still had a finding
    assert summary.end_to_end_success_rate == 2 / 3  # warnings do not fail a trace; errors do
    [edge] = summary.edges
    assert (edge.from_agent, edge.to_agent, edge.handoffs, edge.failed_handoffs) == ("a", "b", 3, 2)
    assert edge.findings_by_class == {"state_loss": 1, "context_drift": 1, "responsibility_gap": 0}


def test_latency_per_edge_and_clock_skew_ignored(audit) -> None:
    events = []
    for i, gap in enumerate([0.1, 0.2, 0.3, 0.4, -5.0]):
        t = T(f"t{i}").send("a", "b", {"x": 1}, hid="h").recv("a", "b", {"x": 1}, hid="h").outcome("b")
        t.events[1]["ts"] = t.events[0]["ts"] + gap
        events += t.events
    [edge] = audit(events).summary.edges
    assert round(edge.latency_p50_ms or 0, 6) == 200.0
    assert round(edge.latency_p95_ms or 0, 6) == 400.0


def test_a_finding_crosses_a_process_boundary_whole() -> None:
    import copy
    import pickle
    from dataclasses import fields

    from handoff_audit.models import Finding

    # Every field set to a value distinct from its default, so a field lost on the way shows.
    values = {f.name: f"v-{f.name}" for f in fields(Finding)}
    values.update(sent={"a": [1, None]}, received=2.5, line=7, order=3)
    f = Finding(**values)
    for again in (pickle.loads(pickle.dumps(f, protocol=p)) for p in range(2, pickle.HIGHEST_PROTOCOL + 1)):
        assert again == f and type(again) is Finding
        assert {n.name: getattr(again, n.name) for n in fields(Finding)} == values
    assert copy.copy(f) == f and copy.deepcopy(f) == f

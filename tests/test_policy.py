"""The policy: selectors, rates, and the verdict with its reasons, table-tested."""

from __future__ import annotations

import pytest
from conftest import T

from handoff_audit.errors import ExitCode, UsageError
from handoff_audit.policy import (
    BaselineData,
    Thresholds,
    evaluate,
    exit_code,
    parse_failure_rates,
    parse_rate,
    pct,
    select_codes,
    verdict_block,
)


@pytest.mark.parametrize(
    ("selectors", "codes"),
    [
        (["state_loss"], {"SL101", "SL102", "SL103", "SL104", "SL105"}),
        (["unit_changed,rg301"], {"CD203", "RG301"}),
        (["warning"], {"CD202", "CD205", "CD207"}),
        (["none"], set()),
        (["CD201", "removed_field"], {"CD201", "SL101"}),
    ],
)
def test_select_codes(selectors: list[str], codes: set[str]) -> None:
    assert select_codes(selectors) == codes


def test_unknown_selector_names_the_option() -> None:
    with pytest.raises(UsageError, match=r"--ignore: unknown class, kind or rule code 'XX999'"):
        select_codes(["XX999"], "--ignore")


@pytest.mark.parametrize(("text", "value"), [("5%", 0.05), ("0.05", 0.05), (0.5, 0.5), ("100%", 1.0), ("0", 0.0)])
def test_parse_rate(text, value) -> None:  # type: ignore[no-untyped-def]
    assert parse_rate(text, "--x") == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "150%", "-0.1", "1.5"])
def test_bad_rates(text: str) -> None:
    with pytest.raises(UsageError, match="--x"):
        parse_rate(text, "--x")


def test_failure_rates_overall_and_per_class() -> None:
    assert parse_failure_rates(["2%", "STATE_LOSS=1%", "context_drift = 0.5"]) == {
        "overall": 0.02, "state_loss": 0.01, "context_drift": 0.5
    }
    with pytest.raises(UsageError, match="unknown class 'loss'"):
        parse_failure_rates(["loss=1%"])


def test_pct_shows_enough_decimals_to_differ() -> None:
    assert pct(0.032) == "3.2%"
    assert pct(0.0104, 0.01) == "1.04%" and pct(0.01, 0.0104) == "1.00%"


@pytest.fixture
def two_edges(audit):  # type: ignore[no-untyped-def]
    # 4 traces: a->b loses a field in 1 of 4 handoffs; b->c changes a value (error) in 2 of 4; one
    # injected field (warning) on b->c.
    events = []
    for i in range(4):
        t = T(f"t{i}")
        t.hop("a", "b", {"x": 1, "y": 2}, {"x": 1} if i == 0 else None)
        t.hop("b", "c", {"z": 1}, {"z": 2} if i in (1, 2) else ({"z": 1, "w": 0} if i == 3 else None))
        t.outcome("c")
        events += t.events
    return audit(events)


def test_default_fails_on_error_findings_only(two_edges) -> None:  # type: ignore[no-untyped-def]
    v = evaluate(two_edges)
    assert not v.passed
    assert v.reasons == ("3 findings of severity error (CD201 changed_value 2, SL101 removed_field 1)",)
    assert len(v.failing) == 3
    assert exit_code(v) == ExitCode.FINDINGS and exit_code(v, exit_zero=True) == ExitCode.PASSED


def test_fail_on_selects_and_none_leaves_only_rates(two_edges) -> None:  # type: ignore[no-untyped-def]
    v = evaluate(two_edges, Thresholds(fail_on=select_codes(["injected_field"])))
    assert v.reasons == ("1 finding selected by --fail-on (CD205 injected_field 1)",)
    assert evaluate(two_edges, Thresholds(fail_on=frozenset())).passed


def test_rate_thresholds_name_the_worst_edge(two_edges) -> None:  # type: ignore[no-untyped-def]
    th = Thresholds(fail_on=frozenset(), max_failure_rate={"overall": 0.5, "state_loss": 0.1, "context_drift": 0.5})
    v = evaluate(two_edges, th)
    # 4 of 8 handoffs failed: not over 50%; state_loss 1 of 8 = 12.5% > 10%; context_drift 3 of 8 = 37.5%.
    assert v.reasons == ("state_loss rate 12.5% > 10.0% (a -> b: 1 of 4)",)
    th = Thresholds(fail_on=frozenset(), max_failure_rate={"overall": 0.2}, min_end_to_end_success=0.5)
    assert evaluate(two_edges, th).reasons == (
        "handoff failure rate 50.0% > 20.0% (b -> c: 3 of 4)",
        "end-to-end success 25.0% < 50.0% (1 of 4 traces)",
    )


def test_baseline_known_findings_do_not_fail_but_new_ones_do(two_edges) -> None:  # type: ignore[no-untyped-def]
    from handoff_audit.baseline import fingerprint

    counts: dict[str, int] = {}
    for f in two_edges.findings:
        counts[fingerprint(f)] = counts.get(fingerprint(f), 0) + 1
    rates = {"state_loss": 0.125, "context_drift": 0.375, "responsibility_gap": 0.0}
    same = BaselineData(counts, 0.5, rates, 0.25)
    v = evaluate(two_edges, baseline=same)
    assert v.passed and len(v.known) == len(two_edges.findings)
    assert verdict_block(v) == ["PASS: no finding or rate over the thresholds (4 of 4 findings known in the baseline)"]
    fewer = dict(counts)
    key = fingerprint(next(f for f in two_edges.findings if f.kind == "changed_value"))
    fewer[key] = 1
    v = evaluate(two_edges, baseline=BaselineData(fewer, 0.5, rates, 0.25))
    assert v.reasons == ("1 new finding of severity error (CD201 changed_value 1)",)


def test_baseline_rates_with_tolerance(two_edges) -> None:  # type: ignore[no-untyped-def]
    from handoff_audit.baseline import fingerprint

    counts = {fingerprint(f): 5 for f in two_edges.findings}
    better = BaselineData(counts, 0.4, {"state_loss": 0.125}, 0.5)
    v = evaluate(two_edges, baseline=better)
    assert v.reasons == ("handoff failure rate 50.0% > baseline 40.0%", "end-to-end success 25.0% < baseline 50.0%")
    assert evaluate(two_edges, Thresholds(baseline_tolerance=0.25), baseline=better).passed

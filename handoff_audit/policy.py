"""Report + thresholds (+ baseline) -> verdict and exit code. Pure, so that it can be table-tested.

A finding fails the run when it is selected by ``fail_on`` (by default: every finding of severity
``error``) and is not known in the baseline. Rate thresholds and a baseline's rates add reasons of
their own. Every reason is one short line; the CLI prints them on stderr.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from handoff_audit.errors import ExitCode, UsageError
from handoff_audit.formatters._text import printable
from handoff_audit.models import EdgeStats, Report, Verdict
from handoff_audit.rules import RULES, RULES_BY_CODE, FailureClass, Severity

CLASSES = tuple(c.value for c in FailureClass)
OVERALL = "overall"
DEFAULT_BASELINE_TOLERANCE = 0.0
MAX_LISTED_CODES = 5  # a reason lists this many rule codes, then "..."


def select_codes(selectors: Iterable[str], option: str = "--fail-on", *, empty_ok: bool = False) -> frozenset[str]:
    """Rule codes named by class names, kinds or codes (in any case).

    ``error`` and ``warning`` select the rules of that severity; ``none`` selects nothing. An
    unknown name is a UsageError naming ``option``; so is no name at all (an empty value, as from an
    unset variable) unless ``empty_ok``: what fails a run is turned off only by ``none``.
    """
    codes: set[str] = set()
    named = False
    for raw in selectors:
        for original in (t.strip() for t in raw.split(",")):
            token = original.lower()
            named = named or bool(token)
            if not token or token == "none":
                continue
            if token in CLASSES:
                codes.update(r.code for r in RULES.values() if r.failure_class.value == token)
            elif token in RULES:
                codes.add(RULES[token].code)
            elif token.upper() in RULES_BY_CODE:
                codes.add(token.upper())
            elif token in (Severity.ERROR.value, Severity.WARNING.value):
                codes.update(r.code for r in RULES.values() if r.severity.value == token)
            else:
                raise UsageError(
                    f"{option}: unknown class, kind or rule code {original!r} "
                    "(see docs/rules.md; classes: " + ", ".join(CLASSES) + ")"
                )
    if not named and not empty_ok:
        raise UsageError(f"{option}: no class, kind or rule code given (none fails on no finding)")
    return frozenset(codes)


def parse_rate(text: str | float | int, option: str) -> float:
    """``0.05``, ``5%`` -> 0.05; a rate must lie between 0 and 1 (0% and 100%)."""
    try:
        if isinstance(text, bool):
            raise ValueError
        if isinstance(text, (int, float)):
            value = float(text)
        else:
            t = text.strip()
            value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not a rate (write 0.05 or 5%)") from None
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{option}: {text!r} is not between 0 and 1 (0% and 100%)")
    return value


def parse_failure_rates(values: Iterable[str | float], option: str = "--max-failure-rate") -> dict[str, float]:
    """``RATE`` (overall) and ``CLASS=RATE`` values -> {"overall" or class: rate}; later ones win."""
    rates: dict[str, float] = {}
    for value in values:
        if isinstance(value, str) and "=" in value:
            key, _, rate = value.partition("=")
            key = key.strip().lower()
            if key not in CLASSES and key != OVERALL:
                raise UsageError(f"{option}: unknown class {key!r} (classes: {', '.join(CLASSES)})")
            rates[key] = parse_rate(rate, option)
        else:
            rates[OVERALL] = parse_rate(value, option)
    return rates


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What fails a run. ``fail_on`` None means: every finding of severity ``error``."""

    fail_on: frozenset[str] | None = None
    max_failure_rate: Mapping[str, float] = field(default_factory=dict)  # "overall" or class -> rate
    min_end_to_end_success: float | None = None
    baseline_tolerance: float = DEFAULT_BASELINE_TOLERANCE


@dataclass(frozen=True, slots=True)
class BaselineData:
    """What a baseline contributes: finding counts per fingerprint and the rates it had."""

    counts: Mapping[str, int]
    handoff_failure_rate: float | None
    class_failure_rates: Mapping[str, float | None]
    end_to_end_success_rate: float | None


def fails(code: str, severity: str, fail_on: frozenset[str] | None) -> bool:
    """Whether a finding of ``code`` fails the run under ``fail_on``."""
    return severity == Severity.ERROR.value if fail_on is None else code in fail_on


def evaluate(report: Report, thresholds: Thresholds | None = None, baseline: BaselineData | None = None) -> Verdict:
    """Judge ``report``: which findings fail the run, and every reason it fails."""
    from handoff_audit.baseline import fingerprint  # baseline imports this module's types

    th = thresholds or Thresholds()
    s = report.summary
    known: set[int] = set()
    if baseline is not None:
        left = Counter(baseline.counts)
        for i, f in enumerate(report.findings):
            fp = fingerprint(f)
            if left[fp] > 0:
                left[fp] -= 1
                known.add(i)
    failing = frozenset(
        i for i, f in enumerate(report.findings) if i not in known and fails(f.code, f.severity, th.fail_on)
    )
    reasons: list[str] = []
    if failing:
        reasons.append(_findings_reason(report, failing, new=baseline is not None, fail_on=th.fail_on))
    for key, limit in sorted(th.max_failure_rate.items(), key=lambda kv: (kv[0] != OVERALL, kv[0])):
        rate = s.handoff_failure_rate if key == OVERALL else s.class_failure_rate(key)
        if rate is not None and rate > limit:
            reasons.append(_rate_reason(report, key, rate, limit))
    e2e = s.end_to_end_success_rate
    if th.min_end_to_end_success is not None and e2e is not None and e2e < th.min_end_to_end_success:
        reasons.append(
            f"end-to-end success {pct(e2e, th.min_end_to_end_success)} < {pct(th.min_end_to_end_success, e2e)} "
            f"({s.traces_succeeded:,} of {s.traces:,} traces)"
        )
    notes: list[str] = []
    if baseline is not None:
        reasons.extend(_baseline_reasons(report, baseline, th.baseline_tolerance))
        notes.append(f"{len(known):,} of {len(report.findings):,} findings known in the baseline")
    return Verdict(not reasons, tuple(reasons), failing, frozenset(known), tuple(notes))


def exit_code(verdict: Verdict, *, exit_zero: bool = False) -> ExitCode:
    """PASSED or FINDINGS; ``exit_zero`` turns FINDINGS into PASSED."""
    return ExitCode.PASSED if verdict.passed or exit_zero else ExitCode.FINDINGS


def verdict(report: Report, *, exit_zero: bool = False) -> ExitCode:
    """The exit code under the default thresholds: FINDINGS when any finding has severity ``error``."""
    return exit_code(evaluate(report), exit_zero=exit_zero)


def verdict_block(v: Verdict, *, exit_zero: bool = False) -> list[str]:
    """The verdict as the short block of lines the CLI prints on stderr."""
    if v.passed:
        notes = f" ({'; '.join(v.notes)})" if v.notes else ""
        return [f"PASS: no finding or rate over the thresholds{notes}"]
    lines = [f"FAIL: {reason}" for reason in v.reasons]
    if exit_zero:
        lines.append("(--exit-zero: exit code 0)")
    return lines


def pct(x: float, other: float | None = None) -> str:
    """A rate as a percentage with one decimal, or more where one decimal would hide a difference."""
    for places in (1, 2, 3, 4):
        text = f"{x * 100:.{places}f}%"
        if other is None or text != f"{other * 100:.{places}f}%":
            return text
    return f"{x * 100:.4f}%"


def _findings_reason(report: Report, failing: frozenset[int], *, new: bool, fail_on: frozenset[str] | None) -> str:
    by_code: Counter[str] = Counter(report.findings[i].code for i in failing)
    listed = ", ".join(
        f"{code} {RULES_BY_CODE[code].kind} {n:,}" for code, n in sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0]))
        [:MAX_LISTED_CODES]
    )
    more = ", ..." if len(by_code) > MAX_LISTED_CODES else ""
    what = "new finding" if new else "finding"
    noun = what if len(failing) == 1 else what + "s"
    rule = "of severity error" if fail_on is None else "selected by --fail-on"
    return f"{len(failing):,} {noun} {rule} ({listed}{more})"


def _worst_edge(edges: Iterable[EdgeStats], key: str) -> EdgeStats | None:
    def failed(e: EdgeStats) -> int:
        return e.failed_handoffs if key == OVERALL else e.failed_by_class.get(key, 0)

    candidates = [e for e in edges if failed(e)]
    if not candidates:
        return None
    # The edge that contributes most failed handoffs; among equals, the one with the higher rate.
    return min(candidates, key=lambda e: (-failed(e), -failed(e) / e.handoffs, e.from_agent, e.to_agent))


def _rate_reason(report: Report, key: str, rate: float, limit: float) -> str:
    name = "handoff failure rate" if key == OVERALL else f"{key} rate"
    worst = _worst_edge(report.summary.edges, key)
    where = ""
    if worst is not None:
        n = worst.failed_handoffs if key == OVERALL else worst.failed_by_class.get(key, 0)
        # Agent names come from the trace: escaped, since the reasons are printed on a terminal.
        where = f" ({printable(worst.from_agent)} -> {printable(worst.to_agent)}: {n:,} of {worst.handoffs:,})"
    return f"{name} {pct(rate, limit)} > {pct(limit, rate)}{where}"


def _baseline_reasons(report: Report, base: BaselineData, tolerance: float) -> list[str]:
    s = report.summary
    out: list[str] = []
    pairs: list[tuple[str, float | None, float | None]] = [
        ("handoff failure rate", base.handoff_failure_rate, s.handoff_failure_rate)
    ]
    pairs += [(f"{c} rate", base.class_failure_rates.get(c), s.class_failure_rate(c)) for c in CLASSES]
    for name, old, now in pairs:
        # A report stores rates rounded to 6 places: compare at that precision.
        if old is not None and now is not None and round(now, 6) > old + tolerance:
            out.append(f"{name} {pct(now, old)} > baseline {pct(old, now)}")
    old_e2e, e2e = base.end_to_end_success_rate, s.end_to_end_success_rate
    if old_e2e is not None and e2e is not None and round(e2e, 6) < old_e2e - tolerance:
        out.append(f"end-to-end success {pct(e2e, old_e2e)} < baseline {pct(old_e2e, e2e)}")
    return out

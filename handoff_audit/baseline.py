"""Baselines: stable finding fingerprints, reading a JSON report back, and comparing two reports.

A fingerprint names a finding independently of the trace it came from: its edge, kind, code and
path, with list indices left out (``order.items[2].qty`` and ``order.items[5].qty`` are one place),
so that runs over different traces of the same system can be compared. Two reports are compared by
counting findings per fingerprint.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from handoff_audit.errors import InputError
from handoff_audit.formatters._text import printable
from handoff_audit.models import Finding
from handoff_audit.policy import CLASSES, BaselineData, pct

# A quoted key segment is kept whole (it may hold brackets); a list index becomes [].
_SEGMENT = re.compile(r'\["(?:[^"\\]|\\.)*"\]|\[\d+\]')


def normalise_path(path: str) -> str:
    """``order.items[2].qty`` -> ``order.items[].qty``; quoted keys are left as they are."""
    return _SEGMENT.sub(lambda m: m.group() if m.group().startswith('["') else "[]", path)


def fingerprint(finding: Finding | Mapping[str, Any]) -> str:
    """The finding's fingerprint: a compact JSON array ``[from, to, kind, code, path]``."""
    if isinstance(finding, Finding):
        parts = [finding.from_agent, finding.to_agent, finding.kind, finding.code, finding.path]
    else:
        parts = [finding.get("from"), finding.get("to"), finding.get("kind"), finding.get("code"), finding.get("path")]
    parts[4] = normalise_path(parts[4] or "")
    return orjson.dumps(parts).decode()


@dataclass(frozen=True, slots=True)
class SavedReport:
    """The parts of a JSON report that baselines and ``compare`` read."""

    name: str
    findings: tuple[Mapping[str, Any], ...]
    summary: Mapping[str, Any]

    def counts(self) -> Counter[str]:
        """Findings per fingerprint."""
        return Counter(fingerprint(f) for f in self.findings)

    def rate(self, key: str) -> float | None:
        value = self.summary.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def class_rate(self, failure_class: str) -> float | None:
        """Handoffs with a finding of the class / handoffs; None when the report lacks the counts."""
        failed = self.summary.get("failed_handoffs_by_class")
        handoffs = self.summary.get("handoffs")
        if not isinstance(failed, dict) or not isinstance(handoffs, int) or handoffs == 0:
            return None
        n = failed.get(failure_class)
        return round(n / handoffs, 6) if isinstance(n, int) else None

    def edges(self) -> dict[tuple[str, str], Mapping[str, Any]]:
        out: dict[tuple[str, str], Mapping[str, Any]] = {}
        for e in self.summary.get("edges") or []:
            if isinstance(e, dict) and isinstance(e.get("from"), str) and isinstance(e.get("to"), str):
                out[(e["from"], e["to"])] = e
        return out

    def baseline(self) -> BaselineData:
        """The report as a baseline for ``policy.evaluate``."""
        return BaselineData(
            counts=self.counts(),
            handoff_failure_rate=self.rate("handoff_failure_rate"),
            class_failure_rates={c: self.class_rate(c) for c in CLASSES},
            end_to_end_success_rate=self.rate("end_to_end_success_rate"),
        )


def load_report(path: str | Path) -> SavedReport:
    """Read a JSON report written by ``scan --format json``; InputError if it is not one."""
    name = str(path)
    try:
        data = orjson.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise InputError(f"{name}: no such file or directory") from None
    except OSError as err:
        raise InputError(f"{name}: cannot read report ({err.strerror or err})") from None
    except orjson.JSONDecodeError:
        raise InputError(f"{name}: not a JSON report (not valid JSON)") from None
    if not isinstance(data, dict) or data.get("version") != 1:
        raise InputError(f"{name}: not a handoff-audit JSON report (no 'version': 1)")
    findings, summary = data.get("findings"), data.get("summary")
    if not isinstance(findings, list) or not isinstance(summary, dict):
        raise InputError(f"{name}: not a handoff-audit JSON report (no 'findings' list or 'summary' object)")
    for i, f in enumerate(findings):
        if not isinstance(f, dict) or not all(isinstance(f.get(k), str) for k in ("kind", "code", "path")):
            raise InputError(f"{name}: findings[{i}] lacks 'kind', 'code' or 'path'")
    _check_summary(name, summary)
    return SavedReport(name, tuple(findings), summary)


_RATES = ("handoff_failure_rate", "end_to_end_success_rate", "agent_success_rate")


def _check_summary(name: str, summary: Mapping[str, Any]) -> None:
    """InputError for a summary field that ``SavedReport`` reads and that holds the wrong type.

    A wrong value would otherwise read as "no rate" and turn the baseline's rate gates off without a
    word. A field that is absent is left alone: a report written before it existed is compared
    without it.
    """
    def wrong(field: str, what: str) -> InputError:
        return InputError(f"{name}: 'summary.{field}' is not {what}")

    for key in _RATES:
        value = summary.get(key)
        if value is not None and not (_number(value) and 0 <= value <= 1):
            raise wrong(key, "a rate (a number from 0 to 1, or null)")
    if "handoffs" in summary and not _count(summary["handoffs"]):
        raise wrong("handoffs", "a count (an integer, 0 or more)")
    if "failed_handoffs_by_class" in summary:
        by_class = summary["failed_handoffs_by_class"]
        if not isinstance(by_class, dict) or not all(_count(n) for n in by_class.values()):
            raise wrong("failed_handoffs_by_class", "an object of counts (integers, 0 or more)")
    if "edges" in summary:
        edges = summary["edges"]
        if not isinstance(edges, list) or not all(
            isinstance(e, dict) and isinstance(e.get("from"), str) and isinstance(e.get("to"), str) for e in edges
        ):
            raise wrong("edges", "a list of edges (objects with 'from' and 'to' agent names)")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True, slots=True)
class Comparison:
    """What got better and worse between two reports."""

    lines: tuple[str, ...]
    regressions: int


def compare(old: SavedReport, new: SavedReport, tolerance: float = 0.0) -> Comparison:
    """Rates, then each edge and class, then each fingerprint whose count changed.

    A regression is a fingerprint with more findings than before, or a rate worse by more than
    ``tolerance`` (the handoff failure rate or a class rate up, end-to-end success down).
    """
    lines: list[str] = []
    regressions = 0

    def rate_line(name: str, before: float | None, after: float | None, higher_is_worse: bool) -> None:
        nonlocal regressions
        if before is None or after is None:
            if before is not None or after is not None:
                lines.append(f"  {name}: {_p(before)} -> {_p(after)}")
            return
        delta = after - before if higher_is_worse else before - after
        word = "worse" if delta > tolerance else "better" if delta < 0 else "same"
        regressions += word == "worse"
        lines.append(f"  {name}: {pct(before, after)} -> {pct(after, before)} ({word})")

    lines.append("rates:")
    rate_line("handoff failure", old.rate("handoff_failure_rate"), new.rate("handoff_failure_rate"), True)
    for c in CLASSES:
        rate_line(f"{c}", old.class_rate(c), new.class_rate(c), True)
    rate_line("end-to-end success", old.rate("end_to_end_success_rate"), new.rate("end_to_end_success_rate"), False)
    rate_line("agent success", old.rate("agent_success_rate"), new.rate("agent_success_rate"), False)

    # Findings per edge and class, counted from the findings (trace findings under "(trace)").
    def per_edge(report: SavedReport) -> Counter[tuple[str, str]]:
        return Counter((_edge(f), str(f.get("class"))) for f in report.findings)

    before, after = per_edge(old), per_edge(new)
    edge_lines = []
    for key in sorted(set(before) | set(after)):
        b, a = before[key], after[key]
        if a != b:
            word = "worse" if a > b else "better"
            edge_lines.append(f"  {printable(f'{key[0]} {key[1]}')}: {b:,} -> {a:,} ({word})")
    lines.append("findings by edge and class:" if edge_lines else "findings by edge and class: no change")
    lines.extend(edge_lines)

    old_counts, new_counts = old.counts(), new.counts()
    changed = []
    for fp in sorted(set(old_counts) | set(new_counts)):
        b, a = old_counts[fp], new_counts[fp]
        if a != b:
            regressions += a > b
            frm, to, kind, code, path = orjson.loads(fp)
            edge = "(trace)" if frm is None else f"{frm} -> {to}"
            label = printable(f"{edge} {code} {kind} {path or '-'}")
            changed.append(f"  {'+' if a > b else '-'}{abs(a - b):,} {label} ({b:,} -> {a:,})")
    lines.append("findings by fingerprint:" if changed else "findings by fingerprint: no change")
    lines.extend(changed)
    lines.append(f"{regressions:,} regression{'' if regressions == 1 else 's'}")
    return Comparison(tuple(lines), regressions)


def _edge(f: Mapping[str, Any]) -> str:
    return "(trace)" if f.get("from") is None else f"{f.get('from')} -> {f.get('to')}"


def _p(x: float | None) -> str:
    return "n/a" if x is None else pct(x)

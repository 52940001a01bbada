"""Formatters: stable JSON fields, CSV injection neutralised, the table safe and complete."""

from __future__ import annotations

import csv
import io

import orjson
import pytest
from conftest import T

from handoff_audit.formatters import REGISTRY, render
from handoff_audit.formatters._text import _JSON_UNSAFE, _UNSAFE, json_safe, printable
from handoff_audit.formatters.csv_ import cell
from handoff_audit.models import FINDING_FIELDS

REQUIRED_FINDING_FIELDS = {
    "trace_id", "handoff_id", "from", "to", "class", "kind", "code", "severity", "path", "sent", "received", "message"
}
REQUIRED_SUMMARY_FIELDS = {
    "traces", "events", "handoffs", "skipped", "findings_by_class", "handoff_failure_rate", "agent_success_rate",
    "end_to_end_success_rate",
}


@pytest.fixture
def report(audit):  # type: ignore[no-untyped-def]
    sent = {"order": {"total": 10.5, "note": "=HYPERLINK(\"http://x\",\"y\")"}, "n": "-2+3"}
    got = {"order": {"total": 1050, "note": "@SUM(A1)"}}
    t = T().hop("a", "b", sent, got).end("a").end("b", "error").outcome("b")
    return audit(t.events)


def test_json_carries_the_design_fields(report) -> None:  # type: ignore[no-untyped-def]
    data = orjson.loads(render("json", report))
    assert REQUIRED_SUMMARY_FIELDS <= set(data["summary"])
    assert data["summary"]["agent_success_rate"] == 0.5
    assert data["summary"]["findings_by_class"] == {"context_drift": 2, "responsibility_gap": 0, "state_loss": 1}
    for f in data["findings"]:
        assert REQUIRED_FINDING_FIELDS <= set(f)
    assert {f["kind"] for f in data["findings"]} == {"unit_changed", "changed_value", "removed_field"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "\\x09=1"),  # a control character is escaped, so the cell starts with a backslash
        ("\r=1", "\\x0d=1"),
        ("  =1+1", "'  =1+1"),
        ("\uff1d1+1", "'\uff1d1+1"),  # full-width equals sign
        ("ok;=1+1", "ok;'=1+1"),  # a cell a spreadsheet splitting on ';' would start
        ("ok; @SUM(A1)", "ok; '@SUM(A1)"),
        ("x\x1b[31m\u202ey\nz", "x\\x1b[31m\\u202ey\\x0az"),
        ("plain", "plain"),
        (None, ""),
    ],
)
def test_csv_cells_cannot_start_a_formula(value, expected) -> None:  # type: ignore[no-untyped-def]
    assert cell(value) == expected


def test_every_character_escaped_for_display_is_one_isprintable_refuses() -> None:
    # printable() and json_safe() return text that str.isprintable() accepts as it is.
    for pattern in (_UNSAFE, _JSON_UNSAFE):
        escaped = [c for c in range(0x110000) if pattern.match(chr(c))]
        assert len(escaped) > 40
        assert not any(chr(c).isprintable() for c in escaped)
    assert printable("caf\u00e9 \u2026 \u00a0x") == "caf\u00e9 \u2026 \u00a0x"  # refused, nothing to escape
    assert printable("a\x1bb") == "a\\x1bb" and json_safe('"a\u202eb"') == '"a\\u202eb"'


def test_invisible_format_characters_are_shown_and_json_keeps_their_value() -> None:
    import unicodedata

    # Every format character (Cf) of this Python's Unicode data: zero-width spaces and joiners, tag
    # characters, bidirectional controls. Invisible, they could make "ad\u200bmin" pass for "admin".
    format_chars = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
    assert len(format_chars) > 150
    for ch in format_chars:
        assert _UNSAFE.match(ch) and _JSON_UNSAFE.match(ch), f"U+{ord(ch):04X}"
    text = "ad\u200bmin \U000e0041 \u2066x\u2069 \ufeff"
    assert printable(text) == "ad\\u200bmin \\U000e0041 \\u2066x\\u2069 \\ufeff"
    encoded = json_safe(orjson.dumps({"v": "".join(format_chars)}).decode())
    assert encoded.isascii() and orjson.loads(encoded) == {"v": "".join(format_chars)}


def test_csv_has_one_row_per_finding_with_the_json_columns(report) -> None:  # type: ignore[no-untyped-def]
    rows = list(csv.reader(io.StringIO(render("csv", report))))
    assert tuple(rows[0]) == FINDING_FIELDS
    assert len(rows) == 1 + len(report.findings)
    for row in rows[1:]:
        for value in row:
            assert not value.startswith(("=", "+", "-", "@"))


def test_table_shows_summary_edges_and_findings(report) -> None:  # type: ignore[no-untyped-def]
    text = render("table", report, width=140)
    for expected in ("agent success 50.0%", "handoff failure 100.0% (1 of 1)", "a -> b", "unit_changed", "order.total"):
        assert expected in text
    assert "\x1b" not in text


def test_table_colour_only_when_asked(report) -> None:  # type: ignore[no-untyped-def]
    assert "\x1b[" in render("table", report, width=140, color=True)


def test_every_format_renders_an_empty_report(audit) -> None:  # type: ignore[no-untyped-def]
    clean = audit(T().hop("a", "b", {"x": 1}).outcome("b").events)
    for fmt in REGISTRY:
        assert render(fmt, clean)
    assert render("csv", clean).splitlines() == [",".join(FINDING_FIELDS)]


def test_csv_quotes_carriage_returns_and_leaves_json_numbers_alone(audit) -> None:  # type: ignore[no-untyped-def]
    report = audit(T().hop("a", "b", {"n": -5, "s": "x"}, {"n": -50, "s": "line\rbreak"}).outcome("b").events)
    text = render("csv", report)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 3
    by_path = {r[8]: r for r in rows[1:]}
    assert (by_path["n"][9], by_path["n"][10]) == ("-5", "-50")
    assert by_path["s"][10] == '"line\\rbreak"'


@pytest.mark.parametrize("width", [120, 80, 60, 40])
def test_long_agent_names_fold_and_every_number_stays_whole(audit, width: int) -> None:  # type: ignore[no-untyped-def]
    from handoff_audit.config import ScanConfig
    from handoff_audit.filters import Filter
    from handoff_audit.formatters.views import render_stats
    from handoff_audit.stats import run_stats

    a, b = "acme.orders.checkout.payment_validation_agent_v2", "acme.orders.checkout.inventory_reservation_agent_v2"
    report = audit(T().hop(a, b, {"x": 1}, {"x": 2}).events)
    text = render("table", report, width=width)
    start = text.index("Edges")
    edges = text[start:text.index("Findings", start)]
    lines = edges.splitlines()
    assert max(len(line) for line in text.splitlines()) <= width
    if width >= 80:  # a table: the names fold in their column
        name = "".join(line.split("│")[1].strip() for line in lines if line.startswith("│"))
        for header in ("handoffs", "loss", "drift", "gap", "failure", "p50 ms", "p95 ms"):
            assert header in edges
        assert "100.0%" in edges and " 1 " in edges
    else:  # too narrow for the columns: a block of "header: value" lines per edge
        name = "".join(lines[1:lines.index("  handoffs: 1")])
        for pair in ("handoffs: 1", "loss: 0", "drift: 1", "gap: 0", "failure: 100.0%"):
            assert f"  {pair}" in lines
        assert any(line.startswith("  p95 ms: ") for line in lines)
    assert name.replace(" ", "") == f"{a}->{b}"  # whole, not cut
    view, _ = run_stats(ScanConfig(tuple(report.summary.inputs)), Filter())
    stats = render_stats(view, ("edges", "agents"), width=width)
    assert max(len(line) for line in stats.splitlines()) <= width
    for header in ("handoffs", "p99 ms", "failure", "loss", "drift", "gap", "own success", "end to end"):
        assert header in stats
    assert stats.count("100.0%") >= 2 and "…" not in stats

"""Markdown: summary, worst edges, Mermaid chart, findings; trace text inert; under 1 MiB."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import NATIVE, SAMPLES, T, write_events

from handoff_audit.api import scan
from handoff_audit.formatters import markdown, render
from handoff_audit.formatters.markdown import MAX_BYTES, md, mermaid_label


def test_sections_and_chart() -> None:
    text = render("markdown", scan(NATIVE))
    assert text.startswith("## handoff-audit\n")
    assert "**FAIL**" in text
    assert "| handoff failure rate | 34.1% (14 of 41 handoffs) |" in text
    assert "### Worst edges" in text and "### Findings" in text
    chart = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert chart.startswith("flowchart LR\n")
    assert '-->|"20 handoffs, 40.0#37; failed"|' in chart


def test_pass_verdict_and_no_findings() -> None:
    text = render("markdown", scan(SAMPLES / "clean_ecommerce_run.jsonl"))
    assert "**PASS**" in text and "### Findings" not in text and "No edge has a failed handoff." in text


def test_trace_text_cannot_format_link_or_mention(tmp_path: Path) -> None:
    evil = "<img src=x>|`c`|**b**|[l](http://e.x)|@octocat|#12|www.e.x"
    t = T(evil).hop(f"a{evil}", "b", {"k": evil}, {"k": evil + "!"}).outcome("b")
    text = render("markdown", scan(write_events(tmp_path / "e.jsonl", t.events)))
    findings = text.split("### Findings", 1)[1]
    row = findings.splitlines()[4]
    assert row.count("|") == 8  # the seven columns, no extra cell from a pipe in the data
    assert "&#60;img src=x&#62;&#124;&#96;c&#96;" in findings  # shown as typed, inert
    for raw in ("<img", "`", "**b**", "](", "@octocat", "http://", "www."):
        assert raw not in findings, raw
    assert not re.search(r"(?<!&)#12", findings)
    chart = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    label = re.findall(r'\["(.*)"\]', chart)
    assert all('"' not in x and "[" not in x and "<" not in x and "|" not in x for x in label)


def test_md_leaves_no_mention_issue_reference_or_autolink() -> None:
    assert md("@octocat #12 www.e.x http://e.x a@b.c") == (
        "&#64;octocat &#35;12 www&#46;e&#46;x http&#58;//e&#46;x a&#64;b&#46;c"
    )


def test_md_starts_no_math() -> None:
    # GitHub renders $...$ and $$...$$ as math, which would reshape a value like "$x^2$".
    assert md("$x^2$ and $$y$$") == "&#36;x^2&#36; and &#36;&#36;y&#36;&#36;"


def test_md_and_mermaid_escape_control_characters() -> None:
    assert md("a\x1b[31m\nb") == "a&#92;x1b&#91;31m&#92;x0ab"  # renders as a\x1b[31m\x0ab
    assert mermaid_label('x"]; click a "http://e"') == "x#34;#93;#59; click a #34;http://e#34;"


def test_size_limit_truncates_with_a_note(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    t = T("big")
    for i in range(40):
        t.hop("a", "b", {"k": f"v{i}", "long": "x" * 100}, {"k": f"w{i}", "long": "y" * 100})
    report = scan(write_events(tmp_path / "big.jsonl", t.events))
    full = render("markdown", report)
    assert "more findings are left out" not in full
    monkeypatch.setattr(markdown, "MAX_BYTES", len(full.encode()) - 500)
    cut = render("markdown", report)
    assert len(cut.encode()) <= len(full.encode()) - 500
    m = re.search(r"(\d+) more findings are left out", cut)
    assert m is not None
    rows = [line for line in cut.split("### Findings", 1)[1].splitlines() if line.startswith("| ")][1:]
    assert len(rows) + int(m.group(1)) == len(report.findings)


def test_row_cap_and_real_limit(tmp_path: Path) -> None:
    t = T("many")
    for i in range(150):
        t.hop("a", "b", {f"k{i}": "v" * 5000}, {})
    report = scan(write_events(tmp_path / "m.jsonl", t.events))
    text = render("markdown", report)
    assert len(text.encode()) <= MAX_BYTES
    assert f"{len(report.findings) - markdown.MAX_FINDING_ROWS} more findings are left out" in text

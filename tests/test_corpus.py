"""The corpus of broken and hostile inputs: every case in tests/corpus has its expected result.

A case is ``NAME.expect.json``; its input is ``NAME.jsonl`` beside it (or the file its ``input``
names), or is built here by the function its ``build`` names, for inputs too large to keep or that
are not plain files. Each case runs through the command line in every format. Besides its own
expectations, every case must: exit 0, 1 or 2, never with an internal error; on exit 2 print one
error line on stderr and nothing on stdout; and keep trace text inert in every format (no control
character, escape sequence or bidirectional override in the output, no CSV cell a spreadsheet would
read as a formula). ``scripts/fuzz.py`` adds the inputs it finds failing as cases here.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from handoff_audit.cli import app
from handoff_audit.formatters._text import printable

CORPUS = Path(__file__).resolve().parent / "corpus"
CASES = sorted(p.name[: -len(".expect.json")] for p in CORPUS.glob("*.expect.json"))

# What may never reach a terminal from a report: C0 controls but the line end, DEL, C1 controls,
# line and paragraph separators, bidirectional controls.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
FORMULA_START = tuple("=+-@\uff1d\uff0b\uff0d\uff20")
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")


def _line(trace: str, type_: str, ts: float | None = None, **fields: Any) -> bytes:
    event: dict[str, Any] = {"trace_id": trace, "type": type_, **fields}
    if ts is not None:
        event["ts"] = ts
    return orjson.dumps(event) + b"\n"


def _hop(hid: str, kind: str, state: Any, ts: float | None = None) -> bytes:
    return _line("t1", f"handoff.{kind}", ts, handoff_id=hid, state=state, **{"from": "a", "to": "b"})


def _nested(levels: int) -> bytes:
    return b'{"k":' * levels + b"1" + b"}" * levels


def build_long_line(tmp: Path) -> Path:
    path = tmp / "long.jsonl"
    with open(path, "wb") as fh:
        fh.write(_hop("h1", "sent", {"x": 1}, 1.0))
        fh.write(b'{"trace_id":"t1","type":"outcome","agent":"b","status":"success","ts":3.0,"result":"')
        for _ in range(50):
            fh.write(b"x" * 1_000_000)  # a 50 MB line, written a piece at a time
        fh.write(b'"}\n')
        fh.write(_hop("h1", "received", {"x": 1}, 2.0))
    return path


def build_deep_nesting(tmp: Path) -> Path:
    path = tmp / "deep.jsonl"
    head = b'{"trace_id":"t1","type":"handoff.sent","from":"a","to":"b","handoff_id":"%s","state":'
    path.write_bytes(
        _hop("h1", "sent", {"x": 1})
        + _hop("h1", "received", {"x": 1})
        + head % b"h2" + _nested(100_000) + b"}\n"
        + head % b"h3" + _nested(150) + b"}\n"
    )
    return path


@functools.cache
def _bomb(filler: bytes) -> bytes:
    """One event, then 64 MiB of ``filler``, gzipped (about 65 KiB); made once per test run."""
    return gzip.compress(_line("t1", "agent.start", agent="a") + filler * (64 << 20), compresslevel=6)


def build_gzip_bomb(tmp: Path) -> Path:
    path = tmp / "bomb.jsonl.gz"
    path.write_bytes(_bomb(b"\n"))
    return path


def build_zstd_bomb(tmp: Path) -> Path:
    import zstandard

    path = tmp / "bomb.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(_line("t1", "agent.start", agent="a") + b"\n" * (64 << 20)))
    return path


def build_gzip_bomb_one_line(tmp: Path) -> Path:
    path = tmp / "zeros.jsonl.gz"
    path.write_bytes(_bomb(b"\0"))
    return path


def build_unreadable_files(tmp: Path) -> Path:
    d = tmp / "traces"
    d.mkdir()
    (d / "good.jsonl").write_bytes(_line("t1", "agent.start", agent="a"))
    (d / "dangling.jsonl").symlink_to(d / "no-such-target.jsonl")
    os.mkfifo(d / "fifo.jsonl")  # opening it would wait for a writer for ever
    return d


def build_symlink_loop(tmp: Path) -> Path:
    d = tmp / "traces"
    (d / "sub").mkdir(parents=True)
    (d / "good.jsonl").write_bytes(_line("t1", "agent.start", agent="a"))
    (d / "loop.jsonl").symlink_to("loop.jsonl")
    (d / "sub" / "up").symlink_to("..", target_is_directory=True)
    return d


def build_symlink_loop_named(tmp: Path) -> Path:
    path = tmp / "loop.jsonl"
    path.symlink_to("loop.jsonl")
    return path


def build_non_utf8_file_name(tmp: Path) -> Path:
    d = tmp / "traces"
    d.mkdir()
    name = os.fsdecode(b"\xff\x1b[31mevil.jsonl")
    (d / name).write_bytes(_line("t1", "agent.start", agent="a"))
    return d


# Span formats: fixtures written by the real libraries (tests/fixtures/frameworks, made by
# scripts/make_framework_fixtures.py), broken or made hostile here, value by value.
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "frameworks"


def _mutated(fixture: str, tmp: Path, change: Callable[[Any], Any]) -> Path:
    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return change(v)

    lines = (FIXTURES / fixture).read_bytes().splitlines()
    path = tmp / Path(fixture).name
    path.write_bytes(b"".join(orjson.dumps(walk(orjson.loads(x))) + b"\n" for x in lines if x.strip()))
    return path


def _deep_json_text(v: Any) -> Any:
    """A JSON text held in a string (a tool's input or output) nested 300 levels deep instead."""
    return ('{"a":' * 300 + "1" + "}" * 300) if isinstance(v, str) and v[:1] in ("{", "[") else v


def _hostile(v: Any) -> Any:
    return "\x1b[31m=HYPERLINK(\"x\")[bold]\u202e;@x" + v if isinstance(v, str) else v


def _wrong_types(v: Any) -> Any:
    return [v] if isinstance(v, str) else {"n": v} if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def build_otlp_deep(tmp: Path) -> Path:
    return _mutated("otlp_openinference/clean_handoff.jsonl", tmp, _deep_json_text)


def build_agents_sdk_deep(tmp: Path) -> Path:
    return _mutated("agents_sdk/clean_handoff.jsonl", tmp, _deep_json_text)


def build_otlp_hostile(tmp: Path) -> Path:
    return _mutated("otlp_openinference/refund_acts_on_another_order.jsonl", tmp, _hostile)


def build_agents_sdk_hostile(tmp: Path) -> Path:
    return _mutated("agents_sdk/refund_acts_on_another_order.jsonl", tmp, _hostile)


def build_otlp_wrong_types(tmp: Path) -> Path:
    return _mutated("otlp_genai/" + sorted(p.name for p in (FIXTURES / "otlp_genai").glob("*.jsonl"))[0], tmp, _wrong_types)


def build_agents_sdk_wrong_types(tmp: Path) -> Path:
    return _mutated("agents_sdk/multiple_handoffs.jsonl", tmp, _wrong_types)


def build_otlp_truncated_lines(tmp: Path) -> Path:
    path = tmp / "cut.jsonl"
    lines = (FIXTURES / "otlp_openinference" / "multiple_handoffs.jsonl").read_bytes().splitlines()
    path.write_bytes(b"".join(x[: len(x) // 2] + b"\n" for x in lines))
    return path


BUILDERS: dict[str, Callable[[Path], Path]] = {
    name[len("build_"):]: fn for name, fn in globals().items() if name.startswith("build_")
}


def load_case(name: str, tmp: Path) -> tuple[dict[str, Any], Path]:
    """A case's expectations and the path of its input."""
    expect = orjson.loads((CORPUS / f"{name}.expect.json").read_bytes())
    if "build" in expect:
        return expect, BUILDERS[expect["build"]](tmp)
    return expect, CORPUS / expect.get("input", f"{name}.jsonl")


def run_cli(path: Path, fmt: str, args: list[str]) -> Any:
    return CliRunner().invoke(app, ["scan", str(path), "-f", fmt, *args])


def check_invariants(result: Any, fmt: str) -> None:
    """What must hold for any input whatsoever."""
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr)
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.endswith("\n") and not UNSAFE.search(result.stderr.replace("\n", "")), result.stderr
    if result.exit_code == 2:
        assert result.stderr.count("\n") == 1, result.stderr  # one line: the error
        assert result.stdout == ""
    else:
        check_output(result.stdout, fmt)


def check_output(text: str, fmt: str) -> None:
    """A report keeps trace text inert: AssertionError otherwise (scripts/fuzz.py uses this too)."""
    if fmt == "json":
        orjson.loads(text)
        assert not UNSAFE.search(text.replace("\n", "")), "unsafe character in JSON"
    elif fmt == "csv":
        for row in csv.reader(io.StringIO(text, newline="")):
            for value in row:
                # A number (-5, as sent and received are written) is read as a number, not a formula.
                if not JSON_NUMBER.match(value):
                    assert not value.lstrip().startswith(FORMULA_START), "CSV cell starts a formula"
                assert not UNSAFE.search(value), "unsafe character in a CSV cell"
    elif fmt == "junit":
        ET.fromstring(text.encode())  # well-formed: every character XML cannot carry was escaped
        assert not UNSAFE.search(text.replace("\n", "")), "unsafe character in the XML"
    else:  # the table, Markdown
        assert not UNSAFE.search(text.replace("\n", "")), f"unsafe character in the {fmt} output"


def test_every_built_case_has_a_builder_and_every_kept_case_its_input() -> None:
    assert len(CASES) >= 30
    for name in CASES:
        expect = orjson.loads((CORPUS / f"{name}.expect.json").read_bytes())
        if "build" in expect:
            assert expect["build"] in BUILDERS, name
        else:
            assert (CORPUS / expect.get("input", f"{name}.jsonl")).exists(), name


@pytest.mark.parametrize("name", CASES)
def test_corpus_case(name: str, tmp_path: Path) -> None:
    expect, path = load_case(name, tmp_path)
    args = expect.get("args", [])
    result = run_cli(path, "json", args)
    check_invariants(result, "json")
    if expect["exit"] != "any":  # "any": held to the invariants (and any expectations below) alone
        assert result.exit_code == expect["exit"], result.stderr
    if "stderr" in expect:
        assert result.stderr == "handoff-audit: error: " + printable(expect["stderr"].format(input=path)) + "\n"
    if result.exit_code == 2:
        return
    report = orjson.loads(result.stdout)
    summary = report["summary"]
    for key in ("events", "traces", "handoffs", "retries", "unknown_types"):
        if key in expect:
            assert summary[key] == expect[key], key
    if isinstance(expect.get("inputs"), int):
        assert len(summary["inputs"]) == expect["inputs"]
    elif "inputs" in expect:
        assert [os.path.basename(i) for i in summary["inputs"]] == expect["inputs"]
    if "skipped" in expect:
        assert summary["skipped"] == len(expect["skipped"])
        got = []
        for s, want in zip(report["skipped"], expect["skipped"]):
            line = s["line"] if want[-2] is not None else None
            got.append([os.path.basename(s["file"]), line, s["reason"]] if len(want) == 3 else [line, s["reason"]])
        assert got == expect["skipped"]
    for reason in expect.get("reasons", []):  # reasons that must be among the skipped lines
        assert reason in {s["reason"] for s in report["skipped"]}, reason
    if "findings" in expect:
        assert [[f["trace_id"], f["kind"], f["path"]] for f in report["findings"]] == expect["findings"]


# Cases about reading alone, large enough to cost seconds, run in the JSON format only.
_READ_ONLY = {"long_line", "gzip_bomb", "gzip_bomb_one_line", "zstd_bomb"}


def _reports_something(name: str) -> bool:
    return orjson.loads((CORPUS / f"{name}.expect.json").read_bytes()).get("build") not in _READ_ONLY


@pytest.mark.parametrize("fmt", ["table", "csv", "junit", "markdown"])
@pytest.mark.parametrize("name", [n for n in CASES if _reports_something(n)])
def test_corpus_case_in_every_format(name: str, fmt: str, tmp_path: Path) -> None:
    expect, path = load_case(name, tmp_path)
    result = run_cli(path, fmt, expect.get("args", []))
    check_invariants(result, fmt)
    assert expect["exit"] == "any" or result.exit_code == expect["exit"]


def test_hostile_text_is_shown_literally_in_the_terminal_table() -> None:
    result = run_cli(CORPUS / "hostile_text.jsonl", "table", [])
    text = result.stdout
    assert "\\x1b[31mred\\x1b[0m" in text  # the trace id, escaped
    assert "[bold red]boom[/]" in text.replace("\n", "")  # markup as text, not as style
    assert "\\u202e" in text and "\x1b" not in text


def test_hostile_text_in_csv_cannot_start_a_formula_even_split_on_semicolons() -> None:
    result = run_cli(CORPUS / "hostile_text.jsonl", "csv", [])
    rows = list(csv.reader(io.StringIO(result.stdout, newline="")))
    header = rows[0]
    cells = {(r[header.index("path")], k): v for r in rows[1:] for k, v in zip(header, r)}
    assert cells[("formula", "received")] == '"=1+1"'
    assert cells[("formula", "from")] == "'@SUM(A1)"
    assert cells[("formula", "to")] == "'-2+3"
    assert cells[("formula", "handoff_id")] == "'+cmd|' /C calc'!A0"
    for line in result.stdout.splitlines():
        for part in line.split(";"):  # as a spreadsheet set to split on ';' would see the cells
            assert not part.strip().strip('"').startswith(FORMULA_START), part


def test_a_span_export_after_lines_too_long_is_told_and_each_long_line_keeps_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"x" * 40_000 + b"\n" + b"y" * 40_000 + b"\n" + (FIXTURES / "otlp_genai" / "clean_handoff.jsonl").read_bytes())
    result = run_cli(path, "json", ["--max-line-bytes", "32K"])
    check_invariants(result, "json")
    report = orjson.loads(result.stdout)
    assert report["summary"]["handoffs"] == 1
    assert [(s["line"], s["reason"]) for s in report["skipped"]] == [(1, "line longer than 32 KiB"), (2, "line longer than 32 KiB")]


def test_a_file_without_read_permission_is_skipped_and_the_rest_is_read(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode; the corpus case unreadable_files covers the path")
    d = tmp_path / "traces"
    d.mkdir()
    (d / "good.jsonl").write_bytes(_line("t1", "agent.start", agent="a"))
    locked = d / "locked.jsonl"
    locked.write_bytes(_line("t2", "agent.start", agent="a"))
    locked.chmod(0)
    report = orjson.loads(run_cli(d, "json", []).stdout)
    assert [(s["line"], s["reason"]) for s in report["skipped"]] == [(0, "cannot open (Permission denied)")]


@pytest.mark.parametrize(
    "args",
    [
        ["show", "\x1b[31mred"],
        ["show", "\x1b[31mred", "-f", "json"],
        ["lineage", "ctl"],
        ["lineage", "ctl", "--trace", "\x1b[31mred\x1b[0m"],
        ["lineage", "ctl", "-f", "json"],
        ["stats"],
        ["stats", "-f", "json"],
        ["stats", "-f", "csv", "--table", "edges"],
        ["stats", "-f", "csv", "--table", "agents"],
    ],
)
def test_hostile_text_stays_inert_in_the_investigation_commands(args: list[str]) -> None:
    cmd, rest = args[0], args[1:]
    positional = [a for a in rest[:1] if not a.startswith("-")]
    options = rest[len(positional):]
    result = CliRunner().invoke(app, [cmd, *positional, str(CORPUS / "hostile_text.jsonl"), *options])
    assert result.exit_code == 0, result.stderr
    fmt = options[options.index("-f") + 1] if "-f" in options else "table"
    check_output(result.stdout, fmt)


# --- formats and files added alongside: JUnit XML, Markdown, contract files -------------------------


def test_markup_injection_is_inert_in_markdown_and_junit() -> None:
    md = run_cli(CORPUS / "markup_injection.jsonl", "markdown", [])
    assert md.exit_code == 1, md.stderr
    check_output(md.stdout, "markdown")
    for raw in ("<script>", "<img", "](javascript:", "]]>", "|x|"):
        assert raw not in md.stdout, raw
    xml = run_cli(CORPUS / "markup_injection.jsonl", "junit", [])
    assert xml.exit_code == 1, xml.stderr
    check_output(xml.stdout, "junit")
    root = ET.fromstring(xml.stdout.encode())
    text = "".join(root.itertext()) + "".join(v for el in root.iter() for v in el.attrib.values())
    assert "<script>alert(1)</script>" in text  # carried as text, escaped in the XML
    assert "\x0c" not in xml.stdout and "\ufffe" not in xml.stdout  # characters XML cannot carry...
    assert '"a\\fb"' in text and '"x\\ufffey"' in text  # ...shown as escapes in the JSON-encoded values


BILLION_LAUGHS = "version: 1\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def test_a_billion_laughs_contract_file_is_refused_quickly(tmp_path: Path) -> None:
    bomb = tmp_path / "laughs.yaml"
    bomb.write_text(BILLION_LAUGHS)
    for args in (["contracts", "check", str(bomb)], ["scan", str(CORPUS / "crlf.jsonl"), "--contracts", str(bomb)]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1 and "alias" in result.stderr, result.stderr


def test_a_contract_file_cannot_build_python_objects(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f'version: 1\nedges: !!python/object/apply:os.system ["touch {marker}"]\n')
    result = CliRunner().invoke(app, ["contracts", "check", str(evil)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert not marker.exists()


def test_a_contract_schema_cannot_make_the_tool_fetch_anything(tmp_path: Path) -> None:
    remote = tmp_path / "ref.yaml"
    remote.write_text(
        'version: 1\nedges:\n  - from: a\n    to: b\n    input:\n      schema: {"$ref": "http://127.0.0.1:9/x.json"}\n'
    )
    result = CliRunner().invoke(app, ["contracts", "check", str(remote)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "Retrieval is disabled" in result.stderr

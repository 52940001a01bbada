"""Properties over the readers, the diff and the classifier, with arbitrary and hostile input.

- arbitrary bytes never raise out of a reader (plain or gzip, whole or cut short): the run gives a
  report or an InputError, never anything else;
- the line splitter gives exactly the lines of its input, whatever the block boundaries, with lines
  over the limit replaced by a stand-in;
- arbitrary JSON states never raise out of diff or classify, and every format renders the result
  with trace text kept inert;
- valid events with garbage lines inserted give the same findings and summary as the valid events
  alone, and the garbage lines are counted exactly, at their own line numbers.
"""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handoff_audit import sources
from handoff_audit.config import Limits, ScanConfig
from handoff_audit.errors import InputError
from handoff_audit.formatters import render
from handoff_audit.models import Report
from handoff_audit.pipeline import run
from handoff_audit.sources import UnreadLine, read_lines

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

# --- strategies ----------------------------------------------------------------------------------

hostile_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["\x1b[31m", "[bold red]x[/]", "=1+1", "+cmd", "-2+3", "@SUM(A1)", "\u202e", "\x00", "a;=b", "\r\n", ""]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(hostile_text, children, max_size=5)),
    max_leaves=25,
)
states = st.dictionaries(hostile_text, json_values, max_size=6)
agents = st.sampled_from(["a", "b", "c", "=cmd", "\x1b[2J"])
times = st.one_of(st.none(), st.floats(min_value=0, max_value=2e9), st.sampled_from(["2026-01-01T10:00:00Z"]))


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """One valid native event of any type, with hostile values where the format allows any."""
    trace = draw(st.sampled_from(["t1", "t2", "\x1b]0;title\x07"]))
    kind = draw(
        st.sampled_from(["handoff.sent", "handoff.received", "outcome", "tool.call", "agent.end", "llm.call", "x.y"])
    )
    ev: dict[str, Any] = {"trace_id": trace, "type": kind}
    ts = draw(times)
    if ts is not None:
        ev["ts"] = ts
    if kind.startswith("handoff."):
        ev.update({"from": draw(agents), "to": draw(agents), "state": draw(states)})
        hid = draw(st.one_of(st.none(), st.sampled_from(["h1", "h2", "h3"])))
        if hid is not None:
            ev["handoff_id"] = hid
    elif kind != "x.y":
        ev["agent"] = draw(agents)
        if kind in ("outcome", "agent.end"):
            ev["status"] = draw(st.sampled_from(["success", "failure", "ok", "error"]))
        if kind == "tool.call":
            ev["tool"] = draw(hostile_text)
            ev["args"] = draw(states)
    return ev


MADE_UNUSABLE = [  # each fails one check of the reader
    b"[1, 2]",
    b'"text"',
    b"NaN",
    b'{"type":"outcome","agent":"a"}',
    b'{"trace_id":"t1","type":"handoff.sent","from":"a","to":"b","state":[1]}',
    b'{"trace_id":"t1","type":"tool.call","agent":"a","args":5}',
    b'{"trace_id":"t1","type":"outcome","agent":"a","ts":"yesterday"}',
    b"\xef\xbb\xbf{}",
    b"\x00\x00\x00",
    b'{"trace_id":"t1","type":"handoff.sent","from":"a","to":"b","state":' + b'{"k":' * 300 + b"1" + b"}" * 301,
]
garbage_lines = st.one_of(st.binary(min_size=1, max_size=60), st.sampled_from(MADE_UNUSABLE)).map(
    lambda b: b.replace(b"\n", b" ")
)


def _is_garbage(line: bytes, first: bool) -> bool:
    """True when the native reader must skip ``line``: not blank and not a usable event."""
    from handoff_audit.adapters.native import check_event

    if first and line.startswith((sources.GZIP_MAGIC, sources.UTF8_BOM)):
        return False  # at the start of a file these say how to read the file, not the line
    if not line.strip():
        return False
    if line in MADE_UNUSABLE:
        return True
    try:
        ev = orjson.loads(line)
    except orjson.JSONDecodeError:
        return True
    return check_event(ev) is not None


# --- helpers -------------------------------------------------------------------------------------


def _audit(path: Path, **limits: Any) -> Report | None:
    try:
        return run(ScanConfig((str(path),), limits=Limits(**limits)))
    except InputError:
        return None


def _render_all(report: Report) -> None:
    for fmt in ("table", "json", "csv"):
        text = render(fmt, report)
        body = text.replace("\r\n", "\n").replace("\n", "")
        assert not UNSAFE.search(body), fmt


def _key(report: Report, line_map: dict[int, int] | None = None) -> tuple[Any, ...]:
    """What the run found, with line numbers mapped back to the file without garbage."""
    m = line_map or {}
    findings = tuple(
        (f.trace_id, f.handoff_id, f.from_agent, f.to_agent, f.kind, f.path,
         orjson.dumps(f.sent), orjson.dumps(f.received), f.message, m.get(f.line, f.line) if f.line else f.line)
        for f in report.findings
    )
    s = report.summary
    return (findings, s.traces, s.events, s.handoffs, s.failed_handoffs, s.retries, s.unknown_types,
            s.traces_succeeded, s.agent_ends, s.agent_ends_ok, s.edges)


# --- readers -------------------------------------------------------------------------------------


@SETTINGS
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise_out_of_the_reader(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "any.jsonl"
    path.write_bytes(data)
    report = _audit(path, max_line_bytes=64, max_depth=8)
    if report is not None:
        _render_all(report)


@SETTINGS
@given(data=st.binary(max_size=2000), cut=st.integers(min_value=0, max_value=4000))
def test_arbitrary_bytes_never_raise_out_of_the_gzip_reader(tmp_path: Path, data: bytes, cut: int) -> None:
    path = tmp_path / "any.jsonl.gz"
    packed = gzip.compress(data, mtime=0)
    path.write_bytes(packed[:cut] if cut < len(packed) else packed)
    report = _audit(path, max_decompressed_bytes=1000)
    if report is not None:
        _render_all(report)


@SETTINGS
@given(
    data=st.lists(st.sampled_from([b"a", b"bb", b"\n", b"\r\n", b"cccccccccc", b"", b"\xff"]), max_size=80).map(b"".join),
    block=st.integers(min_value=1, max_value=17),
    max_line=st.integers(min_value=1, max_value=12),
)
def test_the_line_splitter_gives_exactly_the_lines(monkeypatch: pytest.MonkeyPatch, data: bytes, block: int, max_line: int) -> None:
    monkeypatch.setattr(sources, "BLOCK", block)
    expected = data.split(b"\n")
    if expected[-1] == b"":
        expected.pop()  # a final line end ends the last line; it does not start another
    got = list(read_lines(io.BufferedReader(io.BytesIO(data)), Limits(max_line_bytes=max_line)))
    assert len(got) == len(expected)
    for line, want in zip(got, expected):
        if len(want) > max_line:
            assert isinstance(line, UnreadLine) and line.reason.startswith("line longer than")
        else:
            assert type(line) is bytes and line == want


# --- diff and classify ---------------------------------------------------------------------------


@SETTINGS
@given(sent=states, received=states, tool_args=states, hid=st.sampled_from(["h1", None]))
def test_arbitrary_states_never_raise_out_of_diff_or_classify(
    tmp_path: Path, sent: dict[str, Any], received: dict[str, Any], tool_args: dict[str, Any], hid: str | None
) -> None:
    edge = {"from": "a", "to": "b"}
    evs: list[dict[str, Any]] = [
        {"trace_id": "t", "type": "handoff.sent", "state": sent, **edge},
        {"trace_id": "t", "type": "handoff.received", "state": received, **edge},
        {"trace_id": "t", "type": "tool.call", "agent": "b", "tool": "x", "args": tool_args},
        {"trace_id": "t", "type": "handoff.sent", "state": received, "from": "b", "to": "c"},
        {"trace_id": "t", "type": "handoff.received", "state": sent, "from": "b", "to": "c"},
        {"trace_id": "t", "type": "handoff.sent", "state": sent, "from": "c", "to": "a"},
    ]
    if hid:
        for e in evs[:2]:
            e["handoff_id"] = hid
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in evs))
    report = run(ScanConfig((str(path),)))
    assert report.summary.handoffs == 3
    _render_all(report)


@SETTINGS
@given(evs=st.lists(events(), min_size=1, max_size=25), data=st.data())
def test_garbage_lines_change_nothing_but_the_skipped_count(
    tmp_path: Path, evs: list[dict[str, Any]], data: st.DataObject
) -> None:
    lines = [orjson.dumps(e) for e in evs]
    # After the first event: an input's format is told by its first lines, so a file that opens with
    # garbage (a lone "{" opens a pretty-printed document) may rightly be read as another format.
    garbage = data.draw(st.lists(st.tuples(st.integers(1, len(lines)), garbage_lines), max_size=12))
    garbage = [(at, g) for at, g in garbage if _is_garbage(g, at == 0)]
    mixed: list[bytes] = []
    line_map: dict[int, int] = {}  # line in the mixed file -> line in the clean file
    bad_lines: list[int] = []
    for i in range(len(lines) + 1):
        for at, g in garbage:
            if at == i:
                mixed.append(g)
                bad_lines.append(len(mixed))
        if i < len(lines):
            mixed.append(lines[i])
            line_map[len(mixed)] = i + 1
    clean_path, mixed_path = tmp_path / "clean.jsonl", tmp_path / "mixed.jsonl"
    clean_path.write_bytes(b"\n".join(lines) + b"\n")
    mixed_path.write_bytes(b"\n".join(mixed) + b"\n")
    clean, dirty = _audit(clean_path), _audit(mixed_path)
    assert clean is not None and dirty is not None
    assert clean.summary.skipped == 0
    assert dirty.summary.skipped == len(garbage)
    assert [s.line for s in dirty.skipped] == bad_lines
    assert _key(dirty, line_map) == _key(clean)


# --- the classifier's indexed rules agree with their plain statement -------------------------------
# match_renames, clarification_loops and premature_termination use queues, a last-seen map and
# bisection, so that hostile traces (thousands of equal values, edges or claims) cost linear time.
# Each is checked here against the rule written the plain, quadratic way.


def _renames_plainly(changes: list[Any]) -> dict[int, int]:
    from handoff_audit.classify import _value_key, _weak

    added = [c for c in changes if c.op == "added"]
    used: set[int] = set()
    out: dict[int, int] = {}
    for c in changes:
        if c.op != "removed":
            continue
        cands = [a for a in added if _value_key(a.received) == _value_key(c.sent) and id(a) not in used]
        if not cands:
            continue
        same_parent = [a for a in cands if a.path[:-1] == c.path[:-1]]
        if same_parent:
            best = same_parent[0]
        elif _weak(c.sent):
            continue
        else:
            best = ([a for a in cands if a.path[-1] == c.path[-1]] or cands)[0]
        out[id(c)] = id(best)
        used.add(id(best))
    return out


small_values = st.sampled_from([0, 1, 12, "x", "yy", None, [], {"a": 1}])
paths = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3).map(tuple)


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["removed", "added"]), paths, small_values), max_size=30))
def test_renames_pair_as_the_rule_says(raw: list[tuple[str, tuple[str, ...], Any]]) -> None:
    from handoff_audit.classify import match_renames
    from handoff_audit.models import FieldChange

    changes = [FieldChange(op, p, v if op == "removed" else None, v if op == "added" else None) for op, p, v in raw]
    got = match_renames(changes)
    assert {k: id(v) for k, v in got.items()} == _renames_plainly(changes)


@SETTINGS
@given(
    sends=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["a", "b", "c"]), st.booleans()), max_size=25),
    claims=st.lists(st.integers(0, 60), max_size=6),
)
def test_loops_and_premature_claims_are_found_as_the_rules_say(
    tmp_path: Path, sends: list[tuple[str, str, bool]], claims: list[int]
) -> None:
    from handoff_audit.classify import _resent, clarification_loops

    lines: list[bytes] = []
    t = 0
    for i, (frm, to, received) in enumerate(sends):
        t += 1
        hid = f"h{i}"
        lines.append(orjson.dumps({"trace_id": "t", "type": "handoff.sent", "ts": t, "handoff_id": hid, "from": frm, "to": to, "state": {"q": 1}}))
        if received:
            lines.append(orjson.dumps({"trace_id": "t", "type": "handoff.received", "ts": t + 30, "handoff_id": hid, "from": frm, "to": to, "state": {"q": 1}}))
    for c in claims:
        lines.append(orjson.dumps({"trace_id": "t", "type": "outcome", "ts": c + 0.5, "agent": "z", "status": "success"}))
    if not lines:
        return
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    # premature_termination, plainly: a handoff in flight at a claim is flagged once
    report = run(ScanConfig((str(path),)))
    flagged = sorted(f.handoff_id for f in report.findings if f.kind == "premature_termination")
    expected = sorted(
        f"h{i}" for i, (_, _, received) in enumerate(sends)
        if received and any(i + 1 < c + 0.5 < i + 1 + 30 for c in claims)
    )
    assert flagged == expected

    # clarification_loop, plainly: the previous send on the edge, a hand-back after it, resent
    from handoff_audit.buffer import Collector
    from handoff_audit.adapters import REGISTRY
    from handoff_audit.pairing import build_timeline
    from handoff_audit.adapters.native import load_kept
    from handoff_audit.summary import Aggregator

    collector = Collector(10**6, Aggregator())
    REGISTRY["native"].feed(iter(lines), "t.jsonl", collector)
    from handoff_audit.models import Event

    tl = build_timeline("t", [e if type(e) is Event else load_kept("t", e) for e in collector.open["t"][1]])
    hs = [h for h in tl.handoffs if h.sent is not None]
    plain = []
    for k, again in enumerate(hs):
        edge = (again.from_agent, again.to_agent)
        prev = next((i for i in range(k - 1, -1, -1) if (hs[i].from_agent, hs[i].to_agent) == edge), None)
        if prev is not None and _resent(hs[prev], again) and any(
            (b.from_agent, b.to_agent) == (edge[1], edge[0]) for b in hs[prev + 1 : k]
        ):
            plain.append((again.handoff_id, hs[prev].handoff_id))
    assert [(a.handoff_id, b.handoff_id) for a, b in clarification_loops(tl.handoffs)] == plain

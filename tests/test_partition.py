"""Partitioned audits: every partition sees every line, audits its own traces, and the merged
partial results are the report of one run, byte for byte."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import SAMPLES, T
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from handoff_audit.adapters.native import event_owner, line_owner
from handoff_audit.cli import app
from handoff_audit.formatters import render
from handoff_audit.pipeline import Misrouted, ScanConfig, audit, finish, run

PARTS = st.integers(min_value=2, max_value=7)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["trace_id", "a", "state"]), inner, max_size=3),
    max_leaves=8,
)


def _encodings(ev: dict[str, Any]) -> list[bytes]:
    return [
        orjson.dumps(ev),
        json.dumps(ev).encode(),  # spaces after ':' and ','; non-ASCII escaped as \uXXXX
        json.dumps(ev, ensure_ascii=False, separators=(" , ", " : ")).encode(),
    ]


@settings(max_examples=300, deadline=None)
@given(
    tid=st.text(max_size=12) | st.sampled_from(["", "t-1", 'a"b', "a\\b", "\u00e9t\u00e9", "trace_id"]),
    nested=JSONISH,
    first=st.booleans(),
    parts=PARTS,
)
def test_the_owner_read_off_the_bytes_is_the_owner_of_the_parsed_line(tid: str, nested: Any, first: bool, parts: int) -> None:
    ev: dict[str, Any] = {"trace_id": tid, "type": "x", "state": nested}
    if not first:
        ev = {"state": nested, "type": "x", "trace_id": tid}
    for raw in _encodings(ev):
        assert line_owner(raw, parts) in (-1, event_owner(orjson.loads(raw), parts)), raw


@settings(max_examples=50, deadline=None)
@given(nested=JSONISH, parts=PARTS)
def test_a_line_without_a_trace_id_of_its_own_is_skipped_by_exactly_one_partition(
    tmp_path_factory: pytest.TempPathFactory, nested: Any, parts: int
) -> None:
    path = tmp_path_factory.mktemp("p") / "t.jsonl"
    good = orjson.dumps({"trace_id": "t", "type": "outcome", "agent": "a", "status": "success"})
    path.write_bytes(b"\n".join([good, *_encodings({"type": "x", "state": nested})]) + b"\n")
    partials = [audit(ScanConfig((str(path),)), part, parts) for part in range(parts)]
    assert sum(p.skipped_count for p in partials) == 3
    assert [s.line for s in finish(partials).skipped] == [2, 3, 4]


def test_lines_that_could_mislead_a_byte_reading_are_left_to_the_parse() -> None:
    tricky = [
        b'{"state":{"trace_id":"b"},"trace_id":"a","type":"x"}',  # a nested one first
        b'{"note":"{","trace_id":"a","type":"x"}',  # a bracket in a string before it: not worth telling apart
        b'{"trace\\u005fid":"a","state":{"trace_id":"b"},"type":"x"}',  # escaped key, literal one nested
        b'{"note":"trace_id","type":"x","trace_id":"a"}',  # the name as a value first
        b'{"trace_id":"a\\"b","type":"x"}',  # escaped quote in the id
        b'{"trace_id":"","type":"x"}',
        b'{"trace_id":17,"type":"x"}',
    ]
    for raw in tricky:
        assert line_owner(raw, 3) == -1, raw
    assert line_owner(b'{"trace_id" :  "abc","type":"x"}', 3) == event_owner({"trace_id": "abc"}, 3)
    assert line_owner(b'{"ts":1,"trace_id":"abc","state":{"trace_id":"x"}}', 3) == event_owner({"trace_id": "abc"}, 3)


def test_a_repeated_trace_id_key_falls_back_to_one_process(tmp_path: Path) -> None:
    first = "a"
    last = next(t for t in "bcdefgh" if event_owner({"trace_id": t}, 2) != event_owner({"trace_id": first}, 2))
    events = T(first).hop("x", "y", {"k": 1}).outcome("y").events + T(last).hop("x", "y", {"k": 2}).outcome("y").events
    lines = [orjson.dumps(e) for e in events]
    # The parse keeps the last of repeated keys: this line belongs to the second trace, though its
    # first key names the first.
    lines.insert(3, orjson.dumps({"trace_id": first})[:-1] + b',"trace_id":"' + last.encode() + b'","type":"agent.end","agent":"y","status":"ok"}')
    path = tmp_path / "dup.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    config = ScanConfig((str(path),))
    with pytest.raises(Misrouted):
        [audit(config, part, 2) for part in range(2)]
    one = run(config)
    assert one.summary.agent_ends == 1
    assert render("json", run(ScanConfig((str(path),), jobs=2)), width=80, color=False) == render(
        "json", one, width=80, color=False
    )


def _mixed_corpus(path: Path) -> Path:
    """Many interleaved traces of every shape, with unusable lines, blank lines and a late event."""
    rng = random.Random(7)
    traces = []
    for n in range(40):
        t = T(f"run-{n}" if n % 5 else f'r\\"{n}\u00e9')
        order = {"id": n, "total": 10.5, "items": [{"sku": "A", "qty": 1}]}
        t.hop("validator", "inventory", {"order": order}, {"order": order} if n % 3 else {"order": {"id": n}})
        t.tool("inventory", "reserve", id=n if n % 4 else n + 1)
        t.hop("inventory", "payment", {"order": order, "stock": True})
        if n % 6:
            t.outcome("payment")
        t.end("payment", "ok" if n % 7 else "error")
        traces.append([orjson.dumps(e) for e in t.events])
    lines: list[bytes] = []
    while any(traces):
        lines.append(rng.choice([t for t in traces if t]).pop(0))
        if rng.random() < 0.08:
            lines.append(rng.choice([b"not json", b"", b'{"type":"x"}', b'{"trace_id":"run-3","type":"handoff.sent"}', b"[1,2]"]))
    late = orjson.dumps({"trace_id": "run-1", "type": "outcome", "agent": "payment", "status": "success"})
    lines.extend([b"{}"] * 60 + [late])  # more than the idle window below after run-1's last event
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_merged_partitions_give_the_report_of_one_run_byte_for_byte(tmp_path: Path) -> None:
    corpus = _mixed_corpus(tmp_path / "mixed.jsonl")
    config = ScanConfig((str(corpus), str(SAMPLES)), idle_lines=50)
    whole = render("json", run(config), width=120, color=False)
    assert b"closed after 50 idle lines" in whole.encode()
    for parts in (2, 3, 5):
        partials = [audit(config, part, parts) for part in range(parts)]
        assert sum(p.traces for p in partials) == json.loads(whole)["summary"]["traces"]
        random.Random(parts).shuffle(partials)  # the merge does not depend on the order of the partials
        merged = finish(partials)
        assert render("json", merged, width=120, color=False) == whole, parts
        assert render("csv", merged, width=120, color=False) == render("csv", run(config), width=120, color=False)


def test_jobs_give_the_same_report_as_one_process(tmp_path: Path) -> None:
    corpus = _mixed_corpus(tmp_path / "mixed.jsonl")
    outputs = []
    for jobs in ("1", "2", "3"):
        out = tmp_path / f"j{jobs}.json"
        result = CliRunner().invoke(app, ["scan", str(corpus), str(SAMPLES), "-f", "json", "-o", str(out), "-j", jobs, "-q"])
        assert result.exit_code == 1, result.output  # the corpus has error findings
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def test_standard_input_is_read_once_whatever_the_jobs(tmp_path: Path) -> None:
    data = (SAMPLES / "state_loss_removed_field.jsonl").read_bytes()
    one = CliRunner().invoke(app, ["scan", "-", "-f", "json", "-q"], input=data)
    two = CliRunner().invoke(app, ["scan", "-", "-f", "json", "-q", "-j", "2"], input=data)
    assert one.exit_code == two.exit_code == 1
    assert one.stdout == two.stdout
    assert json.loads(one.stdout)["summary"]["handoffs"] > 0


def test_the_dask_example_gives_the_report_of_one_run(tmp_path: Path) -> None:
    pytest.importorskip("dask")
    corpus = _mixed_corpus(tmp_path / "mixed.jsonl")
    example = Path(__file__).resolve().parent.parent / "examples" / "dask_scan.py"
    via_dask = subprocess.run(
        [sys.executable, str(example), str(corpus), "--partitions", "3", "--scheduler", "processes"],
        capture_output=True, check=True,
    ).stdout
    direct = CliRunner().invoke(app, ["scan", str(corpus), "-f", "json", "-q"]).stdout
    assert via_dask.decode() == direct


def test_the_dask_example_falls_back_to_one_partition_on_a_repeated_trace_id_key(tmp_path: Path) -> None:
    pytest.importorskip("dask")
    corpus = tmp_path / "repeated.jsonl"
    corpus.write_text("".join(
        f'{{"trace_id":"a{i}","type":"outcome","agent":"x","status":"success","trace_id":"b{i}"}}\n' for i in range(20)
    ))
    example = Path(__file__).resolve().parent.parent / "examples" / "dask_scan.py"
    via_dask = subprocess.run(
        [sys.executable, str(example), str(corpus), "--partitions", "3", "--scheduler", "synchronous"],
        capture_output=True, check=True,
    ).stdout
    assert via_dask.decode() == CliRunner().invoke(app, ["scan", str(corpus), "-f", "json", "-q", "--exit-zero"]).stdout


def _skips_listed(paths: list[str], jobs: int) -> list[tuple[str, int]]:
    report = run(ScanConfig(tuple(paths), jobs=jobs))
    return [(s.file, s.line) for s in report.skipped]


def test_the_listed_skipped_lines_are_the_first_in_read_order_whatever_the_jobs(tmp_path: Path) -> None:
    # 1,500 unusable native lines after an Agents SDK export whose skip is reported when it ends.
    many = tmp_path / "many.jsonl"
    many.write_text("".join(json.dumps({"trace_id": f"t{i}", "type": "handoff.sent"}) + "\n" for i in range(1500)))
    export = str(Path(__file__).resolve().parent / "fixtures" / "frameworks" / "agents_sdk" / "no_content.jsonl")
    one = _skips_listed([export, str(many)], 1)
    assert one == _skips_listed([export, str(many)], 2) == _skips_listed([export, str(many)], 3)
    listed_export = [line for file, line in one if file == export]
    assert listed_export and len(one) == 1000  # the export's skip is listed: it was read first
    assert [line for file, line in one if file == str(many)] == list(range(1, 1001 - len(listed_export)))


def test_a_file_named_twice_or_inside_a_named_directory_is_read_once(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    bad = d / "x.jsonl"
    lines = [json.dumps({"trace_id": f"t{i}", "type": "handoff.sent"}) + "\n" for i in range(800)]
    bad.write_text(json.dumps({"trace_id": "ok", "type": "agent.start", "agent": "a"}) + "\n" + "".join(lines))
    for paths in ([str(bad), str(bad)], [str(d), str(bad)]):
        report = run(ScanConfig(tuple(paths)))
        assert report.summary.inputs == (str(bad),) and report.summary.skipped == 800
        assert _skips_listed(paths, 2) == _skips_listed(paths, 1)

"""One file read as byte ranges by several workers: the traces that cross a boundary are put back
together, and the report is the one a single process gives, byte for byte (see ranges.py)."""

from __future__ import annotations

import multiprocessing
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import REPO, T
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from handoff_audit import pipeline, ranges
from handoff_audit.cli import app
from handoff_audit.formatters import render
from handoff_audit.config import Limits
from handoff_audit.contracts import load_contracts
from handoff_audit.models import Report
from handoff_audit.pipeline import ScanConfig, finish, run
from handoff_audit.sources import inputs


@pytest.fixture(autouse=True)
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranges, "MIN_RANGE_BYTES", 1)  # these files are small; cut them all the same


def _trace(n: int, rng: random.Random) -> list[bytes]:
    t = T(f"run-{n}" if n % 9 else f"r\u00e9-{n}")
    order = {"id": n, "total": 10.5, "items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]}
    received = {"order": order} if rng.random() < 0.8 else {"order": {"id": n, "items": order["items"][:1]}}
    t.hop("validator", "inventory", {"order": order}, received)
    t.tool("inventory", "reserve", id=n if rng.random() < 0.9 else n + 1)
    t.hop("inventory", "payment", {"order": order, "stock": True})
    if rng.random() < 0.3:
        t.hop("payment", "inventory", {"order": order, "stock": True})
    if rng.random() < 0.85:
        t.outcome("payment")
    t.end("payment", "ok" if rng.random() < 0.9 else "error")
    return [orjson.dumps(e) for e in t.events]


def _corpus(path: Path, traces: int = 400, seed: int = 1, bad: float = 0.03, in_flight: int = 12) -> Path:
    """Interleaved traces (``in_flight`` at a time, none waiting more than 30 lines for its next
    event), with unusable and blank lines, and one trace with an event every 25 lines throughout."""
    rng = random.Random(seed)
    waiting = [_trace(n, rng) for n in range(traces)]
    running: list[list[bytes]] = []
    last: dict[int, int] = {}  # id of a running trace -> the line of its last event
    lines: list[bytes] = []
    long = T("long-lived")
    while waiting or running:
        while waiting and len(running) < in_flight:
            running.append(waiting.pop(0))
            last[id(running[-1])] = len(lines)
        stale = [t for t in running if len(lines) - last[id(t)] > 30]
        t = stale[0] if stale else rng.choice(running)
        lines.append(t.pop(0))
        last[id(t)] = len(lines)
        if not t:
            running.remove(t)
        if rng.random() < bad:
            lines.append(rng.choice([b"not json", b"", b'{"type":"x"}', b'{"trace_id":"run-3","type":"handoff.sent"}', b"[1,2]"]))
        if len(lines) % 25 == 0:
            long.send("planner", "worker", {"step": len(lines)})
            lines.append(orjson.dumps(long.events[-1]))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _split(corpus: Path, files: int, seed: int) -> tuple[str, ...]:
    """The corpus spread over ``files`` files in order, cut at random lines; some start with a
    byte-order mark, some lack their last line end, and an empty file comes between."""
    if files == 1:
        return (str(corpus),)
    rng = random.Random(seed)
    lines = corpus.read_bytes().splitlines()
    cuts = sorted(rng.sample(range(1, len(lines)), files - 1))
    paths = []
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(lines)])):
        path = corpus.with_name(f"part-{i}.jsonl")
        data = b"\n".join(lines[a:b]) + (b"\n" if rng.random() < 0.7 else b"")
        path.write_bytes((b"\xef\xbb\xbf" if rng.random() < 0.3 else b"") + data)
        paths.append(str(path))
        if i == 0:
            empty = corpus.with_name("empty.jsonl")
            empty.write_bytes(b"")
            paths.append(str(empty))
    return tuple(paths)


def _ranged(config: ScanConfig, parts: int) -> tuple[list[ranges.RangePart], list[Any] | None]:
    """The workers of ``parts`` ranges run in this process, the last first (a worker waits only for
    the one after it), and their join."""
    sources = inputs(config.paths)
    plan = ranges.plan(sources, parts, 1)
    assert plan is not None
    n = len(plan.cuts) - 1
    notes: dict[int, Any] = {}
    done: dict[int, ranges.RangePart] = {}
    for i in reversed(range(n)):
        tell = (lambda note, i=i: notes.__setitem__(i - 1, note)) if i else None
        hear = (lambda i=i: notes[i]) if i < n - 1 else None
        done[i] = ranges.audit_range(config, plan, i, tell, hear)
    result = [done[i] for i in range(n)]
    return result, ranges.join(result, config, sources)


def _json(report: Report) -> str:
    return render("json", report, width=120, color=False)


@pytest.mark.parametrize("idle", [60, 150, 400, 100_000])
@pytest.mark.parametrize("parts", [2, 3, 5])
def test_ranges_joined_give_the_report_of_one_process(tmp_path: Path, idle: int, parts: int) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    config = ScanConfig((str(corpus),), idle_lines=idle)
    whole = run(config)
    workers, joined = _ranged(config, parts)
    assert joined is not None  # no fallback: the ranges fitted together
    assert sum(len(w.carry_out) for w in workers) > 0  # traces did cross the boundaries
    assert "idle lines" not in _json(whole)  # no event came after its trace's window
    if idle < 1000:
        assert any(w.assumed for w in workers) and any(w.carry_in for w in workers)
    report = finish(joined)
    assert _json(report) == _json(whole)
    assert render("csv", report, width=120, color=False) == render("csv", whole, width=120, color=False)


def test_the_trace_that_spans_every_range_is_one_trace(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    config = ScanConfig((str(corpus),), idle_lines=200, keep_traces=True)
    workers, joined = _ranged(config, 4)
    assert joined is not None
    assert all("long-lived" in w.open_last for w in workers[:-1])
    report = finish(joined)
    long = [t for t in report.traces if t.trace_id == "long-lived"]
    assert len(long) == 1 and len(long[0].handoffs) > 20
    whole = run(config)
    assert report.traces == whole.traces
    for fmt in ("junit", "markdown", "table"):
        assert render(fmt, report, width=120, color=False) == render(fmt, whole, width=120, color=False)


def test_a_trace_id_seen_again_after_its_window_makes_the_run_one_process(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl", traces=200)
    lines = corpus.read_bytes().splitlines()
    # run-1 ends near the start; an event of it near the end comes long after its window.
    late = orjson.dumps({"trace_id": "run-1", "type": "outcome", "agent": "payment", "status": "success"})
    lines.insert(len(lines) - 5, late)
    corpus.write_bytes(b"\n".join(lines) + b"\n")
    config = ScanConfig((str(corpus),), idle_lines=40)
    _, joined = _ranged(config, 3)
    assert joined is None  # the later range took run-1 for a new trace
    whole = _json(run(config))
    assert "closed after 40 idle lines" in whole
    assert _json(run(ScanConfig((str(corpus),), idle_lines=40, jobs=3))) == whole


def test_an_unusable_last_line_before_a_boundary_is_not_taken_for_an_event(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl", traces=200, bad=0)
    config = ScanConfig((str(corpus),), idle_lines=40)
    plan = ranges.plan(inputs(config.paths), 2)
    assert plan is not None
    data = corpus.read_bytes()
    cut = plan.cuts[1][1]
    head, tail = data[:cut], data[cut:]
    tid = orjson.loads(head.splitlines()[-3])["trace_id"]
    # Usable only to a reader that does not check: a handoff without its state, a bad time, deep nesting.
    bad = [
        {"trace_id": tid, "type": "handoff.sent", "from": "a", "to": "b"},
        {"trace_id": tid, "type": "outcome", "agent": "a", "ts": "yesterday"},
        {"trace_id": tid, "type": "tool.call", "agent": "a", "args": {"x": [[[[[[[[[[1]]]]]]]]]]}},
    ]
    corpus.write_bytes(head + b"".join(orjson.dumps(b) + b"\n" for b in bad) + tail)
    config = ScanConfig((str(corpus),), idle_lines=40, limits=Limits(max_depth=8))
    workers, joined = _ranged(config, 2)
    assert joined is not None
    assert workers[1].assumed[tid] == workers[0].open_last[tid]
    assert _json(finish(joined)) == _json(run(config))


def test_a_file_with_a_byte_order_mark_and_no_last_newline(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl", traces=150)
    corpus.write_bytes(b"\xef\xbb\xbf" + corpus.read_bytes().rstrip(b"\n"))
    config = ScanConfig((str(corpus),), idle_lines=60)
    _, joined = _ranged(config, 3)
    assert joined is not None
    assert _json(finish(joined)) == _json(run(config))


def test_contract_checks_across_ranges(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl")
    contracts = REPO / "examples" / "ecommerce.contracts.yaml"
    config = ScanConfig((str(corpus),), idle_lines=60, contracts=load_contracts(str(contracts)))
    _, joined = _ranged(config, 3)
    assert joined is not None
    report = finish(joined)
    assert report.summary.contracts is not None
    assert any(f.rule for f in report.findings)  # contract findings, some of them on joined traces
    assert _json(report) == _json(run(config))


def test_worker_processes_through_the_command_line(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl", traces=300)
    config = ScanConfig((str(corpus),), idle_lines=60)
    plan = ranges.plan(inputs(config.paths), 3)
    assert plan is not None
    joined = ranges.join(ranges.run(config, plan, multiprocessing.get_context()), config, inputs(config.paths))
    assert joined is not None and _json(finish(joined)) == _json(run(ScanConfig((str(corpus),), idle_lines=60)))
    outputs = []
    for jobs in ("1", "2", "3"):
        out = tmp_path / f"j{jobs}.json"
        result = CliRunner().invoke(
            app, ["scan", str(corpus), "-f", "json", "-o", str(out), "-j", jobs, "-q", "--idle-lines", "60"]
        )
        assert result.exit_code == 1, result.output
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


@pytest.mark.parametrize("parts", [2, 3, 7])
def test_several_files_are_cut_as_one_sequence_of_lines(tmp_path: Path, parts: int) -> None:
    corpus = _corpus(tmp_path / "c.jsonl", traces=300)
    paths = _split(corpus, 4, parts)
    config = ScanConfig(paths, idle_lines=60)
    workers, joined = _ranged(config, parts)
    assert joined is not None
    assert sum(len(w.carry_out) for w in workers) > 0
    whole = run(config)
    assert _json(finish(joined)) == _json(whole)
    assert render("csv", finish(joined), width=120, color=False) == render("csv", whole, width=120, color=False)


def test_what_is_not_cut_into_ranges(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl", traces=50)
    assert ranges.plan(inputs((str(corpus),)), 2) is not None
    gz = tmp_path / "c.jsonl.gz"
    import gzip

    gz.write_bytes(gzip.compress(corpus.read_bytes()))
    assert ranges.plan(inputs((str(gz),)), 2) is None  # compressed: no reading from the middle
    assert ranges.plan(inputs((str(corpus),)), 1) is None
    lines = corpus.read_bytes().count(b"\n")
    assert ranges.plan(inputs((str(corpus),)), 2, lines // 3) is not None
    assert ranges.plan(inputs((str(corpus),)), 2, lines) is None  # a window longer than a range
    # Only native lines can be cut anywhere: a span export keeps the partitions by trace id.
    otlp = next((REPO / "tests" / "fixtures" / "frameworks" / "otlp_openinference").glob("*.jsonl"))
    config = ScanConfig((str(corpus),), idle_lines=60)
    assert pipeline._byte_ranges(inputs(config.paths), config, 2) is not None
    mixed = ScanConfig((str(corpus), str(otlp)), idle_lines=60)
    assert pipeline._byte_ranges(inputs(mixed.paths), mixed, 2) is None
    forced = ScanConfig((str(corpus),), idle_lines=60, input_format="otlp")
    assert pipeline._byte_ranges(inputs(forced.paths), forced, 2) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    in_flight=st.integers(1, 20),
    idle=st.integers(5, 300),
    parts=st.integers(2, 5),
    bad=st.sampled_from([0.0, 0.05, 0.3]),
    reuse=st.booleans(),
    files=st.integers(1, 4),
)
def test_any_cut_gives_the_report_of_one_process(
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    in_flight: int,
    idle: int,
    parts: int,
    bad: float,
    reuse: bool,
    files: int,
) -> None:
    """Whatever the window, the traces in flight, the bad lines and the files the lines are spread
    over, the ranges either fit together into the report of one process or are found not to (and
    the run is redone in one process)."""
    corpus = _corpus(tmp_path_factory.mktemp("c") / "c.jsonl", traces=60, seed=seed, bad=bad, in_flight=in_flight)
    if reuse:  # a trace id seen again, near the end, and a line that repeats its trace_id key
        lines = corpus.read_bytes().splitlines()
        lines.insert(len(lines) - 3, b'{"trace_id":"run-2","type":"outcome","agent":"x","status":"success"}')
        lines.insert(len(lines) // 2, b'{"trace_id":"run-4","type":"agent.start","agent":"y","trace_id":"run-5"}')
        corpus.write_bytes(b"\n".join(lines) + b"\n")
    paths = _split(corpus, files, seed)
    config = ScanConfig(paths, idle_lines=idle)
    whole = run(config)
    _, joined = _ranged(config, parts)
    if joined is not None:
        assert _json(finish(joined)) == _json(whole)
    elif not reuse:
        # Only an event after its trace's window makes the ranges not fit together.
        assert "idle lines" in _json(whole)


def test_a_read_error_in_a_range_makes_the_run_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = _corpus(tmp_path / "c.jsonl", traces=100)
    config = ScanConfig((str(corpus),), idle_lines=60)

    def fail(path: str, start: int, end: int) -> Any:
        if end > start:  # the first range has no lines before it to count
            raise OSError(5, "Input/output error")
        return count(path, start, end)

    count = ranges._count
    monkeypatch.setattr(ranges, "_count", fail)
    workers, joined = _ranged(config, 3)
    assert joined is None and workers[1].read_error and not workers[0].read_error


def test_lines_over_the_length_limit_on_both_sides_of_a_boundary(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c.jsonl", traces=200, bad=0)
    config = ScanConfig((str(corpus),), idle_lines=60, limits=Limits(max_line_bytes=2000))
    plan = ranges.plan(inputs(config.paths), 2)
    assert plan is not None
    lines = corpus.read_bytes().splitlines(keepends=True)
    at = len(corpus.read_bytes()[: plan.cuts[1][1]].splitlines())  # the first line after the cut
    tid = orjson.loads(lines[at - 2])["trace_id"]
    long = orjson.dumps({"trace_id": tid, "type": "agent.start", "agent": "x", "pad": "y" * 5000}) + b"\n"
    for i in (at + 3, at - 1, at - 4, 10):
        lines.insert(i, long)
    corpus.write_bytes(b"".join(lines))
    workers, joined = _ranged(config, 2)
    assert joined is not None
    whole = run(config)
    assert _json(finish(joined)) == _json(whole)
    assert _json(whole).count("line longer than") == 4

"""The recording API: what it writes scans as intended; threads, tasks, gzip, failures, redaction."""

from __future__ import annotations

import asyncio
import gzip
import io
import threading
import warnings
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import kinds
from typer.testing import CliRunner

from handoff_audit.cli import app
from handoff_audit.pipeline import ScanConfig, run
from handoff_audit.record import Recorder, RecordError, RecordWarning, Redact, hashed, parse_path

ORDER = {"order": {"id": "ord-1", "total": 88.9, "items": [{"sku": "A", "qty": 2}]}, "customer": {"email": "a@b.c"}}


def _clean_flow(rec: Recorder, trace_id: str = "run-1") -> None:
    t = rec.trace(trace_id)
    t.agent_start("validator")
    t.llm_call("validator", "gpt-test", 120, 30, cost_usd=0.001)
    hid = t.handoff_sent("validator", "payment", ORDER)
    t.agent_end("validator")
    t.handoff_received("validator", "payment", ORDER, handoff_id=hid)
    t.agent_start("payment")
    t.tool_call("payment", "charge", {"total": 88.9})
    t.outcome("payment", "success", result={"charged": True})
    t.agent_end("payment")


def _lines(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [orjson.loads(line) for line in data.splitlines()]


def test_a_clean_recorded_flow_scans_with_no_findings(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Recorder(path) as rec:
        _clean_flow(rec)
    report = run(ScanConfig((str(path),)))
    assert report.summary.events == 9 and report.summary.skipped == 0
    assert report.summary.handoffs == 1 and report.findings == ()
    assert report.summary.end_to_end_success_rate == 1.0 and report.summary.agent_success_rate == 1.0
    result = CliRunner().invoke(app, ["scan", str(path), "--strict", "-q"])
    assert result.exit_code == 0, result.output


def test_events_carry_the_native_fields(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Recorder(path, clock=lambda: 1767261600.5) as rec:
        _clean_flow(rec)
    events = _lines(path)
    assert [e["type"] for e in events] == [
        "agent.start", "llm.call", "handoff.sent", "agent.end", "handoff.received", "agent.start", "tool.call",
        "outcome", "agent.end",
    ]
    sent, received = events[2], events[4]
    assert sent["from"] == received["from"] == "validator" and sent["to"] == received["to"] == "payment"
    assert sent["handoff_id"] == received["handoff_id"] and sent["state"] == ORDER
    assert events[1] == {
        "ts": 1767261600.5, "trace_id": "run-1", "type": "llm.call", "agent": "validator", "model": "gpt-test",
        "input_tokens": 120, "output_tokens": 30, "cost_usd": 0.001,
    }
    assert events[6]["args"] == {"total": 88.9} and events[7]["result"] == {"charged": True}


def test_a_loss_between_the_two_sides_is_found(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Recorder(path) as rec:
        t = rec.trace("run-2")
        hid = t.handoff_sent("a", "b", ORDER)
        t.handoff_received("a", "b", {"order": ORDER["order"]}, handoff_id=hid)
    report = run(ScanConfig((str(path),)))
    assert sorted(kinds(report)) == ["missing_outcome", "removed_field"]
    assert [f.path for f in report.findings if f.kind == "removed_field"] == ["customer"]


def test_a_trace_view_records_any_event_type(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Recorder(path, clock=lambda: 5.0) as rec:
        rec.trace("run-3").event("memory.write", agent="a", key="k")
        rec.trace("run-3").event("note", ts=7.0)
    assert _lines(path) == [
        {"ts": 5.0, "trace_id": "run-3", "type": "memory.write", "agent": "a", "key": "k"},
        {"ts": 7.0, "trace_id": "run-3", "type": "note"},
    ]


def test_gzip_by_name_and_appending_adds_a_member(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl.gz"
    with Recorder(path) as rec:
        _clean_flow(rec, "run-1")
    with Recorder(path) as rec:  # appends a second gzip member
        _clean_flow(rec, "run-2")
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert len(_lines(path)) == 18
    report = run(ScanConfig((str(path),)))
    assert report.summary.traces == 2 and report.findings == () and report.summary.skipped == 0


def test_mode_w_truncates_and_compress_false_keeps_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl.gz"
    for _ in range(2):
        with Recorder(path, mode="w", compress=False) as rec:
            _clean_flow(rec)
    assert path.read_bytes()[:1] == b"{" and len(_lines(path)) == 9


def test_threads_write_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "threads.jsonl"
    big = {"blob": "x" * 5000, "items": list(range(200))}  # lines larger than a write buffer
    with Recorder(path) as rec:

        def worker(n: int) -> None:
            t = rec.trace(f"t{n}")
            for i in range(300):
                hid = t.handoff_sent("a", "b", big, handoff_id=f"h{i}")
                t.handoff_received("a", "b", big, handoff_id=hid)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    events = _lines(path)  # every line parses
    assert len(events) == 8 * 300 * 2 == rec.written and rec.dropped == 0
    assert all(e["state"] == big for e in events)


def test_asyncio_tasks_write_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl.gz"

    async def main(rec: Recorder) -> None:
        async def agent(n: int) -> None:
            t = rec.trace(f"t{n}")
            for i in range(50):
                t.tool_call("a", "lookup", {"i": i, "pad": "y" * 1000})
                await asyncio.sleep(0)

        await asyncio.gather(*(agent(n) for n in range(20)))

    with Recorder(path) as rec:
        asyncio.run(main(rec))
    events = _lines(path)
    assert len(events) == 1000
    for n in range(20):
        assert [e["args"]["i"] for e in events if e["trace_id"] == f"t{n}"] == list(range(50))


def test_an_unencodable_event_is_dropped_with_a_warning_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Recorder(path) as rec:
        with pytest.warns(RecordWarning, match=r"could not encode a handoff\.sent event \(TypeError\)"):
            rec.handoff_sent("r", "a", "b", {"when": object()})
        rec.agent_start("r", "a")
    assert rec.dropped == 1 and rec.written == 1
    assert [e["type"] for e in _lines(path)] == ["agent.start"]


def test_values_orjson_cannot_encode_natively_are_converted(tmp_path: Path) -> None:
    class Model:
        def model_dump(self, mode: str) -> dict[str, Any]:
            return {"mode": mode}

    path = tmp_path / "run.jsonl"
    with Recorder(path) as rec:
        rec.tool_call("r", "a", "t", {"tags": {"x"}, "pair": (1, 2), "model": Model(), 3: "int key"})
    assert _lines(path)[0]["args"] == {"tags": ["x"], "pair": [1, 2], "model": {"mode": "json"}, "3": "int key"}


def test_strict_raises_instead(tmp_path: Path) -> None:
    with Recorder(tmp_path / "run.jsonl", strict=True) as rec:
        with pytest.raises(RecordError, match="could not encode"):
            rec.tool_call("r", "a", "t", {"x": object()})
    with pytest.raises(RecordError, match="could not open"):
        Recorder(tmp_path / "no" / "such" / "dir.jsonl", strict=True)


def test_an_unopenable_file_warns_and_drops_events(tmp_path: Path) -> None:
    with pytest.warns(RecordWarning, match="could not open the trace file"):
        rec = Recorder(tmp_path / "missing-dir" / "run.jsonl")
    with pytest.warns(RecordWarning, match="not open"):
        rec.agent_start("r", "a")
    rec.close()
    assert rec.dropped == 1 and rec.written == 0


class _BrokenStream(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        raise OSError(28, "No space left on device")


def test_a_write_error_never_reaches_the_host() -> None:
    rec = Recorder(_BrokenStream())
    with pytest.warns(RecordWarning, match=r"could not write a outcome event \(No space left on device\)"):
        rec.outcome("r", "a")
    assert rec.dropped == 1
    with pytest.raises(RecordError, match="No space left"):
        Recorder(_BrokenStream(), strict=True).outcome("r", "a")


def test_events_after_close_are_dropped(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "run.jsonl")
    rec.close()
    rec.close()
    with pytest.warns(RecordWarning, match="closed"):
        rec.agent_start("r", "a")
    assert rec.dropped == 1


def test_a_stream_is_written_but_not_closed() -> None:
    buf = io.BytesIO()
    with Recorder(buf) as rec:
        rec.agent_start("r", "a")
    assert not buf.closed and orjson.loads(buf.getvalue())["agent"] == "a"


def test_redaction_drops_and_masks_without_touching_the_callers_objects(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    state = {
        "customer": {"email": "a@b.c", "name": "Ann", "cards": [{"number": "4111", "exp": "12/30"}]},
        "notes": [{"ssn": "123"}, {"deep": {"ssn": "456"}}],
    }
    before = orjson.dumps(state)
    redact = Redact(drop=["customer.cards[*].number", "**.ssn"], mask=["customer.email"])
    with Recorder(path, redact=redact) as rec:
        rec.handoff_sent("r", "a", "b", state, handoff_id="h1")
        rec.tool_call("r", "b", "mail", {"customer": {"email": "a@b.c"}, "body": "hi"})
    assert orjson.dumps(state) == before
    sent, call = _lines(path)
    assert sent["state"] == {
        "customer": {"email": "[redacted]", "name": "Ann", "cards": [{"exp": "12/30"}]},
        "notes": [{}, {"deep": {}}],
    }
    assert call["args"] == {"customer": {"email": "[redacted]"}, "body": "hi"}
    assert b"a@b.c" not in path.read_bytes() and b"4111" not in path.read_bytes()


def test_a_hashed_mask_still_shows_a_changed_value(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Recorder(path, redact=Redact(mask=["customer.email"], mask_with=hashed("k"))) as rec:
        rec.handoff_sent("r", "a", "b", {"customer": {"email": "a@b.c"}}, handoff_id="h1")
        rec.handoff_received("r", "a", "b", {"customer": {"email": "x@y.z"}}, handoff_id="h1")
        rec.handoff_sent("r", "b", "c", {"customer": {"email": "x@y.z"}}, handoff_id="h2")
        rec.handoff_received("r", "b", "c", {"customer": {"email": "x@y.z"}}, handoff_id="h2")
        rec.outcome("r", "c")
    assert b"@" not in path.read_bytes()
    report = run(ScanConfig((str(path),)))
    assert [(f.kind, f.handoff_id, f.path) for f in report.findings] == [("changed_value", "h1", "customer.email")]


def test_a_redaction_callable_can_drop_whole_events(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Recorder(path, redact=lambda ev: None if ev["type"] == "llm.call" else ev) as rec:
        rec.llm_call("r", "a", "m", 1, 2)
        rec.agent_start("r", "a")
    assert [e["type"] for e in _lines(path)] == ["agent.start"] and rec.dropped == 0


def test_a_failing_redaction_hook_drops_the_event_with_a_warning(tmp_path: Path) -> None:
    def boom(ev: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("secret value")

    with Recorder(tmp_path / "run.jsonl", redact=boom) as rec:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rec.agent_start("r", "a")
    assert rec.dropped == 1 and "secret value" not in str(caught[0].message)


def test_a_redaction_hook_that_returns_no_dict_drops_the_event(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Recorder(path, redact=lambda ev: "oops") as rec:  # type: ignore[arg-type,return-value]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rec.agent_start("r", "a")
    assert path.read_bytes() == b"" and (rec.written, rec.dropped) == (0, 1)
    assert "returned neither a dict nor None" in str(caught[0].message)


def test_redaction_reaches_inside_models_and_dataclasses(tmp_path: Path) -> None:
    import dataclasses

    pydantic = pytest.importorskip("pydantic")  # installed with the framework extras

    class Customer(pydantic.BaseModel):
        email: str
        name: str

    @dataclasses.dataclass
    class Card:
        number: str
        brand: str

    path = tmp_path / "run.jsonl"
    customer, card = Customer(email="ada@example.com", name="Ada"), Card("4111", "visa")
    with Recorder(path, redact=Redact(mask=["customer.email"], drop=["**.number"])) as rec:
        rec.handoff_sent("t", "a", "b", {"customer": customer, "card": card}, handoff_id="h")
    [ev] = _lines(path)
    assert ev["state"] == {"customer": {"email": "[redacted]", "name": "Ada"}, "card": {"brand": "visa"}}
    assert customer.email == "ada@example.com" and card.number == "4111"  # the caller's objects untouched


@pytest.mark.parametrize("bad", ["", ".a", "a..b", "a[x]", "a b", "a.**"])
def test_bad_redaction_paths_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_path(bad)


def test_redaction_paths_accept_quoted_keys_and_indices() -> None:
    assert Redact(drop=['meta["x.y"]', "items[1]"])({"attrs": {"meta": {"x.y": 1, "z": 2}}, "state": {"items": [1, 2, 3]}}) == {
        "attrs": {"meta": {"z": 2}},
        "state": {"items": [1, 3]},
    }


def test_drop_wins_over_mask_and_wildcards_reach_every_level() -> None:
    redact = Redact(drop=["a.*.x", "l[2]"], mask=["a.b.x", "**.y", "*[0]"])
    event = {"state": {"a": {"b": {"x": 1, "y": 2}, "c": [{"y": 3}]}, "l": [1, 2, 3], "y": 4}}
    assert redact(event) == {
        "state": {"a": {"b": {"y": "[redacted]"}, "c": [{"y": "[redacted]"}]}, "l": ["[redacted]", 2], "y": "[redacted]"}
    }
    assert redact({"state": {"z": 1}, "args": None})["state"] == {"z": 1}

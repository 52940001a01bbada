"""The native reader: what is an event, what is skipped and why, and where."""

from __future__ import annotations

import gzip
from dataclasses import replace
from pathlib import Path

import pytest

from handoff_audit.adapters.native import parse_ts
from handoff_audit.errors import InputError
from handoff_audit.pipeline import ScanConfig, run


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1767261600, 1767261600.0),
        (1767261600.25, 1767261600.25),
        ("2026-01-01T10:00:00Z", 1767261600.0),
        ("2026-01-01T10:00:00.250Z", 1767261600.25),
        ("2026-01-01T11:00:00+01:00", 1767261600.0),
        ("2026-01-01 10:00:00z", 1767261600.0),
    ],
)
def test_ts_forms(value, expected) -> None:
    assert parse_ts(value) == expected


@pytest.mark.parametrize("value", ["yesterday", "2026-01-01", "2026-01-01T10:00:00", True, [1], {"s": 1}])
def test_invalid_ts_is_rejected(value) -> None:
    with pytest.raises((ValueError, TypeError)):
        parse_ts(value)


GOOD = b'{"trace_id":"t","type":"outcome","agent":"a","status":"success"}'


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"type":"outcome","agent":"a"}', "missing 'trace_id'"),
        (b'{"trace_id":7,"type":"outcome","agent":"a"}', "'trace_id' is not a non-empty string"),
        (b'{"trace_id":"t","agent":"a"}', "missing 'type'"),
        (b'{"trace_id":"t","type":"handoff.sent","from":"a","to":"b","state":[1]}', "'state' is not an object"),
        (b'{"trace_id":"t","type":"handoff.sent","from":"a","to":"b"}', "handoff.sent without a 'state' object"),
        (b'{"trace_id":"t","type":"handoff.received","to":"b","state":{}}', "handoff.received without a 'from' agent name"),
        (b'{"trace_id":"t","type":"handoff.sent","from":"a","to":"b","state":{},"handoff_id":3}', "'handoff_id' is not a string"),
        (b'{"trace_id":"t","type":"outcome","status":"success"}', "outcome without an 'agent' name"),
        (b'{"trace_id":"t","type":"tool.call","agent":"a","args":"x"}', "'args' is not an object"),
        (b'{"trace_id":"t","type":"outcome","agent":"a","ts":"soon"}', "'ts' is neither RFC 3339 nor Unix seconds"),
    ],
)
def test_a_bad_line_is_skipped_with_its_line_and_reason(tmp_path: Path, line: bytes, reason: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(GOOD + b"\n" + line + b"\n" + GOOD + b"\n")
    report = run(ScanConfig((str(path),)))
    assert report.summary.events == 2
    assert report.summary.skipped == 1
    [skip] = report.skipped
    assert (skip.file, skip.line, skip.reason) == (str(path), 2, reason)


def test_blank_lines_and_crlf_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(GOOD + b"\r\n\r\n   \n" + GOOD + b"\r\n")
    report = run(ScanConfig((str(path),)))
    assert (report.summary.events, report.summary.skipped) == (2, 0)


def test_unknown_types_are_kept_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(GOOD + b'\n{"trace_id":"t","type":"memory.write","agent":"a"}\n')
    report = run(ScanConfig((str(path),)))
    assert report.summary.unknown_types == {"memory.write": 1}
    assert report.summary.events == 2


def test_gzip_and_directories(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    with gzip.open(tmp_path / "sub" / "a.jsonl.gz", "wb") as fh:
        fh.write(GOOD + b"\n")
    (tmp_path / "b.jsonl").write_bytes(GOOD.replace(b'"t"', b'"u"') + b"\n")
    (tmp_path / "notes.txt").write_text("not a trace")
    report = run(ScanConfig((str(tmp_path),)))
    assert report.summary.traces == 2
    assert report.summary.inputs == (str(tmp_path / "b.jsonl"), str(tmp_path / "sub" / "a.jsonl.gz"))


def test_a_truncated_gzip_keeps_what_was_read_and_says_so(tmp_path: Path) -> None:
    data = gzip.compress(b"".join(GOOD.replace(b'"t"', f'"t{i}"'.encode()) + b"\n" for i in range(2000)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    report = run(ScanConfig((str(path),)))
    assert report.summary.events > 0
    assert report.skipped[-1].reason.startswith("truncated compressed stream")


def test_a_gzip_member_left_unfinished_then_appended_to_keeps_its_lines(tmp_path: Path) -> None:
    import zlib

    # A recorder flushed three events and died; the next one appended a member of its own.
    first = b"".join(GOOD.replace(b'"t"', f'"t{i}"'.encode()) + b"\n" for i in range(3))
    unfinished = zlib.compressobj(wbits=31)
    data = unfinished.compress(first) + unfinished.flush(zlib.Z_SYNC_FLUSH)
    path = tmp_path / "run.jsonl.gz"
    path.write_bytes(data + gzip.compress(b"".join(GOOD.replace(b'"t"', f'"u{i}"'.encode()) + b"\n" for i in range(5))))
    report = run(ScanConfig((str(path),)))
    assert report.summary.events == 3
    assert [(k.line, k.reason) for k in report.skipped] == [(4, "read error; the rest of the file was not read")]


def test_gzip_members_with_zero_padding_between_and_after_are_read_whole(tmp_path: Path) -> None:
    lines = [GOOD.replace(b'"t"', f'"t{i}"'.encode()) + b"\n" for i in range(4000)]
    path = tmp_path / "padded.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(lines[:10])) + b"\0" * 5000 + gzip.compress(b"".join(lines[10:])) + b"\0" * 7)
    report = run(ScanConfig((str(path),)))
    assert (report.summary.events, report.summary.skipped) == (4000, 0)


def test_zstandard_streams_of_several_frames_are_read_like_plain_files(tmp_path: Path) -> None:
    import zstandard

    lines = [GOOD.replace(b'"t"', f'"t{i}"'.encode()) + b"\n" for i in range(3000)]
    plain = tmp_path / "a.jsonl"
    plain.write_bytes(b"".join(lines))
    packed = tmp_path / "sub" / "a.jsonl.zst"
    packed.parent.mkdir()
    compress = zstandard.ZstdCompressor().compress
    packed.write_bytes(compress(b"".join(lines[:1000])) + compress(b"".join(lines[1000:])))
    assert run(ScanConfig((str(packed),))).summary == replace(
        run(ScanConfig((str(plain),))).summary, inputs=(str(packed),)
    )
    assert run(ScanConfig((str(tmp_path / "sub"),))).summary.traces == 3000  # found in a directory


def test_a_truncated_zstandard_stream_keeps_what_was_read_and_says_so(tmp_path: Path) -> None:
    import zstandard

    # Blocks are decompressed whole: enough lines for several blocks, cut in the middle of one.
    data = zstandard.ZstdCompressor().compress(b"".join(GOOD.replace(b'"t"', f'"t{i}"'.encode()) + b"\n" for i in range(20000)))
    path = tmp_path / "cut.jsonl.zst"
    path.write_bytes(data[: len(data) // 2])
    report = run(ScanConfig((str(path),)))
    assert 0 < report.summary.events < 20000
    assert report.skipped[-1].reason.startswith("truncated compressed stream")


def test_zstandard_data_followed_by_junk_keeps_every_line_before_the_junk(tmp_path: Path) -> None:
    import zstandard

    # Enough lines for several blocks: the junk comes in the same read as the end of the frame.
    data = zstandard.ZstdCompressor().compress(b"".join(GOOD.replace(b'"t"', f'"t{i}"'.encode()) + b"\n" for i in range(20000)))
    path = tmp_path / "junk.jsonl.zst"
    path.write_bytes(data + b"junkjunkjunk")
    report = run(ScanConfig((str(path),)))
    assert report.summary.events == 20000
    assert [(s.line, s.reason) for s in report.skipped] == [(20001, "read error; the rest of the file was not read")]


def _too_long(n: int) -> bytes:
    """``n`` native events of about 3 KB each, over a 1 KiB line limit."""
    return b"".join(GOOD.replace(b'"t"', b'"long","pad":"' + b"a" * 3000 + b'"') + b"\n" for _ in range(n))


def test_a_file_that_starts_with_lines_too_long_is_still_told_native_and_read(tmp_path: Path) -> None:
    from handoff_audit.config import Limits

    path = tmp_path / "t.jsonl"
    path.write_bytes(_too_long(40) + b"\n" + GOOD + b"\n" + GOOD.replace(b'"t"', b'"u"') + b"\n")
    report = run(ScanConfig((str(path),), limits=Limits(max_line_bytes=1024)))
    assert report.summary.events == 2 and report.summary.traces == 2
    assert [(s.line, s.reason) for s in report.skipped] == [(n, "line longer than 1 KiB") for n in range(1, 41)]


def test_detection_looks_past_lines_not_read_and_gives_every_line_back() -> None:
    from handoff_audit.adapters import detect
    from handoff_audit.sources import UnreadLine

    unread = UnreadLine("line longer than 1 KiB")
    given = [unread] * 40 + [b"", GOOD, GOOD]
    fmt, lines = detect(iter(given))
    assert fmt == "native"
    assert list(lines) == given
    fmt, lines = detect(iter([unread] * 40))
    assert fmt is None and list(lines) == [unread] * 40


def test_a_file_of_lines_too_long_alone_lists_each_with_its_reason(tmp_path: Path) -> None:
    from handoff_audit.config import Limits

    path = tmp_path / "t.jsonl"
    path.write_bytes(_too_long(3) + b"\n\n")
    with pytest.raises(InputError, match=r"no usable events \(3 lines skipped; line 1: line longer than 1 KiB\)"):
        run(ScanConfig((str(path),), limits=Limits(max_line_bytes=1024)))
    # Junk after them: they keep their reason, and the rest of the file is one line in no format.
    path.write_bytes(_too_long(2) + b"hello\nworld\n")
    good = tmp_path / "good.jsonl"
    good.write_bytes(GOOD + b"\n")
    report = run(ScanConfig((str(path), str(good)), limits=Limits(max_line_bytes=1024)))
    assert [(s.line, s.reason) for s in report.skipped] == [
        (1, "line longer than 1 KiB"),
        (2, "line longer than 1 KiB"),
        (3, "not a known trace format (tried native, otlp-json, agents-sdk, otel-console)"),
    ]


def test_missing_path_and_no_events_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.jsonl: no such file or directory"):
        run(ScanConfig((str(tmp_path / "nope.jsonl"),)))
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="no usable events"):
        run(ScanConfig((str(empty),)))
    with pytest.raises(InputError, match="no trace files"):
        run(ScanConfig((str(_empty_dir(tmp_path)),)))


def _empty_dir(tmp_path: Path) -> Path:
    d = tmp_path / "emptydir"
    d.mkdir()
    return d


def test_a_utf8_bom_on_the_first_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD + b"\n" + GOOD + b"\n")
    report = run(ScanConfig((str(path),)))
    assert (report.summary.events, report.summary.skipped) == (2, 0)


@pytest.mark.parametrize("value", ["2026-W01-1T10:00:00Z", "2026-01-01T10:00:00+0100", "2026-01-01T10:00Z", "1767261600"])
def test_only_rfc3339_date_times_are_accepted(value: str) -> None:
    with pytest.raises(ValueError):
        parse_ts(value)


def test_gzip_is_recognised_by_its_magic_bytes_on_stdin_too(tmp_path: Path, monkeypatch) -> None:
    import io
    import sys

    class FakeStdin:
        buffer = io.BytesIO(gzip.compress(GOOD + b"\n"))

    monkeypatch.setattr(sys, "stdin", FakeStdin)
    report = run(ScanConfig(("-",)))
    assert report.summary.events == 1


def test_a_line_nested_too_deep_is_skipped_with_a_reason(tmp_path: Path) -> None:
    from handoff_audit.adapters.native import MAX_DEPTH

    def line(trace: str, kind: str, levels: int) -> bytes:
        state = '{"k":' * levels + "1" + "}" * levels
        return (
            f'{{"trace_id":"{trace}","type":"{kind}","handoff_id":"h","from":"a","to":"b","state":{state}}}\n'
        ).encode()

    path = tmp_path / "deep.jsonl"
    path.write_bytes(
        line("ok", "handoff.sent", MAX_DEPTH - 1)
        + line("ok", "handoff.received", MAX_DEPTH - 1)
        + line("deep", "handoff.sent", MAX_DEPTH + 5)
        + line("deeper", "handoff.sent", 5000)
    )
    report = run(ScanConfig((str(path),)))
    assert [(s.line, s.reason) for s in report.skipped] == [
        (3, f"nested deeper than {MAX_DEPTH} levels"),
        (4, f"nested deeper than {MAX_DEPTH} levels"),
    ]
    assert report.summary.handoffs == 1


def test_ts_is_read_only_on_the_events_that_are_ordered(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(
        GOOD + b"\n"
        + b'{"trace_id":"t","type":"llm.call","agent":"a","ts":"soon"}\n'
        + b'{"trace_id":"t","type":"outcome","agent":"a","ts":"soon"}\n'
    )
    report = run(ScanConfig((str(path),)))
    assert report.summary.events == 2
    assert [(s.line, s.reason) for s in report.skipped] == [(3, "'ts' is neither RFC 3339 nor Unix seconds")]


_TRICKY = [
    b'{"trace_id":"t","type":"handoff.sent","from":"a","to":"b"}',  # no state
    b'{"trace_id":"t","type":"outcome","agent":"a","ts":"yesterday"}',
    b'{"trace_id":"t","type":"outcome","agent":"a","ts":1e400}',
    b'{"trace_id":"t","type":"tool.call","agent":"a","args":{"x":' + b"[" * 200 + b"]" * 200 + b"}}",
    b'{"trace_id":"t","type":"llm.call","agent":"a","x":' + b"[" * 200 + b"]" * 200 + b"}",  # not kept: no depth limit
    b'{"trace_id":"t","type":"tool.call","agent":"a","args":[]}',
    b'{"trace_id":"a","type":"agent.start","agent":"x","trace_id":"b"}',
    b'{"trace_id":"","type":"x"}',
    b'{"trace_id":"t","type":"memory.write"}',
    b'{"trace_id":"t","type":"handoff.received","from":"a","to":"b","state":{},"handoff_id":7}',
    b"[1]",
    b"   ",
]


def test_usable_trace_id_takes_exactly_the_lines_the_reader_takes(tmp_path: Path) -> None:
    """``usable_trace_id`` restates the checks the reader makes inline: on every line of the hostile
    corpus and the samples, it names a trace exactly where the reader takes the line as an event."""
    from handoff_audit.adapters import detect
    from handoff_audit.adapters.native import NativeAdapter, usable_trace_id
    from handoff_audit.buffer import Collector
    from handoff_audit.config import Limits
    from handoff_audit.sources import inputs, read_lines
    from handoff_audit.summary import Aggregator

    root = Path(__file__).parent
    files = [*sorted((root / "corpus").glob("*.jsonl")), *sorted((root.parent / "sample_traces").rglob("*.jsonl"))]
    tricky = tmp_path / "tricky.jsonl"
    tricky.write_bytes(b"\n".join(_TRICKY) + b"\n")
    compared = 0
    for path in [*files, tricky]:
        src = inputs((str(path),))[0]
        fmt, lines = detect(read_lines(src.open(), Limits()))
        if fmt != "native":
            continue
        lines = list(lines)
        agg = Aggregator((src.name,))
        NativeAdapter().feed(iter(lines), src.name, Collector(10**9, agg))
        assert agg.skipped_count == len(agg.skipped)  # every skip listed
        skipped = {s.line for s in agg.skipped}
        for n, raw in enumerate(lines, 1):
            taken = bool(raw.strip()) and n not in skipped
            assert (usable_trace_id(raw) is not None) == taken, (path.name, n, raw[:80])
            compared += 1
    assert compared > 500

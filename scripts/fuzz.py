"""Fuzz the readers, the pipeline and every report format for a bounded time (coverage-guided, atheris).

    .venv/bin/pip install -e '.[fuzz]'
    .venv/bin/python scripts/fuzz.py --minutes 10

Each input is written to a file and audited as ``scan`` would (gzip found by its magic bytes, small
limits so that they are reached often), then rendered as JSON, CSV, JUnit XML and Markdown (and one input in 16 as the terminal table). A failure is any exception
other than InputError (which is how a run reports input it cannot use), or a report that lets trace
text through uninert (a control character, an escape sequence, a CSV cell that starts a formula).
libFuzzer's own findings (a time-out, running out of memory) count too.

Every failing input is saved as a new corpus case, ``tests/corpus/fuzz_<hash>.jsonl`` with an
``.expect.json`` whose expected exit is ``"any"``: from then on the corpus test runs it and holds it
to the rules every input must meet. The fuzzing itself runs in a child process, restarted after
libFuzzer stops on a finding, until the time is up; the seeds are sample_traces/ and the corpus.
At the end it prints how many inputs were tried and what was found. Exit code: 0 nothing found,
1 something found, 2 atheris missing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "corpus"
SEEDS = [REPO / "sample_traces", CORPUS]
MAX_SEED_BYTES = 64 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to fuzz (default 10)")
    parser.add_argument("--max-len", type=int, default=16 * 1024, help="largest input libFuzzer makes, in bytes")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed (each restart adds 1)")
    parser.add_argument("--save-to", type=Path, default=CORPUS, help="where failing inputs become corpus cases")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # internal: the fuzzing child
    parser.add_argument("--until", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("fuzz.py: atheris is not installed: .venv/bin/pip install -e '.[fuzz]'", file=sys.stderr)
        return 2
    if args.worker is not None:
        return _worker(args.worker, args.until, args.max_len, args.seed)
    return _supervise(args)


# --- the supervising parent ----------------------------------------------------------------------


def _supervise(args: argparse.Namespace) -> int:
    until = time.time() + args.minutes * 60
    work = Path(tempfile.mkdtemp(prefix="handoff-audit-fuzz-"))
    corpus, artifacts = work / "corpus", work / "artifacts"
    corpus.mkdir()
    artifacts.mkdir()
    for folder in SEEDS:
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.endswith(".json") and path.stat().st_size <= MAX_SEED_BYTES:
                shutil.copy(path, corpus / path.name)
    tried, runs, seed = 0, 0, args.seed
    findings: dict[str, str] = {}  # signature -> saved case
    try:
        while time.time() < until - 1:
            runs += 1
            cmd = [sys.executable, __file__, "--worker", str(work), "--until", str(until),
                   "--max-len", str(args.max_len), "--seed", str(seed)]
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=open(work / "libfuzzer.log", "ab"), check=False)
            seed += 1
            tried += _read_count(work)
            for found in sorted(artifacts.iterdir()):
                if found.suffix == ".txt":
                    continue
                signature = _signature(found)
                if signature not in findings:
                    findings[signature] = _save_case(found, signature, args.save_to)
                found.unlink()
                found.with_name(found.name + ".txt").unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"fuzz.py: {tried:,} inputs tried in {args.minutes:g} minutes ({runs} fuzzer run{'s' if runs != 1 else ''})")
    if not findings:
        print("fuzz.py: nothing found")
        return 0
    for signature, case in sorted(findings.items()):
        print(f"fuzz.py: found {signature}: saved as {case}")
    return 1


def _read_count(work: Path) -> int:
    path = work / "count"
    if not path.exists():
        return 0
    count = int(path.read_text() or 0)
    path.unlink()
    return count


def _signature(found: Path) -> str:
    note = found.with_name(found.name + ".txt")
    if note.exists():
        return note.read_text().strip()
    return found.name.split("-", 1)[0]  # libFuzzer's crash-, timeout-, oom-, leak-


def _save_case(found: Path, signature: str, save_to: Path) -> str:
    data = found.read_bytes()
    name = "fuzz_" + hashlib.sha1(data).hexdigest()[:12]
    save_to.mkdir(parents=True, exist_ok=True)
    (save_to / f"{name}.jsonl").write_bytes(data)
    expect = {"about": f"found by scripts/fuzz.py: {signature}", "exit": "any"}
    (save_to / f"{name}.expect.json").write_text(json.dumps(expect, indent=1) + "\n")
    return str(save_to / f"{name}.jsonl")


# --- the fuzzing child ---------------------------------------------------------------------------


def _worker(work: Path, until: float, max_len: int, seed: int) -> int:
    import atheris

    with atheris.instrument_imports():
        from handoff_audit.config import Limits, ScanConfig
        from handoff_audit.errors import InputError
        from handoff_audit.formatters import render
        from handoff_audit.pipeline import run

    sys.path.insert(0, str(REPO / "tests"))
    from test_corpus import check_output  # the rules every report must meet, shared with the corpus test

    limits = Limits(max_line_bytes=4096, max_depth=32, max_decompressed_bytes=1 << 20, max_compression_ratio=50)
    target = work / "input.jsonl"
    artifacts = work / "artifacts"
    state = {"count": 0}

    def flush() -> None:
        (work / "count").write_text(str(state["count"]))

    def one_input(data: bytes) -> None:
        state["count"] += 1
        if state["count"] % 1000 == 0:
            flush()
        if time.time() >= until:
            flush()
            os._exit(0)
        target.write_bytes(data)
        try:
            try:
                report = run(ScanConfig((str(target),), limits=limits))
            except InputError:
                return
            # The terminal table takes some 15 ms to lay out, 30 times the rest: one input in 16 gets it.
            fmts = ("json", "csv", "junit", "markdown")
            for fmt in (*fmts, "table") if state["count"] % 16 == 0 else fmts:
                check_output(render(fmt, report), fmt)
        except Exception as err:  # any other exception, or a broken rule, is a finding
            tb = err.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}" if tb else "?"
            digest = hashlib.sha1(data).hexdigest()
            (artifacts / f"failure-{digest}").write_bytes(data)
            (artifacts / f"failure-{digest}.txt").write_text(f"{type(err).__name__} at {where}")

    atheris.Setup(
        [sys.argv[0], str(work / "corpus"), f"-max_len={max_len}", "-rss_limit_mb=2048", "-timeout=30",
         f"-artifact_prefix={artifacts}/", f"-seed={seed}"],
        one_input,
    )
    try:
        atheris.Fuzz()
    finally:
        flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

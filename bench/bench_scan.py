"""Scan throughput against the floor of merely parsing the same file.

Generates a synthetic corpus (bench/corpus.py), or reuses the one cached under bench/data/ for the same
parameters and generator, then times in one run:

  (a) parse: ``for line in f: orjson.loads(line)`` in this process, best of ``--repeat``;
  (p) pair:  the same loop pairing sends with receipts and comparing their states, for scale;
  (b) scan:  ``python -m handoff_audit scan FILE --format json -o /dev/null --exit-zero -q`` as a
      subprocess with this interpreter, best of ``--repeat``, with the peak RSS of that process.

Figures are reported as measured, with the ratio scan/parse taken in the same run; nothing is asserted.

    python bench/bench_scan.py                       # 2,000,000 events, 10% faulty handoffs
    python bench/bench_scan.py --events 200000 --repeat 3
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import generate  # noqa: E402

DATA = HERE / "data"


def corpus_path(events: int, faulty: float, seed: int) -> Path:
    """The cached corpus for these parameters; the generator's own source is part of the key."""
    digest = hashlib.sha256((HERE / "corpus.py").read_bytes()).hexdigest()[:10]
    return DATA / f"corpus-e{events}-f{faulty:g}-s{seed}-{digest}.jsonl"


def ensure_corpus(events: int, faulty: float, seed: int) -> Path:
    path = corpus_path(events, faulty, seed)
    if path.exists():
        print(f"corpus: {path.relative_to(HERE.parent)} (cached)")
        return path
    DATA.mkdir(exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    t0 = time.perf_counter()
    stats = generate(str(tmp), events, faulty, seed)
    os.replace(tmp, path)
    print(
        f"corpus: {path.relative_to(HERE.parent)} generated in {time.perf_counter() - t0:.1f}s "
        f"({stats.events} events, {stats.traces} traces, {stats.handoffs} handoffs, "
        f"{stats.faulty_handoffs} injected faults)"
    )
    return path


def count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            n += chunk.count(b"\n")
    return n


def time_parse(path: Path) -> float:
    loads = orjson.loads
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        for line in f:
            loads(line)
    return time.perf_counter() - t0


def time_pair(path: Path) -> float:
    """A minimal pair-and-compare loop: the least any handoff audit must do on top of parsing."""
    loads = orjson.loads
    pending: dict[tuple[str, str], object] = {}
    differ = 0
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        for line in f:
            ev = loads(line)
            kind = ev["type"]
            if kind == "handoff.sent":
                pending[(ev["trace_id"], ev.get("handoff_id"))] = ev["state"]
            elif kind == "handoff.received":
                if pending.pop((ev["trace_id"], ev.get("handoff_id")), None) != ev["state"]:
                    differ += 1
    return time.perf_counter() - t0


def time_scan(path: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in bytes) of one scan subprocess."""
    cmd = [sys.executable, "-m", "handoff_audit", "scan", str(path),
           "--format", "json", "-o", os.devnull, "--exit-zero", "-q"]
    with tempfile.TemporaryFile() as errfile:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errfile)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, peak RSS included
        wall = time.perf_counter() - t0
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            errfile.seek(0)
            raise SystemExit(f"scan failed with exit code {code}:\n{errfile.read().decode(errors='replace')}")
    rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return wall, usage.ru_utime + usage.ru_stime, rss


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Time handoff-audit scan against a bare orjson parse of the same file.")
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--faulty", type=float, default=0.10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the best is reported")
    a = ap.parse_args(argv)

    path = ensure_corpus(a.events, a.faulty, a.seed)
    size = path.stat().st_size
    mb = size / 1e6
    lines = count_lines(path)

    parses: list[float] = []
    pairs: list[float] = []
    scans: list[tuple[float, float, int]] = []
    for _ in range(a.repeat):  # interleaved, so that a noisy spell on a shared machine hits all three
        parses.append(time_parse(path))
        pairs.append(time_pair(path))
        scans.append(time_scan(path))
    parse = min(parses)
    pair = min(pairs)
    scan_wall, scan_cpu, _ = min(scans)
    rss = max(s[2] for s in scans)

    print(f"file:  {size / 1e6:.1f} MB, {lines} events, faulty {a.faulty:.0%}, seed {a.seed}")
    print(f"parse: {parse:7.2f} s  {mb / parse:7.1f} MB/s   (runs: {', '.join(f'{x:.2f}' for x in parses)})")
    print(
        f"scan:  {scan_wall:7.2f} s  {mb / scan_wall:7.1f} MB/s   (runs: {', '.join(f'{s[0]:.2f}' for s in scans)}; "
        f"CPU {scan_cpu:.2f} s; {lines / scan_wall / 1000:.0f}k events/s)"
    )
    print(f"pair:  {pair:7.2f} s  {mb / pair:7.1f} MB/s   (a minimal pair-and-compare loop, for scale)")
    print(f"ratio pair/parse: {pair / parse:.2f}x")
    print(f"ratio scan/parse: {scan_wall / parse:.2f}x")
    print(f"scan peak RSS: {rss / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Memory and time of scanning a large OTLP JSON file, measured in one run.

Builds a file of ``--mb`` megabytes from the committed OpenInference fixtures (each copy of them under
new trace ids, one copy after another, as a Collector writes runs that follow each other), then runs

  (a) parse: ``for line in f: orjson.loads(line)`` in this process;
  (b) scan:  ``python -m handoff_audit scan FILE --format json -o /dev/null --exit-zero -q`` as a
      subprocess, with its peak RSS (``ru_maxrss`` of the child).

and prints the file size, the scan's peak RSS and their ratio, and scan time over parse time. Nothing
is asserted.

    python bench/bench_otlp.py            # 100 MB
    python bench/bench_otlp.py --mb 20
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "frameworks" / "otlp_openinference"


def build(path: Path, megabytes: int) -> int:
    """Write the file; returns the number of traces."""
    requests = [orjson.loads(line) for src in sorted(FIXTURES.glob("*.jsonl")) for line in src.read_bytes().splitlines()]
    traces_per_copy = len(list(FIXTURES.glob("*.jsonl")))
    target = megabytes * 1_000_000
    written = copies = 0
    with open(path, "wb") as fh:
        while written < target:
            for doc in requests:
                for rs in doc["resourceSpans"]:
                    for ss in rs["scopeSpans"]:
                        for sp in ss["spans"]:
                            sp["traceId"] = f"{copies:010x}" + sp["traceId"][10:]
                line = orjson.dumps(doc) + b"\n"
                fh.write(line)
                written += len(line)
            copies += 1
    return copies * traces_per_copy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "collector.jsonl"
        traces = build(path, args.mb)
        size = path.stat().st_size
        t0 = time.perf_counter()
        with open(path, "rb") as fh:
            for line in fh:
                orjson.loads(line)
        parse = time.perf_counter() - t0
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "handoff_audit", "scan", str(path), "--format", "json", "-o", os.devnull,
               "--exit-zero", "-q"]
        subprocess.run(cmd, check=True)
        scan = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # kilobytes on Linux
    print(f"file       {size / 1e6:8.1f} MB  ({traces:,} traces)")
    print(f"scan RSS   {rss / 1e6:8.1f} MB  peak, {rss / size:.2f} x the file size")
    print(f"parse      {parse:8.2f} s")
    print(f"scan       {scan:8.2f} s  ({scan / parse:.1f} x parse)")


if __name__ == "__main__":
    main()

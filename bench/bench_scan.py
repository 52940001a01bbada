"""Scan throughput, parallel speed-up, memory and start-up, measured against a bare parse in one run.

Generates synthetic corpora (bench/corpus.py), or reuses those cached under bench/data/ for the same
parameters and generator, then measures, interleaved so that a noisy spell on a shared machine hits
every figure alike:

  parse   ``for line in f: orjson.loads(line)`` in this process: the floor any reader pays;
  pair    the same loop pairing sends with receipts and comparing their states, for scale;
  scan    ``python -m handoff_audit scan FILE --format json -o /dev/null --exit-zero -q [--jobs N]``
          as a subprocess with this interpreter, with its peak RSS (the largest of its processes);
  show    ``show TRACE FILE --format json`` of the trace of the main corpus's first line, likewise.

Each figure is the best of ``--repeat`` runs and every ratio is taken within this run. Times are wall
clock; CPU seconds are shown beside them, since on a machine shared with other work the wall clock of
a run can stretch while its CPU time does not. Nothing is asserted: the table says which targets the
figures meet.

    python bench/bench_scan.py                              # every figure, on the default corpora
    python bench/bench_scan.py --events 200000 --repeat 3   # only the throughput figures, smaller
    python bench/bench_scan.py --contracts --events 200000 --repeat 3   # scan --contracts / scan

With ``--contracts``, the cost of contract checks instead: a contract file is drafted from the main
corpus by ``handoff-audit contracts infer`` (cached beside the corpus, as JSON), then ``scan`` without
and with ``--contracts`` run alternately ``--repeat`` times, and the ratios of the best runs are printed.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import multiprocessing.pool
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import generate  # noqa: E402

DATA = HERE / "data"

# The commands are started by a helper process, started before this one grows. The kernel carries a
# process's peak RSS over into the commands it starts: started from here after the parse loops, every
# command would show at least this process's peak.
_helper: multiprocessing.pool.Pool | None = None


def start_helper() -> None:
    global _helper
    if _helper is None:
        _helper = multiprocessing.get_context("spawn").Pool(1)


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


def time_parse(path: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of parsing every line and throwing the result away."""
    loads = orjson.loads
    t0, c0 = time.perf_counter(), time.process_time()
    with open(path, "rb") as f:
        for line in f:
            loads(line)
    return time.perf_counter() - t0, time.process_time() - c0


def time_pair(path: Path) -> tuple[float, float]:
    """A minimal pair-and-compare loop: the least any handoff audit must do on top of parsing."""
    loads = orjson.loads
    pending: dict[tuple[str, str], object] = {}
    differ = 0
    t0, c0 = time.perf_counter(), time.process_time()
    with open(path, "rb") as f:
        for line in f:
            ev = loads(line)
            kind = ev["type"]
            if kind == "handoff.sent":
                pending[(ev["trace_id"], ev.get("handoff_id"))] = ev["state"]
            elif kind == "handoff.received":
                if pending.pop((ev["trace_id"], ev.get("handoff_id")), None) != ev["state"]:
                    differ += 1
    return time.perf_counter() - t0, time.process_time() - c0


def time_command(args: list[str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in bytes) of one ``python -m handoff_audit`` subprocess,
    started by the helper process.

    CPU time and peak RSS include the worker processes the command waits for.
    """
    if _helper is None:
        start_helper()
    assert _helper is not None
    wall, cpu, rss, error = _helper.apply(_run_command, (args,))
    if error is not None:
        raise SystemExit(error)
    return wall, cpu, rss


def _run_command(args: list[str]) -> tuple[float, float, int, str | None]:
    cmd = [sys.executable, "-m", "handoff_audit", *args]
    # An installed package has its bytecode compiled by pip; let a source checkout keep its own too,
    # rather than compile every module again in every run where PYTHONDONTWRITEBYTECODE is set.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryFile() as errfile:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errfile, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's rusage, with its waited-for children
        wall = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        error = None
        if code not in (0, 1):
            errfile.seek(0)
            error = f"{' '.join(args)} failed with exit code {code}:\n{errfile.read().decode(errors='replace')}"
    rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return wall, usage.ru_utime + usage.ru_stime, rss, error


def time_scan(path: Path, jobs: int | None = 1) -> tuple[float, float, int]:
    """``scan`` with ``--jobs``, or as a user types it when ``jobs`` is None (one worker per CPU for
    an input of 64 MiB or more)."""
    args = ["scan", str(path), "--format", "json", "-o", os.devnull, "--exit-zero", "-q"]
    return time_command(args if jobs is None else [*args, "--jobs", str(jobs)])


def time_show(path: Path) -> tuple[float, float, int]:
    """``show`` of the trace of the file's first line, as data: one trace out of the whole input."""
    with path.open("rb") as f:
        trace_id = orjson.loads(f.readline())["trace_id"]
    return time_command(["show", trace_id, str(path), "--format", "json", "-o", os.devnull])


@dataclass
class Figures:
    """The best of several runs of one measurement."""

    runs: list[tuple[float, ...]] = field(default_factory=list)

    def add(self, run: tuple[float, ...]) -> None:
        self.runs.append(run)

    @property
    def wall(self) -> float:
        return min(r[0] for r in self.runs)

    @property
    def cpu(self) -> float:
        return min(r[1] for r in self.runs)

    @property
    def rss(self) -> float:
        return max(r[2] for r in self.runs)


def measure(
    path: Path, repeat: int, jobs: list[int], default: bool = False, show: bool = False
) -> dict[str, Figures]:
    """parse, pair and scan with each of ``jobs`` (and without ``--jobs`` if ``default``, and ``show``
    of one trace if ``show``), interleaved."""
    figs: dict[str, Figures] = {"parse": Figures(), "pair": Figures(), **{f"scan-j{j}": Figures() for j in jobs}}
    if default:
        figs["scan"] = Figures()
    if show:
        figs["show"] = Figures()
    for _ in range(repeat):
        figs["parse"].add(time_parse(path))
        figs["pair"].add(time_pair(path))
        for j in jobs:
            figs[f"scan-j{j}"].add(time_scan(path, j))
        if default:
            figs["scan"].add(time_scan(path, None))
        if show:
            figs["show"].add(time_show(path))
    return figs


def describe(name: str, path: Path, figs: dict[str, Figures]) -> None:
    mb = path.stat().st_size / 1e6
    parse = figs["parse"]
    print(f"\n{name}: {path.relative_to(HERE.parent)}, {mb:.1f} MB, {count_lines(path):,} lines")
    for key, f in figs.items():
        extra = f", peak RSS {f.rss / 2**20:.0f} MiB" if key.startswith(("scan", "show")) else ""
        print(
            f"  {key:8} wall {f.wall:7.2f} s ({mb / f.wall:6.1f} MB/s, {f.wall / parse.wall:5.2f}x parse)"
            f"   CPU {f.cpu:7.2f} s ({f.cpu / parse.cpu:5.2f}x parse){extra}"
        )


def ensure_contracts(corpus: Path) -> Path:
    """A contract file drafted from the corpus, cached beside it (its name carries the package's hash)."""
    pkg = HERE.parent / "handoff_audit"
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(pkg.glob("*.py")))).hexdigest()[:10]
    path = corpus.with_name(f"{corpus.stem}-contracts-{digest}.json")
    if path.exists():
        print(f"contracts: {path.relative_to(HERE.parent)} (cached)")
        return path
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "handoff_audit", "contracts", "infer", str(corpus), "-o", str(path), "-q"], check=True
    )
    print(f"contracts: {path.relative_to(HERE.parent)} drafted in {time.perf_counter() - t0:.1f}s")
    return path


def bench_contracts(path: Path, repeat: int) -> int:
    """Scan without and with a contract file, alternately; print the ratios of the best runs."""
    contracts = ensure_contracts(path)
    doc = orjson.loads(contracts.read_bytes())
    print(
        f"contract file: {contracts.stat().st_size / 1e6:.1f} MB, {len(doc['edges'])} edge contracts "
        f"(an input schema and a timeout each), outcome owner {doc.get('outcome', {}).get('owner')}"
    )
    args = ["scan", str(path), "--format", "json", "-o", os.devnull, "--exit-zero", "-q", "--jobs", "1"]
    plain, checked = Figures(), Figures()
    for _ in range(repeat):  # alternated, so that a noisy spell on a shared machine hits both
        plain.add(time_command(args))
        checked.add(time_command([*args, "--contracts", str(contracts)]))
    for name, f in (("scan", plain), ("scan --contracts", checked)):
        runs = ", ".join(f"{r[0]:.2f}" for r in f.runs)
        print(f"{name:17} wall {f.wall:7.2f} s (runs: {runs})   CPU {f.cpu:7.2f} s   peak RSS {f.rss / 2**20:.0f} MiB")
    print(f"ratio scan --contracts / scan: {checked.wall / plain.wall:.2f}x wall, {checked.cpu / plain.cpu:.2f}x CPU")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Time handoff-audit scan against a bare orjson parse of the same file.")
    ap.add_argument("--events", type=int, default=2_000_000, help="events of the main corpus")
    ap.add_argument("--faulty", type=float, default=0.10, help="share of faulty handoffs in the main corpus")
    ap.add_argument("--all-faulty-events", type=int, default=1_000_000,
                    help="events of the corpus where every handoff differs (0: skip it)")
    ap.add_argument("--small-events", type=int, default=200_000,
                    help="events of the corpus whose peak RSS the main one's is compared with (0: skip it)")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="--jobs values to time on the main corpus")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the best is reported")
    ap.add_argument("--contracts", action="store_true", help="measure scan --contracts against scan instead")
    a = ap.parse_args(argv)
    start_helper()

    main_path = ensure_corpus(a.events, a.faulty, a.seed)
    if a.contracts:
        return bench_contracts(main_path, a.repeat)
    extra = []
    if a.all_faulty_events:
        extra.append(("every handoff differing", ensure_corpus(a.all_faulty_events, 1.0, a.seed)))
    if a.small_events:
        extra.append(("small", ensure_corpus(a.small_events, a.faulty, a.seed)))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, orjson {orjson.__version__}")

    main_figs = measure(main_path, a.repeat, a.jobs, default=True, show=True)
    describe(f"main ({a.faulty:.0%} faulty handoffs)", main_path, main_figs)
    others = {}
    for name, path in extra:
        others[name] = measure(path, a.repeat, [1], default=name != "small")
        describe(name, path, others[name])

    help_runs = [time_command(["--help"]) for _ in range(max(3, a.repeat))]
    sample_runs = [time_command(["scan", str(HERE.parent / "sample_traces"), "-q", "--exit-zero"]) for _ in range(max(3, a.repeat))]
    print(f"\nstart-up: --help {min(r[0] for r in help_runs):.2f} s; scan sample_traces/ {min(r[0] for r in sample_runs):.2f} s")

    parse = main_figs["parse"]
    one = main_figs["scan-j1"]
    default = main_figs["scan"]
    rows = [
        ("scan --jobs 1 / parse, main corpus", one.wall / parse.wall, one.cpu / parse.cpu, "<= 2x (scale)"),
        ("scan (default jobs) / parse, main corpus", default.wall / parse.wall, None, "<= 3x (foundation)"),
    ]
    if "every handoff differing" in others:
        f = others["every handoff differing"]
        rows.append(("scan --jobs 1 / parse, every handoff differing", f["scan-j1"].wall / f["parse"].wall,
                     f["scan-j1"].cpu / f["parse"].cpu, "<= 3x"))
        rows.append(("scan (default jobs) / parse, every handoff differing", f["scan"].wall / f["parse"].wall,
                     None, "<= 3x"))
    for j in a.jobs:
        if j > 1:
            fj = main_figs[f"scan-j{j}"]
            rows.append((f"scan --jobs {j} / single-core parse (wall)", fj.wall / parse.wall, None, "<= 1.2x at --jobs 2"))
            rows.append((f"speed-up of --jobs {j} over --jobs 1 (wall)", one.wall / fj.wall, None, "report"))
    show = main_figs["show"]
    rows.append(("show of one trace / parse, main corpus", show.wall / parse.wall, show.cpu / parse.cpu, "report"))
    rows.append(("show of one trace / scan --jobs 1 (wall)", show.wall / one.wall, None, "report"))
    rows.append(("peak RSS, show of one trace / scan --jobs 1", show.rss / one.rss, None, "report"))
    if "small" in others:
        rows.append(("peak RSS, main / small corpus", one.rss / others["small"]["scan-j1"].rss, None, "<= 1.5x"))
    print("\n| figure | wall ratio | CPU ratio | target |\n|---|---|---|---|")
    for label, wall, cpu, target in rows:
        print(f"| {label} | {wall:.2f}x | {'' if cpu is None else f'{cpu:.2f}x'} | {target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

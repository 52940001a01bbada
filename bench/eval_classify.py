"""Precision and recall of the classifier against the labels of synthetic corpora.

Generates labelled corpora (bench/corpus.py), audits each in-process with the pipeline, and matches
findings to labels per trace:

* a label is recalled when the trace has a finding of the same class (on the same edge, when the label
  names one: trace-level kinds have none);
* a finding is a true positive when its trace has a label of the same class.

Per kind, recall is given two ways: by class (the rule above) and exactly (a finding of the same kind on
the same edge). Per finding kind, precision is by class. Up to ``--examples`` mismatches per class are
listed so that a wrong call can be looked up in the corpus by its trace id.

    python bench/eval_classify.py --events 20000 --faulty 0.30 --seeds 1 2 3
    python bench/eval_classify.py --corpus corpus.jsonl --labels labels.jsonl   # files already written
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import CLASSES, KIND_CLASS, KINDS, generate  # noqa: E402

from handoff_audit.pipeline import ScanConfig, run  # noqa: E402


def _edge(frm: Any, to: Any) -> str:
    return f"{frm}->{to}" if frm is not None or to is not None else "(trace)"


def _short(v: Any, n: int = 60) -> str:
    s = orjson.dumps(v).decode()
    return s if len(s) <= n else s[: n - 3] + "..."


def evaluate(corpus: str, labels_path: str, tag: str, acc: dict[str, Any]) -> None:
    """Audit ``corpus`` in-process and add its matches and mismatches to ``acc``."""
    labels: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with open(labels_path, "rb") as fh:
        for line in fh:
            lb = orjson.loads(line)
            labels[lb["trace_id"]].append(lb)
    report = run(ScanConfig((corpus,)))
    if report.summary.skipped:
        acc["skipped"] += report.summary.skipped
    findings: dict[str, list[Any]] = defaultdict(list)
    for f in report.findings:
        findings[f.trace_id].append(f)
    acc["traces"] += report.summary.traces
    acc["labels"] += sum(len(v) for v in labels.values())
    acc["findings"] += len(report.findings)

    for tid, lbs in labels.items():
        found = findings.get(tid, [])
        for lb in lbs:
            cls, kind = lb["class"], lb["kind"]
            edge_ok = [f for f in found if lb["from"] is None or (f.from_agent, f.to_agent) == (lb["from"], lb["to"])]
            hit = any(f.failure_class == cls for f in edge_ok)
            exact = any(f.kind == kind for f in edge_ok)
            acc["rec_class"][cls][hit] += 1
            acc["rec_kind"][kind][hit] += 1
            acc["rec_exact"][kind][exact] += 1
            if lb.get("variant"):
                acc["rec_variant"][(kind, lb["variant"])][hit] += 1
            if lb["path"] is not None:
                acc["rec_path"][kind][any(f.kind == kind and f.path == lb["path"] for f in edge_ok)] += 1
            if not hit:
                acc["fn"][cls].append((tag, tid, lb, found))
            elif not exact:
                acc["kind_miss"][kind].append((tag, tid, lb, edge_ok))
    for tid, fs in findings.items():
        classes = {lb["class"] for lb in labels.get(tid, ())}
        for f in fs:
            ok = f.failure_class in classes
            acc["prec_class"][f.failure_class][ok] += 1
            acc["prec_kind"][f.kind][ok] += 1
            if not ok:
                acc["fp"][f.failure_class].append((tag, tid, f, labels.get(tid, [])))


def _rate(c: Counter[bool]) -> str:
    n = c[True] + c[False]
    return f"{c[True] / n:6.1%}" if n else "     -"


def _describe_label(lb: dict[str, Any]) -> str:
    where = _edge(lb["from"], lb["to"])
    s = f"{lb['kind']} {where}" + (f" {lb['path']}" if lb["path"] else "")
    return s + (f" ({lb['variant']})" if lb.get("variant") else "")


def _describe_finding(f: Any) -> str:
    s = f"{f.kind} {_edge(f.from_agent, f.to_agent)}" + (f" {f.path}" if f.path else "")
    if f.sent is not None or f.received is not None:
        s += f" sent={_short(f.sent, 40)} received={_short(f.received, 40)}"
    return s


def print_report(acc: dict[str, Any], examples: int) -> None:
    print(f"traces {acc['traces']}  labels {acc['labels']}  findings {acc['findings']}  skipped lines {acc['skipped']}")
    print()
    print(f"{'class':<22} {'labels':>7} {'recall':>7} {'findings':>9} {'precision':>9}")
    for cls in CLASSES:
        r, p = acc["rec_class"][cls], acc["prec_class"][cls]
        print(f"{cls:<22} {r[True] + r[False]:>7} {_rate(r):>7} {p[True] + p[False]:>9} {_rate(p):>9}")
    print()
    print("recall: a finding of the class in the trace (on the label's edge); exact: of the kind, on the edge;")
    print("path: of the kind, on the edge, at the label's path; precision: by class, per finding kind")
    print(
        f"{'kind':<24} {'class':<19} {'labels':>6} {'recall':>7} {'exact':>7} {'path':>7} "
        f"{'findings':>9} {'precision':>9}"
    )
    for kind in KINDS:
        r, e, p = acc["rec_kind"][kind], acc["rec_exact"][kind], acc["prec_kind"][kind]
        print(
            f"{kind:<24} {KIND_CLASS[kind]:<19} {r[True] + r[False]:>6} {_rate(r):>7} {_rate(e):>7} "
            f"{_rate(acc['rec_path'][kind]):>7} {p[True] + p[False]:>9} {_rate(p):>9}"
        )
    if acc["rec_variant"]:
        print()
        print(f"{'kind / variant':<45} {'labels':>6} {'recall':>7}")
        for (kind, variant), r in sorted(acc["rec_variant"].items()):
            print(f"{kind + ' / ' + variant:<45} {r[True] + r[False]:>6} {_rate(r):>7}")
    extra = sorted(set(acc["prec_kind"]) - set(KINDS))
    for kind in extra:
        p = acc["prec_kind"][kind]
        print(f"{kind:<24} {'':<19} {'':>6} {'':>7} {'':>7} {p[True] + p[False]:>9} {_rate(p):>9}")

    for cls in CLASSES:
        fn, fp = acc["fn"][cls], acc["fp"][cls]
        if not fn and not fp:
            continue
        print(f"\n== {cls}: {len(fn)} labels not recalled, {len(fp)} findings without a label of the class")
        for tag, tid, lb, found in fn[:examples]:
            got = "; ".join(_describe_finding(f) for f in found) or "no findings"
            print(f"  missed  {tag} {tid}: expected {_describe_label(lb)}\n          found: {got}")
        for tag, tid, f, lbs in fp[:examples]:
            want = "; ".join(_describe_label(lb) for lb in lbs) or "clean trace"
            print(f"  extra   {tag} {tid}: found {_describe_finding(f)}\n          labels: {want}")
    misses = [(k, v) for k, v in acc["kind_miss"].items() if v]
    if misses:
        print("\n== class right, kind different (first example per kind)")
        for kind, items in sorted(misses):
            tag, tid, lb, found = items[0]
            got = "; ".join(_describe_finding(f) for f in found)
            print(f"  {kind} x{len(items)}  {tag} {tid}: expected {_describe_label(lb)}\n          found: {got}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Precision and recall of the classifier on labelled corpora.")
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--faulty", type=float, default=0.30)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--in-flight", type=int, default=200)
    ap.add_argument("--examples", type=int, default=10, help="mismatches listed per class")
    ap.add_argument("--keep", help="keep the corpora and labels in this directory")
    ap.add_argument("--corpus", help="evaluate this corpus instead of generating one (needs --labels)")
    ap.add_argument("--labels", help="the labels written with --corpus")
    a = ap.parse_args(argv)
    if bool(a.corpus) != bool(a.labels):
        ap.error("--corpus and --labels go together")

    acc: dict[str, Any] = {
        "traces": 0, "labels": 0, "findings": 0, "skipped": 0,
        "rec_class": defaultdict(Counter), "rec_kind": defaultdict(Counter), "rec_exact": defaultdict(Counter),
        "rec_path": defaultdict(Counter), "rec_variant": defaultdict(Counter),
        "prec_class": defaultdict(Counter), "prec_kind": defaultdict(Counter),
        "fn": defaultdict(list), "fp": defaultdict(list), "kind_miss": defaultdict(list),
    }
    if a.corpus:
        evaluate(a.corpus, a.labels, Path(a.corpus).stem, acc)
        print(f"corpus: {a.corpus}")
        print_report(acc, a.examples)
        return 0
    with tempfile.TemporaryDirectory(prefix="handoff-eval-") as tmp:
        where = a.keep or tmp
        os.makedirs(where, exist_ok=True)
        for seed in a.seeds:
            corpus = os.path.join(where, f"eval-s{seed}.jsonl")
            labels = os.path.join(where, f"eval-s{seed}.labels.jsonl")
            generate(corpus, a.events, a.faulty, seed, labels, in_flight=a.in_flight)
            evaluate(corpus, labels, f"s{seed}", acc)
    print(f"corpora: {len(a.seeds)} x {a.events} events, {a.faulty:.0%} faulty handoffs, seeds {a.seeds}")
    print_report(acc, a.examples)
    return 0


if __name__ == "__main__":
    sys.exit(main())

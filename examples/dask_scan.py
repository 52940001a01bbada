"""Audit trace files in partitions on a Dask scheduler and merge the partial results into one report.

Every partition reads the same inputs and audits the traces whose id hashes to it, so the machines
running the tasks must see the same files (a shared or object-store path). The merged report is the
one ``handoff-audit scan`` prints for the same inputs, byte for byte.

    pip install 'handoff-audit[dask]'
    python examples/dask_scan.py sample_traces/ --partitions 4            # Dask's local process pool
    python examples/dask_scan.py traces/ --partitions 64 --scheduler tcp://scheduler:8786
"""

from __future__ import annotations

import argparse
import sys

import dask

from handoff_audit.formatters import render
from handoff_audit.models import Report
from handoff_audit.pipeline import Misrouted, ScanConfig, audit, finish


def run(config: ScanConfig, partitions: int, scheduler: str) -> Report:
    """The report of ``config``, audited in ``partitions`` Dask tasks and merged."""
    partials = [dask.delayed(audit)(config, part, partitions) for part in range(partitions)]
    merged = dask.delayed(finish)(partials)
    if "://" in scheduler:
        from dask.distributed import Client  # needs the distributed package

        with Client(scheduler):
            return merged.compute()  # type: ignore[no-any-return]
    return merged.compute(scheduler=scheduler)  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", help="trace files or directories, as for handoff-audit scan")
    ap.add_argument("--partitions", type=int, default=4, help="how many partitions of the traces")
    ap.add_argument("--scheduler", default="processes",
                    help="a local Dask scheduler (processes, threads, synchronous) or a distributed one's address")
    ap.add_argument("--format", default="json", choices=["table", "json", "csv"])
    a = ap.parse_args(argv)

    config = ScanConfig(tuple(a.paths))
    try:
        report = run(config, a.partitions, a.scheduler)
    except Misrouted:
        # A line repeats its trace_id key: only one partition reading every line can be sure to give it
        # to the right trace (as handoff-audit scan does in this case).
        report = run(config, 1, a.scheduler)
    sys.stdout.write(render(a.format, report, width=120, color=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

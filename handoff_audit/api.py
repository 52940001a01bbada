"""The Python API: ``scan(paths) -> Report``. The command line is a thin layer over it."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from handoff_audit.config import DEFAULT_IDLE_LINES, MAX_JOBS, ScanConfig
from handoff_audit.errors import UsageError
from handoff_audit.models import Report
from handoff_audit.policy import BaselineData, Thresholds, evaluate, parse_failure_rates, parse_rate, select_codes

if TYPE_CHECKING:
    from handoff_audit.contracts import ContractSet

PathLike = str | os.PathLike[str]


def scan(
    paths: PathLike | Iterable[PathLike],
    contracts: PathLike | ContractSet | None = None,
    *,
    require_contracts: bool = False,
    fail_on: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
    max_failure_rate: float | str | Mapping[str, float | str] | None = None,
    min_end_to_end_success: float | str | None = None,
    baseline: PathLike | None = None,
    baseline_tolerance: float | str = 0.0,
    idle_lines: int = DEFAULT_IDLE_LINES,
    jobs: int | None = 1,
    progress: bool | None = False,
    input_format: str | None = None,
    keep_traces: bool = False,
) -> Report:
    """Audit trace files (or directories of them) and judge the result.

    ``paths`` is one path or several; directories are searched for ``*.jsonl``, ``*.json`` and their
    ``.gz`` and ``.zst`` forms (``sources.TRACE_SUFFIXES``).
    ``fail_on`` and ``ignore`` take class names, kinds or rule codes, as a list or one comma-separated
    string (``ignore`` drops those findings before anything is counted). ``max_failure_rate`` is an overall rate or a mapping of ``"overall"``
    and class names to rates; rates are numbers (0.05) or percentages ("5%"). ``baseline`` is a
    JSON report: findings it already had do not fail the run. ``idle_lines``, ``jobs`` and
    ``progress`` are ``scan --idle-lines``, ``--jobs`` (worker processes; the report is the same;
    None: by input size), ``--progress`` (None: on a terminal, for large inputs) and
    ``--input-format`` (an adapter name; None tells each file's format by its content). ``keep_traces`` fills
    ``Report.traces`` (one record per trace and handoff, as the JUnit report lists them).

    The returned Report carries its ``verdict``. Raises ``handoff_audit.errors.InputError`` when
    nothing can be audited and ``UsageError`` for a bad argument.

    ``contracts`` is a contract file (or a ContractSet from ``contracts.load_contracts``): every handoff
    is checked against it, as by ``scan --contracts``; ``require_contracts`` is ``--require-contracts``.
    A contract file that cannot be used raises ``handoff_audit.contracts.ContractError``.
    """
    paths = _paths(paths)
    fail_on = _selectors(fail_on, "fail_on")
    ignore = _selectors(ignore, "ignore") or ()
    input_format = _input_format(input_format)
    _whole(idle_lines, "idle_lines", 1)
    if jobs is not None:
        _whole(jobs, "jobs", 0, MAX_JOBS)
    if progress is not None and not isinstance(progress, bool):
        raise UsageError(f"progress: expected True, False or None, not {type(progress).__name__}")
    if isinstance(max_failure_rate, (list, tuple, set)):
        raise UsageError("max_failure_rate: expected a rate or a mapping of class names to rates, not a list")
    contract_set = None
    if contracts is not None:
        from handoff_audit.contracts import ContractSet, load_contracts

        contract_set = contracts if isinstance(contracts, ContractSet) else load_contracts(os.fspath(contracts))
    rates: dict[str, float] = {}
    if isinstance(max_failure_rate, Mapping):
        rates = parse_failure_rates(f"{k}={v}" for k, v in max_failure_rate.items())
    elif max_failure_rate is not None:
        rates = parse_failure_rates([max_failure_rate])
    thresholds = Thresholds(
        fail_on=None if fail_on is None else select_codes(fail_on, "fail_on"),
        max_failure_rate=rates,
        min_end_to_end_success=(
            None if min_end_to_end_success is None else parse_rate(min_end_to_end_success, "min_end_to_end_success")
        ),
        baseline_tolerance=parse_rate(baseline_tolerance, "baseline_tolerance"),
    )
    base = load_baseline(baseline) if baseline is not None else None
    config = ScanConfig(
        tuple(os.fspath(p) for p in paths),
        idle_lines=idle_lines,
        jobs=jobs,
        progress=progress,
        input_format=input_format,
        ignore=select_codes(ignore, "ignore", empty_ok=True),
        keep_traces=keep_traces,
        contracts=contract_set,
        require_contracts=require_contracts,
    )
    return judge(run(config), thresholds, base)


def _paths(paths: object) -> list[PathLike]:
    """One path or an iterable of paths, as a list; UsageError for anything else."""
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    if isinstance(paths, (bytes, Mapping)) or not isinstance(paths, Iterable):
        raise UsageError(f"paths: expected a path or an iterable of paths, not {type(paths).__name__}")
    found = list(paths)
    for p in found:
        if not isinstance(p, (str, os.PathLike)):
            raise UsageError(f"paths: expected paths (str or os.PathLike), not {type(p).__name__}")
    return found


def _selectors(value: object, name: str) -> list[str] | None:
    """``fail_on`` or ``ignore``: None, one selector string (commas allowed) or an iterable of them."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Iterable) or isinstance(value, (bytes, Mapping)):
        raise UsageError(f"{name}: expected selector strings, not {type(value).__name__}")
    found = list(value)
    for item in found:
        if not isinstance(item, str):
            raise UsageError(f"{name}: expected selector strings, not {type(item).__name__}")
    return found


def _input_format(value: object) -> str | None:
    """An adapter name, or None (``"auto"`` too) to tell each file's format by its content."""
    if value is None or value == "auto":
        return None
    from handoff_audit.adapters import REGISTRY

    if not isinstance(value, str) or value not in REGISTRY:
        raise UsageError(f"input_format: expected one of auto, {', '.join(REGISTRY)}, not {value!r}")
    return value


def _whole(value: object, name: str, least: int, most: int | None = None) -> None:
    """UsageError unless ``value`` is a whole number (not a bool) from ``least`` to ``most``."""
    if type(value) is not int or value < least or (most is not None and value > most):
        bound = f"from {least} to {most}" if most is not None else f"of at least {least}"
        raise UsageError(f"{name}: expected a whole number {bound}, not {value!r}")


def run(config: ScanConfig) -> Report:
    """The pipeline itself (a Report with no verdict)."""
    from handoff_audit import pipeline

    return pipeline.run(config)


def judge(report: Report, thresholds: Thresholds | None = None, baseline: BaselineData | None = None) -> Report:
    """``report`` with its verdict under ``thresholds`` and ``baseline``."""
    return dataclasses.replace(report, verdict=evaluate(report, thresholds, baseline))


def load_baseline(path: PathLike) -> BaselineData:
    """A JSON report read as a baseline; InputError if it is not one."""
    from handoff_audit.baseline import load_report

    return load_report(os.fspath(path)).baseline()

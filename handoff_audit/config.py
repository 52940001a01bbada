"""The frozen configuration of a scan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handoff_audit.contracts import ContractSet

DEFAULT_IDLE_LINES = 200_000  # input lines read without an event of a trace before it is closed
AUTO_JOBS_BYTES = 64 * 2**20  # inputs this large are worth starting worker processes for


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """What to read and how.

    ``jobs`` is the number of worker processes: each audits one partition of the traces (by a hash
    of the trace id) and the partial results are merged into the report one process would make.
    0 means one per CPU; None means one per CPU for inputs of ``AUTO_JOBS_BYTES`` or more, else 1.
    """

    paths: tuple[str, ...]
    idle_lines: int = DEFAULT_IDLE_LINES
    jobs: int | None = 1
    progress: bool | None = None  # a progress bar on stderr: None means on a terminal, for large inputs
    input_format: str | None = None  # an adapter name; None tells each file's format by its content
    ignore: frozenset[str] = frozenset()  # rule codes whose findings are dropped before counting
    keep_traces: bool = False  # keep a record of every trace and handoff (JUnit, the pytest plugin)
    contracts: ContractSet | None = None  # from contracts.load_contracts; checked on every handoff
    require_contracts: bool = False  # a handoff on an edge no contract covers is a finding (RG309)

"""The frozen configuration of a scan."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handoff_audit.contracts import ContractSet

DEFAULT_IDLE_LINES = 200_000  # input lines read without an event of a trace before it is closed
AUTO_JOBS_BYTES = 64 * 2**20  # inputs this large are worth starting worker processes for
MAX_JOBS = 256  # worker processes at most: each is a process of its own

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
# Ceiling of --max-depth: the JSON encoder used for states and reports refuses more than 254 levels,
# and a finding's value sits a few levels down in the report.
DEPTH_CEILING = 200
DEFAULT_MAX_DEPTH = 128
# The compression ratio is checked only past this much output: small, very repetitive files are no threat.
RATIO_FLOOR = 1 * MIB


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one input may make the reader hold or do; reaching one is a skip with a reason.

    Sizes are in bytes. ``max_compression_ratio`` applies to compressed inputs once more than
    ``RATIO_FLOOR`` bytes have come out of them; 0 turns a limit off (``max_depth`` excepted).
    """

    max_line_bytes: int = 16 * MIB  # one line, without its line end
    max_depth: int = DEFAULT_MAX_DEPTH  # nesting of objects and arrays in an event that is kept
    max_decompressed_bytes: int = 4 * GIB  # what one compressed input may expand to
    max_compression_ratio: int = 200  # decompressed bytes per compressed byte read


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """What to read and how.

    ``jobs`` is the number of worker processes: each audits a byte range of one large file, or else
    one partition of the traces (by a hash of the trace id), and the partial results are merged into
    the report one process would make (see ``pipeline.run``).
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
    limits: Limits = field(default_factory=Limits)


_SIZE = re.compile(r"(\d+)\s*([KMG]?)(?:I?B)?\Z", re.IGNORECASE)
_UNITS = {"": 1, "K": KIB, "M": MIB, "G": GIB}


def parse_size(text: str | int) -> int:
    """``"16M"`` -> 16777216: a whole number of bytes, or of KiB, MiB or GiB (``K``, ``M``, ``G``,
    optionally followed by ``iB`` or ``B``; all binary multiples). ValueError otherwise."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(text.strip())
    if m is None:
        raise ValueError(f"not a size: {text!r} (use a number of bytes, or e.g. 64K, 16M, 4G)")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def format_size(n: int) -> str:
    """16777216 -> ``16 MiB``; sizes that are not whole KiB, MiB or GiB in bytes."""
    for unit, name in ((GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")):
        if n >= unit and n % unit == 0:
            return f"{n // unit} {name}"
    return f"{n:,} bytes"

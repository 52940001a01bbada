"""The audit pipeline: read -> pair -> diff -> classify -> aggregate.

Events stream through: adapters feed them to a Collector (``buffer.py``), which holds each trace only
while it is open and hands it to pairing and classification when it closes.
"""

from __future__ import annotations

import gc
import zlib

from handoff_audit.adapters import REGISTRY
from handoff_audit.buffer import Collector
from handoff_audit.config import ScanConfig
from handoff_audit.errors import InputError
from handoff_audit.models import Report, Skipped
from handoff_audit.sources import expand
from handoff_audit.summary import Aggregator

__all__ = ["ScanConfig", "run"]


def run(config: ScanConfig) -> Report:
    """Audit every input named in ``config``; raises InputError when nothing can be audited."""
    sources = expand(list(config.paths))
    if not sources:
        raise InputError(f"{', '.join(config.paths)}: no trace files (*.jsonl, *.jsonl.gz) found")
    agg = Aggregator()
    collector = Collector(config.idle_events, agg)
    adapter = REGISTRY["native"]  # the only format so far; sniffing by content comes with the others
    gc_was_enabled = gc.isenabled()
    gc.disable()  # parsed events hold no reference cycles, and the cyclic collector's passes cost time
    try:
        for src in sources:
            try:
                stream = src.open()
            except OSError as err:
                raise InputError(f"{src.name}: cannot open ({err.strerror or err})") from None
            try:
                with stream:
                    adapter.feed(stream, src.name, collector)
            except (OSError, EOFError, zlib.error) as err:
                reason = "truncated compressed stream" if isinstance(err, EOFError) else "read error"
                agg.skip(Skipped(src.name, collector.last_line + 1, f"{reason}; the rest of the file was not read"))
        collector.close_all()
    finally:
        if gc_was_enabled:
            gc.enable()
    if agg.events == 0:
        where = ", ".join(s.name for s in sources[:3]) + (", ..." if len(sources) > 3 else "")
        n = agg.skipped_count
        detail = f" ({n} line{'s' if n != 1 else ''} skipped)" if n else ""
        raise InputError(f"{where}: no usable events{detail}")
    return agg.report(tuple(s.name for s in sources))

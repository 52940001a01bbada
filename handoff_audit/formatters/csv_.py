"""CSV report: one row per finding, the JSON report's finding fields as columns.

Cells that a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or
carriage return) get a leading apostrophe, as the OWASP guidance on CSV injection advises; ``sent``
and ``received`` are JSON-encoded so that ``"12"`` and ``12`` stay apart.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from handoff_audit.models import FINDING_FIELDS, Report

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    """One CSV cell, neutralised against formula injection."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _json_cell(value: Any) -> str:
    return cell(orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())


def render(report: Report) -> str:
    """Header and one row per finding, CRLF-free (``\\n``) line ends."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(FINDING_FIELDS)
    for f in report.findings:
        row = f.to_dict()
        writer.writerow(
            _json_cell(row[k]) if k in ("sent", "received") else cell(row[k]) for k in FINDING_FIELDS
        )
    return buf.getvalue()

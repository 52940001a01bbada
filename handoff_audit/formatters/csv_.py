"""CSV report: one row per finding, the JSON report's finding fields as columns.

Cells that a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or
carriage return) get a leading apostrophe, as the OWASP guidance on CSV injection advises; ``sent``
and ``received`` are JSON-encoded so that ``"12"`` and ``12`` stay apart, and a JSON number there
(``-5``) is left as it is: a number cannot be a formula. Rows end in CRLF (RFC 4180), so that any cell
holding a line break or a carriage return is quoted.
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
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text if type(value) in (int, float) else cell(text)


def render(report: Report) -> str:
    """Header and one row per finding."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(FINDING_FIELDS)
    for f in report.findings:
        row = f.to_dict()
        writer.writerow(
            _json_cell(row[k]) if k in ("sent", "received") else cell(row[k]) for k in FINDING_FIELDS
        )
    return buf.getvalue()

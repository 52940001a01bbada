"""CSV report: one row per finding, the JSON report's finding fields as columns.

Trace text is neutralised against CSV (formula) injection as the OWASP guidance on CSV injection
advises, and made printable:

- a cell whose first character, after any spaces, would start a formula (``=``, ``+``, ``-``, ``@``,
  or their full-width forms ``＝ ＋ － ＠``) gets a leading apostrophe, so a spreadsheet shows it as
  text;
- control characters (tab, carriage return, line feed, NUL, ESC and the rest of C0 and C1) and
  bidirectional overrides are written as visible escapes (``\\x09``, ``\\u202e``), as in the terminal
  report, so no cell starts with a tab or a carriage return and no cell holds a line break;
- a spreadsheet set to split on ``;`` would start a new cell after one, so inside a cell a formula
  character that follows ``;`` also gets an apostrophe (``a;'=1+1``); in ``sent`` and ``received``,
  which are JSON, ``;`` is written ``\\u003b`` instead, which keeps the JSON exact.

``sent`` and ``received`` are JSON-encoded so that ``"12"`` and ``12`` stay apart; a JSON number there
(``-5``) is left as it is: a number cannot be a formula. Rows end in CRLF (RFC 4180). The JSON report
carries every value exactly; this one is for reading.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import orjson

from handoff_audit.formatters._text import json_safe, printable
from handoff_audit.models import FINDING_FIELDS, Report

FORMULA_START = "=+-@\uff1d\uff0b\uff0d\uff20"
_AFTER_SEMICOLON = re.compile(f";(\\s*)(?=[{re.escape(FORMULA_START)}])")


_FORMULA_CHARS = frozenset(FORMULA_START)


def cell(value: Any) -> str:
    """One CSV cell of text, neutralised against formula injection and made printable."""
    text = printable("" if value is None else str(value))
    if ";" in text:
        text = _AFTER_SEMICOLON.sub(r";\1'", text)
    return "'" + text if text.lstrip()[:1] in _FORMULA_CHARS else text


def _json_cell(value: Any) -> str:
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if type(value) in (int, float):
        return text
    # C0 controls are escaped by the encoder; the rest become \uXXXX, the same JSON value.
    # A JSON text that is not a number starts with a quote, a bracket, a brace or a letter.
    return json_safe(text).replace(";", "\\u003b")


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

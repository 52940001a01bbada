"""Make trace text safe to show: nothing from a trace may act as markup or a terminal control."""

from __future__ import annotations

import re
from typing import Any

import orjson

# C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional controls that can
# reorder what a reader sees.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Replace control characters with visible escapes (``\\x1b``, ``\\u202e``)."""
    # Every character the pattern matches is one ``str.isprintable`` refuses (a test checks all of
    # them), so most text is returned after one scan in C.
    return text if text.isprintable() else _UNSAFE.sub(_escape, text)


# What JSON may carry raw but a terminal would act on: DEL, C1 controls, line and paragraph
# separators, and the bidirectional controls (orjson escapes C0 itself).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def json_safe(text: str) -> str:
    """JSON text with the characters above written as ``\\uXXXX`` escapes: the same JSON value."""
    return text if text.isprintable() else _JSON_UNSAFE.sub(_json_escape, text)


def _json_escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def json_text(value: Any) -> str:
    """A value as compact JSON with sorted keys (strings quoted), escaped for display."""
    return printable(orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())


def plural(n: int, noun: str) -> str:
    """``1 line``, ``2 lines``, with thousands separators."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "\u2026"

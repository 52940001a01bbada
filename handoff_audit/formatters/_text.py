"""Make trace text safe to show: nothing from a trace may act as markup or a terminal control."""

from __future__ import annotations

import re
from typing import Any

import orjson

# Format characters (Unicode category Cf): invisible, yet they change what a reader sees. Among them
# the bidirectional controls, which reorder text, and the zero-width and tag characters, which can make
# two names look alike or hide words ("ad\u200bmin" shows as "admin"). All of them through Unicode 15;
# a test checks the list against the running Python's Unicode data.
_FORMAT = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
# C0 and C1 controls, DEL, line and paragraph separators, and the format characters.
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_FORMAT}]")


def printable(text: str) -> str:
    """Replace control and format characters with visible escapes (``\\x1b``, ``\\u202e``, ``\\u200b``)."""
    # Every character the pattern matches is one ``str.isprintable`` refuses (a test checks all of
    # them), so most text is returned after one scan in C.
    return text if text.isprintable() else _UNSAFE.sub(_escape, text)


# What JSON may carry raw but a terminal would act on or a reader would not see: DEL, C1 controls,
# line and paragraph separators, and the format characters (orjson escapes C0 itself).
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f\u2028\u2029{_FORMAT}]")


def json_safe(text: str) -> str:
    """JSON text with the characters above written as ``\\uXXXX`` escapes: the same JSON value."""
    return text if text.isprintable() else _JSON_UNSAFE.sub(_json_escape, text)


def has_unsafe(text: str) -> bool:
    """Whether ``text`` holds a character ``json_safe`` escapes (C0 controls, line feed included, aside)."""
    return not text.isprintable() and _JSON_UNSAFE.search(text) is not None


def _json_escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    if c < 0x10000:
        return f"\\u{c:04x}"
    c -= 0x10000  # JSON writes a character beyond the BMP as its UTF-16 surrogate pair
    return f"\\u{0xD800 + (c >> 10):04x}\\u{0xDC00 + (c & 0x3FF):04x}"


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    if c < 0x100:
        return f"\\x{c:02x}"
    return f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}"


def json_text(value: Any) -> str:
    """A value as compact JSON with sorted keys (strings quoted), escaped for display."""
    return printable(orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())


def plural(n: int, noun: str) -> str:
    """``1 line``, ``2 lines``, with thousands separators."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "\u2026"

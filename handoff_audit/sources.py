"""Turn command-line arguments into readable byte streams: files, directories, ``-`` for stdin."""

from __future__ import annotations

import gzip
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from handoff_audit.errors import InputError

TRACE_SUFFIXES = (".jsonl", ".jsonl.gz")
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Source:
    """One input: the name shown in reports and how to open it."""

    name: str
    path: str | None  # None means stdin

    def open(self) -> BinaryIO:
        """Open the input for binary reading.

        Gzip (found by its magic bytes) is decompressed as it streams; a UTF-8 byte-order mark at the
        start is passed over.
        """
        raw: Any = sys.stdin.buffer if self.path is None else open(self.path, "rb")
        stream: Any = raw if hasattr(raw, "peek") else io.BufferedReader(raw)
        if stream.peek(2)[:2] == GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
        if stream.peek(3)[:3] == UTF8_BOM:
            stream.read(3)  # a byte-order mark is not part of the first line
        return stream


def expand(arguments: list[str]) -> list[Source]:
    """Resolve arguments to sources; directories are searched recursively, in sorted order.

    Raises InputError for a path that does not exist or a directory that cannot be listed.
    """
    sources: list[Source] = []
    for arg in arguments:
        if arg == "-":
            sources.append(Source("<stdin>", None))
        elif os.path.isdir(arg):
            sources.extend(Source(p, p) for p in _walk(arg))
        elif os.path.exists(arg):
            sources.append(Source(arg, arg))
        else:
            raise InputError(f"{arg}: no such file or directory")
    return sources


def _walk(top: str) -> Iterator[str]:
    def fail(err: OSError) -> None:
        raise InputError(f"{err.filename or top}: cannot read directory ({err.strerror})")

    found: list[str] = []
    for root, dirs, files in os.walk(top, onerror=fail):
        dirs.sort()
        found.extend(os.path.join(root, f) for f in files if f.endswith(TRACE_SUFFIXES))
    yield from sorted(found)

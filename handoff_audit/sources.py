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

TRACE_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".json.gz", ".json.zst")
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Source:
    """One input: the name shown in reports and how to open it."""

    name: str
    path: str | None  # None means stdin

    def open(self) -> BinaryIO:
        """Open the input for binary reading.

        Gzip and Zstandard (found by their magic bytes) are decompressed as they stream; a UTF-8
        byte-order mark at the start is passed over.
        """
        raw: Any = sys.stdin.buffer if self.path is None else open(self.path, "rb")
        stream: Any = raw if hasattr(raw, "peek") else io.BufferedReader(raw)
        head = stream.peek(4)[:4]
        if head[:2] == GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
        elif head == ZSTD_MAGIC:
            stream = io.BufferedReader(ZstdReader(stream), 1 << 20)
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


class ZstdReader(io.RawIOBase):
    """Zstandard frames decompressed as they are read; EOFError if the input ends inside a frame.

    (The zstandard package's own stream reader ends quietly at a truncated frame, which would drop the
    rest of the file without a word.)
    """

    CHUNK = 1 << 20

    def __init__(self, source: Any) -> None:
        import zstandard  # only when a Zstandard input is read

        self._source = source
        self._new = zstandard.ZstdDecompressor().decompressobj
        self._error = zstandard.ZstdError
        self._dobj = self._new()
        self._pending = b""
        self._in_frame = False

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return int(self._source.fileno())

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            data = self._source.read(self.CHUNK)
            if not data:
                if self._in_frame:
                    raise EOFError("compressed stream ended before the end of its frame")
                return 0
            self._pending = self._decompress(data)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            try:
                out.append(self._dobj.decompress(data))
            except self._error as err:
                raise OSError(f"corrupt Zstandard data ({err})") from None
            self._in_frame = not self._dobj.eof
            data = self._dobj.unused_data if self._dobj.eof else b""
            if self._dobj.eof:
                self._dobj = self._new()
        return b"".join(out)

    def close(self) -> None:
        self._source.close()
        super().close()

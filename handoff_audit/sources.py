"""Turn command-line arguments into readable byte streams: files, directories, ``-`` for stdin.

Reading is bounded: ``read_lines`` never holds more than one line of at most ``max_line_bytes``
(plus one read block), and a compressed input stops at ``max_decompressed_bytes`` or when it expands
more than ``max_compression_ratio`` times (see ``config.Limits``).
"""

from __future__ import annotations

import io
import os
import stat
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any, BinaryIO

from handoff_audit.config import RATIO_FLOOR, Limits, format_size
from handoff_audit.errors import InputError, LimitError, UsageError

TRACE_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".json.gz", ".json.zst")
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
UTF8_BOM = b"\xef\xbb\xbf"
BLOCK = 1 << 18  # bytes asked for per read


class UnreadLine(bytes):
    """Stands in for a line that was not read, with ``reason`` saying why.

    Its one byte (NUL) is not JSON to any parser, nor the start of any format that is sniffed, and
    orjson refuses a bytes subclass outright, so a reader that does not know this class still skips
    the line rather than reading something into it.
    """

    reason: str

    def __new__(cls, reason: str) -> UnreadLine:
        line = super().__new__(cls, b"\x00")
        line.reason = reason
        return line


@dataclass(frozen=True, slots=True)
class Source:
    """One input: the name shown in reports and how to open it.

    ``problem`` is set for a file found in a directory that is not read at all (say, a FIFO): the
    reader lists it as skipped with that reason instead of opening it.
    """

    name: str
    path: str | None  # None means stdin
    problem: str | None = None

    def open(self) -> BinaryIO:
        """Open the input for binary reading.

        Gzip and Zstandard (found by their magic bytes) are decompressed as they stream; a UTF-8
        byte-order mark at the start is passed over.
        """
        raw: Any = sys.stdin.buffer if self.path is None else open(self.path, "rb")
        stream: Any = raw if hasattr(raw, "peek") else io.BufferedReader(raw)
        head = stream.peek(4)[:4]
        if head[:2] == GZIP_MAGIC:
            stream = io.BufferedReader(GzipReader(stream), 1 << 20)
        elif head == ZSTD_MAGIC:
            stream = io.BufferedReader(ZstdReader(stream), 1 << 20)
        if stream.peek(3)[:3] == UTF8_BOM:
            stream.read(3)  # a byte-order mark is not part of the first line
        return stream


class _Decompressing(io.RawIOBase):
    """A compressed stream decompressed as it is read; EOFError if it ends inside a member or frame.

    Everything decompressed before corrupt data is handed out first, and the error is raised by the
    read after it. Reads are small while the data expands a lot: counting compressed bytes not yet
    used would let a bomb expand a thousandfold past the ratio limit before it is seen.
    """

    CHUNK = 1 << 20
    SMALL = 256
    CUT = "compressed stream ended before its end"  # the EOFError's message

    def __init__(self, source: Any) -> None:
        self._source = source
        self.count = 0  # compressed bytes read, for the compression ratio
        self._chunk = self.SMALL  # grows as long as the data expands little
        self._pending = b""
        self._at = 0  # how much of _pending was handed out
        self._inside = False  # bytes of a member or frame read, its end not yet
        self._failed: BaseException | None = None  # corrupt data met: raised once _pending is handed out

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return int(self._source.fileno())

    def readinto(self, buffer: Any) -> int:
        while self._at >= len(self._pending):
            if self._failed is not None:
                raise self._failed
            data = self._source.read(self._chunk)
            if not data:
                if self._inside:
                    raise EOFError(self.CUT)
                return 0
            self.count += len(data)
            self._pending, self._at = self._decompress(data), 0
            if len(self._pending) > 64 * len(data):
                self._chunk = max(self.SMALL, self._chunk // 8)
            else:
                self._chunk = min(self.CHUNK, self._chunk * 2)
        n = min(len(buffer), len(self._pending) - self._at)
        buffer[:n] = memoryview(self._pending)[self._at : self._at + n]
        self._at += n
        return n

    def _decompress(self, data: bytes) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        self._source.close()
        super().close()


class GzipReader(_Decompressing):
    """Gzip members one after another, as ``gzip`` joins them (zero bytes between or after members are
    padding).

    Unlike ``gzip.GzipFile``, it keeps what was decompressed before corrupt data (see the base class).
    A recorder that died without closing its member, followed by one that appended a member of its
    own, leaves such a file: its first lines are read, then the read error is reported where they end,
    instead of the whole file being lost.
    """

    CHUNK = 1 << 16
    SMALL = 4096  # deflate expands at most about 1,000 times
    CUT = "compressed file ended before the end of its gzip member"

    def __init__(self, source: Any) -> None:
        super().__init__(source)
        self._dobj = zlib.decompressobj(wbits=31)  # zlib reads the gzip header and checks the trailer

    def _decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            if not self._inside:
                data = data.lstrip(b"\x00")  # padding after a member
                if not data:
                    break
                self._inside = True
            before = self._dobj.copy()
            try:
                out.append(self._dobj.decompress(data))
            except zlib.error as err:
                # What ``data`` held before the corrupt byte, fed again in small pieces.
                self._dobj = before
                out.append(self._salvage(data))
                self._failed = err
                break
            if not self._dobj.eof:
                break
            data = self._dobj.unused_data
            self._dobj = zlib.decompressobj(wbits=31)
            self._inside = False
        return b"".join(out)

    def _salvage(self, data: bytes) -> bytes:
        """What ``data`` decompresses to up to its first corrupt byte: fed 64 bytes at a time, then the
        piece that fails byte by byte (only after an error, so the copies cost nothing otherwise)."""
        out = []
        for i in range(0, len(data), 64):
            before = self._dobj.copy()
            try:
                out.append(self._dobj.decompress(data[i : i + 64]))
            except zlib.error:
                self._dobj = before
                for j in range(i, min(i + 64, len(data))):
                    try:
                        out.append(self._dobj.decompress(data[j : j + 1]))
                    except zlib.error:
                        break
                break
            if self._dobj.eof:
                break  # a whole member ended: the corrupt bytes come after it
        return b"".join(out)


def read_lines(stream: BinaryIO, limits: Limits) -> Iterator[bytes]:
    """The lines of ``stream`` without their ``\\n``, as a file iterates them but bounded by ``limits``.

    A line longer than ``limits.max_line_bytes`` is dropped as it is read and comes out as an
    ``UnreadLine``. Reading a compressed input past its limits raises LimitError after the lines read
    so far. The lines are split a block at a time and handed on by ``chain``, so the per-line cost is
    that of iterating a list.
    """
    return chain.from_iterable(_blocks(stream, limits))


def _blocks(stream: BinaryIO, limits: Limits) -> Iterator[list[bytes]]:
    read = getattr(stream, "read1", stream.read)
    max_line = limits.max_line_bytes or sys.maxsize
    too_long = UnreadLine(f"line longer than {format_size(max_line)}")
    counted = _compressed_side(stream)
    head: list[bytes] = []  # the current line's pieces so far
    head_len = 0
    dropping = False  # the current line is over the limit; its bytes are let go as they come
    total = 0
    while block := read(BLOCK):
        total += len(block)
        lines = block.split(b"\n")
        tail = lines.pop()  # the start of a line whose end is not read yet
        if lines:
            if dropping:
                lines[0] = too_long
            elif head:
                lines[0] = b"".join([*head, lines[0]]) if head_len + len(lines[0]) <= max_line else too_long
            if len(block) > max_line:  # only then can a line inside one block be too long
                lines = [too_long if len(x) > max_line else x for x in lines]
            yield lines
            head, head_len, dropping = [], 0, False
        if not dropping:
            if head_len + len(tail) > max_line:
                head, head_len, dropping = [], 0, True
            elif tail:
                head.append(tail)
                head_len += len(tail)
        if counted is not None:
            _check_expansion(total, counted.count, limits)
    if dropping:
        yield [too_long]
    elif head:
        yield [b"".join(head)]


def _compressed_side(stream: BinaryIO) -> GzipReader | ZstdReader | None:
    """What counts the compressed bytes read under ``stream``, if it decompresses."""
    inner = getattr(stream, "raw", None)
    return inner if isinstance(inner, (GzipReader, ZstdReader)) else None


def _check_expansion(total: int, compressed: int, limits: Limits) -> None:
    cap, ratio = limits.max_decompressed_bytes, limits.max_compression_ratio
    if cap and total > cap:
        raise LimitError(f"decompressed size over {format_size(cap)}")
    if ratio and total > RATIO_FLOOR and total > ratio * compressed:
        raise LimitError(f"expands more than {ratio} times when decompressed")


# What reading an input can raise, besides programming errors: the OS, a broken or cut compressed
# stream, a limit reached.
READ_ERRORS = (OSError, EOFError, zlib.error, LimitError)


def read_failure(err: BaseException) -> str:
    """Why the rest of an input could not be read, for a skip's reason."""
    if isinstance(err, LimitError):
        return str(err)
    return "truncated compressed stream" if isinstance(err, EOFError) else "read error"


def open_failure(err: BaseException) -> str:
    """Why an input could not be read at all (a skip at line 0)."""
    strerror = getattr(err, "strerror", None)
    return f"cannot open ({strerror})" if strerror else f"{read_failure(err)}; the file was not read"


def inputs(arguments: list[str] | tuple[str, ...]) -> list[Source]:
    """``expand``, with InputError when the arguments name no trace file at all."""
    sources = expand(list(arguments))
    if not sources:
        raise InputError(f"{', '.join(arguments)}: no trace files (*.jsonl, *.json and their .gz or .zst forms) found")
    return sources


def expand(arguments: list[str]) -> list[Source]:
    """Resolve arguments to sources; directories are searched recursively, in sorted order, and a file
    reached twice is read once.

    Raises InputError for a path that does not exist or a directory that cannot be listed. A named
    path that exists but cannot be read (a symlink loop, say) is a source: reading it fails, and that
    is reported as a skip.
    """
    sources: list[Source] = []
    if arguments.count("-") > 1:
        raise UsageError("- (standard input) is named more than once; it can be read only once")
    for arg in arguments:
        if arg == "-":
            sources.append(Source("<stdin>", None))
        elif os.path.isdir(arg):
            sources.extend(_walk(arg))
        elif os.path.lexists(arg):
            sources.append(Source(display_name(arg), arg))
        else:
            raise InputError(f"{display_name(arg)}: no such file or directory")
    return _once(sources)


def _once(sources: list[Source]) -> list[Source]:
    """Each file once, where it first comes: a file named twice, or named beside a directory that
    holds it, would otherwise be read twice and each of its traces seen twice."""
    seen: set[str] = set()
    out = []
    for src in sources:
        if src.path is not None:
            key = os.path.realpath(src.path)
            if key in seen:
                continue
            seen.add(key)
        out.append(src)
    return out


def display_name(path: str) -> str:
    """A path as text: bytes that are not UTF-8 (kept by the OS as surrogates) become ``\\xff``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _walk(top: str) -> Iterator[Source]:
    def fail(err: OSError) -> None:
        raise InputError(f"{display_name(err.filename or top)}: cannot read directory ({err.strerror})")

    found: list[str] = []
    for root, dirs, files in os.walk(top, onerror=fail):  # symlinked directories are not followed
        dirs.sort()
        found.extend(os.path.join(root, f) for f in files if f.endswith(TRACE_SUFFIXES))
    for path in sorted(found):
        yield Source(display_name(path), path, _not_a_file(path))


def _not_a_file(path: str) -> str | None:
    """Why a file found in a directory is not read; None to read it.

    A FIFO or device would block or never end. A link that leads nowhere is read, so that the reason
    it cannot be opened is reported.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else "not a regular file"


class ZstdReader(_Decompressing):
    """Zstandard frames one after another; corrupt data keeps what came before it (see the base class).

    (The zstandard package's own stream reader ends quietly at a truncated frame, which would drop the
    rest of the file without a word.)
    """

    SMALL = 256  # bytes read while the data expands a lot: a bomb's output stays a few MiB per read
    CUT = "compressed stream ended before the end of its frame"

    def __init__(self, source: Any) -> None:
        import zstandard  # only when a Zstandard input is read

        super().__init__(source)
        self._new = zstandard.ZstdDecompressor().decompressobj
        self._error = zstandard.ZstdError
        self._dobj = self._new()

    def _decompress(self, data: bytes) -> bytes:
        """What ``data`` decompresses to. Corrupt data (junk after the last frame, say) ends the output
        there and is raised by the read after it: what came before it in ``data`` is kept."""
        out = []
        while data:
            try:
                out.append(self._dobj.decompress(data))
            except self._error as err:
                self._failed = OSError(f"corrupt Zstandard data ({err})")
                break
            self._inside = not self._dobj.eof
            data = self._dobj.unused_data if self._dobj.eof else b""
            if self._dobj.eof:
                self._dobj = self._new()
        return b"".join(out)

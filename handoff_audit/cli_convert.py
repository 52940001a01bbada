"""``handoff-audit convert``: write any readable trace format as native JSON Lines."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from collections.abc import Callable
from typing import Annotated, BinaryIO, Optional, TypeVar

import typer

from handoff_audit.cli import (
    DebugOpt, InputFormat, InputFormatOpt, PathsArg, QuietOpt, StrictOpt, _file_mode, _guard, _note, app,
    output_error,
)
from handoff_audit.errors import HandoffAuditError, InputError
from handoff_audit.formatters._text import plural, printable

T = TypeVar("T")

ConvertOutputOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--output",
        "-o",
        help="Write the native events to this file (created only after the run succeeded) instead of stdout.",
        dir_okay=False,
    ),
]


@app.command()
def convert(
    paths: PathsArg,
    output: ConvertOutputOpt = None,
    input_format: InputFormatOpt = InputFormat.auto,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write the traces in PATHS (any readable format) as native JSON Lines events.

    Skipped lines are listed on stderr. Exit codes: 0 written, 2 usage or input error (no usable
    event, or a skipped line under --strict).
    """
    from handoff_audit.convert import Conversion, OutputFailed, convert as run_convert

    def work() -> int:
        def into(fh: BinaryIO) -> Conversion:
            result = Conversion(fh.write)
            run_convert(tuple(paths), result, input_format.adapter())
            fh.flush()
            for item in result.skipped:
                _note(f"handoff-audit: skipped {printable(item.file)}:{item.line}: {printable(item.reason)}")
            # Raised here, an error leaves no output file behind.
            if result.events == 0:
                raise InputError(f"{', '.join(paths)}: no usable events")
            if strict and result.skipped:
                raise InputError(f"{plural(len(result.skipped), 'line')} skipped; --strict forbids skipped lines")
            return result

        if output is None:
            try:
                result = into(sys.stdout.buffer)
            except OutputFailed as failed:
                raise output_error(failed.error) from None
            except OSError as err:  # the last flush; reading errors are the conversion's own skips
                raise output_error(err) from None
        else:
            result = _write_file(into, output)
        if not quiet:
            _note(f"handoff-audit: {plural(result.events, 'event')} written, {plural(len(result.skipped), 'line')} skipped")
        return 0

    raise typer.Exit(_guard(work, debug))


def _write_file(into: Callable[[BinaryIO], T], output: Path) -> T:
    """Write a regular file as a sibling renamed into place (it appears whole or not at all), with the
    mode a plain open() would give it; write a device or pipe (/dev/null, a FIFO) through, never
    replacing it. Reading errors are the conversion's own skips, so an OSError here is the output's."""
    from handoff_audit.convert import OutputFailed
    try:
        if output.exists() and not output.is_file():
            with open(output, "wb") as fh:
                return into(fh)
        mode = _file_mode(output)
        fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                result = into(fh)
            os.chmod(tmp, mode)
            os.replace(tmp, output)
        except BaseException:
            os.unlink(tmp)
            raise
        return result
    except OutputFailed as failed:
        raise HandoffAuditError(f"{output}: cannot write ({failed.error.strerror or failed.error})") from None
    except OSError as err:
        raise HandoffAuditError(f"{output}: cannot write ({err.strerror or err})") from None

"""The command line: flags -> config -> pipeline.run -> formatter -> exit code. Nothing else."""

from __future__ import annotations

import enum
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from handoff_audit import __version__, cli_ci
from handoff_audit.config import DEFAULT_IDLE_LINES, DEPTH_CEILING, MAX_JOBS, Limits, ScanConfig, format_size, parse_size
from handoff_audit.errors import ExitCode, HandoffAuditError, InputError, OutputError
from handoff_audit.formatters._text import plural, printable

if TYPE_CHECKING:
    from handoff_audit.models import Report

app = typer.Typer(
    name="handoff-audit",
    help="Audit recorded traces of multi-agent LLM systems, handoff by handoff.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # tracebacks with locals could print trace data
    rich_markup_mode=None,
)


class Format(str, enum.Enum):
    """Report formats for stdout and --output."""

    table = "table"
    json = "json"
    csv = "csv"
    junit = "junit"
    markdown = "markdown"


PathsArg = Annotated[
    list[str],
    typer.Argument(
        help="Trace files, directories (searched for *.jsonl, *.json and their .gz or .zst forms), or - for stdin.",
        show_default=False,
        metavar="PATHS",
    ),
]
FormatOpt = Annotated[
    Optional[Format],
    typer.Option(
        "--format",
        "-f",
        help="Report format on stdout (default table); with --output, stdout gets no report unless '-o -' is given.",
        envvar="HANDOFF_AUDIT_FORMAT",
        show_default=False,
    ),
]
OutputOpt = Annotated[  # a single report file, for the investigation commands
    Optional[Path],
    typer.Option(
        "--output",
        "-o",
        help="Write the report to this file (created only after the run succeeded) instead of stdout.",
        dir_okay=False,
    ),
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Exit 2 if any input line had to be skipped.")]
ExitZeroOpt = Annotated[bool, typer.Option("--exit-zero", help="Report findings but exit 0.")]
DebugOpt = Annotated[
    bool, typer.Option("--debug", help="Show a traceback on an internal error.", envvar="HANDOFF_AUDIT_DEBUG")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No summary line on stderr.")]
ScanQuietOpt = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="No summary line, verdict or progress bar on stderr; errors are still printed."),
]
class InputFormat(str, enum.Enum):
    """Input formats for --input-format: auto tells each file's format by its first lines."""

    auto = "auto"
    native = "native"
    otlp_json = "otlp-json"
    agents_sdk = "agents-sdk"
    otel_console = "otel-console"

    def adapter(self) -> str | None:
        return None if self is InputFormat.auto else self.value


InputFormatOpt = Annotated[
    InputFormat,
    typer.Option(
        "--input-format",
        "-i",
        help="Read every input as this format instead of telling each file's format by its first lines.",
        envvar="HANDOFF_AUDIT_INPUT_FORMAT",
    ),
]
IdleOpt = Annotated[
    int,
    typer.Option(
        "--idle-lines",
        min=1,
        help="Close a trace once this many input lines have been read without an event of its own.",
    ),
]
ProgressOpt = Annotated[
    Optional[bool],
    typer.Option(
        "--progress/--no-progress",
        help="Show a progress bar on stderr (default: when stderr is a terminal, the input is 64 MiB or more, and not --quiet).",
        show_default=False,
    ),
]
JobsOpt = Annotated[
    Optional[int],
    typer.Option(
        "--jobs",
        "-j",
        min=0,
        max=MAX_JOBS,
        help="Worker processes, each auditing a share of the input (a byte range of uncompressed native "
        f"files, else a share of the traces); 0: one per CPU; at most {MAX_JOBS}. Default: one per CPU for "
        "inputs of 64 MiB or more, else 1. The report is the same whatever the number.",
        show_default=False,
    ),
]

# Filters shared by scan, show, lineage and stats: they change what is reported, never what is read.
TraceOpt = Annotated[
    Optional[list[str]],
    typer.Option("--trace", help="Report only this trace (repeatable); an id ending in * is a prefix.", metavar="ID"),
]
AgentOpt = Annotated[
    Optional[list[str]], typer.Option("--agent", help="Report only what involves this agent (repeatable).", metavar="NAME")
]
EdgeOpt = Annotated[
    Optional[list[str]], typer.Option("--edge", help="Report only handoffs on this edge (repeatable).", metavar="FROM:TO")
]
ClassOpt = Annotated[
    Optional[list[str]], typer.Option("--class", help="Report only findings of this class (repeatable).", metavar="CLASS")
]
KindOpt = Annotated[
    Optional[list[str]],
    typer.Option("--kind", help="Report only findings of this kind or rule code (repeatable).", metavar="KIND"),
]
SinceOpt = Annotated[
    Optional[str],
    typer.Option("--since", help="Report only what happened at or after this time (RFC 3339 or Unix seconds).", metavar="TIME"),
]
UntilOpt = Annotated[
    Optional[str], typer.Option("--until", help="Report only what happened before this time.", metavar="TIME")
]


ContractsOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--contracts",
        help="Check every handoff against this contract file (YAML or JSON; see docs/contracts.md).",
        dir_okay=False,
        envvar="HANDOFF_AUDIT_CONTRACTS",
    ),
]
RequireContractsOpt = Annotated[
    bool,
    typer.Option("--require-contracts", help="With --contracts: a handoff on an edge no contract covers is a finding."),
]
# Limits on what one input may make the reader hold or do (see config.Limits and docs/security.md).
_LIMITS = Limits()
MaxLineOpt = Annotated[
    int,
    typer.Option(
        "--max-line-bytes",
        parser=parse_size,
        metavar="SIZE",
        help=f"Skip lines longer than this (e.g. 64M; 0 for no limit). [default: {format_size(_LIMITS.max_line_bytes)}]",
        show_default=False,
    ),
]
MaxDepthOpt = Annotated[
    int,
    typer.Option(
        "--max-depth",
        min=1,
        max=DEPTH_CEILING,
        help="Skip handoffs, outcomes and tool calls whose objects and arrays nest deeper than this.",
    ),
]
MaxDecompressedOpt = Annotated[
    int,
    typer.Option(
        "--max-decompressed-bytes",
        parser=parse_size,
        metavar="SIZE",
        help="Stop reading a compressed input once it has expanded to this much (0 for no limit). "
        f"[default: {format_size(_LIMITS.max_decompressed_bytes)}]",
        show_default=False,
    ),
]
MaxRatioOpt = Annotated[
    int,
    typer.Option(
        "--max-compression-ratio",
        min=0,
        help="Stop reading a compressed input that expands more than this many times (0 for no limit).",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"handoff-audit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Audit recorded traces of multi-agent LLM systems, handoff by handoff."""


@app.command()
def scan(
    paths: PathsArg,
    fmt: FormatOpt = None,
    output: cli_ci.OutputsOpt = None,
    strict: StrictOpt = False,
    exit_zero: ExitZeroOpt = False,
    idle_lines: IdleOpt = DEFAULT_IDLE_LINES,
    jobs: JobsOpt = None,
    show_progress: ProgressOpt = None,
    input_format: InputFormatOpt = InputFormat.auto,
    contracts: ContractsOpt = None,
    require_contracts: RequireContractsOpt = False,
    quiet: ScanQuietOpt = False,
    debug: DebugOpt = False,
    trace: TraceOpt = None,
    agent: AgentOpt = None,
    edge: EdgeOpt = None,
    class_: ClassOpt = None,
    kind: KindOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    # CI gate: thresholds, baselines, the settings file (handoff_audit/cli_ci.py)
    fail_on: cli_ci.FailOnOpt = None,
    ignore: cli_ci.IgnoreOpt = None,
    max_failure_rate: cli_ci.MaxFailureRateOpt = None,
    min_end_to_end_success: cli_ci.MinEndToEndOpt = None,
    baseline: cli_ci.BaselineOpt = None,
    baseline_tolerance: cli_ci.BaselineToleranceOpt = None,
    write_baseline: cli_ci.WriteBaselineOpt = None,
    config: cli_ci.ConfigOpt = None,
    max_line_bytes: MaxLineOpt = _LIMITS.max_line_bytes,
    max_depth: MaxDepthOpt = _LIMITS.max_depth,
    max_decompressed_bytes: MaxDecompressedOpt = _LIMITS.max_decompressed_bytes,
    max_compression_ratio: MaxRatioOpt = _LIMITS.max_compression_ratio,
) -> None:
    """Pair every handoff in PATHS, diff what was sent against what was received, and report findings.

    Exit codes: 0 passed, 1 findings or rates over the thresholds, 2 usage or input error.
    With filters, the report, the thresholds and the exit code cover only what the filters select.

    \b
    Example: handoff-audit scan traces/ --format json -o report.json
    """
    from handoff_audit import api
    from handoff_audit.filters import parse_filter, run_filtered
    from handoff_audit.formatters import render
    from handoff_audit.policy import evaluate, exit_code, verdict_block

    def work() -> int:
        ci = cli_ci.resolve(
            config=config, fmt=None if fmt is None else fmt.value, outputs=output, fail_on=fail_on, ignore=ignore,
            max_failure_rate=max_failure_rate, min_end_to_end_success=min_end_to_end_success, baseline=baseline,
            baseline_tolerance=baseline_tolerance, write_baseline=write_baseline, strict=strict,
        )
        base = api.load_baseline(ci.baseline) if ci.baseline is not None else None
        bar = False if show_progress is None and quiet else show_progress
        flt = parse_filter(trace, agent, edge, class_, kind, since, until)
        contract_set = None
        if contracts is not None:
            from handoff_audit.contracts import load_contracts

            contract_set = load_contracts(str(contracts))
        scan_config = ScanConfig(
            tuple(paths), idle_lines=idle_lines, jobs=jobs, progress=bar, input_format=input_format.adapter(),
            ignore=ci.ignore, keep_traces=ci.keep_traces, contracts=contract_set, require_contracts=require_contracts,
            limits=Limits(max_line_bytes, max_depth, max_decompressed_bytes, max_compression_ratio),
        )
        report = run_filtered(scan_config, flt) if flt.active else api.run(scan_config)
        if ci.strict and report.summary.skipped:
            first = report.skipped[0]
            more = report.summary.skipped - 1
            raise InputError(
                f"{first.file}:{first.line}: {first.reason}" + (f" (and {more} more skipped lines)" if more else "")
                + "; --strict forbids skipped lines"
            )
        report = api.judge(report, ci.thresholds, base)
        texts = []
        for out_fmt, target in ci.outputs:  # render everything before writing anything
            to_tty = target == cli_ci.STDOUT and sys.stdout.isatty()
            color = to_tty and "NO_COLOR" not in os.environ
            texts.append((render(out_fmt, report, width=_width(to_tty), color=color), target))
        for text, target in texts:
            _emit(text, None if target == cli_ci.STDOUT else Path(target))
        if not quiet:
            _note(_summary_line(report))
            for line in verdict_block(report.verdict or evaluate(report), exit_zero=exit_zero):
                _note(line)
        return exit_code(report.verdict or evaluate(report), exit_zero=exit_zero)

    raise typer.Exit(_guard(work, debug))


@app.command()
def compare(
    old: cli_ci.OldReportArg,
    new: cli_ci.NewReportArg,
    tolerance: cli_ci.ToleranceOpt = "0",
    debug: DebugOpt = False,
) -> None:
    """Compare two JSON reports: what got better and worse per rate, edge and class, and fingerprint.

    Exit codes: 0 no regression, 1 a regression (more findings of a fingerprint, or a worse rate), 2 error.
    """
    raise typer.Exit(_guard(lambda: cli_ci.compare(old, new, tolerance), debug))


def _guard(work, debug: bool) -> int:
    """Run a command body: our errors become one line and exit 2; no traceback unless --debug."""
    try:
        code = int(work())
        write_stdout("")  # what is still buffered: its failure is the run's
        return code
    except OutputError as err:
        # Nothing more can reach standard output; the interpreter's own last flush must not fail too.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # a standard output without a file descriptor (io.UnsupportedOperation)
            pass
        if not err.closed_pipe:
            _note(f"handoff-audit: error: {err}")
        return ExitCode.ERROR
    except HandoffAuditError as err:
        _note(f"handoff-audit: error: {err}")
        return ExitCode.ERROR
    except KeyboardInterrupt:
        _note("handoff-audit: interrupted")
        return 130
    except (typer.Exit, typer.Abort):
        raise
    except Exception as err:
        if debug:
            import traceback

            traceback.print_exc()  # and still exit 2: an internal error is never a verdict
        else:
            # The message of an unexpected error may quote trace data: name the type only.
            _note(f"handoff-audit: internal error ({type(err).__name__}); run again with --debug for a traceback")
        return ExitCode.ERROR


def write_stdout(data: str | bytes) -> None:
    """Write ``data`` to standard output and flush it; OutputError if that cannot be done."""
    try:
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
        elif data:
            sys.stdout.write(data)
        sys.stdout.flush()
    except OSError as err:
        raise output_error(err) from None


def output_error(err: OSError) -> OutputError:
    """The OutputError for a failed write to standard output."""
    if isinstance(err, BrokenPipeError):
        return OutputError("standard output was closed", closed_pipe=True)
    return OutputError(f"standard output: cannot write ({err.strerror or err})")


def _width(to_tty: bool) -> int:
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) >= 40:
        return int(columns)
    return shutil.get_terminal_size((120, 24)).columns if to_tty else 120


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        write_stdout(text)
        return
    try:
        if output.exists() and not output.is_file():
            # A device or pipe (/dev/null, /dev/stdout, a FIFO): write through, never replace it.
            with open(output, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
            return
        # A regular file appears whole or not at all: write a sibling, then rename it into place.
        fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
            os.chmod(tmp, _file_mode(output))
            os.replace(tmp, output)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as err:
        raise HandoffAuditError(f"{output}: cannot write report ({err.strerror or err})") from None


def _file_mode(output: Path) -> int:
    """The mode a plain open() would give: the existing file's, else 0666 less the umask."""
    if output.exists():
        return stat.S_IMODE(output.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _note(line: str) -> None:
    # File names and reasons can hold control characters: one line, shown literally.
    sys.stderr.write(printable(line) + "\n")
    sys.stderr.flush()


def _summary_line(report: Report) -> str:
    s = report.summary
    by_class = ", ".join(f"{n} {c}" for c, n in s.findings_by_class.items())
    skipped = f", {plural(s.skipped, 'line')} skipped" if s.skipped else ""
    return (
        f"handoff-audit: {plural(s.traces, 'trace')}, {plural(s.handoffs, 'handoff')}, "
        f"{plural(s.findings, 'finding')} ({by_class})"
        f"{skipped}"
    )


def main() -> None:
    """Console-script entry point."""
    app()


from handoff_audit import cli_convert  # noqa: E402,F401  (registers the convert command)
from handoff_audit import cli_investigate  # noqa: E402  (show, lineage and stats live in their own module)

cli_investigate.register(app)
from handoff_audit.cli_contracts import contracts_app  # noqa: E402  (it uses the helpers above)

app.add_typer(contracts_app, name="contracts")

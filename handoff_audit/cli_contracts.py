"""The ``contracts`` commands: check a contract file, draft one from traces. Registered in cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from handoff_audit import cli as _cli
from handoff_audit.config import DEFAULT_IDLE_LINES, ScanConfig
from handoff_audit.formatters._text import plural, printable

contracts_app = typer.Typer(
    help="Check a contract file, or draft one from traces.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

ContractFileArg = Annotated[
    Path,
    typer.Argument(help="Contract file (YAML, or JSON by its .json suffix).", show_default=False, metavar="FILE"),
]


DraftOutputOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--output",
        "-o",
        help="Write the draft to this file (created only after the run succeeded; JSON if it ends in .json).",
        dir_okay=False,
    ),
]


@contracts_app.command("check")
def check(file: ContractFileArg, debug: _cli.DebugOpt = False) -> None:
    """Load and check a contract file without reading traces.

    Exit codes: 0 the file is usable, 2 it is not (one line naming file:line and key).
    """
    from handoff_audit.contracts import load_contracts

    def work() -> int:
        cs = load_contracts(str(file))
        schemas = sum((ec.input_schema is not None) + (ec.output_schema is not None) for ec in cs.edges)
        exprs = sum(len(ec.invariants) + len(ec.success) for ec in cs.edges)
        owner = f", outcome owner {printable(cs.outcome_owner)}" if cs.outcome_owner is not None else ""
        _cli.write_stdout(
            f"{printable(str(file))}: ok: {plural(len(cs.edges), 'edge contract')}, "
            f"{plural(schemas, 'schema')} and {plural(exprs, 'expression')} compiled{owner}\n"
        )
        return 0

    raise typer.Exit(_cli._guard(work, debug))


@contracts_app.command("infer")
def infer(
    paths: _cli.PathsArg,
    output: DraftOutputOpt = None,
    idle_lines: _cli.IdleOpt = DEFAULT_IDLE_LINES,
    quiet: _cli.QuietOpt = False,
    debug: _cli.DebugOpt = False,
) -> None:
    """Draft a contract file from the clean handoffs in PATHS (YAML; JSON when --output ends in .json).

    Every edge with a clean handoff gets a JSON Schema of the received states and a timeout_ms from the
    observed latencies; the agent that claimed every outcome, if one did, becomes the outcome owner.
    Exit codes: 0 drafted, 2 usage or input error.
    """
    from handoff_audit.infer import draft_contracts

    def work() -> int:
        as_json = output is not None and output.suffix.lower() == ".json"
        draft = draft_contracts(ScanConfig(tuple(paths), idle_lines=idle_lines), as_json=as_json)
        _cli._emit(draft.text, output)
        if draft.skipped:  # shown even with --quiet: the draft was drawn without those lines
            from handoff_audit.formatters.views import skipped_sentence

            _cli._note(f"handoff-audit: {skipped_sentence(draft.skipped, draft.first_skipped)}")
        if not quiet:
            _cli._note(
                f"handoff-audit: drafted {plural(draft.edges, 'edge contract')} of {plural(draft.edges_seen, 'edge')} "
                f"seen, from {plural(draft.clean_handoffs, 'clean handoff')} in {plural(draft.traces, 'trace')}"
            )
        return 0

    raise typer.Exit(_cli._guard(work, debug))

"""The rule catalogue: every finding kind with its class, stable code, severity and rule.

Codes are stable: reports, baselines and ``--ignore`` lists depend on them. A code is never reused
for another meaning. ``docs/rules.md`` documents each one; a test keeps the two in step.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class FailureClass(str, enum.Enum):
    """The three failure classes: the product's vocabulary."""

    STATE_LOSS = "state_loss"
    CONTEXT_DRIFT = "context_drift"
    RESPONSIBILITY_GAP = "responsibility_gap"


class Severity(str, enum.Enum):
    """How bad a finding is by default; ``error`` fails the run."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Rule:
    """One finding kind."""

    kind: str
    failure_class: FailureClass
    code: str
    severity: Severity
    description: str
    contract: bool = False  # reported only when a contract file is given (see contracts.py)


_SL, _CD, _RG = FailureClass.STATE_LOSS, FailureClass.CONTEXT_DRIFT, FailureClass.RESPONSIBILITY_GAP
_E, _W = Severity.ERROR, Severity.WARNING

RULES: dict[str, Rule] = {
    r.kind: r
    for r in (
        Rule("removed_field", _SL, "SL101", _E, "A path the sender sent is absent from what the receiver got."),
        Rule("nulled_field", _SL, "SL102", _E, "A value the sender sent arrived as null or empty."),
        Rule("truncated_value", _SL, "SL103", _E, "A string or list arrived cut short."),
        Rule(
            "not_forwarded",
            _SL,
            "SL104",
            _E,
            "An agent handed on a nested object it had received with some of its fields gone.",
        ),
        Rule(
            "contract_required_missing",
            _SL,
            "SL105",
            _E,
            "The received state lacks a field its edge's input schema requires.",
            contract=True,
        ),
        Rule("changed_value", _CD, "CD201", _E, "A value arrived at the same path with another value."),
        Rule("type_changed", _CD, "CD202", _W, "A value arrived with another JSON type."),
        Rule("unit_changed", _CD, "CD203", _E, "A number arrived scaled by a power of ten."),
        Rule("renamed_field", _CD, "CD204", _E, "A value arrived under another key."),
        Rule("injected_field", _CD, "CD205", _W, "The receiver got a path the sender never sent."),
        Rule(
            "reinterpreted_field",
            _CD,
            "CD206",
            _E,
            "The receiver called a tool with another value for a field it was handed.",
        ),
        Rule(
            "clarification_loop",
            _CD,
            "CD207",
            _W,
            "The receiver handed back to its sender and was sent the same state again.",
        ),
        Rule(
            "contract_schema_mismatch",
            _CD,
            "CD208",
            _E,
            "The received state fails its edge's input schema (type, enum or another keyword).",
            contract=True,
        ),
        Rule(
            "contract_invariant_failed",
            _CD,
            "CD209",
            _E,
            "An input invariant of the edge's contract is not true on the received state.",
            contract=True,
        ),
        Rule(
            "contract_output_mismatch",
            _CD,
            "CD210",
            _E,
            "The sent state fails its edge's output schema.",
            contract=True,
        ),
        Rule(
            "contract_success_failed",
            _CD,
            "CD211",
            _E,
            "A success criterion of the edge's contract is not true on the sent state.",
            contract=True,
        ),
        Rule("orphaned_handoff", _RG, "RG301", _E, "A handoff was sent and never received."),
        Rule("unsolicited_receipt", _RG, "RG302", _E, "A handoff was received that was never sent."),
        Rule("missing_outcome", _RG, "RG303", _E, "The trace ended with no agent claiming the outcome."),
        Rule("conflicting_outcome", _RG, "RG304", _E, "More than one agent claimed the outcome."),
        Rule(
            "premature_termination",
            _RG,
            "RG305",
            _E,
            "The outcome was claimed while a handoff was still in flight.",
        ),
        Rule(
            "handoff_timeout",
            _RG,
            "RG306",
            _E,
            "A receipt came later than the edge's timeout and the sender handed nothing to the fallback.",
            contract=True,
        ),
        Rule(
            "wrong_outcome_owner",
            _RG,
            "RG307",
            _E,
            "An agent other than the contract's outcome owner claimed the outcome.",
            contract=True,
        ),
        Rule(
            "missing_audit_field",
            _RG,
            "RG308",
            _E,
            "The sent state lacks an audit-trail path its edge's contract requires.",
            contract=True,
        ),
        Rule(
            "uncovered_edge",
            _RG,
            "RG309",
            _E,
            "A handoff on an edge that no contract covers (only with --require-contracts).",
            contract=True,
        ),
    )
}

RULES_BY_CODE: dict[str, Rule] = {r.code: r for r in RULES.values()}

"""The pytest plugin, loaded through its pytest11 entry point in a pytest run of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLES, T

pytest_plugins = ["pytester"]

LOSS = SAMPLES / "state_loss_removed_field.jsonl"


def _copy(pytester: pytest.Pytester, name: str, source: Path) -> Path:
    target = pytester.path / name
    target.write_bytes(source.read_bytes())
    return target


def test_the_plugin_is_registered_by_its_entry_point(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--handoff-audit*Collect trace files*"])


def test_fixture_asserts_clean_with_a_readable_message(pytester: pytest.Pytester) -> None:
    _copy(pytester, "loss.jsonl", LOSS)
    _copy(pytester, "clean.jsonl", SAMPLES / "clean_ecommerce_run.jsonl")
    pytester.makepyfile(
        """
        def test_clean(handoff_audit):
            handoff_audit.assert_clean(handoff_audit.scan("clean.jsonl"), "state_loss")

        def test_loss(handoff_audit):
            report = handoff_audit.scan("loss.jsonl")
            handoff_audit.assert_clean(report, "context_drift")  # passes: no drift
            handoff_audit.assert_clean(report, "state_loss")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: 1 finding of state_loss:",
            "*trace loss-removed-field, validator -> inventory: SL101 removed_field at customer.shipping_address: "
            'sent but absent on receipt [[]{"city":"London",* -> (absent)] (loss.jsonl:4)',
        ]
    )


def test_collection_is_opt_in_and_makes_one_item_per_trace(pytester: pytest.Pytester) -> None:
    _copy(pytester, "checkout.trace.jsonl", SAMPLES / "clean_ecommerce_run.jsonl")
    _copy(pytester, "loss.trace.jsonl", LOSS)
    _copy(pytester, "ignored.jsonl", LOSS)  # does not match the pattern
    off = pytester.runpytest_subprocess()
    assert off.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    on = pytester.runpytest_subprocess("--handoff-audit", "-v")
    on.assert_outcomes(passed=2, failed=1)
    on.stdout.fnmatch_lines(
        [
            "*checkout.trace.jsonl::clean-0001 PASSED*",
            "*checkout.trace.jsonl::clean-0002 PASSED*",
            "*loss.trace.jsonl::loss-removed-field FAILED*",
        ]
    )
    on.stdout.fnmatch_lines(["1 finding failing the audit:", "  trace loss-removed-field, validator -> inventory: SL101*"])


def test_ini_settings_and_skipped_lines(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nhandoff_audit_collect = true\nhandoff_audit_glob = *.audit.jsonl\n"
                     "handoff_audit_fail_on = context_drift\n")
    _copy(pytester, "loss.audit.jsonl", LOSS)  # state loss only: not selected, passes
    _copy(pytester, "bad.audit.jsonl", SAMPLES / "skipped_lines_bad_input.jsonl")
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*4 input lines skipped, first *bad.audit.jsonl:4: 'state' is not an object*"])


def test_unreadable_trace_file_is_one_collection_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "junk.trace.jsonl").write_text("not json\n")
    result = pytester.runpytest_subprocess("--handoff-audit")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*handoff-audit: *junk.trace.jsonl: no usable events (1 line skipped; line 1: not a known trace format*"])
    assert "Traceback" not in result.stdout.str()


def test_trace_ids_with_control_characters_are_escaped_in_item_names(pytester: pytest.Pytester) -> None:
    import orjson

    t = T("t\x1b[31m").hop("a", "b", {"x": 1}).outcome("b")
    (pytester.path / "e.trace.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in t.events))
    result = pytester.runpytest_subprocess("--handoff-audit", "-v")
    result.assert_outcomes(passed=1)
    assert "\x1b[31m" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*e.trace.jsonl::t\\x1b[[]31m PASSED*"])

"""Defaults for ``scan`` from a configuration file: ``[tool.handoff-audit]`` or ``handoff-audit.toml``.

The file is the one given with ``--config``, else the first found in the working directory or one of
its parents: ``handoff-audit.toml`` (its top-level table), or a ``pyproject.toml`` that has a
``[tool.handoff-audit]`` table. Command-line options win over the file. An unknown key, or a value of
the wrong type, is an error naming the file and the key. Relative paths in the file are relative to
the directory holding the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handoff_audit.errors import UsageError

PROJECT_FILE = "handoff-audit.toml"
PYPROJECT = "pyproject.toml"
TABLE = "tool.handoff-audit"


@dataclass(frozen=True, slots=True)
class FileSettings:
    """The values a configuration file gave; None or empty where it gave none."""

    source: str | None = None  # the file read, for messages
    format: str | None = None
    output: tuple[str, ...] = ()
    fail_on: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    max_failure_rate: tuple[str, ...] = ()  # RATE and CLASS=RATE, as on the command line
    min_end_to_end_success: str | None = None
    baseline: str | None = None
    baseline_tolerance: str | None = None
    strict: bool = False


def _strings(where: str, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise UsageError(f"{where}: '{key}' must be a string or a list of strings")


def _rate_text(where: str, key: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UsageError(f"{where}: '{key}' must be a rate (0.05 or \"5%\")")
    return str(value)


def _rates(where: str, key: str, value: Any) -> tuple[str, ...]:
    """A rate, a list of RATE / CLASS=RATE strings, or a table {overall = .., state_loss = ..}."""
    if isinstance(value, dict):
        return tuple(f"{k}={_rate_text(where, f'{key}.{k}', v)}" for k, v in value.items())
    if isinstance(value, list):
        return tuple(_rate_text(where, key, v) for v in value)
    return (_rate_text(where, key, value),)


def _path(base: Path) -> Callable[[str, str, Any], str]:
    def convert(where: str, key: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise UsageError(f"{where}: '{key}' must be a path")
        return str(base / value) if not Path(value).is_absolute() else value

    return convert


def _outputs(base: Path) -> Callable[[str, str, Any], tuple[str, ...]]:
    def convert(where: str, key: str, value: Any) -> tuple[str, ...]:
        out = []
        for spec in _strings(where, key, value):
            fmt, sep, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
            resolved = str(base / path) if path and not Path(path).is_absolute() else path
            out.append(f"{fmt}{sep}{resolved}")
        return tuple(out)

    return convert


def _str(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{where}: '{key}' must be a string")
    return value


def _bool(where: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{where}: '{key}' must be true or false")
    return value


def _keys(base: Path) -> dict[str, tuple[str, Callable[[str, str, Any], Any]]]:
    """File key -> (FileSettings field, converter). A new setting is one more entry here."""
    return {
        "format": ("format", _str),
        "output": ("output", _outputs(base)),
        "fail-on": ("fail_on", _strings),
        "ignore": ("ignore", _strings),
        "max-failure-rate": ("max_failure_rate", _rates),
        "min-end-to-end-success": ("min_end_to_end_success", _rate_text),
        "baseline": ("baseline", _path(base)),
        "baseline-tolerance": ("baseline_tolerance", _rate_text),
        "strict": ("strict", _bool),
    }


def parse(table: Mapping[str, Any], where: str, base: Path) -> FileSettings:
    """Check and convert one settings table; ``where`` names it in messages."""
    keys = _keys(base)
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in keys:
            known = ", ".join(sorted(keys))
            raise UsageError(f"{where}: unknown key '{key}' (known keys: {known})")
        name, convert = keys[key]
        values[name] = convert(where, key, value)
    return FileSettings(source=where, **values)


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such configuration file") from None
    except OSError as err:
        raise UsageError(f"{path}: cannot read configuration ({err.strerror or err})") from None
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{path}: not valid TOML ({err})") from None
    except UnicodeDecodeError as err:  # TOML is UTF-8 text; tomllib lets the decoding error through
        raise UsageError(f"{path}: not valid TOML (not UTF-8 text at byte {err.start})") from None


def load(path: str | Path) -> FileSettings:
    """Settings from one file: ``pyproject.toml`` (its ``[tool.handoff-audit]``) or a settings file."""
    p = Path(path)
    data = _read(p)
    if p.name == PYPROJECT:
        table = data.get("tool", {}).get("handoff-audit", {})
        if not isinstance(table, dict):
            raise UsageError(f"{p}: [{TABLE}] must be a table")
        return parse(table, f"{p} [{TABLE}]", p.parent)
    return parse(data, str(p), p.parent)


def discover(start: Path | None = None) -> Path | None:
    """The first settings file in ``start`` (default: the working directory) or its parents."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            return candidate
        pyproject = directory / PYPROJECT
        if pyproject.is_file():
            try:
                data = _read(pyproject)
            except UsageError:
                continue  # an unrelated broken pyproject.toml is not ours to report
            if isinstance(data.get("tool"), dict) and "handoff-audit" in data["tool"]:
                return pyproject
    return None


def resolve(explicit: str | None) -> FileSettings:
    """Settings from ``--config`` if given, else from the file found by ``discover``, else none."""
    if explicit is not None:
        return load(explicit)
    found = discover()
    return load(found) if found is not None else FileSettings()

"""Handoff contracts: what every edge must carry and guarantee, loaded once and checked per handoff.

A contract file (YAML or JSON, docs/contracts.md) declares, per edge (``from`` -> ``to``), a JSON Schema
(2020-12) and JMESPath invariants for the received state, a schema and success criteria for the sent
state, a timeout with a fallback agent, audit-trail paths, and diff options (paths to ignore, a numeric
tolerance); and the agent that must own the end-to-end outcome.

Loading checks everything before a trace is read: YAML is read without constructing objects and with a
bound on alias expansion, a key given twice in one object is refused (YAML or JSON), the file is
validated against its own schema, every JSON Schema is checked as a schema and compiled, every
JMESPath expression is compiled. Errors name the file, line and key.

Checking runs once per closed trace, after classification (``ContractChecker.check``), and the diff
options reach the diff through ``ContractChecker.refine``; without a contract file neither is called.
Expressions are JMESPath, evaluated by the jmespath library over the parsed state: trace data is never
evaluated as code.
"""

from __future__ import annotations

import functools
import gc
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path as FsPath
from typing import Any

import jmespath
import jmespath.exceptions
import jmespath.functions
import jmespath.visitor
import jsonschema_rs
import orjson
import yaml

from handoff_audit.diffing import format_path
from handoff_audit.errors import HandoffAuditError
from handoff_audit.models import Event, FieldChange, Finding, Handoff, Path

MAX_FILE_BYTES = 64 * 2**20
MAX_ALIAS_NODES = 100_000  # values reached again through aliases: a bound on "billion laughs" files
MAX_DEPTH = 64

__all__ = ["ContractError", "ContractSet", "EdgeContract", "ContractChecker", "load_contracts", "parse_path"]


class ContractError(HandoffAuditError):
    """A contract file that cannot be used; the message starts with ``file:line:``."""


# --- paths and globs -------------------------------------------------------------------------------


class _Literal(str):
    """A key written in brackets (``["a*b"]``): matched literally, never as a glob."""


class _AnyIndex:
    """``[*]`` in an ignore pattern: any list index."""

    def __repr__(self) -> str:
        return "[*]"


ANY_INDEX = _AnyIndex()
_BRACKET = re.compile(r'\[(?:(\d+)|(\*)|("(?:[^"\\]|\\.)*"))\]')
_NAME = re.compile(r"[^.\[\]]+")


def parse_path(text: str, *, glob: bool = False) -> tuple[Any, ...]:
    """Parse a path written as reports write it (``order.items[2].qty``, ``meta["x.y"]``).

    With ``glob``, a key may hold ``*`` and ``?``, ``**`` stands for any number of segments and ``[*]``
    for any list index. Raises ValueError with the reason.
    """
    if not text:
        raise ValueError("empty path")
    segs: list[Any] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "[":
            m = _BRACKET.match(text, i)
            if m is None:
                raise ValueError(f"bad bracket at character {i + 1}")
            if m.group(1) is not None:
                segs.append(int(m.group(1)))
            elif m.group(2) is not None:
                if not glob:
                    raise ValueError("[*] is allowed only in ignore patterns")
                segs.append(ANY_INDEX)
            else:
                segs.append(_Literal(json.loads(m.group(3))))
            i = m.end()
            continue
        if segs:
            if text[i] != ".":
                raise ValueError(f"expected '.' or '[' at character {i + 1}")
            i += 1
        m = _NAME.match(text, i)
        if m is None:
            raise ValueError(f"empty key at character {i + 1}")
        name = m.group()
        if not glob and ("*" in name or "?" in name):
            raise ValueError("wildcards are allowed only in ignore patterns")
        segs.append(name)
        i = m.end()
    return tuple(segs)


def glob_match(pattern: tuple[Any, ...], path: Path) -> bool:
    """True when ``pattern`` matches ``path`` or one of its ancestors (ignoring a key ignores its subtree)."""
    if not pattern:
        return True
    head = pattern[0]
    if head == "**" and type(head) is str:
        return any(glob_match(pattern[1:], path[k:]) for k in range(len(path) + 1))
    if not path:
        return False
    seg = path[0]
    if head is ANY_INDEX:
        ok = type(seg) is int
    elif type(head) is int:
        ok = type(seg) is int and seg == head
    elif type(head) is _Literal:
        ok = type(seg) is str and seg == head
    else:
        ok = type(seg) is str and fnmatchcase(seg, head)
    return ok and glob_match(pattern[1:], path[1:])


_MISSING = object()


def value_at(state: Any, path: tuple[Any, ...]) -> Any:
    """The value at ``path``, or ``_MISSING``."""
    for seg in path:
        if type(seg) is int:
            if type(state) is not list or not 0 <= seg < len(state):
                return _MISSING
        elif type(state) is not dict or seg not in state:
            return _MISSING
        state = state[seg]
    return state


def _is_number(v: Any) -> bool:
    return type(v) is int or type(v) is float


# --- the loaded contract ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiffOptions:
    """What the diff leaves out on an edge: ignored paths and a numeric tolerance."""

    ignore: tuple[tuple[Any, ...], ...]
    tolerance: float

    def drops(self, c: FieldChange) -> bool:
        """True when the change is to be left out of the diff."""
        if self.tolerance and c.op == "changed" and _is_number(c.sent) and _is_number(c.received):
            if abs(c.sent - c.received) <= self.tolerance:
                return True
        return any(glob_match(p, c.path) for p in self.ignore)


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled JMESPath expression; ``rule`` is how a finding names it."""

    text: str
    evaluate: Callable[[Any], Any]  # the compiled expression applied to a state
    rule: str


@dataclass(frozen=True, slots=True)
class EdgeContract:
    """One edge's contract, compiled."""

    index: int
    from_agent: str
    to_agent: str
    input_schema: Any | None
    invariants: tuple[Expression, ...]
    output_schema: Any | None
    success: tuple[Expression, ...]
    timeout_ms: float | None
    fallback: str | None
    audit: tuple[tuple[str, tuple[Any, ...]], ...]  # (as written, parsed)
    diff: DiffOptions | None

    @property
    def label(self) -> str:
        return f"{self.from_agent} -> {self.to_agent}"

    @property
    def checks_input(self) -> bool:
        """Whether anything is checked on the received state."""
        return self.input_schema is not None or bool(self.invariants)

    @property
    def checks_output(self) -> bool:
        """Whether anything is checked on the sent state."""
        return self.output_schema is not None or bool(self.success) or bool(self.audit)


@dataclass(frozen=True, slots=True)
class ContractSet:
    """A loaded, checked and compiled contract file."""

    file: str
    edges: tuple[EdgeContract, ...]
    defaults: DiffOptions | None
    outcome_owner: str | None
    text: str = field(default="", repr=False, compare=False)  # the file's text, to rebuild from

    def __reduce__(self) -> tuple[Any, ...]:
        # Compiled schemas and expressions do not pickle: a worker process (scan --jobs) loads the
        # same text again.
        return (_from_text, (self.file, self.text))

    def edge_for(self, frm: str, to: str) -> EdgeContract | None:
        """The contract of an edge: exact names beat ``*``, a named sender beats a named receiver."""
        best: EdgeContract | None = None
        best_rank = -1
        for ec in self.edges:
            if ec.from_agent not in (frm, "*") or ec.to_agent not in (to, "*"):
                continue
            rank = (2 if ec.from_agent != "*" else 0) + (1 if ec.to_agent != "*" else 0)
            if rank > best_rank:
                best, best_rank = ec, rank
        return best


# --- loading ---------------------------------------------------------------------------------------


_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where PyYAML has it


class _Loader(_SafeLoader):
    """The safe loader (plain data only, no object construction) leaving dates as strings, as in JSON."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_AGENT = {"type": "string", "minLength": 1}
_PATHS = {"type": "array", "items": {"type": "string", "minLength": 1}}
_EXTENSIONS: dict[str, Any] = {"^x-": {}}
_EXPRS = {"type": "array", "items": {"type": "string", "minLength": 1}}
FILE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version"],
    "additionalProperties": False,
    "patternProperties": _EXTENSIONS,
    "properties": {
        "version": {"const": 1},
        "defaults": {
            "type": "object",
            "additionalProperties": False,
            "patternProperties": _EXTENSIONS,
            "properties": {"ignore": _PATHS, "tolerance": {"type": "number", "minimum": 0}},
        },
        "edges": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["from", "to"],
                "additionalProperties": False,
                "patternProperties": _EXTENSIONS,
                "properties": {
                    "from": _AGENT,
                    "to": _AGENT,
                    "input": {
                        "type": "object",
                        "additionalProperties": False,
                        "patternProperties": _EXTENSIONS,
                        "properties": {
                            "schema": {"type": ["object", "boolean"]},
                            "invariants": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["name", "expr"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "name": {"type": "string", "minLength": 1},
                                        "expr": {"type": "string", "minLength": 1},
                                    },
                                },
                            },
                        },
                    },
                    "output": {
                        "type": "object",
                        "additionalProperties": False,
                        "patternProperties": _EXTENSIONS,
                        "properties": {"schema": {"type": ["object", "boolean"]}, "success": _EXPRS},
                    },
                    "timeout_ms": {"type": "number", "exclusiveMinimum": 0},
                    "fallback": _AGENT,
                    "audit": _PATHS,
                    "ignore": _PATHS,
                    "tolerance": {"type": "number", "minimum": 0},
                },
            },
        },
        "outcome": {
            "type": "object",
            "required": ["owner"],
            "additionalProperties": False,
            "patternProperties": _EXTENSIONS,
            "properties": {"owner": _AGENT},
        },
    },
}
_FILE_VALIDATOR = jsonschema_rs.Draft202012Validator(FILE_SCHEMA)


class _Source:
    """The contract file's name and where each key sits in it, for error messages."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: dict[tuple[Any, ...], int] = {}
        self.json_text: str | None = None  # a JSON file's lines are looked up only for an error

    def line(self, path: tuple[Any, ...]) -> int | None:
        if self.json_text is not None:
            text, self.json_text = self.json_text, None
            try:  # JSON is YAML: its node tree gives the lines of keys
                loader = _Loader(text)
                try:
                    node = loader.get_single_node()
                    if node is not None:
                        _walk_nodes(node, (), self, _Budget(), 0)
                finally:
                    loader.dispose()
            except (yaml.YAMLError, RecursionError, ContractError):
                self.lines.clear()
        for k in range(len(path), -1, -1):
            found = self.lines.get(path[:k])
            if found is not None:
                return found
        return None

    def error(self, path: tuple[Any, ...], problem: str) -> ContractError:
        line = self.line(path)
        where = self.name if line is None else f"{self.name}:{line}"
        key = format_path(path) if path else "(top level)"
        return ContractError(f"{where}: {key}: {problem}")


def load_contracts(file: str) -> ContractSet:
    """Read, check and compile a contract file; raises ContractError naming file, line and key."""
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a parsed file holds no reference cycles; the collector's passes over it cost time
    try:
        return _load(file)
    finally:
        if gc_was_enabled:
            gc.enable()


def _load(file: str) -> ContractSet:
    try:
        raw = FsPath(file).read_bytes()
    except OSError as err:
        raise ContractError(f"{file}: cannot read contract file ({err.strerror or err})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ContractError(f"{file}: contract file larger than {MAX_FILE_BYTES // 2**20} MiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ContractError(f"{file}: not UTF-8 (byte {err.start + 1})") from None
    return _from_text(file, text)


def _from_text(file: str, text: str) -> ContractSet:
    src = _Source(file)
    as_json = file.lower().endswith(".json")
    data = _parse(text, src, as_json=as_json)
    if not as_json:  # JSON gives nothing else (orjson refuses NaN and Infinity)
        _check_plain(data, (), src, 0)
    errors = sorted(_FILE_VALIDATOR.iter_errors(data), key=lambda e: (len(e.instance_path), list(map(str, e.instance_path))))
    if errors:
        worst = errors[-1]  # the deepest: "edges[0].timeout_ms" says more than "edges[0]"
        raise src.error(tuple(worst.instance_path), worst.message)
    return _compile(data, src, text)


def _parse(text: str, src: _Source, *, as_json: bool) -> Any:
    if as_json:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as err:
            raise ContractError(f"{src.name}:{err.lineno}: invalid JSON: {err.msg}") from None
        _refuse_duplicate_keys(text, src)
        src.json_text = text
        return data
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ContractError(f"{src.name}:1: empty contract file")
        _walk_nodes(node, (), src, _Budget(), 0)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ContractError(f"{src.name}{line}: invalid YAML: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise ContractError(f"{src.name}: invalid YAML ({type(err).__name__})") from None
    except RecursionError:
        raise ContractError(f"{src.name}: nested too deeply") from None
    finally:
        loader.dispose()


class _DuplicateKey(Exception):
    """A key that one JSON object gives twice."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> None:
    if len(pairs) > 1 and len({k for k, _ in pairs}) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)


def _refuse_duplicate_keys(text: str, src: _Source) -> None:
    """ContractError for a key given twice in one JSON object, as for YAML.

    orjson keeps the last value without a word, so the text is parsed once more by the standard
    library, which shows each object's keys to a hook (that builds nothing: the values are orjson's).
    The line is looked up, through the YAML node tree, only when a key repeats.
    """
    try:
        json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as dup:
        found = ContractError(f"{src.name}: duplicate key {dup.key!r}")
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _walk_nodes(node, (), _Source(src.name), _Budget(), 0)
        except ContractError as err:
            if "duplicate key" in str(err):
                found = err  # the same message with the line of the key
        except (yaml.YAMLError, RecursionError):
            pass
        finally:
            loader.dispose()
        raise found from None
    except json.JSONDecodeError as err:  # not expected after orjson read it; an error all the same
        raise ContractError(f"{src.name}:{err.lineno}: invalid JSON: {err.msg}") from None
    except RecursionError:
        raise ContractError(f"{src.name}: nested too deeply") from None


class _Budget:
    """Nodes seen so far, and how many more may be reached again through an alias."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.left = MAX_ALIAS_NODES


def _walk_nodes(node: yaml.Node, path: tuple[Any, ...], src: _Source, budget: _Budget, depth: int) -> None:
    """Record the line of every key; refuse duplicate keys and too many values reached through aliases.

    The file's own nodes are bounded by its size; an alias repeats a whole subtree without costing
    bytes, so every node reached a second time counts against MAX_ALIAS_NODES.
    """
    line = node.start_mark.line + 1
    if id(node) in budget.seen:
        budget.left -= 1
        if budget.left < 0:
            raise ContractError(f"{src.name}:{line}: aliases repeat more than {MAX_ALIAS_NODES:,} values")
    else:
        budget.seen.add(id(node))
    if depth > MAX_DEPTH:
        raise ContractError(f"{src.name}:{line}: nested deeper than {MAX_DEPTH} levels")
    src.lines.setdefault(path, line)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                raise ContractError(f"{src.name}:{key_node.start_mark.line + 1}: keys must be strings")
            if key in seen and key != "<<":
                raise ContractError(f"{src.name}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
            seen.add(key)
            src.lines.setdefault((*path, key), key_node.start_mark.line + 1)
            _walk_nodes(value_node, (*path, key), src, budget, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk_nodes(item, (*path, i), src, budget, depth + 1)


def _check_plain(value: Any, path: tuple[Any, ...], src: _Source, depth: int) -> None:
    """Only JSON values: no dates, binary, sets or non-string keys (YAML could give them)."""
    t = type(value)
    if t is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise src.error(path, f"key {k!r} is not a string")
            _check_plain(v, (*path, k), src, depth + 1)
    elif t is list:
        for i, v in enumerate(value):
            _check_plain(v, (*path, i), src, depth + 1)
    elif value is None or t in (str, bool, int):
        return
    elif t is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise src.error(path, "not a finite number")
    else:
        raise src.error(path, f"a {t.__name__} is not a JSON value")


def _compile(data: dict[str, Any], src: _Source, source_text: str) -> ContractSet:
    defaults_raw = data.get("defaults") or {}
    default_ignore = _patterns(defaults_raw.get("ignore", []), ("defaults", "ignore"), src)
    default_tol = float(defaults_raw.get("tolerance", 0))
    edges: list[EdgeContract] = []
    declared: dict[tuple[str, str], int] = {}
    for i, raw in enumerate(data.get("edges") or []):
        at = ("edges", i)
        key = (raw["from"], raw["to"])
        if key in declared:
            raise src.error(at, f"a second contract for {key[0]} -> {key[1]} (the first is edges[{declared[key]}])")
        declared[key] = i
        label = f"{raw['from']} -> {raw['to']}"
        inp = raw.get("input") or {}
        out = raw.get("output") or {}
        ignore = _patterns(raw["ignore"], (*at, "ignore"), src) if "ignore" in raw else default_ignore
        tol = float(raw.get("tolerance", default_tol))
        names: set[str] = set()
        invariants = []
        for j, inv in enumerate(inp.get("invariants", [])):
            if inv["name"] in names:
                raise src.error((*at, "input", "invariants", j, "name"), f"duplicate invariant name {inv['name']!r}")
            names.add(inv["name"])
            invariants.append(
                _expression(inv["expr"], f"{label}: input.invariants.{inv['name']}",
                            (*at, "input", "invariants", j, "expr"), src)
            )
        success = tuple(
            _expression(e, f"{label}: output.success[{j}]", (*at, "output", "success", j), src)
            for j, e in enumerate(out.get("success", []))
        )
        audit = []
        for j, text in enumerate(raw.get("audit", [])):
            try:
                audit.append((text, parse_path(text)))
            except ValueError as err:
                raise src.error((*at, "audit", j), f"bad path: {err}") from None
        edges.append(
            EdgeContract(
                index=i,
                from_agent=raw["from"],
                to_agent=raw["to"],
                input_schema=_schema(inp["schema"], (*at, "input", "schema"), src) if "schema" in inp else None,
                invariants=tuple(invariants),
                output_schema=_schema(out["schema"], (*at, "output", "schema"), src) if "schema" in out else None,
                success=success,
                timeout_ms=float(raw["timeout_ms"]) if "timeout_ms" in raw else None,
                fallback=raw.get("fallback"),
                audit=tuple(audit),
                diff=DiffOptions(ignore, tol) if ignore or tol else None,
            )
        )
    owner = (data.get("outcome") or {}).get("owner")
    defaults = DiffOptions(default_ignore, default_tol) if default_ignore or default_tol else None
    return ContractSet(src.name, tuple(edges), defaults, owner, source_text)


def _patterns(texts: list[str], at: tuple[Any, ...], src: _Source) -> tuple[tuple[Any, ...], ...]:
    out = []
    for j, text in enumerate(texts):
        try:
            out.append(parse_path(text, glob=True))
        except ValueError as err:
            raise src.error((*at, j), f"bad path pattern: {err}") from None
    return tuple(out)


def _expression(text: str, rule: str, at: tuple[Any, ...], src: _Source) -> Expression:
    try:
        compiled = jmespath.compile(text)
    except jmespath.exceptions.JMESPathError as err:
        detail = str(getattr(err, "msg", "") or type(err).__name__).splitlines()[0]
        raise src.error(at, f"invalid JMESPath expression: {detail}") from None
    unknown = sorted(_unknown_functions(compiled.parsed))
    if unknown:
        # jmespath looks functions up only when it evaluates; a typo would fail on every handoff.
        raise src.error(at, f"invalid JMESPath expression: unknown function {', '.join(unknown)}")
    # One interpreter per expression: ParsedResult.search builds a new one, with its function table,
    # on every call, which costs more than evaluating a small expression.
    interpreter = jmespath.visitor.TreeInterpreter()
    return Expression(text, functools.partial(interpreter.visit, compiled.parsed), rule)


_FUNCTIONS = frozenset(jmespath.functions.Functions().FUNCTION_TABLE)


def _unknown_functions(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if type(n) is dict:
            if n.get("type") == "function_expression" and n.get("value") not in _FUNCTIONS:
                found.add(str(n.get("value")))
            stack.extend(n.get("children", ()))
    return found


def _schema(schema: Any, at: tuple[Any, ...], src: _Source) -> Any:
    try:
        return jsonschema_rs.Draft202012Validator(schema, offline=True)
    except jsonschema_rs.ValidationError as err:
        where = tuple(getattr(err, "instance_path", ()) or ())
        message = getattr(err, "message", "") or str(err).splitlines()[0]
        raise src.error((*at, *where), f"not a valid JSON Schema (2020-12): {message}") from None
    except (jsonschema_rs.ReferencingError, ValueError) as err:
        raise src.error(at, f"not a usable JSON Schema: {str(err).splitlines()[0]}") from None


# --- checking --------------------------------------------------------------------------------------


def truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, and empty strings, lists and objects are false; 0 is true."""
    return not (value is None or value is False or value == "" or value == [] or value == {})


def _evaluate(expr: Expression, state: Any) -> tuple[bool, str]:
    """(holds, note): evaluation errors (a function given the wrong type) count as not holding."""
    try:
        return truthy(expr.evaluate(state)), ""
    except (jmespath.exceptions.JMESPathError, TypeError, ValueError) as err:
        return False, f" (could not be evaluated: {type(err).__name__})"


def _failing(exprs: tuple[Expression, ...], state: Any) -> list[tuple[Expression, str]]:
    """The expressions that do not hold on ``state``, each with its evaluation note."""
    out = []
    for expr in exprs:
        holds, note = _evaluate(expr, state)
        if not holds:
            out.append((expr, note))
    return out


def _pointer(schema_path: Any) -> str:
    return "#/" + "/".join(str(s).replace("~", "~0").replace("/", "~1") for s in schema_path)


class ContractChecker:
    """Checks the handoffs of each closed trace against a ContractSet and keeps the coverage."""

    def __init__(self, contracts: ContractSet, *, require: bool = False) -> None:
        self.contracts = contracts
        self.require = require
        self.edges: dict[tuple[str, str], EdgeContract | None] = {}  # every edge seen -> its contract
        has_diff_options = contracts.defaults is not None or any(ec.diff is not None for ec in contracts.edges)
        self.refine: Callable[[Handoff, list[FieldChange]], list[FieldChange]] | None = (
            self._refine if has_diff_options else None
        )

    def edge(self, frm: str, to: str) -> EdgeContract | None:
        """The contract covering an edge (cached)."""
        key = (frm, to)
        try:
            return self.edges[key]
        except KeyError:
            ec = self.edges[key] = self.contracts.edge_for(frm, to)
            return ec

    def _refine(self, h: Handoff, changes: list[FieldChange]) -> list[FieldChange]:
        ec = self.edge(h.from_agent, h.to_agent)
        opts = ec.diff if ec is not None else self.contracts.defaults
        if opts is None:
            return changes
        return [c for c in changes if not opts.drops(c)]

    def check(self, tl: Any, result: Any) -> None:
        """Add the contract findings of one classified trace (a Timeline and its TraceResult)."""
        for h in result.handoffs:
            ec = self.edge(h.from_agent, h.to_agent)
            if ec is None:
                if self.require:
                    h.findings.append(
                        _finding(h, "uncovered_edge", "", None, None,
                                 f"no contract covers {h.from_agent} -> {h.to_agent}", "edges")
                    )
                continue
            found = h.findings
            # A state is parsed only when its side has something to check.
            if ec.checks_input and h.received is not None and h.received.state is not None:
                state = h.received_state
                if ec.input_schema is not None and not ec.input_schema.is_valid(state):
                    found.extend(self._schema_findings(h, ec, state, "input"))
                for expr, note in _failing(ec.invariants, state):
                    name = expr.rule.rsplit(".", 1)[-1]
                    found.append(
                        _finding(h, "contract_invariant_failed", "", None, None,
                                 f"invariant {name} is not true on the received state: {expr.text}{note}", expr.rule)
                    )
            if ec.checks_output and h.sent is not None and h.sent.state is not None:
                if h._sent_state is None and h._received_state is not None and h.received is not None \
                        and h.sent.state == h.received.state:
                    h._sent_state = h._received_state  # equal encodings: parse once (nothing mutates states)
                state = h.sent_state
                if ec.output_schema is not None and not ec.output_schema.is_valid(state):
                    found.extend(self._schema_findings(h, ec, state, "output"))
                for expr, note in _failing(ec.success, state):
                    found.append(
                        _finding(h, "contract_success_failed", "", None, None,
                                 f"success criterion is not true on the sent state: {expr.text}{note}",
                                 expr.rule, at=h.sent)
                    )
                for j, (_, path) in enumerate(ec.audit):
                    value = value_at(state, path)
                    if value is _MISSING or value is None:
                        found.append(
                            _finding(h, "missing_audit_field", format_path(path), None, None,
                                     "audit-trail path absent from the sent state", f"{ec.label}: audit[{j}]",
                                     at=h.sent)
                        )
            if ec.timeout_ms is not None and h.sent is not None and h.received is not None:
                found.extend(self._timeout(tl, h, ec))
        owner = self.contracts.outcome_owner
        if owner is not None:
            for pos, agent, _ in tl.outcomes:
                if agent != owner:
                    ev = tl.events[pos]
                    result.trace_findings.append(
                        Finding(tl.trace_id, None, None, None, "wrong_outcome_owner", "", owner, agent,
                                f"{agent} claimed the outcome; the contract names {owner} as its owner",
                                ev.source, ev.line, pos, "outcome.owner")
                    )

    def _schema_findings(self, h: Handoff, ec: EdgeContract, state: Any, side: str) -> list[Finding]:
        validator = ec.input_schema if side == "input" else ec.output_schema
        assert validator is not None  # called only for a side with a schema
        other = h.sent_state if side == "input" else None
        at = h.received if side == "input" else h.sent
        out: list[Finding] = []
        for err in validator.iter_errors(state):
            ipath = tuple(err.instance_path)
            spath = list(err.schema_path)
            keyword = str(spath[-1]) if spath else ""
            rule = f"{ec.label}: {side}.schema{_pointer(spath)}"
            prop = getattr(err.kind, "property", None) if keyword == "required" else None
            if type(prop) is str:
                path = (*ipath, prop)
                if side == "input":
                    was = value_at(other, path) if other is not None else _MISSING
                    out.append(
                        _finding(h, "contract_required_missing", format_path(path),
                                 None if was is _MISSING else was, None,
                                 "required by the input schema, absent from the received state", rule, at=at)
                    )
                else:
                    out.append(
                        _finding(h, "contract_output_mismatch", format_path(path), None, None,
                                 "required by the output schema, absent from the sent state", rule, at=at)
                    )
                continue
            value = value_at(state, ipath)
            value = None if value is _MISSING else value
            if side == "input":
                was = value_at(other, ipath) if other is not None else _MISSING
                out.append(
                    _finding(h, "contract_schema_mismatch", format_path(ipath), None if was is _MISSING else was,
                             value, f"received value fails {keyword!r} of the input schema", rule, at=at)
                )
            else:
                out.append(
                    _finding(h, "contract_output_mismatch", format_path(ipath), value, None,
                             f"sent value fails {keyword!r} of the output schema", rule, at=at)
                )
        return out

    def _timeout(self, tl: Any, h: Handoff, ec: EdgeContract) -> list[Finding]:
        first = h.first_send_pos if h.first_send_pos is not None else h.send_pos
        sent_ts = tl.events[first].ts if first is not None else None
        recv_ts = h.received.ts if h.received is not None else None
        if sent_ts is None or recv_ts is None or ec.timeout_ms is None:
            return []
        # Rounded to the microsecond: 0.15 s apart in binary floating point is not 150 ms exactly.
        latency = round((recv_ts - sent_ts) * 1000.0, 3)
        if latency <= ec.timeout_ms:
            return []
        if ec.fallback is not None:
            for g in tl.handoffs:
                if (g.from_agent == h.from_agent and g.to_agent == ec.fallback and g.sent is not None
                        and g.pos > (first or 0)):
                    return []
            tail = f"and {h.from_agent} handed nothing to the fallback {ec.fallback} after it"
        else:
            tail = "and the contract names no fallback"
        return [
            _finding(h, "handoff_timeout", "", ec.timeout_ms, latency,
                     f"received {latency:,.0f} ms after the send, over the {ec.timeout_ms:,.0f} ms timeout, {tail}",
                     f"{ec.label}: timeout_ms")
        ]

    def record(self, agg: Any) -> None:
        """Put the coverage into an Aggregator: the declared edges, and which contract each edge seen had."""
        cs = self.contracts
        agg.contracts = (cs.file, tuple((ec.from_agent, ec.to_agent) for ec in cs.edges), cs.outcome_owner)
        for key, ec in self.edges.items():
            agg.contract_edges[key] = None if ec is None else ec.index


def _finding(
    h: Handoff, kind: str, path: str, sent: Any, received: Any, message: str, rule: str, at: Event | None = None
) -> Finding:
    ev = at if at is not None else (h.received if h.received is not None else h.sent)
    return Finding(
        h.trace_id, h.handoff_id, h.from_agent, h.to_agent, kind, path, sent, received, message,
        ev.source if ev is not None else None, ev.line if ev is not None else None, h.pos, rule,
    )

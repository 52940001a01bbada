"""Record native trace events from inside a running application.

A ``Recorder`` is bound to one JSONL file (gzip-compressed when asked, or when the name ends in
``.gz``) and writes one event per call: handoff sent and received, agent start and end, outcome, model
call and tool call. Each call encodes its whole line first and writes it with one call under a lock,
so lines from several threads or asyncio tasks never interleave. A write problem never raises into
the host application unless the recorder is strict: the event is dropped, counted in ``dropped``,
and a ``RecordWarning`` says why (without quoting the event). A redaction hook (``Redact`` or any
callable) sees every event before it is encoded, so masked or dropped values never reach the file.

    with Recorder("traces/run.jsonl") as rec:
        t = rec.trace("run-42")
        hid = t.handoff_sent("planner", "booker", {"trip": trip})
        t.handoff_received("planner", "booker", trip_as_received, handoff_id=hid)
        t.outcome("booker", "success")
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import os
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any, cast

import orjson

from handoff_audit.errors import HandoffAuditError

__all__ = ["Recorder", "Trace", "Redact", "RecordError", "RecordWarning", "hashed"]

# Event fields that carry application data, where redaction paths apply.
PAYLOAD_FIELDS = ("state", "args", "result", "attrs")

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


class RecordError(HandoffAuditError):
    """A strict recorder could not record an event."""


class RecordWarning(UserWarning):
    """A recorder dropped an event (or could not open its file); the host application goes on."""


def _default(obj: Any) -> Any:
    """Encode what orjson does not: pydantic models, sets and other iterables, objects with a ``__dict__``."""
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


class Recorder:
    """Writes native trace events to one file (or binary stream), one whole line per event.

    ``path`` is a file name (opened for appending unless ``mode="w"``) or a binary stream, which the
    recorder writes to but does not close. ``compress`` gzips the file; by default a name ending in
    ``.gz`` is compressed. ``redact`` is a ``Redact`` or any callable that takes an event dict (a copy in
    plain JSON data, as it would be written) and returns the dict to write or ``None`` to drop the
    event. ``strict`` makes write problems raise ``RecordError`` instead of warning. ``clock``
    gives the ``ts`` of events recorded without one (Unix seconds).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | IO[bytes],
        *,
        mode: str = "a",
        compress: bool | None = None,
        redact: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
        strict: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if mode not in ("a", "w"):
            raise ValueError("mode must be 'a' or 'w'")
        self.strict = strict
        self.redact = redact
        self.clock = clock
        self.written = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._owned: IO[bytes] | None = None
        self._raw: IO[bytes] | None = None
        self._out: IO[bytes] | None = None
        self._closed = False
        if isinstance(path, (str, os.PathLike)):
            self.name = os.fspath(path)
            if compress is None:
                compress = self.name.endswith(".gz")
            try:
                self._raw = self._owned = open(self.name, mode + "b")
            except OSError as err:
                self._fail("could not open the trace file", err, None)
                return
        else:
            name = getattr(path, "name", None)
            self.name = name if isinstance(name, str) else "<stream>"
            self._raw = path
        # A gzip member per recorder: appending to a .gz file adds a member, which readers join.
        self._out = cast(IO[bytes], gzip.GzipFile(fileobj=self._raw, mode="wb")) if compress else self._raw

    # --- one method per event type ---------------------------------------------------------------

    def handoff_sent(
        self,
        trace_id: str,
        frm: str,
        to: str,
        state: Mapping[str, Any],
        *,
        handoff_id: str | None = None,
        attempt: int | None = None,
        **extra: Any,
    ) -> str:
        """Record what ``frm`` intends ``to`` to get; returns the ``handoff_id`` (a new one if none given).

        Pass the returned id to ``handoff_received`` so the two sides pair exactly.
        """
        if handoff_id is None:
            handoff_id = uuid.uuid4().hex[:16]
        fields: dict[str, Any] = {"handoff_id": handoff_id, "from": frm, "to": to, "state": state}
        if attempt is not None:
            fields["attempt"] = attempt
        self.event(trace_id, "handoff.sent", agent=frm, **fields, **extra)
        return handoff_id

    def handoff_received(
        self,
        trace_id: str,
        frm: str,
        to: str,
        state: Mapping[str, Any],
        *,
        handoff_id: str | None = None,
        **extra: Any,
    ) -> None:
        """Record what ``to`` actually got from ``frm``."""
        fields: dict[str, Any] = {"from": frm, "to": to, "state": state}
        if handoff_id is not None:
            fields["handoff_id"] = handoff_id
        self.event(trace_id, "handoff.received", agent=to, **fields, **extra)

    def agent_start(self, trace_id: str, agent: str, **extra: Any) -> None:
        """Record the start of one agent's turn."""
        self.event(trace_id, "agent.start", agent=agent, **extra)

    def agent_end(self, trace_id: str, agent: str, status: str = "ok", **extra: Any) -> None:
        """Record the end of one agent's turn: ``status`` is ``ok`` or ``error``."""
        self.event(trace_id, "agent.end", agent=agent, status=status, **extra)

    def outcome(self, trace_id: str, agent: str, status: str = "success", result: Any = None, **extra: Any) -> None:
        """Record that ``agent`` claims the end-to-end outcome: ``status`` is ``success`` or ``failure``."""
        if result is not None:
            extra["result"] = result
        self.event(trace_id, "outcome", agent=agent, status=status, **extra)

    def llm_call(
        self,
        trace_id: str,
        agent: str,
        model: str | None,
        input_tokens: int,
        output_tokens: int,
        *,
        cost_usd: float | None = None,
        purpose: str | None = None,
        **extra: Any,
    ) -> None:
        """Record one model call and its token usage."""
        if cost_usd is not None:
            extra["cost_usd"] = cost_usd
        if purpose is not None:
            extra["purpose"] = purpose
        self.event(
            trace_id, "llm.call", agent=agent, model=model, input_tokens=input_tokens, output_tokens=output_tokens,
            **extra,
        )

    def tool_call(self, trace_id: str, agent: str, tool: str, args: Mapping[str, Any], **extra: Any) -> None:
        """Record a tool call and the arguments the agent gave it."""
        self.event(trace_id, "tool.call", agent=agent, tool=tool, args=args, **extra)

    def trace(self, trace_id: str | None = None) -> Trace:
        """A view of this recorder bound to one trace (a new random ``trace_id`` if none given)."""
        return Trace(self, trace_id if trace_id is not None else uuid.uuid4().hex)

    # --- the one write path ----------------------------------------------------------------------

    def event(self, trace_id: str, type: str, *, ts: float | str | None = None, **fields: Any) -> None:
        """Record one event of any type; ``ts`` defaults to the recorder's clock."""
        ev: dict[str, Any] = {"ts": self.clock() if ts is None else ts, "trace_id": trace_id, "type": type}
        ev.update(fields)
        try:
            if self.redact is not None:
                # The hook sees the event as it would be written: a pydantic model or a dataclass in a
                # state is a plain object by then, so redaction paths reach inside it too.
                redacted = self.redact(orjson.loads(orjson.dumps(ev, default=_default, option=_OPTIONS)))
                if redacted is None:
                    return
                if not isinstance(redacted, dict):
                    self._fail(f"the redaction hook returned neither a dict nor None for a {type} event", None, type)
                    return
                ev = redacted
            line = orjson.dumps(ev, default=_default, option=_OPTIONS) + b"\n"
        except Exception as err:  # an unencodable value or a failing redaction hook must not reach the host
            self._fail(f"could not encode a {type} event", err, type)
            return
        with self._lock:
            out = self._out
            if out is None or self._closed:
                self._fail("the recorder is closed" if self._closed else "the trace file is not open", None, type)
                return
            try:
                out.write(line)
            except Exception as err:
                self._fail(f"could not write a {type} event", err, type)
                return
            self.written += 1

    def _fail(self, what: str, err: BaseException | None, event_type: str | None) -> None:
        if event_type is not None:
            self.dropped += 1
        # The reason names the error's type and, for OS errors, its text: never the event's values.
        reason = ""
        if isinstance(err, OSError):
            reason = f" ({err.strerror or type(err).__name__})"
        elif err is not None:
            reason = f" ({type(err).__name__})"
        message = f"handoff-audit: {self.name}: {what}{reason}"
        if self.strict:
            raise RecordError(message) from err
        warnings.warn(message + ("; the event was dropped" if event_type else ""), RecordWarning, stacklevel=4)

    # --- lifetime --------------------------------------------------------------------------------

    def flush(self) -> None:
        """Push buffered lines to the file (a gzip file stays open: its end is written by ``close``)."""
        with self._lock:
            try:
                if self._out is not None:
                    self._out.flush()
            except Exception as err:
                self._fail("could not flush the trace file", err, None)

    def close(self) -> None:
        """Finish the file; later events are dropped with a warning. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._out is not None and self._out is not self._raw:
                    self._out.close()  # writes the gzip trailer; does not close the underlying file
                if self._owned is not None:
                    self._owned.close()
                elif self._raw is not None:
                    self._raw.flush()
            except Exception as err:
                self._fail("could not finish the trace file", err, None)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Trace:
    """A recorder bound to one ``trace_id``: the same calls without the first argument."""

    __slots__ = ("recorder", "trace_id")

    def __init__(self, recorder: Recorder, trace_id: str) -> None:
        self.recorder = recorder
        self.trace_id = trace_id

    def handoff_sent(self, frm: str, to: str, state: Mapping[str, Any], **kw: Any) -> str:
        """See ``Recorder.handoff_sent``."""
        return self.recorder.handoff_sent(self.trace_id, frm, to, state, **kw)

    def handoff_received(self, frm: str, to: str, state: Mapping[str, Any], **kw: Any) -> None:
        """See ``Recorder.handoff_received``."""
        self.recorder.handoff_received(self.trace_id, frm, to, state, **kw)

    def agent_start(self, agent: str, **kw: Any) -> None:
        """See ``Recorder.agent_start``."""
        self.recorder.agent_start(self.trace_id, agent, **kw)

    def agent_end(self, agent: str, status: str = "ok", **kw: Any) -> None:
        """See ``Recorder.agent_end``."""
        self.recorder.agent_end(self.trace_id, agent, status, **kw)

    def outcome(self, agent: str, status: str = "success", result: Any = None, **kw: Any) -> None:
        """See ``Recorder.outcome``."""
        self.recorder.outcome(self.trace_id, agent, status, result, **kw)

    def llm_call(self, agent: str, model: str | None, input_tokens: int, output_tokens: int, **kw: Any) -> None:
        """See ``Recorder.llm_call``."""
        self.recorder.llm_call(self.trace_id, agent, model, input_tokens, output_tokens, **kw)

    def tool_call(self, agent: str, tool: str, args: Mapping[str, Any], **kw: Any) -> None:
        """See ``Recorder.tool_call``."""
        self.recorder.tool_call(self.trace_id, agent, tool, args, **kw)

    def event(self, type: str, **kw: Any) -> None:
        """See ``Recorder.event``."""
        self.recorder.event(self.trace_id, type, **kw)


# --- redaction -----------------------------------------------------------------------------------

_SEGMENT = re.compile(r'\.?(\*\*|\*|[A-Za-z_][A-Za-z0-9_\-]*)|\[(\*|\d+|"(?:[^"\\]|\\.)*")\]')
_ANY_KEY, _ANY_DEPTH, _ANY_INDEX = object(), object(), object()


def parse_path(text: str) -> tuple[Any, ...]:
    """Parse a redaction path: ``customer.email``, ``items[*].card``, ``**.ssn``, ``meta["x.y"]``.

    ``*`` is any one key, ``[*]`` any one list index, ``**`` any number of keys and indices.
    """
    segs: list[Any] = []
    pos = 0
    while pos < len(text):
        m = _SEGMENT.match(text, pos)
        if m is None or (m.group(0).startswith(".") and pos == 0):
            raise ValueError(f"bad redaction path {text!r} at character {pos + 1}")
        name, index = m.group(1), m.group(2)
        if name is not None:
            segs.append(_ANY_DEPTH if name == "**" else _ANY_KEY if name == "*" else name)
        elif index == "*":
            segs.append(_ANY_INDEX)
        elif index.startswith('"'):
            segs.append(orjson.loads(index))
        else:
            segs.append(int(index))
        pos = m.end()
    if not segs:
        raise ValueError("empty redaction path")
    if segs[-1] is _ANY_DEPTH:
        raise ValueError(f"bad redaction path {text!r}: it cannot end with **")
    return tuple(segs)


def hashed(key: bytes | str, length: int = 16) -> Callable[[Any], str]:
    """A masking function that replaces a value by a keyed digest of it.

    Equal values give equal digests, so a changed value still shows as a change in ``scan`` while the
    value itself never reaches the file. Keep ``key`` secret and the same wherever one trace is recorded.
    """
    k = key.encode() if isinstance(key, str) else key

    def mask(value: Any) -> str:
        data = orjson.dumps(value, default=_default, option=_OPTIONS | orjson.OPT_SORT_KEYS)
        return "hmac:" + hmac.new(k, data, hashlib.sha256).hexdigest()[:length]

    return mask


class Redact:
    """Drops or masks values at configured paths inside ``state``, ``args``, ``result`` and ``attrs``.

    Paths are relative to those fields and written as ``scan`` reports them (``customer.email``,
    ``order.items[2].card``), with ``*`` for any key, ``[*]`` for any index and ``**`` for any depth.
    A dropped key or list item disappears; a masked value becomes ``mask_with`` (a string, or a
    function of the value such as ``hashed(key)``). Where a value matches both, it is dropped. The
    caller's objects are never changed: containers on a redacted path are copied. All paths are
    matched in one walk, which goes only as deep as some path can still match.
    """

    def __init__(
        self,
        drop: Iterable[str] = (),
        mask: Iterable[str] = (),
        *,
        mask_with: str | Callable[[Any], Any] = "[redacted]",
        fields: Iterable[str] = PAYLOAD_FIELDS,
    ) -> None:
        drop_paths = tuple(parse_path(p) for p in drop)
        self.paths = drop_paths + tuple(parse_path(p) for p in mask)
        self.n_drop = len(drop_paths)
        self.mask_with = mask_with
        self.fields = tuple(fields)
        self._memo: dict[tuple[Any, ...], tuple[int, tuple[tuple[int, int], ...]]] = {}
        self._start = self._closure([(i, 0) for i in range(len(self.paths))])

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        out = event
        for name in self.fields:
            value = event.get(name)
            if value is None:
                continue
            new = self._walk(value, self._start)
            if new is not value:
                if out is event:
                    out = dict(event)
                out[name] = new
        return out

    def _closure(self, states: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
        """Add, for every state at a ``**``, the state past it (``**`` may match nothing)."""
        out: list[tuple[int, int]] = []
        todo = list(states)
        while todo:
            st = todo.pop()
            if st in out:
                continue
            out.append(st)
            pi, pos = st
            if self.paths[pi][pos] is _ANY_DEPTH:
                todo.append((pi, pos + 1))
        return tuple(out)

    def _step(self, states: tuple[tuple[int, int], ...], is_map: bool, key: Any) -> tuple[int, tuple[tuple[int, int], ...]]:
        """Where ``key`` leads from ``states``: (the path that ends there or -1, the states below it)."""
        memo_key = (states, is_map, key)
        hit = self._memo.get(memo_key)
        if hit is not None:
            return hit
        action = -1  # the lowest index of a path that ends here: drop paths come first
        nxt: list[tuple[int, int]] = []
        for pi, pos in states:
            seg = self.paths[pi][pos]
            if seg is _ANY_DEPTH:
                nxt.append((pi, pos))
                continue
            if is_map:
                match = seg is _ANY_KEY or (type(seg) is str and seg == key)
            else:
                match = seg is _ANY_INDEX or (type(seg) is int and seg == key)
            if not match:
                continue
            if pos + 1 == len(self.paths[pi]):
                action = pi if action < 0 else min(action, pi)
            else:
                nxt.append((pi, pos + 1))
        result = (action, self._closure(nxt) if nxt else ())
        if len(self._memo) < 4096:  # keys come from the data: keep the table bounded
            self._memo[memo_key] = result
        return result

    def _walk(self, node: Any, states: tuple[tuple[int, int], ...]) -> Any:
        if type(node) is dict or (type(node) is not list and isinstance(node, Mapping)):
            pairs: Iterable[tuple[Any, Any]] = node.items()
            is_map = True
        elif type(node) is list or type(node) is tuple:
            pairs = enumerate(node)
            is_map = False
        else:
            return node
        changed: dict[Any, Any] | None = None
        dropped: list[Any] = []
        step = self._step
        for key, child in pairs:
            action, nxt = step(states, is_map, key)
            if action >= 0:
                if changed is None:
                    changed = {}
                if action < self.n_drop:
                    dropped.append(key)
                else:
                    changed[key] = self.mask_with(child) if callable(self.mask_with) else self.mask_with
            elif nxt and (type(child) is dict or type(child) is list or isinstance(child, (Mapping, tuple))):
                new = self._walk(child, nxt)
                if new is not child:
                    if changed is None:
                        changed = {}
                    changed[key] = new
        if changed is None:
            return node
        if is_map:
            out = {k: v for k, v in node.items() if k not in dropped}
            for k, v in changed.items():
                if k in out:
                    out[k] = v
            return out
        gone = set(dropped)
        return [changed.get(i, v) for i, v in enumerate(node) if i not in gone]

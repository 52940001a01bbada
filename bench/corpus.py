"""Synthetic corpus of native-format traces (format v1) with injected, labelled faults.

A trace is one run of a linear multi-agent pipeline: 3 to 6 agents drawn from a pool, each one receiving
the state from the agent before it, doing its work (model calls, tool calls) and handing the state on with
one new top-level key of its own; the last agent claims the outcome once every handoff has been received.
An agent may also leave out a whole top-level key it received (its own scoping, not a loss).

A share of the handoffs is faulty. Each faulty handoff carries exactly one fault, drawn uniformly from
every kind of DESIGN.md's table and built from the definitions written there:

    state_loss          removed_field, nulled_field, truncated_value, not_forwarded
    context_drift       changed_value, type_changed, unit_changed, renamed_field, injected_field,
                        reinterpreted_field, clarification_loop
    responsibility_gap  orphaned_handoff, unsolicited_receipt, missing_outcome, conflicting_outcome,
                        premature_termination

Traces are interleaved (about ``in_flight`` of them open at any time), event times are a mix of Unix
seconds and RFC 3339 strings, and lines are shuffled within small windows, so the file is slightly out of
time order while every trace's own event times stay strictly increasing.

The labels file has one JSON object per injected fault:
``{trace_id, kind, class, from, to, path, handoff_id, variant}``; ``from``/``to`` are null for the
trace-level kinds (missing_outcome, conflicting_outcome), ``path`` is null for kinds that have none, and
``variant`` names the form a fault took where a kind has more than one (else null).

    python bench/corpus.py --events 2000000 --faulty 0.10 --seed 1 --out corpus.jsonl --labels labels.jsonl
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, BinaryIO

import orjson

# --- the kinds of DESIGN.md's table ----------------------------------------------------------------

KIND_CLASS: dict[str, str] = {
    "removed_field": "state_loss",
    "nulled_field": "state_loss",
    "truncated_value": "state_loss",
    "not_forwarded": "state_loss",
    "changed_value": "context_drift",
    "type_changed": "context_drift",
    "unit_changed": "context_drift",
    "renamed_field": "context_drift",
    "injected_field": "context_drift",
    "reinterpreted_field": "context_drift",
    "clarification_loop": "context_drift",
    "orphaned_handoff": "responsibility_gap",
    "unsolicited_receipt": "responsibility_gap",
    "missing_outcome": "responsibility_gap",
    "conflicting_outcome": "responsibility_gap",
    "premature_termination": "responsibility_gap",
}
KINDS: tuple[str, ...] = tuple(KIND_CLASS)
CLASSES: tuple[str, ...] = ("state_loss", "context_drift", "responsibility_gap")
# Faults in what the receiver got: the received state differs from the sent one.
RECEIPT_KINDS = frozenset(
    {"removed_field", "nulled_field", "truncated_value", "changed_value", "type_changed", "unit_changed",
     "renamed_field", "injected_field"}
)
# Faults that decide who claims the outcome, and when: each at most once per trace, and no missing
# outcome together with a claim that a conflicting or premature outcome needs.
OUTCOME_KINDS = frozenset({"orphaned_handoff", "missing_outcome", "conflicting_outcome", "premature_termination"})
TRACE_LEVEL_KINDS = frozenset({"missing_outcome", "conflicting_outcome"})

# --- vocabulary --------------------------------------------------------------------------------------

AGENTS = (
    "planner", "router", "validator", "retriever", "researcher", "writer", "reviewer", "inventory",
    "pricing", "payment", "fulfilment", "triage", "responder", "escalation", "summariser", "translator",
    "compliance", "booking", "scheduler", "notifier", "analyst", "critic", "executor", "auditor",
)
WORDS = (
    "the parcel customer should be delivered before noon with a signature from neighbour on second floor "
    "please confirm order refund request urgent account billing address changed last week invoice attached "
    "priority handling needed because previous shipment arrived damaged and support promised replacement "
    "without extra charge contact by email only after six pm quarterly report draft needs sources from "
    "recent studies on retrieval augmented generation latency budget cost model evaluation"
).split()
FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus", "Radia", "Donald", "Frances")
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Torvalds", "Perlman")
CITIES = (("London", "GB"), ("Berlin", "DE"), ("Lyon", "FR"), ("Porto", "PT"), ("Osaka", "JP"),
          ("Austin", "US"), ("Utrecht", "NL"), ("Turin", "IT"), ("Z\u00fcrich", "CH"), ("Krak\u00f3w", "PL"),
          ("\u6771\u4eac", "JP"), ("S\u00e3o Paulo", "BR"))
STREETS = ("Analytical Way", "Harbour Road", "Elm Street", "Rue de la Paix", "Kastanienallee", "Main Street",
           "Stra\u00dfe des 17. Juni", "Rua Augusta", "\u9280\u5ea7\u901a\u308a")
CURRENCIES = ("EUR", "USD", "GBP", "JPY", "CHF")
SKUS = {
    "KB-01": "Mechanical keyboard, 75% layout", "MS-02": "Wireless mouse", "MN-27": "27-inch monitor",
    "HD-11": "USB-C hub with ethernet", "CH-90": "Ergonomic office chair", "LP-14": "Laptop stand, aluminium",
    "CB-03": "Braided charging cable", "WC-08": "Webcam with privacy shutter",
}
IATA = ("LHR", "CDG", "FRA", "AMS", "KIX", "AUS", "OPO", "TRN", "JFK", "SFO")
TAGS = ("fragile", "gift", "vip", "repeat-customer", "b2b", "eu", "manual-review", "new")
TOOLS = ("lookup", "reserve_stock", "charge_card", "send_email", "search", "fetch_url", "create_ticket",
         "book_flight", "translate", "run_query")
# Tool-call argument names that are never state keys.
FREE_ARGS = ("dry_run", "timeout_ms", "idempotency_key", "mode", "page_size")
# Keys an injected field may take; never agent names, never keys a domain state uses.
INJECT_KEYS = ("internal_ref", "debug", "trace_note", "source_system", "retry_hint", "locale", "session",
               "model_guess", "confidence_hint", "extra")
SYNONYMS = {
    "shipping_address": "address", "email": "email_address", "total": "amount", "qty": "quantity",
    "price": "unit_price", "name": "full_name", "zip": "postcode", "city": "town", "notes": "remarks",
    "customer": "client", "order": "purchase", "priority": "urgency", "currency": "ccy", "subject": "title_text",
    "amount": "value", "text": "body", "score": "relevance", "pages": "page_count", "points": "miles",
}
STATUS_WORDS = ("done", "ok", "partial", "checked", "approved", "needs-review")
NUMERIC_STRING_KEYS = ("zip", "account_number", "number", "phone")

# --- helpers -----------------------------------------------------------------------------------------

_dumps = orjson.dumps
_loads = orjson.loads


def _copy(v: Any) -> Any:
    return _loads(_dumps(v))


def _reencode(v: Any, rng: random.Random) -> Any:
    """The same JSON value as another serializer may write it: object keys in another order, whole
    floats as integers (12.0 -> 12). Nothing a JSON reader could tell apart."""
    if type(v) is dict:
        items = list(v.items())
        rng.shuffle(items)
        return {k: _reencode(x, rng) for k, x in items}
    if type(v) is list:
        return [_reencode(x, rng) for x in v]
    if type(v) is float and v.is_integer():
        return int(v)
    return v


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    s = " ".join(rng.choices(WORDS, k=rng.randint(lo, hi)))
    return s[0].upper() + s[1:] + "."


def _person(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return f"{first} {last}", f"{first.lower()}.{last.lower()}{rng.randint(1, 99)}@example.com"


def _money(rng: random.Random, lo: float, hi: float) -> float:
    """An amount with cents; now and then a whole one that is still a float (49.0)."""
    return float(rng.randint(int(lo), int(hi))) if rng.random() < 0.15 else round(rng.uniform(lo, hi), 2)


def _date(rng: random.Random, year: int) -> str:
    return f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _is_scalar(v: Any) -> bool:
    return type(v) in (str, int, float, bool)


def _is_number(v: Any) -> bool:
    return type(v) in (int, float)


def _is_empty(v: Any) -> bool:
    return v is None or (type(v) in (str, list, dict) and not v)


def _is_numeric_string(v: Any) -> bool:
    if type(v) is not str or not v or v[0] in "0+-. " or v[-1] == ".":
        return False
    try:
        x = float(v)
    except ValueError:
        return False
    return math.isfinite(x) and all(c.isdigit() or c == "." for c in v) and v.count(".") <= 1


def _pow10_ratio(a: float, b: float) -> bool:
    """True when b is a times 10**k for some k != 0 (a change of unit, by DESIGN.md)."""
    if a == 0 or b == 0 or (a < 0) != (b < 0):
        return False
    k = round(math.log10(abs(b / a)))
    return k != 0 and abs(b - a * 10.0**k) <= 0.01 * abs(a * 10.0**k)


def format_path(path: tuple[Any, ...]) -> str:
    """Dotted path with list indices in brackets: ``order.items[2].qty``."""
    parts: list[str] = []
    for seg in path:
        if type(seg) is int:
            parts.append(f"[{seg}]")
        else:
            parts.append(f".{seg}" if parts else seg)
    return "".join(parts)


Entry = tuple[tuple[Any, ...], Any, Any, Any]  # (path, value, parent container, key or index)


def _entries(node: Any, path: tuple[Any, ...] = (), out: list[Entry] | None = None) -> list[Entry]:
    """Every value below ``node`` with its path, its parent container and its key there."""
    if out is None:
        out = []
    if type(node) is dict:
        for k, v in node.items():
            p = (*path, k)
            out.append((p, v, node, k))
            _entries(v, p, out)
    elif type(node) is list:
        for i, v in enumerate(node):
            p = (*path, i)
            out.append((p, v, node, i))
            _entries(v, p, out)
    return out


def _pick(rng: random.Random, cands: list[Entry]) -> Entry | None:
    """One candidate, a depth drawn uniformly first so that shallow and deep paths are both common."""
    if not cands:
        return None
    by_depth: dict[int, list[Entry]] = {}
    for c in cands:
        by_depth.setdefault(len(c[0]), []).append(c)
    return rng.choice(by_depth[rng.choice(sorted(by_depth))])


def _key_counts(entries: list[Entry]) -> Counter[str]:
    """How often each key name occurs, anywhere in the state."""
    return Counter(e[3] for e in entries if type(e[2]) is dict)


# --- domain states (the first agent's state) -------------------------------------------------------


def _ecommerce(rng: random.Random) -> dict[str, Any]:
    items = [
        {"sku": sku, "title": SKUS[sku], "qty": rng.randint(1, 5), "price": _money(rng, 2, 250)}
        for sku in rng.sample(sorted(SKUS), rng.randint(1, 3))
    ]
    name, email = _person(rng)
    city, country = rng.choice(CITIES)
    address: dict[str, Any] = {
        "street": f"{rng.randint(1, 250)} {rng.choice(STREETS)}",
        "city": city,
        "zip": str(rng.randint(10000, 99999)),
        "country": country,
    }
    if rng.random() < 0.5:
        address["geo"] = {"lat": round(rng.uniform(-60, 60), 5), "lon": round(rng.uniform(-120, 140), 5)}
    state: dict[str, Any] = {
        "order": {
            "id": f"ord-{rng.randint(1000, 99999)}",
            "items": items,
            "total": round(sum(i["qty"] * i["price"] for i in items), 2),
            "currency": rng.choice(CURRENCIES),
        },
        "customer": {
            "id": f"cus-{rng.randint(10, 9999)}",
            "name": name,
            "email": email,
            "shipping_address": address,
        },
        "notes": _sentence(rng, 6, 12),
        "flags": {"gift": rng.random() < 0.3, "express": rng.random() < 0.5},
    }
    if rng.random() < 0.5:
        state["order"]["coupon"] = None  # sent as null: nothing to lose, but a path all the same
    return state


def _support(rng: random.Random) -> dict[str, Any]:
    name, email = _person(rng)
    return {
        "ticket": {
            "id": f"TCK-{rng.randint(100, 99999)}",
            "subject": _sentence(rng, 5, 10),
            "priority": rng.choice(("low", "normal", "high", "urgent")),
            "channel": rng.choice(("email", "chat", "phone")),
            "sla_hours": rng.choice((4, 8, 24, 48)),
            "opened_at": _date(rng, 2025) + "T09:30:00Z",
        },
        "requester": {
            "name": name,
            "email": email,
            "plan": rng.choice(("free", "team", "enterprise")),
            "account_number": str(rng.randint(100000, 999999)),
            "assignee": rng.choice((None, "", "l2-team")),
        },
        "history": [
            {"author": rng.choice(("customer", "agent", "bot")), "text": _sentence(rng, 5, 12)}
            for _ in range(rng.randint(1, 3))
        ],
        "sentiment": round(rng.uniform(-1, 1), 2) or 0.15,
        "tags": rng.sample(TAGS, rng.randint(1, 3)),
    }


def _travel(rng: random.Random) -> dict[str, Any]:
    name, email = _person(rng)
    stops = rng.sample(IATA, rng.randint(2, 4))
    return {
        "trip": {
            "id": f"trp-{rng.randint(1000, 99999)}",
            "travelers": rng.randint(1, 4),
            "budget": {"amount": rng.randint(300, 6000), "currency": rng.choice(CURRENCIES)},
            "legs": [
                {"from": a, "to": b, "date": _date(rng, 2026), "cabin": rng.choice(("economy", "premium", "business"))}
                for a, b in zip(stops, stops[1:])
            ],
        },
        "traveler": {
            "name": name,
            "email": email,
            "phone": str(rng.randint(4_900_000_000, 4_999_999_999)),
            "loyalty": {"tier": rng.choice(("silver", "gold", "platinum")), "points": rng.randint(100, 90000)},
        },
        "preferences": {
            "seat": rng.choice(("aisle", "window")),
            "meal": rng.choice(("vegetarian", "standard", "vegan")),
            "remarks": _sentence(rng, 6, 14) if rng.random() < 0.8 else "",
            "companions": [],
        },
    }


def _research(rng: random.Random) -> dict[str, Any]:
    return {
        "query": {
            "text": _sentence(rng, 8, 16),
            "language": rng.choice(("en", "de", "fr")),
            "max_results": rng.choice((5, 10, 20)),
        },
        "sources": [
            {
                "url": f"https://example.org/papers/{rng.randint(1000, 9999)}",
                "title": _sentence(rng, 4, 8),
                "score": round(rng.uniform(0.05, 1), 3),
                "year": rng.randint(2015, 2026),
            }
            for _ in range(rng.randint(1, 3))
        ],
        "constraints": {"since_year": rng.choice((2018, 2020, 2022)), "peer_reviewed": rng.random() < 0.5},
        "draft": {
            "title": _sentence(rng, 3, 7),
            "word_count": rng.randint(300, 4000),
            "outline": rng.sample(("intro", "method", "results", "discussion", "limits", "outlook"), rng.randint(2, 4)),
        },
        "citations": rng.sample(range(1, 400), rng.randint(2, 4)),
    }


def _claims(rng: random.Random) -> dict[str, Any]:
    name, _ = _person(rng)
    return {
        "claim": {
            "id": f"CLM-{rng.randint(1000, 99999)}",
            "amount": _money(rng, 100, 20000),
            "currency": rng.choice(CURRENCIES),
            "incident_date": _date(rng, 2025),
            "description": _sentence(rng, 7, 14),
        },
        "policy": {
            "number": str(rng.randint(10_000_000, 99_999_999)),
            "holder": {"name": name, "birth_year": rng.randint(1950, 2004)},
            "coverage": {"limit": rng.choice((5000, 10000, 25000, 50000)), "deductible": rng.choice((100, 250, 500))},
        },
        "documents": [
            {"type": t, "pages": rng.randint(1, 12)}
            for t in rng.sample(("photo", "invoice", "police_report", "receipt"), rng.randint(1, 3))
        ],
        "fraud_score": round(rng.uniform(0.01, 1), 3),
        "estimates": [_money(rng, 50, 9000) for _ in range(rng.randint(2, 3))],
    }


DOMAINS = (_ecommerce, _support, _travel, _research, _claims)


def _own_key(rng: random.Random, step: int) -> dict[str, Any]:
    """What an agent adds under its own new top-level key."""
    fields: dict[str, Any] = {"status": rng.choice(STATUS_WORDS), "step": step}
    if rng.random() < 0.7:
        fields["confidence"] = round(rng.uniform(0.5, 0.99), 2)
    if rng.random() < 0.5:
        fields["note"] = _sentence(rng, 2, 6)
    if rng.random() < 0.3:
        fields["checked"] = rng.sample(("address", "stock", "price", "policy", "sources"), 2)
    return fields


# --- values that differ ----------------------------------------------------------------------------


def _other_string(rng: random.Random, s: str) -> str:
    """Another non-empty string that is not ``s`` cut short (that would be a truncation)."""
    for _ in range(20):
        if _is_numeric_string(s):
            new = str(int(float(s)) + rng.randint(1, 97))
        elif " " in s:
            words = s.split(" ")
            i = rng.randrange(len(words))
            words[i] = rng.choice(WORDS)
            new = " ".join(words)
        elif s in CURRENCIES:
            new = rng.choice(CURRENCIES)
        elif s in IATA:
            new = rng.choice(IATA)
        else:
            new = rng.choice((s.upper(), s + "-2", rng.choice(WORDS), rng.choice(STATUS_WORDS), rng.choice(TAGS)))
        if new and new != s and not s.startswith(_bare(new)):
            return new
    return s + " (revised)"


def _other_number(rng: random.Random, x: int | float) -> int | float:
    """Another number of the same kind, not x scaled by a power of ten."""
    for _ in range(50):
        if type(x) is int:
            new: int | float = x + rng.choice((-1, 1)) * rng.randint(1, max(1, abs(x) // 3))
        elif rng.random() < 0.1:
            new = -x
        else:
            new = round(x * rng.uniform(0.55, 1.6), 2)
        if new != x and new != 0 and not _pow10_ratio(x, new):
            return new
    return x + 1 if type(x) is int else round(x + 1.5, 2)


def _other_value(rng: random.Random, v: Any) -> Any:
    if type(v) is bool:
        return not v
    if _is_number(v):
        return _other_number(rng, v)
    return _other_string(rng, v)


def _scale(x: int | float, k: int) -> int | float:
    d = Decimal(repr(x)).scaleb(k)
    return int(d) if d == d.to_integral_value() else float(d)


# --- faults in what the receiver got (the receiver's copy is edited in place) ----------------------


def _distinct(items: list[Any]) -> bool:
    return len({_dumps(x, option=orjson.OPT_SORT_KEYS) for x in items}) == len(items)


def _removed_field(rng: random.Random, st: dict[str, Any]) -> tuple[Any, ...] | None:
    # A key of an object that keeps other keys (the object is not emptied), or, now and then, an item of
    # a list that is not its last one (a list that lost its tail was cut short: a truncation).
    entries = _entries(st)
    cands = [e for e in entries if type(e[2]) is dict and len(e[2]) >= 2]
    if rng.random() < 0.2:
        items = [e for e in entries if type(e[2]) is list and e[3] < len(e[2]) - 1 and _distinct(e[2])]
        cands = items or cands
    c = _pick(rng, cands)
    if c is None:
        return None
    del c[2][c[3]]
    return c[0]


def _nulled_field(rng: random.Random, st: dict[str, Any]) -> tuple[Any, ...] | None:
    c = _pick(rng, [e for e in _entries(st) if not _is_empty(e[1])])
    if c is None:
        return None
    path, v, parent, key = c
    if type(v) is str:
        parent[key] = rng.choice((None, ""))
    elif type(v) is list:
        parent[key] = rng.choice((None, []))
    elif type(v) is dict:
        parent[key] = rng.choice((None, {}))
    else:
        parent[key] = None
    return path


def _bare(s: str) -> str:
    """A string without a trailing ellipsis (it may have been cut before) and trailing blanks."""
    for mark in ("...", "\u2026"):
        if s.endswith(mark):
            s = s[: -len(mark)]
    return s.rstrip()


def _truncated_value(rng: random.Random, st: dict[str, Any]) -> tuple[Any, ...] | None:
    cands = [
        e for e in _entries(st)
        if (type(e[1]) is str and len(_bare(e[1])) >= 5) or (type(e[1]) is list and len(e[1]) >= 2)
    ]
    c = _pick(rng, cands)
    if c is None:
        return None
    path, v, parent, key = c
    if type(v) is list:
        parent[key] = v[: rng.randint(1, len(v) - 1)]
        return path
    text = _bare(v)  # cut what the string says, not a mark of an earlier cut
    hi = len(text) - 2
    lo = min(max(3, len(text) // 5), hi)
    cut = rng.randint(lo, hi)
    if rng.random() < 0.5:  # at a word boundary, as a summary would
        space = text.rfind(" ", lo, cut + 1)
        if space > 3:
            cut = space
    prefix = text[:cut].rstrip()
    parent[key] = prefix + rng.choice(("", "...", "\u2026", " ...", "..."))
    return path


def _changed_value(rng: random.Random, st: dict[str, Any]) -> tuple[Any, ...] | None:
    cands = [e for e in _entries(st) if type(e[1]) is bool or (_is_scalar(e[1]) and e[1] != 0 and e[1] != "")]
    c = _pick(rng, cands)
    if c is None:
        return None
    path, v, parent, key = c
    parent[key] = _other_value(rng, v)
    return path


def _type_changed(rng: random.Random, st: dict[str, Any]) -> tuple[Any, ...] | None:
    cands = [e for e in _entries(st) if type(e[1]) is bool or _is_number(e[1]) or _is_numeric_string(e[1])]
    c = _pick(rng, cands)
    if c is None:
        return None
    path, v, parent, key = c
    if type(v) is bool:
        parent[key] = "true" if v else "false"
    elif type(v) is int:
        parent[key] = rng.choice((str(v), f"{v}.00")) if rng.random() < 0.3 else str(v)
    elif type(v) is float:
        parent[key] = f"{v:.2f}" if round(v, 2) == v and rng.random() < 0.6 else repr(v)
    else:
        parent[key] = int(v) if "." not in v else float(v)
    return path


def _unit_changed(rng: random.Random, st: dict[str, Any]) -> tuple[Any, ...] | None:
    c = _pick(rng, [e for e in _entries(st) if _is_number(e[1]) and e[1] != 0])
    if c is None:
        return None
    path, v, parent, key = c
    parent[key] = _scale(v, rng.choice((-6, -3, -2, -2, -1, 1, 2, 2, 2, 3, 3, 6, 9)))
    return path


def _rename(key: str, rng: random.Random, taken: Any) -> str:
    options = []
    if key in SYNONYMS:
        options.append(SYNONYMS[key])
    if "_" in key:
        head, *rest = key.split("_")
        options.append(head + "".join(w.capitalize() for w in rest))
    options += [key.capitalize(), key + "_field", "the_" + key]
    options = [o for o in options if o not in taken and o not in AGENTS and o != key]
    return rng.choice(options)


def _renamed_field(rng: random.Random, st: dict[str, Any]) -> tuple[Any, ...] | None:
    # The same value under another key of the same object; the key keeps its place.
    c = _pick(rng, [e for e in _entries(st) if type(e[2]) is dict])
    if c is None:
        return None
    path, v, parent, key = c
    new = _rename(key, rng, parent)
    items = list(parent.items())
    parent.clear()
    parent.update((new if k == key else k, x) for k, x in items)
    return path


def _new_item(rng: random.Random, items: list[Any]) -> Any:
    seen = {_dumps(x, option=orjson.OPT_SORT_KEYS) for x in items}
    for _ in range(20):
        proto = rng.choice(items)
        if type(proto) is dict:
            new: Any = {k: (_other_value(rng, x) if _is_scalar(x) else x) for k, x in proto.items()}
        elif _is_scalar(proto):
            new = _other_value(rng, proto)
        else:
            new = rng.choice(WORDS)
        if _dumps(new, option=orjson.OPT_SORT_KEYS) not in seen:
            return new
    return {"note": _sentence(rng, 2, 4)}


def _injected_field(rng: random.Random, st: dict[str, Any]) -> tuple[Any, ...] | None:
    containers: list[Entry] = [((), st, None, None)]
    containers += [e for e in _entries(st) if (type(e[1]) is dict and e[1]) or (type(e[1]) is list and e[1])]
    c = _pick(rng, containers)
    assert c is not None
    path, node = c[0], c[1]
    if type(node) is list:
        i = rng.randint(0, len(node))
        node.insert(i, _new_item(rng, node))
        return (*path, i)
    key = rng.choice([k for k in INJECT_KEYS if k not in node])
    node[key] = rng.choice(
        (
            lambda: _sentence(rng, 2, 6),
            lambda: rng.randint(1, 500),
            lambda: round(rng.uniform(0, 1), 3),
            lambda: rng.random() < 0.5,
            lambda: {"by": rng.choice(AGENTS), "at": _date(rng, 2026)},
            lambda: rng.sample(TAGS, 2),
            lambda: None,
        )
    )()
    return (*path, key)


RECEIPT_FAULTS = {
    "removed_field": _removed_field,
    "nulled_field": _nulled_field,
    "truncated_value": _truncated_value,
    "changed_value": _changed_value,
    "type_changed": _type_changed,
    "unit_changed": _unit_changed,
    "renamed_field": _renamed_field,
    "injected_field": _injected_field,
}


def _not_forwarded(rng: random.Random, st: dict[str, Any]) -> tuple[Any, ...] | None:
    """Drop a field (sometimes two) of a nested object the agent received, keeping the object itself."""
    cands = [e for e in _entries(st) if len(e[0]) >= 2 and type(e[2]) is dict and len(e[2]) >= 2]
    c = _pick(rng, cands)
    if c is None:
        return None
    path, _, parent, key = c
    del parent[key]
    if len(parent) >= 2 and rng.random() < 0.25:
        del parent[rng.choice(list(parent))]
    return path


# --- one trace -------------------------------------------------------------------------------------


@dataclass
class Stats:
    """What was written."""

    traces: int = 0
    events: int = 0
    handoffs: int = 0
    faulty_handoffs: int = 0
    bytes: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    not_injected: int = 0  # planned faults that found nothing to act on (should stay 0)


def _compatible(kinds: list[str]) -> bool:
    outcome = [k for k in kinds if k in OUTCOME_KINDS]
    if len(set(outcome)) != len(outcome):
        return False
    if "missing_outcome" in outcome and ("conflicting_outcome" in outcome or "premature_termination" in outcome):
        return False
    return True


def _assign(rng: random.Random, hops: int, kinds: list[str]) -> dict[int, str] | None:
    """Place the kinds on distinct hops: an orphaned handoff ends the run, so it takes the last faulty
    hop; not_forwarded needs a sender that received something, so not the first hop."""
    chosen = sorted(rng.sample(range(hops), len(kinds)))
    plan: dict[int, str] = {}
    if "orphaned_handoff" in kinds:
        plan[chosen.pop()] = "orphaned_handoff"
    later = [h for h in chosen if h >= 1]
    nf = kinds.count("not_forwarded")
    if nf > len(later):
        return None
    for h in rng.sample(later, nf):
        plan[h] = "not_forwarded"
        chosen.remove(h)
    rng.shuffle(chosen)
    plan.update(zip(chosen, [k for k in kinds if k not in ("orphaned_handoff", "not_forwarded")]))
    return plan


def _plan(rng: random.Random, hops: int, p: float) -> dict[int, str]:
    """Which hops are faulty, and with which kind: {hop: kind}. Kinds are drawn uniformly; a draw that
    cannot be built (two missing outcomes, a missing and a conflicting outcome, ...) is drawn again."""
    m = sum(rng.random() < p for _ in range(hops))
    while m:
        kinds = [rng.choice(KINDS) for _ in range(m)]
        if not _compatible(kinds):
            continue
        for _ in range(20):
            plan = _assign(rng, hops, kinds)
            if plan is not None:
                return plan
    return {}


class _Trace:
    def __init__(self, rng: random.Random, tid: str, keyed: bool) -> None:
        self.rng = rng
        self.tid = tid
        self.keyed = keyed
        self.short_ids = rng.random() < 0.3  # "h1", "h2": unique within the trace only
        self.events: list[dict[str, Any]] = []
        self.labels: list[dict[str, Any]] = []
        self.n = 0
        self.handoffs = 0
        self.missed = 0  # planned faults that found nothing to act on

    def ev(self, typ: str, **fields: Any) -> dict[str, Any]:
        e = {"trace_id": self.tid, "type": typ, **fields}
        self.events.append(e)
        return e

    def hid(self) -> dict[str, Any]:
        self.n += 1
        if not self.keyed:
            return {}
        return {"handoff_id": f"h{self.n}" if self.short_ids else f"{self.tid}-h{self.n}"}

    def send(self, frm: str, to: str, state: dict[str, Any], ids: dict[str, Any], **extra: Any) -> None:
        self.ev("handoff.sent", agent=frm, **ids, **{"from": frm, "to": to}, state=state, **extra)

    def recv(self, frm: str, to: str, state: dict[str, Any], ids: dict[str, Any]) -> dict[str, Any]:
        return self.ev("handoff.received", agent=to, **ids, **{"from": frm, "to": to}, state=state)

    def label(
        self, kind: str, frm: str | None, to: str | None, path: tuple[Any, ...] | None, ids: dict[str, Any],
        variant: str | None = None,
    ) -> None:
        self.labels.append(
            {
                "trace_id": self.tid,
                "kind": kind,
                "class": KIND_CLASS[kind],
                "from": frm,
                "to": to,
                "path": None if path is None else format_path(path),
                "handoff_id": ids.get("handoff_id"),
                "variant": variant,
            }
        )

    def llm(self, agent: str, purpose: str | None = None) -> None:
        rng = self.rng
        inp, out = rng.randint(200, 4000), rng.randint(20, 800)
        extra = {"purpose": purpose} if purpose else {}
        self.ev("llm.call", agent=agent, model=rng.choice(("gpt-4.1-mini", "claude-haiku", "llama-3-70b")),
                input_tokens=inp, output_tokens=out, cost_usd=round((inp + 4 * out) * 1e-6, 6), **extra)

    def tool_call(self, agent: str, state: dict[str, Any], reinterpret: bool) -> tuple[Any, ...] | None:
        """A tool call acting on the state the agent holds; with ``reinterpret``, one field another way."""
        rng = self.rng
        entries = _entries(state)
        counts = _key_counts(entries)
        unique = [e for e in entries if type(e[2]) is dict and counts[e[3]] == 1 and _is_scalar(e[1])]
        args: dict[str, Any] = {}
        for _, v, _, key in rng.sample(unique, min(len(unique), rng.randint(0, 2))):
            args[key] = v  # acts on what it was handed, as handed
        shared = [e for e in entries if type(e[2]) is dict and counts[e[3]] > 1 and _is_scalar(e[1])]
        if shared and rng.random() < 0.2:
            _, v, _, key = rng.choice(shared)  # named like a field that is not unique: no claim either way
            args[key] = v
        whole = rng.random() < 0.15
        reinterpret_object = reinterpret and rng.random() < 0.2
        objects = [
            e for e in entries
            if type(e[2]) is dict and counts[e[3]] == 1 and type(e[1]) in (dict, list)
            and any(_is_scalar(x[1]) for x in _entries(e[1]))
        ] if whole or reinterpret_object else []
        if objects and whole:
            _, v, _, key = rng.choice(objects)  # a whole object or list, as handed
            args[key] = v
        path = None
        if objects and reinterpret_object:
            # the object it was handed, with one value inside taken another way
            path, v, _, key = rng.choice(objects)
            v = _copy(v)
            _, x, parent, k = rng.choice([e for e in _entries(v) if _is_scalar(e[1])])
            parent[k] = _other_value(rng, x)
            args[key] = v
        elif reinterpret and unique:
            path, v, _, key = rng.choice(unique)
            scaled = _is_number(v) and v != 0 and rng.random() < 0.3
            args[key] = _scale(v, rng.choice((2, -2, 3))) if scaled else _other_value(rng, v)
        args[rng.choice(FREE_ARGS)] = rng.choice((True, 30000, "strict", 50))
        self.ev("tool.call", agent=agent, tool=rng.choice(TOOLS), args=args)
        return path


def build_trace(rng: random.Random, tid: str, p: float) -> _Trace:
    """One run of the pipeline with its faults injected and labelled."""
    agents = rng.sample(AGENTS, rng.randint(3, 6))
    hops = len(agents) - 1
    plan = _plan(rng, hops, p)
    kinds = set(plan.values())
    t = _Trace(rng, tid, keyed=rng.random() >= 0.1)
    received: dict[str, Any] = DOMAINS[rng.randrange(len(DOMAINS))](rng)
    claimant: str | None = None
    last_ids: dict[str, Any] = {}
    tail: list[dict[str, Any]] = []  # events that close the trace (after its last agent.end)

    def act(agent: str, k: int) -> None:
        """The agent's tool call on the state it received (the first agent: on the state it built)."""
        if k > 0 and plan.get(k - 1) == "reinterpreted_field":
            path = t.tool_call(agent, received, reinterpret=True)
            if path is None:
                t.missed += 1
            else:
                t.label("reinterpreted_field", agents[k - 1], agent, path, last_ids)
        elif rng.random() < 0.7:
            t.tool_call(agent, received, reinterpret=False)

    for k, agent in enumerate(agents):
        t.ev("agent.start", agent=agent)
        for _ in range(rng.randint(1, 2)):
            t.llm(agent)
        # Most agents act before handing on; some after (still on what they received: nothing came back).
        act_late = k < hops and plan.get(k) not in ("clarification_loop", "orphaned_handoff") and rng.random() < 0.3
        if not act_late:
            act(agent, k)
        if rng.random() < 0.01:
            t.ev("memory.write", agent=agent, key=f"{agent}/scratch", size=rng.randint(10, 900))

        if k == hops:  # the last agent claims the outcome, after every handoff was received
            early = claimant is None and "conflicting_outcome" in kinds and rng.random() < 0.4
            if early:  # a second claimant, also after every receipt
                t.ev("outcome", agent=rng.choice(agents[:-1]), status=rng.choice(("success", "failure")),
                     result={"summary": _sentence(rng, 3, 6)})
            if claimant is None and "missing_outcome" not in kinds:
                claimant = agent
                status = "success" if rng.random() < 0.9 else "failure"
                t.ev("outcome", agent=agent, status=status, result={"summary": _sentence(rng, 3, 8)})
            t.ev("agent.end", agent=agent, status="ok" if rng.random() < 0.97 else "error")
            if "conflicting_outcome" in kinds and not early:
                t.ev("outcome", agent=rng.choice([a for a in agents if a != claimant]),
                     status=rng.choice(("success", "failure")), result={"summary": _sentence(rng, 3, 6)})
            break

        nxt = agents[k + 1]
        kind = plan.get(k)
        ids = t.hid()
        t.handoffs += 1
        base = received
        if k > 0:
            if len(base) > 3 and rng.random() < 0.08:  # scoping: a whole top-level key is not passed on
                drop = rng.choice(list(base))
                base = {key: v for key, v in base.items() if key != drop}
            if kind == "not_forwarded":
                base = _copy(base)
                path = _not_forwarded(rng, base)
                if path is None:
                    t.missed += 1
                else:
                    t.label(kind, agent, nxt, path, ids)
        sent = dict(base)
        sent[agent] = _own_key(rng, k)

        got = sent
        if kind is None and rng.random() < 0.05:
            got = _reencode(sent, rng)
        if kind in RECEIPT_KINDS:
            got = _copy(sent)
            path = RECEIPT_FAULTS[kind](rng, got)
            if path is None:
                got = sent
                t.missed += 1
            else:
                t.label(kind, agent, nxt, path, ids)
        stray = kind == "unsolicited_receipt" and rng.random() < 0.4
        answered = kind == "clarification_loop" and rng.random() < 0.3
        retried = kind in ("orphaned_handoff", "premature_termination") and t.keyed and rng.random() < 0.25
        if kind == "unsolicited_receipt":
            t.label(kind, agent, nxt, None, ids, "stray_receipt" if stray else "send_missing")
        elif kind == "clarification_loop":
            t.label(kind, agent, nxt, None, ids, "resent_with_answer" if answered else "resent_same")
        elif kind == "orphaned_handoff":
            t.label(kind, agent, nxt, None, ids, "retried" if retried else "sent_once")
        elif kind == "premature_termination":
            t.label(kind, agent, nxt, None, ids, "claimed_between_attempts" if retried else "claimed_after_send")
        elif kind in TRACE_LEVEL_KINDS:
            t.label(kind, None, None, None, {})

        if kind == "unsolicited_receipt" and not stray:
            pass  # received, never sent: the send is not there
        elif (t.keyed and kind is None and rng.random() < 0.03) or retried:  # a retry of the same handoff
            t.send(agent, nxt, sent, ids, attempt=1)
            if kind == "premature_termination":  # claimed while the first attempt is in flight
                claimant = agent if rng.random() < 0.7 else agents[0]
                t.ev("outcome", agent=claimant, status=rng.choice(("success", "success", "failure")),
                     result={"note": f"handed to {nxt}"})
            t.llm(agent, "retry")
            t.send(agent, nxt, sent, ids, attempt=2)
        else:
            t.send(agent, nxt, sent, ids)
        if kind == "premature_termination" and not retried:
            claimant = agent if rng.random() < 0.7 else agents[0]
            t.ev("outcome", agent=claimant, status=rng.choice(("success", "success", "failure")),
                 result={"note": f"handed to {nxt}"})
        if kind == "orphaned_handoff":  # the run stops here; the sender gives up
            t.ev("agent.end", agent=agent, status=rng.choice(("ok", "error")))
            if claimant is None and "missing_outcome" not in kinds:
                claimant = agent
                t.ev("outcome", agent=agent, status="failure", result={"reason": f"{nxt} did not answer"})
            if "conflicting_outcome" in kinds:
                others = [a for a in agents[: k + 2] if a != claimant]
                t.ev("outcome", agent=rng.choice(others), status=rng.choice(("success", "failure")),
                     result={"summary": _sentence(rng, 3, 6)})
            break
        t.recv(agent, nxt, got, ids)
        if kind == "clarification_loop":  # the receiver hands back to ask again; the sender sends again
            back = t.hid()
            about = rng.choice(list(got))
            question = {"question": _sentence(rng, 4, 9)[:-1] + "?", "about": about, "blocking": True}
            t.send(nxt, agent, question, back)
            t.recv(nxt, agent, question, back)
            t.llm(agent, "clarification")
            if answered:  # the sender answers under its own key and sends the state again
                sent = dict(sent)
                sent[agent] = {**sent[agent], "answer": _sentence(rng, 3, 8)}
                got = sent
            again = t.hid()
            t.send(agent, nxt, sent, again)
            t.recv(agent, nxt, sent, again)
            t.handoffs += 2
        if stray:  # received, never sent: a receipt on this edge that no send accounts for
            sids = t.hid()
            tail.append(
                {"trace_id": tid, "type": "handoff.received", "agent": nxt, **sids, "from": agent, "to": nxt,
                 "state": {"notice": _sentence(rng, 3, 7), "ref": f"{rng.getrandbits(32):08x}"}}
            )
            t.handoffs += 1
        if act_late:
            act(agent, k)
        t.ev("agent.end", agent=agent, status="ok" if rng.random() < 0.97 else "error")
        received = got
        last_ids = ids

    t.events.extend(tail)
    return t


# --- the file ----------------------------------------------------------------------------------------

_T0_MS = 1_767_261_600_000  # 2026-01-01T10:00:00Z


class _Clock:
    """Event times as JSON bytes: Unix seconds or RFC 3339, always to the millisecond."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._cache: dict[int, str] = {}

    def _stamp(self, sec: int) -> str:
        s = self._cache.get(sec)
        if s is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            s = self._cache[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return s

    def ts(self, ms: int) -> bytes:
        r = self.rng.random()
        sec, frac = divmod(ms, 1000)
        if r < 0.5:
            return b"%d.%03d" % (sec, frac)
        if r < 0.6:
            return b"%d.%03d000" % (sec, frac)
        if r < 0.85:
            return b'"%s.%03dZ"' % (self._stamp(sec).encode(), frac)
        if r < 0.93:
            return b'"%s.%03d+02:00"' % (self._stamp(sec + 7200).encode(), frac)
        return b'"%s.%03d000-05:00"' % (self._stamp(sec - 18000).encode(), frac)


def generate(
    out: BinaryIO | str,
    events: int,
    faulty: float = 0.10,
    seed: int = 1,
    labels: BinaryIO | str | None = None,
    in_flight: int = 1000,
    window: int = 8,
) -> Stats:
    """Write about ``events`` events (whole traces only) to ``out``; labels to ``labels`` if given."""
    own_out = isinstance(out, str)
    fh: BinaryIO = open(out, "wb") if own_out else out  # type: ignore[arg-type]
    own_labels = isinstance(labels, str)
    lh: BinaryIO | None = open(labels, "wb") if own_labels else labels  # type: ignore[arg-type]
    rng = random.Random(seed)
    clock = _Clock(random.Random(seed + 7))
    stats = Stats()
    created = 0
    pool: list[list[Any]] = []  # [lines, next index]
    buf: list[bytes] = []
    win: list[bytes] = []
    ms = _T0_MS + seed * 1_000_000

    def new_trace() -> list[Any]:
        nonlocal created
        stats.traces += 1
        tid = f"run-{seed}-{stats.traces:07d}-{rng.getrandbits(24):06x}"
        t = build_trace(rng, tid, faulty)
        lines = [_dumps(e) for e in t.events]
        created += len(lines)
        stats.handoffs += t.handoffs
        stats.faulty_handoffs += len(t.labels)
        stats.not_injected += t.missed
        for lb in t.labels:
            stats.kinds[lb["kind"]] += 1
            if lh is not None:
                buf_labels.append(_dumps(lb))
        return [lines, 0]

    buf_labels: list[bytes] = []
    try:
        while len(pool) < in_flight and created < events:
            pool.append(new_trace())
        while pool:
            j = rng.randrange(len(pool))
            tr = pool[j]
            lines = tr[0]
            burst = 1 + (rng.random() < 0.3) + (rng.random() < 0.1)
            for _ in range(burst):
                ms += rng.randint(1, 4)
                body = lines[tr[1]]
                tr[1] += 1
                win.append(b'{"ts":' + clock.ts(ms) + b"," + body[1:] + b"\n")
                if len(win) >= window:
                    rng.shuffle(win)
                    buf.extend(win)
                    win.clear()
                if tr[1] == len(lines):
                    if created < events:
                        pool[j] = new_trace()
                    else:
                        pool[j] = pool[-1]
                        pool.pop()
                    break
            if len(buf) >= 8192:
                data = b"".join(buf)
                stats.bytes += len(data)
                fh.write(data)
                buf.clear()
                if lh is not None and buf_labels:
                    lh.write(b"\n".join(buf_labels) + b"\n")
                    buf_labels.clear()
        rng.shuffle(win)
        buf.extend(win)
        data = b"".join(buf)
        stats.bytes += len(data)
        fh.write(data)
        if lh is not None and buf_labels:
            lh.write(b"\n".join(buf_labels) + b"\n")
        stats.events = created
    finally:
        if own_out:
            fh.close()
        if own_labels and lh is not None:
            lh.close()
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, required=True, help="about this many events (whole traces only)")
    ap.add_argument("--faulty", type=float, default=0.10, help="share of handoffs with one injected fault")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="the JSONL file to write")
    ap.add_argument("--labels", help="write one JSON line per injected fault here")
    ap.add_argument("--in-flight", type=int, default=1000, help="traces open at any time")
    ap.add_argument("--window", type=int, default=8, help="lines are shuffled within windows of this size")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    st = generate(a.out, a.events, a.faulty, a.seed, a.labels, a.in_flight, a.window)
    dt = time.perf_counter() - t0
    share = st.faulty_handoffs / st.handoffs if st.handoffs else 0.0
    print(
        f"{a.out}: {st.events} events, {st.traces} traces, {st.handoffs} handoffs, "
        f"{st.faulty_handoffs} faults ({share:.1%} of handoffs), {st.bytes / 1e6:.1f} MB in {dt:.1f}s",
        file=sys.stderr,
    )
    if st.not_injected:
        print(f"warning: {st.not_injected} planned faults found nothing to act on", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

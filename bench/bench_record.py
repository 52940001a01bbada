"""Cost per recorded event, against the floor of merely encoding the same event.

Times, in one run and best of ``--repeat``, recording ``--events`` ``handoff.sent`` events with a
state of about 500 bytes (an order with items, customer and address) to a temporary file:

  (e) encode: ``orjson.dumps`` of the event dict the recorder would build, nothing written;
  (r) record: ``Trace.handoff_sent`` to a plain ``.jsonl`` file;
  (z) gzip:   the same to a ``.jsonl.gz`` file;
  (x) redact: the same with ``Redact(drop=["customer.phone"], mask=["customer.email", "**.card"])``;
  (t) threads: the plain case split over 4 threads sharing one recorder.

Each case prints microseconds per event and its ratio to (e), measured in the same run; nothing is
asserted. The file is written through, then closed, inside the timing.

    python bench/bench_record.py                 # 200,000 events per case
    python bench/bench_record.py --events 50000 --repeat 5
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from handoff_audit.record import Recorder, Redact

STATE: dict[str, Any] = {
    "order": {
        "id": "ord-100234",
        "total": 188.9,
        "currency": "GBP",
        "items": [{"sku": "KET-01", "qty": 1, "price": 49.9}, {"sku": "MUG-07", "qty": 4, "price": 34.75}],
    },
    "customer": {
        "id": "cus-5521",
        "email": "ann@example.com",
        "phone": "+44 20 7946 0958",
        "shipping_address": {"street": "12 Acacia Ave", "city": "London", "postcode": "N1 7GU"},
        "payment": {"card": "4111111111111111", "exp": "12/30"},
    },
    "notes": "Leave with the neighbour if nobody answers.",
}


def best(repeat: int, fn: Callable[[], None]) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.events
    tmp = Path(tempfile.mkdtemp(prefix="bench-record-"))
    print(f"{n} handoff.sent events per case, state of {len(orjson.dumps(STATE))} bytes, best of {args.repeat}")

    def encode() -> None:
        dumps = orjson.dumps
        for i in range(n):
            ev = {"ts": time.time(), "trace_id": "run-1", "type": "handoff.sent", "agent": "validator",
                  "handoff_id": f"h{i}", "from": "validator", "to": "payment", "state": STATE}
            dumps(ev)

    def record(name: str, **kw: Any) -> Callable[[], None]:
        def go() -> None:
            with Recorder(tmp / name, mode="w", **kw) as rec:
                t = rec.trace("run-1")
                for i in range(n):
                    t.handoff_sent("validator", "payment", STATE, handoff_id=f"h{i}")
            assert rec.written == n and rec.dropped == 0

        return go

    def threaded() -> None:
        with Recorder(tmp / "threads.jsonl", mode="w") as rec:
            def worker(k: int) -> None:
                t = rec.trace(f"run-{k}")
                for i in range(n // 4):
                    t.handoff_sent("validator", "payment", STATE, handoff_id=f"h{i}")

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        assert rec.written == n // 4 * 4

    floor = best(args.repeat, encode)
    cases = [
        ("encode (orjson.dumps only)", floor),
        ("record .jsonl", best(args.repeat, record("plain.jsonl"))),
        ("record .jsonl.gz", best(args.repeat, record("gz.jsonl.gz"))),
        ("record with redaction", best(args.repeat, record(
            "redact.jsonl", redact=Redact(drop=["customer.phone"], mask=["customer.email", "**.card"])))),
        ("record from 4 threads", best(args.repeat, threaded)),
    ]
    for label, seconds in cases:
        print(f"  {label:28} {seconds / n * 1e6:7.2f} us/event   x{seconds / floor:5.2f} of encode")
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()

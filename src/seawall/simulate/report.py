"""The figures of one simulated run, and the table that shows them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .driver import Outcome, Recorder


@dataclass(frozen=True)
class Summary:
    """What one variant of a scenario did. Latencies are of successful requests."""

    label: str
    requests: int
    attempts_per_request: float
    goodput: float  # successful requests per second of the run
    success: float  # share of requests that succeeded
    p50: float | None  # seconds
    p99: float | None
    rejected: float  # share refused without going out (breaker, throttle, bulkhead)
    open_time: float  # seconds a breaker was not closed, per client
    opens: int  # times a breaker opened, per client (rounded)
    recovery: float | None  # seconds from the trigger's end to steady success; None: never
    has_trigger: bool


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def recovery_time(
    outcomes: Sequence[Outcome],
    trigger: tuple[float, float] | None,
    duration: float,
    hold: float = 10.0,
    level: float = 0.9,
) -> float | None:
    """Seconds after the trigger ends until every 1 s slice of requests (by start) succeeds at
    `level` of the success share before the trigger, for `hold` seconds (or to the end)."""
    if trigger is None:
        return None
    start, end = trigger
    before = [o for o in outcomes if o.started < start]
    if not before:
        return None
    baseline = sum(o.result == "success" for o in before) / len(before)
    slices: dict[int, list[int]] = {}
    for o in outcomes:
        if o.started >= end:
            pair = slices.setdefault(int(o.started - end), [0, 0])
            pair[0] += 1
            pair[1] += o.result == "success"
    last = int(duration - end)
    good = [False] * (last + 1)
    for second, (total, ok) in slices.items():
        if second <= last:
            good[second] = total > 0 and ok / total >= level * baseline
    steady = int(hold)
    for second in range(last + 2 - steady):
        if all(good[second : second + steady]):
            return float(second)
    return None


def summarize(
    label: str,
    recorder: Recorder,
    outcomes: Sequence[Outcome],
    duration: float,
    trigger: tuple[float, float] | None,
    clients: int,
    calls: int,
) -> Summary:
    """`outcomes`: the logical requests (pages, for a fan-out); `calls`: the calls to
    dependencies they made (the attempts are counted per call)."""
    n = len(outcomes)
    successes = [o for o in outcomes if o.result == "success"]
    latencies = [o.ended - o.started for o in successes]
    opens = sum(1 for t in recorder.transitions if t[3] == "open")
    return Summary(
        label=label,
        requests=n,
        attempts_per_request=len(recorder.attempt_times) / calls if calls else 0.0,
        goodput=len(successes) / duration,
        success=len(successes) / n if n else 0.0,
        p50=percentile(latencies, 0.50),
        p99=percentile(latencies, 0.99),
        rejected=sum(o.result == "rejected" for o in outcomes) / n if n else 0.0,
        open_time=recorder.open_time / clients,
        opens=round(opens / clients),
        recovery=recovery_time(outcomes, trigger, duration),
        has_trigger=trigger is not None,
    )


HEADERS = (
    "variant",
    "attempts/req",
    "goodput/s",
    "success",
    "p50 ms",
    "p99 ms",
    "rejected",
    "open s",
    "opens",
    "recovery s",
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def row(s: Summary) -> tuple[str, ...]:
    recovery = "-" if not s.has_trigger else "never" if s.recovery is None else f"{s.recovery:.0f}"
    return (
        s.label,
        f"{s.attempts_per_request:.2f}",
        f"{s.goodput:.1f}",
        f"{s.success:.1%}",
        _ms(s.p50),
        _ms(s.p99),
        f"{s.rejected:.1%}",
        f"{s.open_time:.1f}",
        str(s.opens),
        recovery,
    )


def table(summaries: Sequence[Summary], markdown: bool = False) -> str:
    rows = [HEADERS, *(row(s) for s in summaries)]
    if markdown:
        lines = ["| " + " | ".join(r) + " |" for r in rows]
        lines.insert(1, "| " + " | ".join("---" for _ in HEADERS) + " |")
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    out = []
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        out.append("  ".join(cells))
    return "\n".join(out)

"""The snapshot as a table, for `seawall status` (a terminal, not a browser)."""

from __future__ import annotations

from typing import Any

COLUMNS = (
    "DEPENDENCY",
    "BREAKER",
    "STATE",
    "CALLS",
    "FAIL%",
    "SLOW%",
    "REJECTED",
    "PROBE IN",
    "BULKHEAD",
    "BUDGET",
    "FLEET",
    "MANUAL",
)


def render(snapshot: dict[str, Any]) -> str:
    rows = [COLUMNS]
    for dep in snapshot["dependencies"]:
        bulkhead, budget = dep["bulkhead"], dep["retry_budget"]
        fixed = (
            f"{bulkhead['active']}/{bulkhead['limit']}+{bulkhead['queued']}q" if bulkhead else "-",
            f"{budget['left']:.1f}" if budget else "-",
        )
        for breaker in dep["breakers"] or [None]:
            if breaker is None:
                rows.append((dep["name"], "-", "-", "-", "-", "-", "-", "-", *fixed, "-", "-"))
                continue
            window, manual = breaker["window"], breaker["manual"]
            state = breaker["state"] + (" (probe due)" if breaker["probe_due"] else "")
            probe = (
                "never"
                if breaker["state"] == "isolated"
                else (f"{breaker['retry_in']:.1f}s" if breaker["retry_in"] else "-")
            )
            rows.append(
                (
                    dep["name"],
                    breaker["key"],
                    state,
                    str(window["calls"]),
                    f"{100 * window['failure_rate']:.1f}",
                    f"{100 * window['slow_rate']:.1f}",
                    str(window["rejected"]),
                    probe,
                    *fixed,
                    _fleet(breaker.get("fleet")),
                    (
                        f"{manual['action']}{' (fleet-wide)' if manual.get('scope') == 'fleet' else ''} by {manual['by'] or '?'}: {manual['reason'] or '-'}"
                    )
                    if manual
                    else "-",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        (
            f"{snapshot['service']}  pid {snapshot['pid']} on {snapshot['host']} "
            f"({snapshot['scope']}) at {snapshot['time']}"
        ),
        "",
    ]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    ]
    for conflict in snapshot["conflicts"]:
        lines.append(f"warning: {conflict['problem']}")
    return "\n".join(lines)


def _fleet(fleet: dict[str, Any] | None) -> str:
    """The fleet's side of a breaker in fleet mode (STATE is this process's): "-" otherwise."""
    if fleet is None:
        return "-"
    if fleet["degraded"]:
        return "degraded(local)"
    if fleet["state"] is None:
        return "not-flushed"
    return f"{fleet['state']}:{fleet['calls']}c/{fleet['failures']}f/{fleet['reporters']}p"

"""`seawall dlq list | show | replay | resolve | purge`: dead letters from a terminal.

The command opens the store itself (`--db`, the SQLite file). A replay from the command line
goes through a policy built here: the default `seawall.Policy` named after the entry's
dependency (its breaker, bulkhead and budget are this process's own), or the policy a
configuration file (`--config`) gives that dependency; `--on-replay module:function` names the
hook that puts the credentials back.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import sys
from typing import Any

from .letter import STATES, Letter
from .replay import ReplayRefused
from .store import Query

COLUMNS = ("ID", "DEPENDENCY", "STATE", "REASON", "METHOD", "URL", "LAST", "ATTEMPTS", "ERROR")


def add_parser(commands: Any) -> None:
    dlq = commands.add_parser("dlq", help="list, show, replay, resolve or purge dead letters")
    dlq.add_argument("--db", required=True, help="the dead letters' SQLite file")
    actions = dlq.add_subparsers(dest="action", required=True)

    def filters(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dependency")
        parser.add_argument("--since", type=_time, help="Unix seconds or ISO 8601 (last seen)")
        parser.add_argument("--until", type=_time, help="Unix seconds or ISO 8601 (last seen)")

    listing = actions.add_parser("list", help="the entries, newest first")
    filters(listing)
    listing.add_argument("--state", choices=STATES)
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true")
    show = actions.add_parser("show", help="one entry, with its headers, body and replays")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    replay = actions.add_parser("replay", help="replay one entry, or --all matching ones")
    replay.add_argument("id", nargs="?")
    replay.add_argument("--all", action="store_true", help="every pending or failed match")
    filters(replay)
    replay.add_argument("--dry-run", action="store_true", help="only count what --all would do")
    replay.add_argument(
        "--allow-unsafe",
        action="store_true",
        help="also replay non-idempotent requests that have no Idempotency-Key",
    )
    replay.add_argument("--rate", type=float, default=10.0, help="replays a second at most")
    replay.add_argument("--config", help="a seawall configuration file giving the policies")
    replay.add_argument("--on-replay", help="module:function called with each ReplayRequest")
    replay.add_argument("--json", action="store_true")
    resolve = actions.add_parser("resolve", help="mark an entry resolved, saying why")
    resolve.add_argument("id")
    resolve.add_argument("--reason", required=True)
    purge = actions.add_parser("purge", help="delete entries (a filter, or --all)")
    filters(purge)
    purge.add_argument("--state", choices=STATES)
    purge.add_argument("--all", action="store_true")


def run(args: argparse.Namespace) -> int:
    from .recorder import DeadLetters
    from .sqlite import SQLiteStore

    hook = _hook(args.on_replay) if getattr(args, "on_replay", None) else None
    letters = DeadLetters(
        SQLiteStore(args.db), on_replay=hook, replay_rate=getattr(args, "rate", 10.0)
    )
    try:
        return _act(letters, args)
    except (KeyError, ReplayRefused, ValueError, LookupError) as error:
        message = error.args[0] if isinstance(error, KeyError) else error
        print(f"seawall dlq {args.action}: {message}", file=sys.stderr)
        return 1
    finally:
        letters.close()


def _act(letters: Any, args: argparse.Namespace) -> int:
    action = args.action
    if action == "list":
        found = letters.list(Query(args.dependency, args.state, args.since, args.until), args.limit)
        print(json.dumps([x.summary() for x in found], indent=2) if args.json else render(found))
        return 0
    if action == "show":
        letter = letters.get(args.id)
        if letter is None:
            raise KeyError(f"no dead letter {args.id!r}")
        detail = letter.detail()
        print(
            json.dumps(detail, indent=2)
            if args.json
            else "\n".join(f"{key}: {value}" for key, value in detail.items())
        )
        return 0
    if action == "resolve":
        letters.resolve(args.id, args.reason)
        print(f"{args.id}: resolved")
        return 0
    if action == "purge":
        query = Query(args.dependency, args.state, args.since, args.until)
        if query == Query() and not args.all:
            raise ValueError("give a filter (--dependency, --state, --since, --until) or --all")
        print(f"{letters.purge(query)} entries deleted")
        return 0
    policies = _policies(args.config)
    if args.all == (args.id is not None):
        raise ValueError("give an entry's id or --all, not both")
    if args.id is not None:
        letter = letters.get(args.id)
        if letter is None:
            raise KeyError(f"no dead letter {args.id!r}")
        outcome = letters.replay(
            args.id, allow_unsafe=args.allow_unsafe, policy=policies(letter.dependency)
        )
        print(
            json.dumps({"ok": outcome.ok, "status": outcome.status, "error": outcome.error})
            if args.json
            else f"{args.id}: {'resolved' if outcome.ok else 'failed'} "
            f"({outcome.status or outcome.error})"
        )
        return 0 if outcome.ok else 1
    for dependency in {
        x.dependency
        for x in letters.list(Query(args.dependency, None, args.since, args.until), 100_000)
    }:
        letters.watch(policies(dependency))
    done = letters.replay_many(
        dependency=args.dependency,
        since=args.since,
        until=args.until,
        dry_run=args.dry_run,
        allow_unsafe=args.allow_unsafe,
    )
    report = {
        "matched": done.matched,
        "resolved": done.resolved,
        "failed": done.failed,
        "refused": len(done.refused),
        "dry_run": args.dry_run,
    }
    print(
        json.dumps(report)
        if args.json
        else ("would replay" if args.dry_run else "replayed") + f" {done.matched}: "
        f"{done.resolved} resolved, {done.failed} failed, {len(done.refused)} refused"
    )
    return 0 if done.failed == 0 else 1


def render(found: list[Letter]) -> str:
    rows = [COLUMNS]
    for x in found:
        last = datetime.datetime.fromtimestamp(x.last_at, datetime.UTC).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        rows.append(
            (
                x.id,
                x.dependency,
                x.state,
                x.reason,
                x.method,
                _cut(x.url, 60),
                last,
                str(x.attempts),
                _cut(str(x.status or x.error or "-"), 40),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    )


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected Unix seconds or an ISO 8601 time, not {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _hook(spec: str) -> Any:
    module, _, name = spec.partition(":")
    if not module or not name:
        raise SystemExit(f"seawall dlq: --on-replay must be module:function, not {spec!r}")
    found = getattr(importlib.import_module(module), name, None)
    if not callable(found):
        raise SystemExit(f"seawall dlq: --on-replay {spec!r} is not a callable")
    return found


def _policies(config: str | None) -> Any:
    """dependency -> the policy to replay through (one per dependency, built once)."""
    from ..pipeline import Policy

    built: dict[str, Any] = {}
    router = None
    if config is not None:
        from ..config import Router, load_file

        router = Router(load_file(config), telemetry=False, dead_letters=False)  # (ours: --db)

    def policy(dependency: str) -> Any:
        if dependency not in built:
            found = (
                None
                if router is None
                else next((x for x in router.policies() if x.name == dependency), None)
            )
            built[dependency] = found if found is not None else Policy(dependency, telemetry=False)
        return built[dependency]

    return policy

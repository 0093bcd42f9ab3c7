"""The admin API's dead-letter routes (mounted by `seawall.admin.core` when the surface is
given a `DeadLetters`):

    GET  /dead-letters[?dependency=&state=&since=&until=&limit=]   entries, newest first
    GET  /dead-letters/{id}                                         one, with body and replays
    POST /dead-letters/{id}/replay     {"allow_unsafe": false}      (control token)
    POST /dead-letters/{id}/resolve    {"reason": "..."}            (control token)
    POST /dead-letters/replay          {"dependency", "since", "until", "dry_run",
                                        "allow_unsafe"}              bulk (control token)
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from .letter import STATES, State, is_state
from .replay import ReplayRefused
from .store import Query

GET, POST = frozenset({"GET"}), frozenset({"POST"})
MAX_LIST = 1000


class Refused(Exception):
    """An answer other than 200: `status`, a code and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def route(rest: str) -> tuple[frozenset[str], bool] | None:
    """(methods, changes state) of /dead-letters/`rest`, or None for no such route."""
    if rest in ("", "replay"):
        return (GET, False) if rest == "" else (POST, True)
    letter_id, _, action = rest.partition("/")
    if not letter_id or "/" in action:
        return None
    if action == "":
        return GET, False
    return (POST, True) if action in ("replay", "resolve") else None


def answer(letters: Any, rest: str, query: str, body: bytes) -> Any:
    """The JSON document of a dead-letter route (raises `Refused`)."""
    if rest == "":
        return {
            "dead_letters": [x.summary() for x in letters.list(*_listing(query))],
            "recorded": letters.recorded,
            "dropped": letters.dropped,
            "replayed": letters.replayed,
        }
    options = _options(body)
    if rest == "replay":
        done = letters.replay_many(
            dependency=_text(options, "dependency"),
            since=_number(options, "since"),
            until=_number(options, "until"),
            dry_run=_flag(options, "dry_run"),
            allow_unsafe=_flag(options, "allow_unsafe"),
        )
        return {
            "matched": done.matched,
            "resolved": done.resolved,
            "failed": done.failed,
            "refused": done.refused,
            "dry_run": _flag(options, "dry_run"),
        }
    letter_id, _, action = rest.partition("/")
    try:
        if action == "":
            found = letters.get(letter_id)
            if found is None:
                raise KeyError(letter_id)
            return found.detail()
        if action == "resolve":
            reason = _text(options, "reason")
            if not reason or not reason.strip():
                raise Refused(400, "bad_request", 'resolve needs a reason: {"reason": ...}')
            letters.resolve(letter_id, " ".join(reason.split())[:200])
        else:
            outcome = letters.replay(letter_id, allow_unsafe=_flag(options, "allow_unsafe"))
            if not outcome.ok:
                raise Refused(
                    502, "replay_failed", f"the replay failed: {outcome.status or outcome.error}"
                )
        after = letters.get(letter_id)
        return after.detail() if after is not None else {}
    except KeyError:
        raise Refused(404, "not_found", f"no dead letter {letter_id!r}") from None
    except ReplayRefused as error:
        raise Refused(409, "conflict", str(error)) from None
    except LookupError as error:
        raise Refused(409, "conflict", str(error)) from None


def _listing(query: str) -> tuple[Query, int]:
    given = {key: values[-1] for key, values in parse_qs(query).items()}
    unknown = set(given) - {"dependency", "state", "since", "until", "limit"}
    if unknown:
        raise Refused(
            400,
            "bad_request",
            f"unknown parameter(s) {sorted(unknown)}: expected "
            f"dependency, state, since, until, limit",
        )
    state: State | None = None
    if "state" in given:
        if not is_state(given["state"]):
            raise Refused(
                400, "bad_request", f"state must be one of {list(STATES)}, got {given['state']!r}"
            )
        state = given["state"]
    limit = given.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIST:
        raise Refused(
            400, "bad_request", f"limit must be a whole number in 1..{MAX_LIST}, got {limit!r}"
        )
    times = []
    for name in ("since", "until"):
        raw = given.get(name)
        try:
            times.append(None if raw is None else float(raw))
        except ValueError:
            raise Refused(400, "bad_request", f"{name} must be Unix seconds, got {raw!r}") from None
    return Query(given.get("dependency"), state, times[0], times[1]), int(limit)


def _options(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        options = json.loads(body)
    except ValueError:
        raise Refused(400, "bad_request", "the body must be JSON") from None
    if not isinstance(options, dict):
        raise Refused(400, "bad_request", "the body must be a JSON object")
    unknown = set(options) - {"reason", "allow_unsafe", "dependency", "since", "until", "dry_run"}
    if unknown:
        raise Refused(400, "bad_request", f"unknown field(s) {sorted(unknown)}")
    return options


def _typed(options: dict[str, Any], name: str, kinds: tuple[type, ...], expected: str) -> Any:
    value = options.get(name)
    if value is not None and (
        isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds)
    ):
        raise Refused(400, "bad_request", f"{name} must be {expected}, got {type(value).__name__}")
    return value


def _text(options: dict[str, Any], name: str) -> str | None:
    found: str | None = _typed(options, name, (str,), "a string")
    return found


def _number(options: dict[str, Any], name: str) -> float | None:
    found = _typed(options, name, (int, float), "a number (Unix seconds)")
    return None if found is None else float(found)


def _flag(options: dict[str, Any], name: str) -> bool:
    return bool(_typed(options, name, (bool,), "true or false"))

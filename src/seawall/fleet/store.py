"""`Fleet`: the state store that shares breaker verdicts between the processes of a service.

Decide locally, aggregate in Redis: requests only touch the local `FleetBreaker`. A daemon
thread (it never touches an event loop, so it serves asyncio processes as well) flushes about
once a second: one pipeline holding one EVALSHA per active breaker, whose replies are the
fleet's states. A second thread listens to the transitions published on the namespace's
channel, so a fleet opening reaches every process in milliseconds (the flush is the safety net,
pub/sub can drop messages).

Fail open: 100 ms socket timeouts, no Redis retries, and a circuit breaker around Redis itself
(seawall's own sans-I/O `Breaker`): the first Redis error opens it, and for `redis_open_for`
seconds no flush, listener or fleet-wide control tries Redis; then one flush probes it. Meanwhile
each breaker follows its local window only, `degraded` is True and one line is logged; the
first flush that works closes the breaker around Redis and rejoins the fleet.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..policies import _validate
from ..policies.breaker import Breaker, CircuitBreaker, State, TransitionListener
from ..policies.retry import RetryBudget
from .breaker import FleetBreaker, FleetView
from .budget import FleetBudget
from .keys import BreakerKeys
from .script import FLUSH, MANUAL, REPORTERS

log = logging.getLogger("seawall.fleet")

_SCHEMES = ("redis", "rediss", "unix")


class RedisUrl(_validate.Rule):
    """A Redis URL; a problem shows only its scheme and host, never the URL (it may hold a
    password)."""

    expected = "a Redis URL like redis://host:6379/0 (schemes redis, rediss, unix)"

    def type_problem(self, value: Any) -> str | None:
        return None if isinstance(value, str) else f"{type(value).__name__} (not a str)"

    def value_problem(self, value: Any) -> str | None:
        parts = urlsplit(value)
        if parts.scheme not in _SCHEMES or (parts.scheme != "unix" and not parts.hostname):
            return (
                f"one with scheme {parts.scheme or '(none)'!r} and host "
                f"{parts.hostname or '(none)'!r}"
            )
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            return "one whose port is not a number"
        return None


class ControlError(RuntimeError):
    """A fleet-wide control that could not reach Redis: nothing was changed."""


class Fleet:
    """Share breaker state through Redis: `Policy(store=Fleet("redis://...", namespace=...))`.

    `namespace` separates services (and test runs) on one Redis. A fleet breaker opens when,
    over the last `window` seconds of the whole fleet, `min_calls` calls were seen from at least
    `min_reporters` processes and the failure rate reached the breaker's `failure_rate`. It
    flushes every `interval` seconds. Redis being down at start-up is not an error (fail open).
    """

    #: What each argument must be (the `fleet:` section of the YAML reads the same table).
    RULES: ClassVar[_validate.Rules] = {
        "redis": RedisUrl(),
        "namespace": _validate.Text(),
        "interval": _validate.seconds(above_zero=True),
        "window": _validate.Number(1, what="a number of seconds"),
        "min_reporters": _validate.Count(),
        "timeout": _validate.seconds(above_zero=True),
        "redis_open_for": _validate.seconds(above_zero=True),
        "clock": _validate.Function("a callable returning seconds"),
        "start": _validate.FLAG,
    }

    def __init__(
        self,
        redis: str,
        *,
        namespace: str = "seawall",
        interval: float = 1.0,
        window: float = 10.0,
        min_reporters: int = 2,
        timeout: float = 0.1,
        redis_open_for: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        start: bool = True,
    ) -> None:
        _validate.arguments(
            "Fleet",
            self.RULES,
            {
                "redis": redis,
                "namespace": namespace,
                "interval": interval,
                "window": window,
                "min_reporters": min_reporters,
                "timeout": timeout,
                "redis_open_for": redis_open_for,
                "clock": clock,
                "start": start,
            },
        )
        self.url = redis
        self.namespace = namespace
        self.interval = float(interval)
        self.window = float(window)
        self.min_reporters = min_reporters
        self.timeout = float(timeout)
        self.redis_open_for = float(redis_open_for)
        self._clock = clock
        #: This process among the reporters (host, pid and a random part: pids repeat).
        self.reporter = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.channel = f"sw:{len(namespace)}:{namespace}:transitions"
        self._breakers: weakref.WeakValueDictionary[str, FleetBreaker] = (
            weakref.WeakValueDictionary()
        )
        self._budgets: weakref.WeakSet[FleetBudget] = weakref.WeakSet()
        #: The breaker around Redis: one failed round trip opens it; a flush probes it again.
        self.guard = Breaker(
            CircuitBreaker(
                consecutive_failures=1, min_calls=1, window=60.0, open_for=self.redis_open_for
            ),
            "redis",
            self._guard_moved,
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._client: Any = None
        self._shas: dict[str, str] = {}
        #: True while Redis is unreachable: every breaker decides on its local window alone.
        self.degraded = False
        self.last_flush: float | None = None  # policy clock of the last flush that worked
        self.flushes = 0  # pipelines sent (one per flush with active breakers)
        self.script_calls = 0
        self._threads: list[threading.Thread] = []
        if start:
            self.start()

    # -- the Store protocol ----------------------------------------------------------------
    def breaker(
        self, dependency: str, key: str, config: CircuitBreaker, on_transition: TransitionListener
    ) -> FleetBreaker:
        found = FleetBreaker(config, dependency, key, on_transition)
        with self._lock:
            self._breakers[BreakerKeys(self.namespace, dependency, key).tag] = found
        return found

    def budget(self, dependency: str, config: RetryBudget) -> FleetBudget:
        found = FleetBudget(config, dependency)  # fleet/budget.py: the floor is shared
        with self._lock:
            self._budgets.add(found)
        return found

    # -- running ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the flusher and the transition listener (daemon threads)."""
        if self._threads:
            return
        for target, name in (
            (self._flush_loop, "seawall-fleet-flush"),
            (self._listen_loop, "seawall-fleet-listen"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Stop both threads (within about a second) and close the connection."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        if self._client is not None:
            self._client.close()

    def _redis(self) -> Any:
        if self._client is None:
            import redis  # the `fleet` extra; imported here so seawall works without it
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            self._client = redis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
                health_check_interval=0,
            )
        return self._client

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        """One flush now (the flusher thread calls it every `interval`; tests may too)."""
        now = self._clock()
        with self._lock:
            breakers = [(tag, b) for tag, b in self._breakers.items() if b.active(now)]
            budgets = [b for b in self._budgets if b.active(now)]
        flushed = {b.dependency for _, b in breakers}
        alone = [b for b in budgets if b.dependency not in flushed]  # no breaker says reporters
        if not breakers and not alone:
            return
        permit = self.guard.acquire(now)
        if permit is None:
            return  # the breaker around Redis is open: no round trip, no timeout to wait out
        try:
            replies, counted = self._send(breakers, alone)
        except Exception as error:  # noqa: BLE001 - any Redis failure: fail open, never raise
            self.guard.record(permit, True, False, now)
            self._fall_back(error)
            return
        self.guard.record(permit, False, False, now)
        now = self._clock()
        reporters: dict[str, int] = {}
        for (_, breaker), reply in zip(breakers, replies):
            state, epoch, probe_in_ms, calls, failures, fleet_reporters, prober = reply[:7]
            state = _text(state)
            probe_in = int(probe_in_ms) / 1000.0
            shown = "half_open" if state == "open" and probe_in <= 0 else state
            view = FleetView(
                shown,
                int(epoch),
                int(calls),
                int(failures),
                int(fleet_reporters),
                bool(prober),
                now,
            )
            breaker.apply(view, self._hold(probe_in), now)
            seq, action, reason, by = int(reply[7]), *(_text(x) for x in reply[8:11])
            if breaker.apply_manual(seq, action, reason, by, now, live=False):
                self._announce(breaker, action, reason, by, now)
            dependency = breaker.dependency
            reporters[dependency] = max(reporters.get(dependency, 0), view.reporters)
        reporters.update(counted)
        for budget in budgets:
            budget.share(reporters.get(budget.dependency, 1))
        self.last_flush = now
        if self.degraded:
            self.degraded = False
            log.warning("seawall fleet: Redis is back, breakers rejoin the fleet")

    def _hold(self, probe_in: float) -> float:
        """How long to keep a breaker open that the fleet holds open: until the fleet's probe
        time and two flushes more, so it never half-opens before a flush says who probes."""
        return probe_in + 2 * self.interval

    def _probe_ms(self, config: CircuitBreaker) -> int:
        """How long the fleet's probe stays with one process: long enough for its verdict to
        come back with a later flush, short enough that a process that died hands it on."""
        return round(max(config.open_for, 3 * self.interval) * 1000)

    def _send(
        self, breakers: list[tuple[str, FleetBreaker]], alone: list[FleetBudget]
    ) -> tuple[list[Any], dict[str, int]]:
        """One pipeline: FLUSH for each breaker, REPORTERS for each budget with no breaker in
        it. The FLUSH replies, and the reporters of those budgets' dependencies."""
        from redis.exceptions import NoScriptError

        client = self._redis()
        calls: list[tuple[str, tuple[str, ...], tuple[Any, ...]]] = []
        for _, breaker in breakers:
            pending = breaker.take_counts()
            config = breaker.config
            keys = BreakerKeys(self.namespace, breaker.dependency, breaker.key)
            calls.append(
                (
                    FLUSH,
                    keys.all(),
                    (
                        self.reporter,
                        pending.calls,
                        pending.failures,
                        1000,
                        max(1, round(self.window)),
                        repr(config.failure_rate),
                        config.min_calls,
                        self.min_reporters,
                        round(config.open_for * 1000),
                        self._probe_ms(config),
                        pending.verdict,
                        pending.verdict_epoch,
                        self.channel,
                        keys.tag,
                    ),
                )
            )
        window_ms = round(self.window * 1000)
        for budget in alone:
            key = BreakerKeys(self.namespace, budget.dependency, "").budget
            calls.append((REPORTERS, (key,), (self.reporter, "1", window_ms)))
        for attempt in (1, 2):
            pipe = client.pipeline(transaction=False)
            for script, keys_, args in calls:
                pipe.evalsha(self._sha(client, script), len(keys_), *keys_, *args)
            replies = pipe.execute(raise_on_error=False)
            self.flushes += 1
            self.script_calls += len(calls)
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in replies):
                self._shas.clear()  # Redis restarted or flushed its scripts
                for _, breaker in breakers:
                    breaker.release_fleet(restarted=True)  # its state is gone: epochs restart
                continue
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            counted = {b.dependency: int(r) for b, r in zip(alone, replies[len(breakers) :])}
            return list(replies[: len(breakers)]), counted
        raise AssertionError("unreachable")

    def _sha(self, client: Any, script: str) -> str:
        """The script's SHA, loaded into Redis the first time (and again after NOSCRIPT)."""
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = client.script_load(script)
        return sha

    def _fall_back(self, error: Exception) -> None:
        if not self.degraded:
            self.degraded = True
            log.warning(
                "seawall fleet: Redis unreachable (%s), breakers decide locally; next try in %g s",
                type(error).__name__,
                self.redis_open_for,
            )
        with self._lock:
            breakers = list(self._breakers.values())
            budgets = list(self._budgets)
        for breaker in breakers:
            breaker.release_fleet()
        for budget in budgets:
            budget.share(1)  # alone now: the whole floor

    def _guard_moved(self, key: str, before: State, after: State, now: float) -> None:
        log.debug("seawall fleet: the breaker around Redis went %s -> %s", before, after)

    def _listen_loop(self) -> None:
        while not self._stop.is_set():
            wait = self.guard.retry_in(self._clock())
            if wait > 0:  # Redis is known to be away: do not knock until the flush has
                self._stop.wait(min(wait, self.interval))
                continue
            try:
                pubsub = self._redis().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None:
                        self._heard(message["data"])
            except Exception:  # noqa: BLE001 - Redis away: the flusher reports it; retry soon
                self._stop.wait(self.interval)

    def _heard(self, data: bytes) -> None:
        """A message published by some process: a transition (from a flush) or a fleet-wide
        manual control; apply it at once."""
        tag, kind, rest = data.decode().split("\t", 2)
        with self._lock:
            breaker = self._breakers.get(tag)
        if breaker is None or self.degraded:
            return
        now = self._clock()
        if kind == "manual":
            seq, action, by, reason = rest.split("\t", 3)
            if breaker.apply_manual(int(seq), action, reason, by, now):
                self._announce(breaker, action, reason, by, now)
            return
        epoch, probe_in_ms = rest.split("\t")
        before = breaker.fleet
        if before is not None and before.epoch >= int(epoch):
            return  # already applied by a flush
        view = FleetView(kind, int(epoch), 0, 0, before.reporters if before else 0, False, now)
        breaker.apply(view, self._hold(int(probe_in_ms) / 1000.0), now)

    # -- fleet-wide manual controls (admin `scope=fleet`) ----------------------------------
    def control(self, breaker: FleetBreaker, action: str, reason: str = "", by: str = "") -> bool:
        """`reset`, `isolate` or `disable` `breaker` in every process of the fleet: stored and
        published in Redis (a process that flushes or starts later finds it too), then applied
        here; False when this process's listener heard and applied it first (and announced
        it). Raises `ControlError` (nothing changed anywhere) when Redis cannot be reached."""
        if self.guard.retry_in(self._clock()) > 0:
            raise ControlError("the fleet's Redis is unreachable (fleet mode is degraded)")
        keys = BreakerKeys(self.namespace, breaker.dependency, breaker.key)
        clean = [" ".join(part.split()) for part in (reason, by)]  # one line each, no tabs
        try:
            client = self._redis()
            seq = client.evalsha(
                self._sha(client, MANUAL), 5, *keys.all(), action, *clean, self.channel, keys.tag
            )
        except Exception as error:  # noqa: BLE001 - say so without the URL or a password
            raise ControlError(
                f"the fleet's Redis did not take the control ({type(error).__name__})"
            ) from None
        return breaker.apply_manual(int(seq), action, clean[0], clean[1], self._clock())

    def _announce(
        self, breaker: FleetBreaker, action: str, reason: str, by: str, now: float
    ) -> None:
        """A control another process asked for, applied here: its event, log line and metric."""
        from ..admin.controls import announce_fleet

        announce_fleet(self, breaker, action, reason, by, now)

    def view(self) -> dict[str, Any]:
        """The fleet side of the status snapshot."""
        return {
            "namespace": self.namespace,
            "reporter": self.reporter,
            "degraded": self.degraded,
            "last_flush": self.last_flush,
            "interval": self.interval,
            "redis_breaker": self.guard.state(self._clock()).value,
        }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["ControlError", "Fleet", "RedisUrl"]

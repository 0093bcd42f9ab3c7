"""`Fleet`: the state store that shares breaker verdicts between the processes of a service.

Decide locally, aggregate in Redis: requests only touch the local `FleetBreaker`. A daemon
thread (it never touches an event loop, so it serves asyncio processes as well) flushes about
once a second: one pipeline holding one EVALSHA per active breaker, whose replies are the
fleet's states. A second thread listens to the transitions published on the namespace's
channel, so a fleet opening reaches every process in milliseconds (the flush is the safety net,
pub/sub can drop messages).

Fail open: 100 ms socket timeouts, no Redis retries, and after any Redis error a pause before
the next try (a breaker around Redis). Meanwhile each breaker follows its local window only,
`degraded` is True and one line is logged; the first flush that works rejoins the fleet.
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
from typing import Any
from urllib.parse import urlsplit

from ..policies.breaker import CircuitBreaker, TransitionListener
from ..policies.retry import BudgetState, RetryBudget
from .breaker import FleetBreaker, FleetView
from .keys import BreakerKeys
from .script import FLUSH

log = logging.getLogger("seawall.fleet")

_SCHEMES = ("redis", "rediss", "unix")


def check_url(url: object) -> str:
    """`url` if it is a Redis URL, else a ValueError/TypeError naming it (the password, if any,
    is never repeated)."""
    if not isinstance(url, str):
        raise TypeError(f"Fleet: redis must be a str (a redis:// URL), got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES or (parts.scheme != "unix" and not parts.hostname):
        raise ValueError(
            f"Fleet: redis must be a URL like redis://host:6379/0 "
            f"(schemes {', '.join(_SCHEMES)}), got one with scheme "
            f"{parts.scheme or '(none)'!r} and host {parts.hostname or '(none)'!r}"
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError("Fleet: redis URL has a port that is not a number") from None
    return url


class Fleet:
    """Share breaker state through Redis: `Policy(store=Fleet("redis://...", namespace=...))`.

    `namespace` separates services (and test runs) on one Redis. A fleet breaker opens when,
    over the last `window` seconds of the whole fleet, `min_calls` calls were seen from at least
    `min_reporters` processes and the failure rate reached the breaker's `failure_rate`. It
    flushes every `interval` seconds. Redis being down at start-up is not an error (fail open).
    """

    def __init__(
        self,
        redis: str,
        *,
        namespace: str = "seawall",
        interval: float = 1.0,
        window: float = 10.0,
        min_reporters: int = 2,
        timeout: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        start: bool = True,
    ) -> None:
        self.url = check_url(redis)
        if not isinstance(namespace, str) or not namespace:
            raise ValueError(f"Fleet: namespace must be a non-empty str, got {namespace!r}")
        for label, value in (("interval", interval), ("window", window), ("timeout", timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(
                    f"Fleet: {label} must be a number of seconds above 0, got {value!r}"
                )
        if (
            isinstance(min_reporters, bool)
            or not isinstance(min_reporters, int)
            or min_reporters < 1
        ):
            raise ValueError(
                f"Fleet: min_reporters must be a whole number >= 1, got {min_reporters!r}"
            )
        self.namespace = namespace
        self.interval = float(interval)
        self.window = float(window)
        self.min_reporters = min_reporters
        self.timeout = float(timeout)
        self._clock = clock
        #: This process among the reporters (host, pid and a random part: pids repeat).
        self.reporter = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.channel = f"sw:{len(namespace)}:{namespace}:transitions"
        self._breakers: weakref.WeakValueDictionary[str, FleetBreaker] = (
            weakref.WeakValueDictionary()
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._client: Any = None
        self._sha: str | None = None
        #: True while Redis is unreachable: every breaker decides on its local window alone.
        self.degraded = False
        self.last_flush: float | None = None  # policy clock of the last flush that worked
        self.flushes = 0  # pipelines sent (one per flush with active breakers)
        self.script_calls = 0
        self._retry_at = 0.0
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

    def budget(self, dependency: str, config: RetryBudget) -> BudgetState:
        return BudgetState(config)  # a ratio composes: <= 20 % per process is <= 20 % fleet-wide

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
        if now < self._retry_at:
            return
        with self._lock:
            breakers = [(tag, b) for tag, b in self._breakers.items() if b.active(now)]
        if not breakers:
            return
        try:
            replies = self._send(breakers)
        except Exception as error:  # noqa: BLE001 - any Redis failure: fail open, never raise
            self._fall_back(error, now)
            return
        now = self._clock()
        for (_, breaker), reply in zip(breakers, replies):
            state, epoch, probe_in_ms, calls, failures, reporters, prober = reply
            state = state.decode() if isinstance(state, bytes) else str(state)
            probe_in = int(probe_in_ms) / 1000.0
            shown = "half_open" if state == "open" and probe_in <= 0 else state
            breaker.apply(
                FleetView(
                    shown, int(epoch), int(calls), int(failures), int(reporters), bool(prober), now
                ),
                self._hold(probe_in),
                now,
            )
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

    def _send(self, breakers: list[tuple[str, FleetBreaker]]) -> list[Any]:
        from redis.exceptions import NoScriptError

        client = self._redis()
        if self._sha is None:
            self._sha = client.script_load(FLUSH)
        calls = []
        for _, breaker in breakers:
            pending = breaker.take_counts()
            config = breaker.config
            keys = BreakerKeys(self.namespace, breaker.dependency, breaker.key)
            calls.append(
                (
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
        for attempt in (1, 2):
            pipe = client.pipeline(transaction=False)
            for keys_, args in calls:
                pipe.evalsha(self._sha, len(keys_), *keys_, *args)
            replies = pipe.execute(raise_on_error=False)
            self.flushes += 1
            self.script_calls += len(calls)
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in replies):
                self._sha = client.script_load(FLUSH)  # Redis restarted or flushed its scripts
                for _, breaker in breakers:
                    breaker.release_fleet()  # its state may be gone too: epochs restart
                continue
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            return list(replies)
        raise AssertionError("unreachable")

    def _fall_back(self, error: Exception, now: float) -> None:
        self._retry_at = now + self.interval  # the breaker around Redis: pause, then try again
        if not self.degraded:
            self.degraded = True
            log.warning(
                "seawall fleet: Redis unreachable (%s), breakers decide locally",
                type(error).__name__,
            )
        with self._lock:
            breakers = list(self._breakers.values())
        for breaker in breakers:
            breaker.release_fleet()

    def _listen_loop(self) -> None:
        while not self._stop.is_set():
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
        """A transition published by some process's flush: apply it at once."""
        tag, state, epoch, probe_in_ms = data.decode().split("\t")
        with self._lock:
            breaker = self._breakers.get(tag)
        if breaker is None or self.degraded:
            return
        before = breaker.fleet
        if before is not None and before.epoch >= int(epoch):
            return  # already applied by a flush
        now = self._clock()
        view = FleetView(state, int(epoch), 0, 0, before.reporters if before else 0, False, now)
        breaker.apply(view, self._hold(int(probe_in_ms) / 1000.0), now)

    def view(self) -> dict[str, Any]:
        """The fleet side of the status snapshot."""
        return {
            "namespace": self.namespace,
            "reporter": self.reporter,
            "degraded": self.degraded,
            "last_flush": self.last_flush,
            "interval": self.interval,
        }


__all__ = ["Fleet", "check_url"]

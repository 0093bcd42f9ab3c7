"""`seawall.retrying`: the block form of `seawall.protect`, for code that is not a function.

    for attempt in seawall.retrying("mongodb", idempotent=True):
        with attempt:
            document = collection.find_one({"_id": key})

    async for attempt in seawall.retrying("mongodb", idempotent=True):
        async with attempt:  # or `with attempt:` (see below)
            document = await collection.find_one({"_id": key})

Each loop is one logical request under the dependency's policy: bulkhead slot (held across the
attempts), total deadline, breaker, attempt timeout and retries, decided by the pipeline's own
`_Run` with the same events, spans and metrics as `Policy.run`; only the waiting is done here,
since the attempts are the loop's body and not a function the driver can call. The `with`
block is one attempt: it ends the loop when it succeeds, is retried when its error is
retryable (the error is swallowed and the loop goes round again after the backoff), and raises
otherwise. Errors mean what they mean to `seawall.protect` (`CallRules`).

`async with attempt` cancels a block that outlives its attempt timeout (as `asyncio.timeout`
does); a plain `with` block, sync or async, cannot be interrupted: one that took longer than
its timeout ends in `AttemptTimedOut` after it finished. Keep the whole body of the loop in
the `with` block: code after it runs after a failed attempt too. A loop left before its end
(`break` before the `with`, an exception outside it) ends the request as cancelled and gives
its slot back when the loop's iterator is dropped. A policy's fallback is called as usual when
the loop gives up; its value has nowhere to go, so the loop then ends without raising.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, Literal

from .pipeline import Policy, _Run
from .policies.bulkhead import BulkheadState
from .protect import (
    TRANSIENT_ERRORS,
    AttemptTimedOut,
    Call,
    CallExchange,
    CallRules,
    Errors,
    Site,
)


def _block() -> None:
    """What a block's `Call` names as its function (a block is not one)."""


class Retrying:
    """What `seawall.retrying(...)` returns: iterate it (`for` or `async for`) to run one
    logical request whose attempts are the loop's `with attempt:` blocks."""

    def __init__(self, site: Site) -> None:
        self._site = site

    def __repr__(self) -> str:
        return f"seawall.retrying({self._site.dependency!r}, {self._site.rules!r})"

    def __iter__(self) -> Iterator[Attempt]:
        return _Loop(self._site)

    def __aiter__(self) -> AsyncIterator[Attempt]:
        return _AsyncLoop(self._site)


class Attempt:
    """One attempt of a `seawall.retrying` loop: a context manager (`with`, or `async with`
    in an `async for` loop to have a late block cancelled). `number` is 1 for the first try;
    `timeout` the seconds it may take (inf: no limit)."""

    __slots__ = ("number", "timeout", "_loop", "_started", "_cut")

    def __init__(self, loop: _Loop, number: int, timeout: float) -> None:
        self.number = number
        self.timeout = timeout
        # weakly: a loop left early ends when the `for` drops it, not when this name goes
        self._loop = weakref.ref(loop)
        self._started = loop.policy.now()
        self._cut: Any = None

    def __repr__(self) -> str:
        return f"<seawall attempt {self.number} of {self._of().site.dependency!r}>"

    def _of(self) -> _Loop:
        loop = self._loop()
        if loop is None:
            raise RuntimeError("seawall.retrying: this attempt's loop is over")
        return loop

    def __enter__(self) -> Attempt:
        self._started = self._of().policy.now()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        return self._of().ended(self, error)

    async def __aenter__(self) -> Attempt:
        self._started = self._of().policy.now()
        self._cut = asyncio.timeout(None if self.timeout == float("inf") else self.timeout)
        await self._cut.__aenter__()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        try:
            await self._cut.__aexit__(kind, error, traceback)
        except TimeoutError as cut:
            if not self._cut.expired():
                raise
            late = AttemptTimedOut(
                f"the block outlived its attempt timeout of {self.timeout:.3f} s: cancelled"
            )
            late.__cause__ = cut
            error = late
        return self._of().ended(self, error)


class _Loop:
    """One logical request of a sync `for` loop (and the decisions an async one shares)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.policy: Policy = site.policy()
        self.exchange = CallExchange(site, Call(_block, (), {}), self.policy.now)
        self.run: _Run[Any] | None = None
        self.bulkhead: BulkheadState | None = None
        #: "start", "attempt" (one is out), "retry" (after `delay`), "done"
        self.step: Literal["start", "attempt", "retry", "done"] = "start"
        self.delay = 0.0

    def __iter__(self) -> _Loop:
        return self

    def __next__(self) -> Attempt:
        if self.step == "done":
            raise StopIteration
        if self.step == "attempt":
            raise RuntimeError(
                "seawall.retrying: each attempt must be used as `with attempt:` before the "
                "loop goes round"
            )
        if self.step == "start":
            self._start()
            if not self._admit():
                assert self.run is not None and self.bulkhead is not None
                rejection = self._guarded(self.policy._wait_for_slot, self.run, self.bulkhead)
                if rejection is not None:
                    self._give_up(rejection)
                    raise StopIteration  # (a fallback took the rejection)
            self._held = True
        elif self.delay > 0:  # (the test switch's retries never wait)
            self._guarded(self.policy._sleep, self.delay)
        return self._next_attempt()

    # -- the steps both loops share ----------------------------------------------------------
    def _start(self) -> None:
        """Begin the request (its first event)."""
        run: _Run[Any] = _Run(self.policy, self.exchange)
        self.run = run
        self.bulkhead = run.dep.bulkhead
        self.step = "retry"

    def _admit(self) -> bool:
        """Take a free bulkhead slot at once, if there is one (else the caller waits in the
        queue); True without a bulkhead."""
        assert self.run is not None
        bulkhead = self.bulkhead
        if bulkhead is None:
            return True
        if bulkhead.try_acquire():
            self.run.admitted(queued=False)
            return True
        return False

    def _next_attempt(self) -> Attempt:
        run = self.run
        assert run is not None
        timeout = self._guarded(run.before_attempt)
        if timeout is None:
            self._give_up()
            raise StopIteration  # (a fallback took the rejection)
        self.step = "attempt"
        return Attempt(self, run.attempt, timeout)

    def ended(self, attempt: Attempt, error: BaseException | None) -> bool:
        """The attempt's block ended (with `error`); whether to swallow the error."""
        run = self.run
        assert run is not None
        if self.step != "attempt" or attempt.number != run.attempt:
            raise RuntimeError("seawall.retrying: this attempt is over; use the loop's next one")
        if error is not None and not isinstance(error, Exception):
            # interrupted (cancellation, KeyboardInterrupt): no verdict for the breaker
            self.step = "retry"
            run.abandon(error)
            self.close(error)
            return False
        took = self.policy.now() - attempt._started
        if took > attempt.timeout and not isinstance(error, AttemptTimedOut):
            late = AttemptTimedOut(
                f"the block took {took:.3f} s, longer than its attempt timeout of "
                f"{attempt.timeout:.3f} s (it cannot be interrupted: its outcome is discarded)"
            )
            late.__cause__ = error
            error = late
        self.step = "retry"
        if error is None:
            delay = self._guarded(run.after_response, None)
            if delay is None:
                self._guarded(run.finish, None)
                self._release()
                return False
        else:
            delay = self._guarded(run.after_error, error)
            if delay is None:
                self._give_up()
                return True  # (a fallback took the error)
        self.delay = delay
        return True

    def _give_up(self, error: BaseException | None = None) -> None:
        """End with an error: raise it, unless the policy's fallback replaced it."""
        run = self.run
        assert run is not None
        self.step = "done"
        self._release()
        try:
            run.give_up(error)
        except BaseException as raised:
            run.interrupted(raised)  # (nothing when give_up ended it)
            raise

    def _guarded(self, decide: Any, *args: Any) -> Any:
        """A step of the request: whatever escapes it still ends the request once."""
        try:
            return decide(*args)
        except BaseException as error:
            self.close(error)
            raise

    def _release(self) -> None:
        self.step = "done"
        bulkhead, self.bulkhead = self.bulkhead, None
        if bulkhead is not None and self._held:
            bulkhead.release()

    _held = False  # whether a bulkhead slot is held

    def close(self, error: BaseException | None = None) -> None:
        """End the request now if it has not ended (the loop was left, or a step raised):
        cancelled, its attempt abandoned, its slot given back."""
        run = self.run
        if run is None or run.finished:
            self._release()
            return
        error = error if error is not None else GeneratorExit("the loop was left")
        if self.step == "attempt":
            self.step = "retry"
            run.abandon(error)
        self._release()
        run.interrupted(error)

    def __del__(self) -> None:
        run = getattr(self, "run", None)
        if run is not None and not run.finished:
            self.close()


class _AsyncLoop(_Loop):
    """One logical request of an `async for` loop."""

    def __aiter__(self) -> _AsyncLoop:
        return self

    async def __anext__(self) -> Attempt:
        if self.step == "done":
            raise StopAsyncIteration
        if self.step == "attempt":
            raise RuntimeError(
                "seawall.retrying: each attempt must be used as `with attempt:` or "
                "`async with attempt:` before the loop goes round"
            )
        try:
            if self.step == "start":
                self._start()
                if not self._admit():
                    assert self.run is not None and self.bulkhead is not None
                    rejection = await self._guarded_async(
                        self.policy._wait_for_slot_async, self.run, self.bulkhead
                    )
                    if rejection is not None:
                        self._give_up(rejection)
                        raise StopAsyncIteration
                self._held = True
            elif self.delay > 0:  # (the test switch's retries never wait)
                await self._guarded_async(self.policy._async_sleep, self.delay)
            return self._next_attempt()
        except StopIteration:
            raise StopAsyncIteration from None

    async def _guarded_async(self, wait: Any, *args: Any) -> Any:
        try:
            return await wait(*args)
        except BaseException as error:
            self.close(error)
            raise


def retrying(
    dependency: str | None = None,
    *,
    policy: Policy | None = None,
    idempotent: bool = False,
    retry_on: Errors = TRANSIENT_ERRORS,
    failure_on: Errors = (),
    unsent_on: Errors = (),
    name: str = "",
) -> Retrying:
    """The block form of `seawall.protect` (see the module docstring): the same arguments,
    and `name` for the spans (`code.function.name`; default none)."""
    rules = CallRules(idempotent, retry_on, failure_on, unsent_on)
    return Retrying(Site("seawall.retrying", dependency, policy, name, rules))


__all__ = ["Attempt", "Retrying", "retrying"]

"""Per-call overrides and the test switch, as the pipeline reads them.

    with seawall.override(retry=None, timeouts=seawall.Timeouts(attempt=1, total=2)):
        client.get(url)  # any client flavour, any protected call, in this context

An override is a value carried by one `contextvars.ContextVar`, so it follows the code that set
it: the calls of this thread, and the asyncio tasks created inside the block (a task copies the
context it is created in). A new `threading.Thread` starts with an empty context and does not
see it, unless it runs in a copy: `contextvars.copy_context().run(fn)`, or through
`asyncio.to_thread`, which copies. Nested overrides combine, the inner one winning per field.

The test switch (`seawall.testing.set_testing`) is the same kind of value, process-wide: it is
what the context variable answers when no override is set, so a request reads one
`ContextVar.get` whether or not anything is overridden or tested.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Final

from .policies import _validate
from .policies.retry import Backoff, Retry
from .policies.timeouts import Timeouts


class _Unset:
    """An override field that was not given: the policy's own value applies."""

    _instance: ClassVar[_Unset | None] = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset()

#: What each override argument must be (the same rules as `Policy`'s own arguments).
RULES: _validate.Rules = {
    "retry": _validate.Instance(Retry, "a seawall.Retry", optional=True),
    "timeouts": _validate.Instance(Timeouts, "a seawall.Timeouts", optional=True),
}

#: The test switch's arguments.
TESTING_RULES: _validate.Rules = {
    "attempts": _validate.Count(),
    "cap": _validate.FLAG,
}

_NO_WAIT = Backoff.constant(0.0)
#: No limit from seawall (what `timeouts=None` means, for a policy or an override).
NO_TIMEOUTS = Timeouts(attempt=None, total=None)


@dataclass(frozen=True, slots=True)
class Testing:
    """The test switch's settings: `attempts` per request (at most the policy's own when
    `cap`), no waiting between them, no breaker."""

    attempts: int = 1
    cap: bool = False

    def __post_init__(self) -> None:
        _validate.fields(self, TESTING_RULES, "seawall.testing.set_testing")


@dataclass(frozen=True, slots=True)
class Override:
    """What one request does differently from its policy: `retry` and `timeouts` replace the
    policy's (None switches that part off, UNSET keeps the policy's); `testing` is the test
    switch in force."""

    retry: Retry | None | _Unset = UNSET
    timeouts: Timeouts | None | _Unset = UNSET
    testing: Testing | None = None

    def within(self, outer: Override | None) -> Override:
        """This override nested inside `outer`: each field this one sets wins."""
        if outer is None:
            return self
        return Override(
            outer.retry if self.retry is UNSET else self.retry,
            outer.timeouts if self.timeouts is UNSET else self.timeouts,
            self.testing or outer.testing,
        )

    def retry_for(self, policy_retry: Retry | None) -> Retry | None:
        """The Retry a request of a policy with `policy_retry` goes by."""
        retry = policy_retry if isinstance(self.retry, _Unset) else self.retry
        if self.testing is None or retry is None:
            return retry  # the switch never adds retries where there are none
        return _tested(retry, self.testing)

    def timeouts_for(self, policy_timeouts: Timeouts) -> Timeouts:
        """The Timeouts a request of a policy with `policy_timeouts` runs under."""
        timeouts = self.timeouts
        if isinstance(timeouts, _Unset):
            return policy_timeouts
        return NO_TIMEOUTS if timeouts is None else timeouts


@functools.lru_cache(maxsize=256)
def _tested(retry: Retry, testing: Testing) -> Retry:
    """`retry` under the test switch: its attempts, never a wait (nor a `Retry-After`)."""
    attempts = min(testing.attempts, retry.max_attempts) if testing.cap else testing.attempts
    return dataclasses.replace(
        retry, max_attempts=attempts, backoff=_NO_WAIT, respect_retry_after=False
    )


#: The override of the current context. Unset: `TESTING` (below) is in force.
CURRENT: contextvars.ContextVar[Override] = contextvars.ContextVar("seawall.override")
#: The process-wide test switch, as an override (None: off). Set by `seawall.testing`.
TESTING: Override | None = None


def current() -> Override | None:
    """The override in force here (the test switch included), or None."""
    found = CURRENT.get(TESTING)
    return None if found is None else resolve(found)


def resolve(found: Override) -> Override:
    """An override read from `CURRENT`, with the test switch applied (the slow path: only when
    something is overridden or tested)."""
    testing = TESTING
    if testing is None or found is testing or found.testing is not None:
        return found
    return dataclasses.replace(found, testing=testing.testing)


def checked(owner: str, values: Mapping[str, Any]) -> Override:
    """An Override from `values` (only `retry` and `timeouts`), each checked by `RULES`."""
    unknown = sorted(str(name) for name in values if name not in RULES)
    if unknown:
        raise ValueError(
            f"{owner}: unknown override {', '.join(unknown)}; expected any of {', '.join(RULES)}"
        )
    _validate.arguments(owner, RULES, values)
    return Override(**values)


class override:  # noqa: N801 (used as a function: `with seawall.override(...)`)
    """`with seawall.override(retry=None, timeouts=seawall.Timeouts(attempt=1, total=2)): ...`

    Within the block, every request through seawall (each client flavour, and protected
    calls) uses these instead of its policy's own: `retry=None` makes one attempt,
    `timeouts=None` sets no seawall limit. An argument not given keeps the policy's (or an
    enclosing override's) value. The block's context carries it: the asyncio tasks created
    inside see it, a new thread does not unless it runs in `contextvars.copy_context()`.
    The retry budget, breaker and bulkhead stay the dependency's own: they are shared state.
    """

    __slots__ = ("value", "_tokens")

    def __init__(
        self, *, retry: Retry | None | _Unset = UNSET, timeouts: Timeouts | None | _Unset = UNSET
    ) -> None:
        given = {
            name: value
            for name, value in (("retry", retry), ("timeouts", timeouts))
            if value is not UNSET
        }
        self.value = checked("seawall.override", given)
        self._tokens: list[contextvars.Token[Override]] = []

    @classmethod
    def of(cls, values: object, owner: str) -> override:
        """The override a mapping asks for (a client's per-request channel, such as httpx's
        `extensions={"seawall": {"retry": None}}`), checked as the keyword arguments are."""
        if not isinstance(values, Mapping):
            raise TypeError(
                f"{owner} must be a mapping of override arguments (any of "
                f"{', '.join(RULES)}), got {type(values).__name__} {_validate.show(values)}"
            )
        made = cls.__new__(cls)
        made.value = checked(owner, values)
        made._tokens = []
        return made

    def __enter__(self) -> Override:
        outer = CURRENT.get(None)
        value = self.value.within(outer)
        self._tokens.append(CURRENT.set(value))
        return value

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        CURRENT.reset(self._tokens.pop())

    def __repr__(self) -> str:
        fields = (
            f"{name}={getattr(self.value, name)!r}"
            for name in RULES
            if getattr(self.value, name) is not UNSET
        )
        return f"seawall.override({', '.join(fields)})"


__all__ = ["CURRENT", "Override", "Testing", "UNSET", "current", "override"]

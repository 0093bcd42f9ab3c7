"""Per-call overrides (`seawall.override`, httpx's `extensions={"seawall": ...}`): every client
flavour against the real upstream, nested, across threads and asyncio tasks, and checked."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import seawall
import seawall.testing
from integrations.upstream import respond
from seawall.httpx import AsyncResilientTransport, ResilientTransport
from seawall.overrides import UNSET, current

FAST = seawall.Backoff.constant(0.001)


def policy(**options: object) -> seawall.Policy:
    settings: dict[str, object] = dict(
        retry=seawall.Retry(max_attempts=3, backoff=FAST),
        breaker=None,
        timeouts=seawall.Timeouts(attempt=5, total=10),
    )
    settings.update(options)
    return seawall.Policy("upstream", **settings)  # type: ignore[arg-type]


def failing_twice(upstream, path: str = "/o") -> str:
    upstream.script(path, respond(503), respond(503), then=respond(200))
    return upstream.url + path


# -- every flavour -------------------------------------------------------------------------
def test_retry_none_makes_one_attempt_in_every_flavour(flavour, upstream):
    with flavour.client(policy()) as client:
        url = failing_twice(upstream)
        with seawall.override(retry=None):
            # (the async flavours run on a loop thread: run_coroutine_threadsafe carries the
            # caller's context there, as asyncio's call_soon_threadsafe copies it)
            assert client.request("GET", url).status == 503
        assert upstream.hits("/o") == 1
        upstream.clear()
        url = failing_twice(upstream)
        assert client.request("GET", url).status == 200  # the policy's own retry again
        assert upstream.hits("/o") == 3


def test_timeouts_override_cuts_a_slow_attempt_in_every_flavour(flavour, upstream):
    upstream.script("/slow", respond(200, delay=0.4))
    with flavour.client(policy()) as client:
        started = time.monotonic()
        with (
            seawall.override(retry=None, timeouts=seawall.Timeouts(attempt=0.05, total=0.1)),
            pytest.raises(client.timeout_error),
        ):
            client.request("GET", upstream.url + "/slow")
        assert time.monotonic() - started < 0.35  # cut, not waited for
        upstream.script("/slow", respond(200, delay=0.05))
        assert client.request("GET", upstream.url + "/slow").status == 200  # policy's: 5 s


def test_the_deadline_message_names_the_overridden_total(upstream):
    upstream.script("/late", respond(503, delay=0.06), then=respond(503, delay=0.06))
    with (
        httpx.Client(transport=ResilientTransport(policy())) as client,
        seawall.override(timeouts=seawall.Timeouts(attempt=None, total=0.1)),
        pytest.raises(seawall.DeadlineExceeded, match=r"total timeout of 0\.1 s"),
    ):
        client.get(upstream.url + "/late")


# -- nesting -------------------------------------------------------------------------------
def test_nested_overrides_combine_and_the_inner_wins_per_field(upstream):
    two = seawall.Retry(max_attempts=2, backoff=FAST)
    short = seawall.Timeouts(attempt=1, total=2)
    assert current() is None
    with seawall.override(retry=two) as outer:
        assert (outer.retry, outer.timeouts) == (two, UNSET)
        with seawall.override(timeouts=short) as inner:
            assert (inner.retry, inner.timeouts) == (two, short)  # the outer's retry stays
            with seawall.override(retry=None) as innermost:
                assert (innermost.retry, innermost.timeouts) == (None, short)
            assert current() == inner
        assert current() == outer
        with httpx.Client(transport=ResilientTransport(policy())) as client:
            assert client.get(failing_twice(upstream)).status_code == 503
    assert upstream.hits("/o") == 2  # the outer override's two attempts
    assert current() is None


def test_one_override_object_can_be_entered_again_and_nested_in_itself():
    none = seawall.override(retry=None)
    with none, none:
        assert current() is not None and current().retry is None  # type: ignore[union-attr]
    assert current() is None


# -- threads -------------------------------------------------------------------------------
def test_a_new_thread_does_not_inherit_the_override_unless_its_context_is_copied(upstream):
    results: dict[str, int] = {}
    with httpx.Client(transport=ResilientTransport(policy())) as client:

        def get(path: str) -> None:
            results[path] = client.get(failing_twice(upstream, path)).status_code

        with seawall.override(retry=None):
            plain = threading.Thread(target=get, args=("/plain",))
            copied = threading.Thread(target=contextvars.copy_context().run, args=(get, "/copied"))
            with ThreadPoolExecutor(1) as pool:  # submit() does not copy the context either
                pool.submit(get, "/pool").result(10)
            for thread in (plain, copied):
                thread.start()
            for thread in (plain, copied):
                thread.join(10)
    assert results == {"/plain": 200, "/copied": 503, "/pool": 200}
    assert (upstream.hits("/plain"), upstream.hits("/copied"), upstream.hits("/pool")) == (3, 1, 3)


def test_an_override_in_a_thread_stays_in_that_thread(upstream):
    seen: list[object] = []
    inside, done = threading.Event(), threading.Event()

    def other() -> None:
        with seawall.override(retry=None):
            inside.set()
            done.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(5)
    seen.append(current())
    with httpx.Client(transport=ResilientTransport(policy())) as client:
        assert client.get(failing_twice(upstream)).status_code == 200
    done.set()
    thread.join(5)
    assert seen == [None]


# -- asyncio tasks -------------------------------------------------------------------------
def test_tasks_created_inside_see_it_and_an_override_in_a_task_stays_in_it(upstream):
    async def main() -> dict[str, int]:
        transport = AsyncResilientTransport(policy())
        async with httpx.AsyncClient(transport=transport) as client:

            async def get(path: str) -> int:
                return (await client.get(failing_twice(upstream, path))).status_code

            async def overridden(path: str) -> int:
                with seawall.override(retry=None):
                    await asyncio.sleep(0.01)  # the sibling runs meanwhile
                    return await get(path)

            with seawall.override(retry=None):
                inherited = asyncio.create_task(get("/inherited"))
                to_thread = asyncio.to_thread(
                    lambda: (
                        httpx.Client(transport=ResilientTransport(policy()))
                        .get(failing_twice(upstream, "/to-thread"))
                        .status_code
                    )
                )
                first = await asyncio.gather(inherited, to_thread)
            second = await asyncio.gather(overridden("/own"), get("/sibling"))
        return dict(zip(("/inherited", "/to-thread", "/own", "/sibling"), first + second))

    assert asyncio.run(main()) == {
        "/inherited": 503,
        "/to-thread": 503,  # asyncio.to_thread copies the context
        "/own": 503,
        "/sibling": 200,
    }
    assert upstream.hits("/sibling") == 3


# -- httpx's per-request channel -----------------------------------------------------------
def test_httpx_extensions_override_one_request_sync_and_async(upstream):
    with httpx.Client(transport=ResilientTransport(policy())) as client:
        url = failing_twice(upstream, "/ext")
        assert client.get(url, extensions={"seawall": {"retry": None}}).status_code == 503
        assert upstream.hits("/ext") == 1
        upstream.clear()
        assert client.get(failing_twice(upstream, "/ext")).status_code == 200

    async def main() -> int:
        async with httpx.AsyncClient(transport=AsyncResilientTransport(policy())) as client:
            url = failing_twice(upstream, "/ext-async")
            response = await client.get(url, extensions={"seawall": {"retry": None}})
            return response.status_code

    assert asyncio.run(main()) == 503
    assert upstream.hits("/ext-async") == 1


def test_the_extension_is_the_innermost_override(upstream):
    with (
        httpx.Client(transport=ResilientTransport(policy())) as client,
        seawall.override(retry=None, timeouts=seawall.Timeouts(attempt=None, total=0.1)),
    ):
        upstream.script("/inner", respond(503), then=respond(200, delay=0.2))
        five = seawall.Retry(max_attempts=5, backoff=FAST)
        # the extension's retry wins; the enclosing override's timeouts still apply
        with pytest.raises(seawall.DeadlineExceeded, match=r"total timeout of 0\.1 s"):
            client.get(upstream.url + "/inner", extensions={"seawall": {"retry": five}})
    assert upstream.hits("/inner") == 2  # retried once (the 503), then cut by the total


@pytest.mark.parametrize(
    ("extension", "error", "message"),
    [
        ({"retry": 3}, TypeError, r'httpx extensions\["seawall"\]: retry must be a seawall\.Retry'),
        ({"retries": None}, ValueError, r"unknown override retries; expected any of retry"),
        ("retry=None", TypeError, r"must be a mapping of override arguments .* got str"),
        ({"timeouts": 2}, TypeError, r"timeouts must be a seawall\.Timeouts or None, got int 2"),
    ],
)
def test_a_bad_extension_is_refused_before_anything_is_sent(upstream, extension, error, message):
    with (
        httpx.Client(transport=ResilientTransport(policy())) as client,
        pytest.raises(error, match=message),
    ):
        client.get(upstream.url + "/never", extensions={"seawall": extension})
    assert upstream.hits("/never") == 0


# -- checks --------------------------------------------------------------------------------
def test_override_arguments_are_checked_with_the_policy_rules():
    with pytest.raises(
        TypeError, match=r"seawall\.override: retry must be a seawall\.Retry or None, got int 0"
    ):
        seawall.override(retry=0)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"timeouts must be a seawall\.Timeouts or None, got float 2\.0"
    ):
        seawall.override(timeouts=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword argument 'breaker'"):
        seawall.override(breaker=None)  # type: ignore[call-arg]
    assert repr(seawall.override(retry=None)) == "seawall.override(retry=None)"


def test_an_override_with_nothing_in_it_changes_nothing(upstream):
    with (
        httpx.Client(transport=ResilientTransport(policy())) as client,
        seawall.override(),
    ):
        assert client.get(failing_twice(upstream)).status_code == 200
    assert upstream.hits("/o") == 3


def test_the_test_switch_applies_inside_an_override(upstream):
    five = seawall.Retry(max_attempts=5, backoff=seawall.Backoff.constant(5.0))
    with (
        httpx.Client(transport=ResilientTransport(policy())) as client,
        seawall.testing.set_testing(True, attempts=2),
        seawall.override(retry=five),
    ):
        upstream.script("/both", respond(503), respond(503), respond(503), then=respond(200))
        started = time.monotonic()
        assert client.get(upstream.url + "/both").status_code == 503
        assert time.monotonic() - started < 2  # the switch's retries never wait
    assert upstream.hits("/both") == 2


# -- protected calls (seawall.protect, seawall.retrying) -----------------------------------
class Dropping:
    """A call that loses its connection every time, counting how often it was made."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        raise ConnectionResetError("dropped")


def test_protected_sync_calls_and_blocks_take_the_override():
    drop = Dropping()
    guarded = seawall.protect(policy=policy(), idempotent=True)(drop)
    with seawall.override(retry=None), pytest.raises(ConnectionResetError):
        guarded()
    assert drop.calls == 1
    with pytest.raises(ConnectionResetError):
        guarded()
    assert drop.calls == 1 + 3  # the policy's three attempts again
    blocks = 0
    with seawall.override(retry=None), pytest.raises(ConnectionResetError):
        for attempt in seawall.retrying(policy=policy(), idempotent=True):
            with attempt:
                blocks += 1
                raise ConnectionResetError("dropped")
    assert blocks == 1


def test_protected_async_and_in_thread_calls_take_the_override_across_tasks_and_the_pool():
    drop, blocking = Dropping(), Dropping()
    guarded_async = seawall.protect(policy=policy(), idempotent=True)(drop_async := _async(drop))
    in_thread = seawall.protect(policy=policy(), idempotent=True, in_thread=True)(blocking)
    assert drop_async is not None

    async def main() -> None:
        with seawall.override(retry=None):
            task = asyncio.create_task(guarded_async())  # the task inherits it
            with pytest.raises(ConnectionResetError):
                await task
            with pytest.raises(ConnectionResetError):
                await in_thread()  # the dependency's thread pool runs it in a copy
        with pytest.raises(ConnectionResetError):
            await in_thread()

    asyncio.run(main())
    assert (drop.calls, blocking.calls) == (1, 1 + 3)


def test_a_timeouts_override_bounds_a_protected_async_call():
    async def slow() -> str:
        await asyncio.sleep(0.5)
        return "late"

    guarded = seawall.protect(policy=policy(), idempotent=True)(slow)

    async def main() -> float:
        started = time.monotonic()
        with (
            seawall.override(retry=None, timeouts=seawall.Timeouts(attempt=None, total=0.05)),
            pytest.raises(seawall.DeadlineExceeded, match=r"total timeout of 0\.05 s"),
        ):
            await guarded()
        return time.monotonic() - started

    assert asyncio.run(main()) < 0.4


def _async(call):
    async def run() -> None:
        await asyncio.sleep(0)
        call()

    return run

"""The simulator against known results (Brooker 2022; metastable retry storms), its presets, and
its command line. Virtual time: nothing sleeps, every run takes seconds of CPU at most."""

from __future__ import annotations

import time

import pytest

from seawall import Backoff, CircuitBreaker, Retry, RetryBudget, Timeouts
from seawall.cli import main
from seawall.simulate import PRESETS, Scenario, ServerModel, Variant, run_scenario, run_variant
from seawall.simulate.engine import Loop
from seawall.simulate.presets import retry_storm

DOWN = ServerModel(workers=50, service_time=0.01, base_error_rate=1.0, failure_cost=0.1)


def down_scenario(retry: Retry) -> Scenario:
    """Every request fails; 100 requests a second for 30 s; no breaker, no bulkhead."""
    return Scenario(
        "down",
        "",
        {"api": DOWN},
        rate=100.0,
        duration=30.0,
        variants=(
            Variant(
                "v",
                {
                    "retry": retry,
                    "breaker": None,
                    "bulkhead": None,
                    "timeouts": Timeouts(attempt=1.0, total=10.0),
                },
            ),
        ),
    )


def attempts_per_request(retry: Retry) -> float:
    scenario = down_scenario(retry)
    return run_variant(scenario, scenario.variants[0]).summary.attempts_per_request


@pytest.mark.parametrize("retries", [1, 2, 4])
def test_at_total_failure_n_retries_make_1_plus_n_times_the_load(retries):
    retry = Retry(max_attempts=1 + retries, backoff=Backoff.constant(0.01), budget=None)
    assert attempts_per_request(retry) == pytest.approx(1 + retries)


def test_a_10_percent_budget_keeps_the_load_near_1_1x_plus_its_floor():
    no_floor = Retry(
        max_attempts=4,
        backoff=Backoff.constant(0.01),
        budget=RetryBudget(ratio=0.1, min_per_second=0),
    )
    assert attempts_per_request(no_floor) == pytest.approx(1.1, abs=0.01)
    floor = Retry(
        max_attempts=4,
        backoff=Backoff.constant(0.01),
        budget=RetryBudget(ratio=0.1, min_per_second=5),
    )
    assert attempts_per_request(floor) == pytest.approx(1.1 + 5 / 100, abs=0.01)


def test_a_retry_storm_stays_overloaded_after_its_trigger_without_a_budget_and_recovers_with_one():
    scenario = retry_storm()
    without, with_budget = (
        next(v for v in scenario.variants if v.label.startswith(prefix))
        for prefix in ("no budget, full jitter", "budget 20%")
    )
    stuck, recovered = run_scenario(scenario, 0, (without, with_budget))
    end = int(scenario.trigger[1])
    assert stuck.summary.recovery is None
    assert recovered.summary.recovery is not None
    # long after the trigger: the server still serves nothing useful without the budget
    late = slice(end + 60, int(scenario.duration))
    offered = scenario.rate * (late.stop - late.start)
    assert sum(stuck.successes[late]) < 0.2 * offered
    assert sum(recovered.successes[late]) > 0.9 * offered
    assert stuck.summary.attempts_per_request > 2.4  # every request made (nearly) 3 attempts


def test_the_same_seed_gives_the_same_figures_and_another_seed_others():
    scenario = retry_storm()
    variant = scenario.variants[2]
    first, again = run_variant(scenario, variant, 0), run_variant(scenario, variant, 0)
    other = run_variant(scenario, variant, 1)
    assert first.summary == again.summary and first.attempts == again.attempts
    assert other.attempts != first.attempts


def test_the_simulated_breaker_is_the_real_one():
    scenario = down_scenario(Retry(max_attempts=1))
    variant = Variant(
        "breaker",
        {
            "retry": Retry(max_attempts=1),
            "breaker": CircuitBreaker(min_calls=20, open_for=5.0),
            "bulkhead": None,
            "timeouts": Timeouts(attempt=1.0),
        },
    )
    summary = run_variant(scenario, variant).summary
    # open 5 s, one failing probe, open again: open nearly the whole run, ~6 times
    assert summary.open_time > 25
    assert 5 <= summary.opens <= 7
    assert summary.attempts_per_request < 0.1  # nearly every request rejected without a try


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_runs_in_seconds(name):
    scenario = PRESETS[name]()
    started = time.process_time()
    runs = run_scenario(scenario)
    assert time.process_time() - started < 30  # CPU seconds: a loaded machine does not count
    assert [r.summary.label for r in runs] == [v.label for v in scenario.variants]
    for run in runs:
        assert run.summary.requests > 0.8 * scenario.rate * scenario.duration


def test_the_loop_runs_events_in_time_order_and_skips_cancelled_ones():
    loop, seen = Loop(), []
    loop.at(2.0, seen.append, "b")
    loop.at(1.0, seen.append, "a")
    loop.at(2.0, seen.append, "c")
    loop.at(1.5, seen.append, "x").cancel()
    loop.run(10.0)
    assert seen == ["a", "b", "c"] and loop.now == 10.0


def test_the_command_prints_the_table_and_runs_a_config_as_one_more_variant(tmp_path, capsys):
    config = tmp_path / "seawall.yaml"
    config.write_text(
        "dependencies:\n  api:\n    match: {host: api.example}\n"
        "    retry: {max_attempts: 2}\n    breaker: false\n"
    )
    assert (
        main(
            ["simulate", "--preset", "retry-storm", "--config", str(config), "--dependency", "api"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "attempts/req" in out and "your config (api)" in out
    assert "no budget, no jitter" in out


def test_the_command_names_a_missing_dependency(tmp_path, capsys):
    config = tmp_path / "seawall.yaml"
    config.write_text("dependencies:\n  api:\n    match: {host: api.example}\n")
    assert (
        main(["simulate", "--preset", "fan-out", "--config", str(config), "--dependency", "nope"])
        == 1
    )
    assert "no dependency named 'nope' (it has: api)" in capsys.readouterr().err


def test_plots_are_written_when_matplotlib_is_there(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["simulate", "--preset", "fan-out", "--plot", str(tmp_path)]) == 0
    assert (tmp_path / "fan-out.png").read_bytes()[:4] == b"\x89PNG"

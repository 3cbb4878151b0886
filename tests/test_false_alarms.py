"""The false-alarm sweep: every correct configuration runs clean in every mode.

A report must mean a bug. Every named scenario is a correct configuration, so every
scenario x every per-seed strategy of the scheduler's registry (``STRATEGIES``: a
strategy added there is swept without a change here) x a few seeds, DFS on TINY, and
every scenario free-running, must end without a violation. A false alarm fails with
the violation and the line that reproduces it.

The default selection is small (a few seconds of the suite on two cores); the nightly
(``slow``) selection runs ``RCU_PGDAT_SWEEP_SEEDS`` seeds (default 200) per scenario and
strategy, in chunks a worker finishes within the test timeout, and every scenario
free-running under several seeds (``tox -e falsealarms``). The free-running default
selection is ``tests/test_scenarios.py`` (every scenario, one seed).
"""

from __future__ import annotations

import os

import pytest

from rcu_pgdat.harness.modes import EXPLORE, STRESS
from rcu_pgdat.sched.strategies import PER_SEED
from stress.config import RunConfig
from stress.report import reproduce_line
from stress.run import run
from stress.scenarios import SCENARIOS

#: Steps of one controlled run: every scenario's remover completes cycles within them.
STEPS = 6000
#: Seeds per scenario and strategy: the default selection, and the nightly one.
DEFAULT_SEEDS = range(1, 2)
NIGHTLY_SEEDS = range(int(os.environ.get("RCU_PGDAT_SWEEP_SEEDS", "200")))
#: Seeds one nightly test runs, and its timeout (a run of BIG takes up to 20 s on a
#: loaded machine).
CHUNK = 5
NIGHTLY_TIMEOUT = 600
#: Seconds of a nightly free-running run, and its seeds per scenario.
FREE_SECONDS = float(os.environ.get("RCU_PGDAT_SWEEP_FREE_SECONDS", "3"))
FREE_SEEDS = range(5)


def config(scenario: str, sched: str, seed: int, **overrides: object) -> RunConfig:
    """``scenario`` as named, run under ``sched`` with ``seed``."""
    given = {"steps": STEPS, "duration": FREE_SECONDS, **overrides}
    return RunConfig(**{**SCENARIOS[scenario][1], **given}, sched=sched, seed=seed,
                     scenario=scenario)


def false_alarms(configs: list[RunConfig]) -> list[str]:
    """Each run of ``configs`` that reported something: its first violation (or the
    schedule's outcome) and the line that reproduces it."""
    found = []
    for cfg in configs:
        result = run(cfg, status=None)
        outcome = result.schedule.outcome.value if result.schedule is not None else "ok"
        if result.violations or outcome != "ok":
            what = (result.violations[0].format() if result.violations
                    else f"controlled run ended {outcome}")
            found.append(f"{what}\nreproduce: {reproduce_line(cfg)}")
    return found


def assert_clean(configs: list[RunConfig]) -> None:
    alarms = false_alarms(configs)
    assert not alarms, (f"false alarm in {len(alarms)} of {len(configs)} runs of a correct "
                        "configuration; the first:\n" + alarms[0])


@pytest.mark.parametrize("sched", PER_SEED)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_scenario_under_every_strategy_is_clean(scenario: str, sched: str) -> None:
    assert_clean([config(scenario, sched, seed) for seed in DEFAULT_SEEDS])


def test_dfs_on_tiny_is_clean() -> None:
    """Every interleaving DFS reaches within a few schedules (fewest preemptions
    first) of the smallest scenario."""
    assert_clean([config("TINY", EXPLORE, 0, steps=1500, max_schedules=4)])


def _chunks(seeds: range) -> list[range]:
    return [seeds[i:i + CHUNK] for i in range(0, len(seeds), CHUNK)]


@pytest.mark.slow
@pytest.mark.timeout(NIGHTLY_TIMEOUT)
@pytest.mark.parametrize("seeds", _chunks(NIGHTLY_SEEDS),
                         ids=lambda r: f"seeds{r.start}-{r[-1]}")
@pytest.mark.parametrize("sched", PER_SEED)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_scenario_under_every_strategy_is_clean_nightly(scenario: str, sched: str,
                                                              seeds: range) -> None:
    assert_clean([config(scenario, sched, seed) for seed in seeds])


@pytest.mark.slow
@pytest.mark.timeout(NIGHTLY_TIMEOUT)
def test_dfs_on_tiny_is_clean_nightly() -> None:
    assert_clean([config("TINY", EXPLORE, 0, steps=1500, max_schedules=60)])


@pytest.mark.slow
@pytest.mark.timeout(NIGHTLY_TIMEOUT)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_scenario_free_running_is_clean_nightly(scenario: str) -> None:
    assert_clean([config(scenario, STRESS, seed) for seed in FREE_SEEDS])


@pytest.mark.parametrize("sched", [PER_SEED[0], STRESS])
def test_the_sweep_reports_a_bug_with_its_reproduce_line(sched: str) -> None:
    """The sweep's check can fail: the same sweep of a broken variant (a remover that
    frees the pgdat before the grace period) reports it, with a line that runs it again."""
    for seed in range(5):
        cfg = config("DEFAULT", sched, seed, inject=("free-before-gp",), duration=2)
        alarms = false_alarms([cfg])
        if alarms:
            break
    assert alarms, "5 seeds of a remover that frees before the grace period ran clean"
    assert "BUG: " in alarms[0]
    assert f"reproduce: {reproduce_line(cfg)}" in alarms[0]
    assert "--inject free-before-gp" in alarms[0]

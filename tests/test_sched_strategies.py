"""The strategy registry: every entry builds, describes and validates through one table."""

from __future__ import annotations

import pytest

from rcu_pgdat import sched
from rcu_pgdat.errors import UsageError
from rcu_pgdat.sched.examples import use_after_free
from rcu_pgdat.sched.strategies import PER_SEED, STRATEGIES, describe_strategy, strategy_spec


def test_the_registry_lists_every_controlled_mode_once() -> None:
    assert {"random", "pct", "pos", "portfolio", "dfs"} <= set(STRATEGIES)
    assert sched.SWEEP_DEFAULT == "portfolio" and sched.SWEEP_DEFAULT in PER_SEED
    assert sched.CONTROLLED_MODES == PER_SEED
    assert "dfs" not in PER_SEED and "random" in PER_SEED and "pct" in PER_SEED
    for name, spec in STRATEGIES.items():
        assert spec.name == name and spec.help and "\n" not in spec.help


@pytest.mark.parametrize("name", PER_SEED)
def test_each_per_seed_strategy_is_deterministic_and_says_what_ran(name: str) -> None:
    def trace(seed: int) -> str:
        strategy = sched.make_strategy(name, seed, steps=40)
        run = sched.run_program(use_after_free(), strategy)
        assert run.trace is not None
        assert run.trace.strategy == strategy.describe()
        return run.trace.dumps()
    assert trace(5) == trace(5)
    assert len({trace(seed) for seed in range(6)}) > 1
    summary = sched.make_strategy(name, 5, steps=40).summary()
    assert summary.split()[0] == name or name == "portfolio"


def test_descriptions_are_short_and_carry_the_parameters() -> None:
    assert describe_strategy("pct", pct_depth=4) == "pct d=4"
    assert describe_strategy("pct") == "pct d=3"
    assert describe_strategy("random", pct_depth=4) == "random"   # others' options ignored
    assert describe_strategy("dfs", max_preemptions=1) == "dfs k=1"
    assert sched.make_strategy("pct", 1, pct_depth=5, steps=100).summary() == "pct d=5"


def test_options_are_checked_with_the_flag_name() -> None:
    with pytest.raises(UsageError, match="--pct-depth must be at least 1, got 0"):
        sched.make_strategy("pct", 1, pct_depth=0)
    with pytest.raises(UsageError, match="--steps must be an integer"):
        sched.make_strategy("pct", 1, steps="many")
    assert strategy_spec("dfs").options({"max_preemptions": 0})["max_preemptions"] == 0


def test_unknown_names_and_search_modes_are_refused_with_the_choices() -> None:
    with pytest.raises(UsageError, match="unknown scheduling strategy 'bogus'; choose one of "
                                         "portfolio, random, pct, pos, delay, dfs"):
        sched.make_strategy("bogus", 1)
    with pytest.raises(UsageError, match="dfs is not a strategy per seed"):
        sched.make_strategy("dfs", 1)


def test_the_older_pct_steps_keyword_still_sets_the_run_length() -> None:
    strategy = sched.make_strategy("pct", 2, pct_steps=77)
    assert strategy.describe()["steps"] == 77


def test_a_decision_carries_each_candidates_label() -> None:
    # What POS reads races from: the labels the scheduler puts in a decision must be
    # the points the candidates wait at (a decision built without them asks the view).
    seen: list[int] = []

    class Checking(sched.RandomStrategy):
        def choose(self, d: sched.Decision) -> str:
            expected = tuple(d.label_of(n) or "" for n in d.candidates)
            assert d.labels == expected, (d.labels, expected)
            bare = sched.Decision(d.step, d.index, d.candidates, d.prev, d.blocked, d._view)
            assert bare.candidate_labels() == expected
            seen.append(len(d.candidates))
            return super().choose(d)
    run = sched.run_program(use_after_free(correct=True), Checking(3))
    assert run.outcome in (sched.Outcome.OK, sched.Outcome.FAILED) and seen
    assert max(seen) > 1                          # decisions with a choice were checked

"""Strategies for programs whose threads loop: PCT per measured round, POS, the portfolio.

The program every test here uses is the shape of the model: threads that loop and pass a
voluntary yield (``sched.yield_point``, the model's ``cond_resched()``) once per
iteration, with a narrow race in the middle of an iteration. Each check is shown able to
fail against the broken variant it guards against: PCT with its change points spread
over the whole run (what PCT did before), POS without its yield rule.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from rcu_pgdat import sched
from rcu_pgdat.sched.decision import Decision, Strategy
from rcu_pgdat.sched.portfolio import ROTATION, PortfolioStrategy, rotation_entry
from rcu_pgdat.sched.pos import POSStrategy, label_object

Outcome = sched.Outcome
ITERATIONS = 30
WIDTH = 12               # points per iteration; the racy read-modify-write sits mid-way


def looping_lost_update(threads: int = 2) -> sched.ProgramFactory:
    """Each thread increments a shared counter once per iteration, non-atomically, in
    the middle of WIDTH points, then yields; the check finds a lost update."""
    def make() -> sched.Program:
        state = {"n": 0}

        def body() -> None:
            for _ in range(ITERATIONS):
                for i in range(WIDTH // 2):
                    sched.point(f"work:{i}")
                seen = state["n"]
                sched.point("counter:write")      # the one-step window
                state["n"] = seen + 1
                for i in range(WIDTH // 2, WIDTH):
                    sched.point(f"work:{i}")
                sched.yield_point("loop")

        def check() -> None:
            assert state["n"] == threads * ITERATIONS, f"lost update: {state['n']}"
        return sched.Program({f"t{k}": body for k in range(threads)}, check=check)
    return make


class WholeRunPCT(Strategy):
    """The broken variant: PCT's ``depth - 1`` change points over the whole run, yields
    demoting (what ``pct`` did before it counted change points per round)."""

    name = "pct-whole-run"

    def __init__(self, seed: int, depth: int, steps: int) -> None:
        self._rng = random.Random(seed)
        self._points = set(self._rng.sample(range(1, steps + 1), depth - 1))
        self._order: list[str] = []
        self._last = -1

    def choose(self, d: Decision) -> str:
        for name in d.candidates:
            if name not in self._order:
                self._order.insert(self._rng.randint(0, len(self._order)), name)
        if d.index != self._last:
            self._last = d.index
            if d.prev is not None and (d.prev_yielded or d.index in self._points):
                self._order.remove(d.prev)
                self._order.append(d.prev)
        return next(n for n in self._order if n in d.candidates)


def failing_seeds(make_strategy: Any, seeds: range) -> int:
    make = looping_lost_update()
    return sum(sched.run_program(make, make_strategy(seed)).failed for seed in seeds)


def test_pct_preempts_inside_iterations_of_a_looping_program() -> None:
    steps = sched.calibrate_steps(looping_lost_update())
    found = failing_seeds(lambda s: sched.PCTStrategy(s, depth=3, steps=steps), range(20))
    whole = failing_seeds(lambda s: WholeRunPCT(s, 3, steps), range(20))
    assert found >= 15, found          # change points per round: a chance every round
    assert whole <= 8, whole            # the broken variant: two chances per run


def test_pct_places_depth_minus_one_change_points_per_measured_round() -> None:
    make = looping_lost_update(threads=3)
    for depth in (1, 2, 4):
        counts, rounds = 0, 0.0
        for seed in range(10):
            strategy = sched.PCTStrategy(seed, depth=depth, steps=10_000)
            run = sched.run_program(make, strategy)
            counts += len(strategy.change_points)
            rounds += run.steps / strategy.round_length
        per_round = counts / rounds
        assert abs(per_round - (depth - 1)) <= 0.35 * max(1, depth - 1), (depth, per_round)
    # the round is measured: three threads of WIDTH + 2 steps per iteration
    strategy = sched.PCTStrategy(0, depth=2, steps=10_000)
    sched.run_program(make, strategy)
    assert 3 * (WIDTH + 1) <= strategy.round_length <= 3 * (WIDTH + 3)


def test_pct_without_yields_is_classic_pct_over_the_given_length() -> None:
    def make() -> sched.Program:
        def body() -> None:
            for i in range(200):
                sched.point(f"p{i}")
        return sched.Program({"a": body, "b": body})
    total = 0
    for seed in range(20):
        strategy = sched.PCTStrategy(seed, depth=3, steps=400)
        sched.run_program(make, strategy)
        assert strategy.round_length == 400
        total += len(strategy.change_points)
    assert 20 <= total <= 60             # about d-1 = 2 per run


def test_pos_label_objects() -> None:
    assert label_object("memb:read_lock:load") == "memb"
    assert label_object("reader.use") == "reader"
    assert label_object("spin_lock:node1.MOVABLE.lock") == "spin_lock"
    assert label_object("start") == "start"


def spinning_waiter() -> sched.ProgramFactory:
    """A waiter spins with yields until a setter, busy for a while, sets a flag; two
    other threads loop with yields all along. Nothing can fail but a starvation."""
    def make() -> sched.Program:
        flag = [False]

        def waiter() -> None:
            while not flag[0]:
                sched.yield_point("spin")

        def setter() -> None:
            for i in range(40):
                sched.point(f"setter:{i}")
            flag[0] = True

        def busy() -> None:
            while not flag[0]:
                sched.point("busy:a")
                sched.yield_point("busy:loop")
        return sched.Program({"waiter": waiter, "setter": setter, "busy1": busy,
                              "busy2": busy})
    return make


class YieldBlindPOS(POSStrategy):
    """The broken variant: a yield gets a fresh priority like any other step."""

    def choose(self, d: Decision) -> str:
        if d.prev_yielded:
            d = Decision(d.step, d.index, d.candidates, d.prev, d.blocked, d._view, False)
        return super().choose(d)


@pytest.mark.parametrize("cls, clean", [(POSStrategy, True), (YieldBlindPOS, False)])
def test_pos_yields_step_aside_so_spinners_do_not_starve_the_rest(
        cls: type[POSStrategy], clean: bool) -> None:
    outcomes = [sched.run_program(spinning_waiter(), cls(seed), max_steps=3000).outcome
                for seed in range(12)]
    starved = outcomes.count(Outcome.BUDGET)
    if clean:
        assert outcomes == [Outcome.OK] * 12, outcomes
    else:
        assert starved >= 3, outcomes


def racing_spinners() -> sched.ProgramFactory:
    """Two threads spin with yields at one subsystem's point (their steps race: POS
    re-draws the other's priority at each spin) until a third, parked behind its own
    yields, sets a flag. Nothing can fail but a starvation."""
    def make() -> sched.Program:
        flag = [False]

        def spinner() -> None:
            while not flag[0]:
                sched.yield_point("ticket:wait")

        def setter() -> None:
            for _ in range(3):
                sched.yield_point("setter:linger")
            sched.point("setter:set")
            flag[0] = True
        return sched.Program({"spin1": spinner, "spin2": spinner, "setter": setter})
    return make


class RaceLiftsYieldPOS(POSStrategy):
    """The broken variant: a race re-draws a step parked behind a yield."""

    yield_keeps_place = False


@pytest.mark.parametrize("cls, clean", [(POSStrategy, True), (RaceLiftsYieldPOS, False)])
def test_pos_racing_spinners_do_not_lift_each_other_over_a_yielded_thread(
        cls: type[POSStrategy], clean: bool) -> None:
    outcomes = [sched.run_program(racing_spinners(), cls(seed), max_steps=3000).outcome
                for seed in range(12)]
    if clean:
        assert outcomes == [Outcome.OK] * 12, outcomes
    else:
        assert outcomes.count(Outcome.BUDGET) >= 3, outcomes


def test_pos_finds_the_race_inside_iterations() -> None:
    assert failing_seeds(POSStrategy, range(20)) >= 10


def test_portfolio_runs_its_rotation_by_seed_and_records_what_ran() -> None:
    make = looping_lost_update()
    for seed in range(len(ROTATION) + 1):
        portfolio = PortfolioStrategy(seed, steps=500)
        alone = ROTATION[seed % len(ROTATION)].build(seed, 500)
        assert portfolio.summary() == alone.summary()
        assert portfolio.describe()["ran"] == alone.describe()
        a = sched.run_program(make, portfolio)
        b = sched.run_program(make, alone)
        assert a.trace is not None and b.trace is not None
        assert a.trace.steps == b.trace.steps            # the same run as the entry's
        assert a.trace.strategy["ran"] == b.trace.strategy


def test_only_the_portfolios_pct_seeds_need_the_run_length() -> None:
    spec = sched.STRATEGIES["portfolio"]
    for seed in range(12):
        built = PortfolioStrategy(seed, steps=300)
        assert spec.needs_steps_for(seed) == built.summary().startswith("pct"), seed
    assert all(sched.STRATEGIES["pct"].needs_steps_for(s) for s in range(3))
    assert not any(sched.STRATEGIES["random"].needs_steps_for(s) for s in range(3))


def test_a_sweep_says_what_each_seed_ran() -> None:
    swept = sched.sweep(looping_lost_update(), "portfolio", range(0, 5))
    assert swept.ran == {s: rotation_entry(s).build(s, 1).summary() for s in range(0, 5)}
    assert set(swept.ran.values()) >= {"delay", "pct d=2", "pct d=3", "pos"}

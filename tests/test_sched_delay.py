"""``delay``: uniform random plus long parkings, for programs whose threads loop.

Each check is shown able to fail against its broken variant: plain random (``delay``
that never parks) on a bug that needs one thread held over another's whole iteration,
parkings that never expire on a program where every thread must progress, and a
uniform choice among parked threads (which holds none of them) where the first due
must run.
"""

from __future__ import annotations

from rcu_pgdat import sched
from rcu_pgdat.sched.delay import DelayStrategy

from test_sched_looping import spinning_waiter

SCAN = 12          # points of one updater iteration: a "grace period"


def held_over_a_grace_period() -> sched.ProgramFactory:
    """A reader loads a shared phase and stores it one point later, once an iteration of
    SCAN points; an updater loops
    through grace periods of SCAN points; two bystanders loop as long. The check fails when a
    whole grace period ran between the reader's load and its store (a phase-bit RCU's
    stale store): the reader must be held off for a grace period at one point."""
    def make() -> sched.Program:
        state = {"started": 0, "done": 0, "stale": 0}

        def reader() -> None:
            for _ in range(60):
                for i in range(SCAN - 2):
                    sched.point(f"reader:{i}")
                sched.point("reader:load")
                seen = state["started"]
                sched.point("reader:store")
                if state["done"] > seen:        # one began after the load and ended
                    state["stale"] += 1
                sched.yield_point("reader:loop")

        def updater() -> None:
            for _ in range(60):
                state["started"] += 1
                for i in range(SCAN):
                    sched.point(f"gp:{i}")
                state["done"] += 1
                sched.yield_point("gp:loop")

        def bystander() -> None:
            for _ in range(60):
                for i in range(SCAN):
                    sched.point(f"by:{i}")
                sched.yield_point("by:loop")

        def check() -> None:
            assert not state["stale"], f"{state['stale']} stale stores"
        return sched.Program({"reader": reader, "updater": updater, "by1": bystander,
                              "by2": bystander}, check=check)
    return make


def test_delay_holds_a_thread_over_a_grace_period_where_random_does_not() -> None:
    make = held_over_a_grace_period()
    delayed = sum(sched.run_program(make, DelayStrategy(s)).failed for s in range(20))
    plain = sum(sched.run_program(make, sched.RandomStrategy(s)).failed for s in range(20))
    assert delayed >= 4, delayed                 # 6 of 20 when written
    assert plain <= 1, plain     # the broken variant: random never holds for long (0)


def test_delay_parks_about_k_threads_per_measured_round() -> None:
    make = held_over_a_grace_period()
    for delays in (1, 4):
        parked, steps = 0, 0
        for seed in range(10):
            strategy = DelayStrategy(seed, delays=delays)
            run = sched.run_program(make, strategy)
            parked += len(strategy.parked)
            steps += run.steps
            assert all(1 <= d <= strategy.rounds * run.steps for _, _, d in strategy.parked)
        assert parked > 0
        # a round here is about four threads' iterations: k parkings per ~60 steps
        assert 0.2 * delays * steps / 60 <= parked <= 3 * delays * steps / 60, (delays, parked)


def test_parked_threads_are_never_starved() -> None:
    make = spinning_waiter()
    outcomes = [sched.run_program(make, DelayStrategy(s), max_steps=3000).outcome
                for s in range(12)]
    assert outcomes == [sched.Outcome.OK] * 12, outcomes
    # the broken variant: parkings that outlast the run starve the setter
    forever = [sched.run_program(make, DelayStrategy(s, rounds=10**6), max_steps=3000).outcome
               for s in range(12)]
    assert forever.count(sched.Outcome.BUDGET) >= 3, forever


class UniformAmongParked(DelayStrategy):
    """The broken variant: when every candidate is parked, a uniform choice among them
    (the parked stay held only while someone else can run)."""

    def choose(self, d: sched.Decision) -> str:
        if d.index != self._last_index:
            self._last_index = d.index
            self._account(d)
        until, index = self._until, d.index
        free = [c for c in d.candidates if c not in until or until[c] <= index]
        pool = free or d.candidates
        return pool[self._rng.randrange(len(pool))]


def _all_parked_choices(cls: type[DelayStrategy]) -> tuple[int, int]:
    """Over seeds 0..9 of the program above with four parkings a round (most threads
    parked at once): the steps at which every candidate was parked, and how many of them
    ran a thread other than the one whose delay ends first."""
    seen, wrong = 0, 0

    class Watched(cls):  # type: ignore[valid-type,misc]
        def choose(self, d: sched.Decision) -> str:
            picked = super().choose(d)
            until = self._until
            if all(c in until and until[c] > d.index for c in d.candidates):
                nonlocal seen, wrong
                seen += 1
                wrong += picked != min(d.candidates, key=until.__getitem__)
            return picked
    for seed in range(10):
        sched.run_program(held_over_a_grace_period(), Watched(seed, delays=4))
    return seen, wrong


def test_when_every_candidate_is_parked_the_first_due_runs() -> None:
    seen, wrong = _all_parked_choices(DelayStrategy)
    assert seen >= 20 and wrong == 0, (seen, wrong)
    seen, wrong = _all_parked_choices(UniformAmongParked)     # the broken variant
    assert seen >= 20 and wrong >= 5, (seen, wrong)

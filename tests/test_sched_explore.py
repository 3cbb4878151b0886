"""Systematic exploration (iterative context bounding): exact schedule counts on a
space small enough to enumerate by hand, fewest preemptions first, and bugs found."""

from __future__ import annotations

import itertools

import pytest

from rcu_pgdat import sched
from rcu_pgdat.sched.examples import RACES

STEPS = 3   # each thread: start + 2 points = 3 steps


def two_straight_threads() -> sched.Program:
    def body() -> None:
        sched.point("p1")
        sched.point("p2")
    return sched.Program({"a": body, "b": body})


def expected_counts(max_preemptions: int) -> list[int]:
    """Count, by brute force over all interleavings of aaa/bbb, the schedules with
    exactly k preemptions (a switch away from a thread that has steps left)."""
    counts = [0] * (max_preemptions + 1)
    for positions in itertools.combinations(range(2 * STEPS), STEPS):
        order = ["a" if i in positions else "b" for i in range(2 * STEPS)]
        left = {"a": STEPS, "b": STEPS}
        preemptions = 0
        for prev, nxt in zip(order, order[1:], strict=False):
            left[prev] -= 1
            if nxt != prev and left[prev] > 0:
                preemptions += 1
        if preemptions <= max_preemptions:
            counts[preemptions] += 1
    return counts


@pytest.mark.parametrize("bound", [0, 1, 2, 5])
def test_explore_exhausts_the_bounded_space_with_exact_counts(bound: int) -> None:
    result = sched.explore(two_straight_threads, max_preemptions=bound)
    assert result.per_bound == expected_counts(bound)
    assert result.schedules == sum(expected_counts(bound))
    assert result.exhausted and result.failure is None and result.pruned == 0
    assert "space exhausted" in result.summary()
    if bound == 5:
        assert result.schedules == 20                  # C(6, 3): every interleaving


def test_explore_says_when_the_space_is_not_exhausted() -> None:
    result = sched.explore(two_straight_threads, max_preemptions=5, max_schedules=7)
    assert not result.exhausted and result.schedules == 7
    assert result.summary().startswith("NOT exhausted")


def test_fewest_preemptions_come_first() -> None:
    # Bounds are drained in order, so the first failure found has the fewest
    # preemptions any failing schedule has: lost update needs exactly one.
    found = sched.explore(RACES["lost-update"](correct=False), max_preemptions=3)
    assert found.failure is not None and found.failure.preemptions == 1
    assert found.per_bound[0] == 2 and found.per_bound[2:] == [0, 0]


@pytest.mark.parametrize("race", sorted(RACES))
def test_explore_finds_each_race_and_clears_its_correct_twin(race: str) -> None:
    found = sched.explore(RACES[race](correct=False), max_preemptions=2)
    assert found.failure is not None and found.failure.failed
    assert found.failure.preemptions <= 2
    clean = sched.explore(RACES[race](correct=True, work=1), max_preemptions=2)
    assert clean.failure is None and clean.exhausted, clean.summary()


@pytest.mark.parametrize("with_ready", [False, True])
def test_blocked_waiters_are_pruned_not_counted(with_ready: bool) -> None:
    # a waits for a flag b sets between its two points. By hand: if a starts before
    # b sets the flag, a blocks and later wakes (2 orders of the starts x 3 ways to
    # mix a's wake+rest with b's last step = 6); if after, 3 ways: 9 schedules.
    # Prefixes that pick the blocked a while the flag is clear are pruned, not counted;
    # with a ready test (what sched.Event gives) a is not even offered then.
    def make() -> sched.Program:
        flag = [False]

        def is_set() -> bool:
            return flag[0]

        def a() -> None:
            sched.wait_until(is_set, "flag", ready=is_set if with_ready else None)
            sched.point("a.after")

        def b() -> None:
            sched.point("b.before")
            flag[0] = True
            sched.point("b.after")
        return sched.Program({"a": a, "b": b})
    result = sched.explore(make, max_preemptions=4)
    assert result.exhausted and result.failure is None
    assert result.schedules == 9, result.summary()
    assert (result.pruned == 0) if with_ready else (result.pruned >= 1), result.summary()
    seen = {tuple(s.thread for s in run.trace.steps)
            for run in (sched.run_program(make, sched.RandomStrategy(seed))
                        for seed in range(60)) if run.trace}
    assert len(seen) <= 9

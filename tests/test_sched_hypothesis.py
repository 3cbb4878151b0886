"""Hypothesis drives schedules: it finds the lost update and shrinks it to one
preemption; the correct twin holds for every drawn schedule."""

from __future__ import annotations

from hypothesis import HealthCheck, find, given, settings

from rcu_pgdat import sched
from rcu_pgdat.sched.examples import lost_update
from rcu_pgdat.sched.hypothesis import schedules

SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def test_hypothesis_finds_and_shrinks_the_race() -> None:
    make = lost_update(work=2)
    found = find(schedules(max_steps=20), lambda s: sched.run_program(make, s).failed,
                 settings=settings(SETTINGS, max_examples=300))
    run = sched.run_program(make, found)
    assert run.failed and run.preemptions == 1, run.describe()
    assert sum(1 for c in found.choices if c) <= 2, found   # shrunk to a couple of switches


@SETTINGS
@given(schedule=schedules(max_steps=30))
def test_correct_counter_survives_every_drawn_schedule(schedule: sched.ChoiceStrategy) -> None:
    run = sched.run_program(lost_update(correct=True, work=2), schedule)
    assert run.outcome is sched.Outcome.OK, run.describe()


def test_schedules_are_replayable_choice_strategies() -> None:
    run = sched.run_program(lost_update(work=2), sched.ChoiceStrategy([0, 1, 1, 0, 1]))
    assert run.trace is not None
    assert run.trace.strategy == {"name": "choice", "choices": [0, 1, 1, 0, 1]}
    assert sched.replay(lost_update(work=2), run.trace).trace == run.trace

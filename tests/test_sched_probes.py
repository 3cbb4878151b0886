"""Work the controlled scheduler saves without changing a decision.

* A pure condition (``sched.wait_until(..., pure=True)``) is probed in the deciding
  thread: the strategy is asked the same questions in the same order as when the
  waiter is woken to evaluate it, and the waiter is woken only when it can go on.
* The RCU flavors' reader wait checks its readers' liveness again only when the
  scheduler's exit mark moved: a reader that exits inside its section still fails the
  grace period at once (never a deadlock), in every flavor.
"""

from __future__ import annotations

from typing import Any

import pytest

from rcu_pgdat import sched
from rcu_pgdat.errors import UsageError
from rcu_pgdat.rcu import QSBR, SRCU, Memb

Outcome = sched.Outcome
BUSY_STEPS = 120


class Recording(sched.Strategy):
    """Wraps a strategy and records every question it was asked."""

    def __init__(self, inner: sched.Strategy) -> None:
        self.inner = inner
        self.name = inner.name
        self.asked: list[tuple[Any, ...]] = []

    def choose(self, d: sched.Decision) -> str | None:
        self.asked.append((d.step, d.index, d.candidates, d.prev, d.blocked, d.labels))
        return self.inner.choose(d)


def flag_program(pure: bool, evaluations: list[int]) -> sched.ProgramFactory:
    """``waiter`` waits (no ready test) for a flag that ``busy`` sets after BUSY_STEPS
    points; ``other`` loops beside them so that decisions have a choice."""
    def make() -> sched.Program:
        state = {"flag": False}

        def cond() -> bool:
            if sched.current_name() == "waiter":
                evaluations[0] += 1         # the waiter's own evaluations: hand-overs
            return state["flag"]

        def waiter() -> None:
            sched.wait_until(cond, "flag", pure=pure)

        def busy() -> None:
            for i in range(BUSY_STEPS):
                sched.point(f"busy {i}")
            state["flag"] = True

        def other() -> None:
            for i in range(BUSY_STEPS // 2):
                sched.point(f"other {i}")
        return {"waiter": waiter, "busy": busy, "other": other}
    return make


@pytest.mark.parametrize("mode", ["random", "pct", "pos"])
def test_a_pure_condition_is_probed_where_the_decision_is_made(mode: str) -> None:
    for seed in range(4):
        runs, asked, evaluations = [], [], []
        for pure in (False, True):
            count = [0]
            strategy = Recording(sched.make_strategy(mode, seed, steps=BUSY_STEPS))
            run = sched.run_program(flag_program(pure, count), strategy)
            assert run.outcome is Outcome.OK and run.trace is not None
            runs.append([(s.thread, s.label) for s in run.trace.steps])
            asked.append(strategy.asked)
            evaluations.append(count[0])
        assert runs[0] == runs[1]                 # the same schedule ...
        assert asked[0] == asked[1]               # ... from the same questions
        assert any(q[4] for q in asked[0])        # (probes that failed were asked about)
        assert evaluations[1] == 2                # when it blocks, when it goes on
        assert evaluations[0] > evaluations[1]    # the hand-overs saved


def flavors() -> list[Any]:
    return [pytest.param(QSBR, id="qsbr"), pytest.param(Memb, id="memb"),
            pytest.param(SRCU, id="srcu")]


@pytest.mark.parametrize("cls", flavors())
@pytest.mark.parametrize("mode", ["random", "pct"])
def test_a_reader_that_exits_inside_its_section_fails_the_waiting_grace_period(
        cls: type[Any], mode: str) -> None:
    """The updater blocks in the reader wait (its ready test found the reader alive);
    the reader then exits inside its section. The wait must be offered again and raise
    at once: a ready test that kept its old liveness answer would leave the updater
    blocked for good (a deadlock)."""
    for seed in range(4):
        raised: list[str] = []

        def make(raised: list[str] = raised) -> sched.Program:
            flavor = cls()
            inside = sched.Event("reader inside")

            def reader() -> None:
                if isinstance(flavor, QSBR):
                    flavor.register_thread()
                flavor.read_lock()
                inside.set()
                sched.wait_until(lambda: flavor.gp_seq & 1, "a grace period began",
                                 pure=True)
                for i in range(10):               # the updater blocks meanwhile
                    sched.point(f"reader lingers {i}")
                # exits inside its section

            def updater() -> None:
                inside.wait()
                try:
                    flavor.synchronize()
                except UsageError as exc:
                    raised.append(str(exc))
            return {"reader": reader, "updater": updater}
        run = sched.run_program(make, sched.make_strategy(mode, seed, steps=200))
        assert run.outcome is Outcome.OK, run.describe()
        assert len(raised) == 1 and "'reader' exited inside" in raised[0], raised

"""Waits with a ``ready`` test: ruled-out waiters are never woken, and nothing else changes.

A waiter is woken only to find its condition false when its ``ready`` test cannot rule
it out; these tests count the waiter's own evaluations of its condition (each one is a
hand-over to the waiter's thread), and check that a ``ready`` test stays a hint: points
inside it do nothing, an error in it lets the waiter meet the error itself, deadlock is
still exact, and version-1 traces still replay.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from rcu_pgdat import sched
from rcu_pgdat.errors import TraceError
from rcu_pgdat.sched.examples import use_after_free

Outcome = sched.Outcome
BUSY_STEPS = 200


def flag_program(use_ready: bool, evaluations: list[int],
                 ready: Callable[[dict[str, bool]], Callable[[], Any]] | None = None,
                 ) -> sched.ProgramFactory:
    """``waiter`` waits for a flag that ``busy`` sets after BUSY_STEPS points."""
    def make() -> sched.Program:
        state = {"flag": False}

        def cond() -> bool:
            evaluations[0] += 1
            return state["flag"]

        def pure() -> bool:
            return state["flag"]

        test = (ready(state) if ready else pure) if use_ready else None

        def waiter() -> None:
            sched.wait_until(cond, "flag", ready=test)

        def busy() -> None:
            for i in range(BUSY_STEPS):
                sched.point(f"busy {i}")
            state["flag"] = True
        return {"waiter": waiter, "busy": busy}
    return make


@pytest.mark.parametrize("mode", ["random", "pct"])
def test_a_ruled_out_waiter_is_not_woken_to_find_its_condition_false(mode: str) -> None:
    for seed in range(5):
        with_ready, without = [0], [0]
        strategy = sched.make_strategy(mode, seed, steps=BUSY_STEPS)
        run = sched.run_program(flag_program(True, with_ready), strategy)
        assert run.outcome is Outcome.OK
        # once before blocking, once when the flag is set: never a useless wake-up
        assert with_ready[0] == 2
        baseline = sched.run_program(flag_program(False, without),
                                     sched.make_strategy(mode, seed, steps=BUSY_STEPS))
        assert baseline.outcome is Outcome.OK
        assert without[0] > with_ready[0]       # the hand-overs the ready test saved


@pytest.mark.parametrize("mode", ["random", "pct"])
def test_a_queued_acquire_unless_is_not_woken_while_the_lock_is_held(mode: str) -> None:
    # The holder keeps the mutex for BUSY_STEPS points; the queued waiter evaluates its
    # claim once when it queues and once when the lock is free, never in between (the
    # scheduler's ready test runs in the deciding thread, not counted here). The
    # baseline (the same wait without a ready test) shows the check can fail.
    def program(evaluations: list[int], with_ready: bool) -> sched.ProgramFactory:
        def make() -> sched.Program:
            m = sched.Mutex("m")
            done, holding = [False], [False]

            def counted() -> bool:        # counts the waiter's own evaluations
                if sched.current_name() == "waiter":
                    evaluations[0] += 1
                return done[0]

            def holder() -> None:
                with m:
                    holding[0] = True
                    for i in range(BUSY_STEPS):
                        sched.point(f"holds {i}")

            def waiter() -> None:
                sched.wait_until(lambda: holding[0], "the holder holds m")
                if with_ready:
                    held = m.acquire_unless(counted)
                else:
                    held = sched.wait_until(lambda: counted() or m._lock.acquire(False),
                                            "lock m")
                    held = held and m.locked()
                    if held:
                        m.owner = sched.current_name()
                if held:
                    m.release()
            return {"holder": holder, "waiter": waiter}
        return make
    for seed in range(3):
        queued, plain = [0], [0]
        run = sched.run_program(program(queued, True), sched.make_strategy(mode, seed,
                                                                           steps=BUSY_STEPS))
        assert run.outcome is Outcome.OK
        assert queued[0] <= 2
        sched.run_program(program(plain, False), sched.make_strategy(mode, seed,
                                                                     steps=BUSY_STEPS))
        assert plain[0] > queued[0]


def test_points_inside_a_ready_test_do_nothing() -> None:
    def noisy(state: dict[str, bool]) -> Callable[[], Any]:
        def test() -> bool:
            sched.point("inside ready")          # would hand the token over mid-decision
            return state["flag"]
        return test
    evaluations = [0]
    run = sched.run_program(flag_program(True, evaluations, noisy), sched.RandomStrategy(1))
    assert run.outcome is Outcome.OK and run.trace is not None
    assert all(s.label != "inside ready" for s in run.trace.steps)


def test_an_error_in_a_ready_test_lets_the_waiter_meet_it_itself() -> None:
    def broken(state: dict[str, bool]) -> Callable[[], Any]:
        def test() -> bool:
            raise KeyError("ready")
        return test
    evaluations = [0]
    run = sched.run_program(flag_program(True, evaluations, broken), sched.RandomStrategy(2))
    assert run.outcome is Outcome.OK             # the waiter was offered, as with no test
    assert evaluations[0] > 2


def test_deadlock_is_still_exact_with_ready_tests() -> None:
    def make() -> sched.Program:
        a, b = sched.Mutex("a"), sched.Mutex("b")

        def one() -> None:
            with a:
                sched.point("one holds a")
                with b:
                    pass

        def two() -> None:
            with b:
                sched.point("two holds b")
                with a:
                    pass
        return {"one": one, "two": two}
    found = [seed for seed in range(40)
             if sched.run_program(make, sched.RandomStrategy(seed)).outcome
             is Outcome.DEADLOCK]
    assert found, "the lock-order inversion was never found"
    run = sched.run_program(make, sched.RandomStrategy(found[0]))
    assert "lock a" in run.report and "lock b" in run.report


def test_a_version_1_trace_still_replays_and_others_are_refused(tmp_path: Any) -> None:
    run = sched.run_program(use_after_free(), sched.RandomStrategy(3))
    assert run.trace is not None
    data = json.loads(run.trace.dumps())
    assert data["version"] == 4
    data["version"] = 1
    old = tmp_path / "old.trace.json"
    old.write_text(json.dumps(data))
    again = sched.replay(use_after_free(), str(old))
    assert [s.thread for s in again.trace.steps] == [s.thread for s in run.trace.steps]
    data["version"] = 5
    old.write_text(json.dumps(data))
    with pytest.raises(TraceError, match="reads versions 1, 2, 3, 4"):
        sched.replay(use_after_free(), str(old))

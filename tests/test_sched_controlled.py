"""Controlled scheduling: races found, replayed and shrunk; deadlock, livelock and hang
reported; Event, Mutex and sleep cooperate; runs unwind cleanly."""

from __future__ import annotations

import threading
from typing import Callable

import pytest

from rcu_pgdat import sched
from rcu_pgdat.errors import UsageError
from rcu_pgdat.sched.examples import RACES, lost_update

Outcome = sched.Outcome
SEEDS = range(200)


# -- races: found, replayed, shrunk; correct twins pass ------------------------------------


@pytest.mark.parametrize("race", sorted(RACES))
@pytest.mark.parametrize("mode", ["random", "pct"])
def test_narrow_race_is_found_replayed_and_shrunk(race: str, mode: str) -> None:
    make = RACES[race](correct=False)
    swept = sched.sweep(make, mode, SEEDS, stop_at_first=True)
    assert swept.first is not None, swept.summary()
    first = swept.first
    assert first.outcome is Outcome.FAILED and first.trace is not None

    again = sched.replay(make, first.trace)
    assert again.trace is not None and again.trace.dumps() == first.trace.dumps()
    assert again.errors[0].summary() == first.errors[0].summary()

    small = sched.shrink(make, first)
    assert small.failed and small.trace is not None
    assert (small.preemptions, small.steps) <= (first.preemptions, first.steps)
    assert small.preemptions <= 2, small.describe()
    table = small.table()
    assert "!!!" in table and all(name in table.splitlines()[0] for name in
                                  small.trace.threads)
    assert sched.replay(make, small.trace).trace == small.trace


@pytest.mark.parametrize("race", sorted(RACES))
@pytest.mark.parametrize("mode", ["random", "pct"])
def test_correct_twin_passes_a_seed_sweep(race: str, mode: str) -> None:
    swept = sched.sweep(RACES[race](correct=True), mode, range(60))
    assert swept.failures == 0, swept.first.describe() if swept.first else ""
    assert swept.runs == 60


def test_sweep_shrinks_the_first_failure_when_asked() -> None:
    swept = sched.sweep(lost_update(), "pct", SEEDS, stop_at_first=True, shrink_first=True)
    assert swept.first is not None and swept.shrunk is not None
    assert swept.shrunk.preemptions <= swept.first.preemptions
    assert swept.first_seed is not None
    assert swept.runs == swept.first_seed + 1              # stopped at the first failure
    first = swept.first_seed
    assert swept.summary() == (f"pct: 1 of {swept.runs} runs failed (seeds 0..{first}; "
                               f"first: seed {first}, pct d=3, failed)")


# -- deadlock, livelock, hang ------------------------------------------------------------


def lock_order(inverted: bool) -> sched.ProgramFactory:
    """a takes m1 then m2; b takes m2 then m1 (inverted) or m1 then m2."""
    def make() -> sched.Program:
        m1, m2 = sched.Mutex("m1"), sched.Mutex("m2")
        cleaned: list[str] = []

        def taker(first: sched.Mutex, second: sched.Mutex, name: str) -> Callable[[], None]:
            def body() -> None:
                try:
                    with first:
                        sched.point(f"{name}.between")
                        with second:
                            sched.point(f"{name}.inside")
                finally:
                    cleaned.append(name)
            return body
        b_locks = (m2, m1) if inverted else (m1, m2)
        return sched.Program({"a": taker(m1, m2, "a"), "b": taker(*b_locks, "b")})
    return make


def test_deadlock_is_reported_with_each_threads_wait_and_stack() -> None:
    # a takes m1, switch, b takes m2, then each wants the other's lock.
    run = sched.run_program(lock_order(inverted=True), sched.GuidedStrategy([("a", 1, "b")]))
    assert run.outcome is Outcome.DEADLOCK and run.failed
    assert "every live model thread is blocked" in run.report
    assert "a: waits for lock m2" in run.report and "b: waits for lock m1" in run.report
    assert "with second:" in run.report            # the stacks point at the model code
    assert run.stuck == []                          # RunStopped unwound both threads
    assert run.trace is not None and run.trace.final == {
        "a": "waits for lock m2", "b": "waits for lock m1"}


def test_consistent_lock_order_never_deadlocks() -> None:
    assert not sched.explore(lock_order(inverted=False), max_preemptions=3).failure
    found = sched.explore(lock_order(inverted=True), max_preemptions=3)
    assert found.failure is not None and found.failure.outcome is Outcome.DEADLOCK


def spinner(progress_every: int | None) -> sched.ProgramFactory:
    """``spin`` polls a flag nobody sets; it notes progress every n polls if asked."""
    def make() -> sched.Program:
        def spin() -> None:
            polls = 0
            while True:
                sched.point("spin.poll")
                polls += 1
                if progress_every and polls % progress_every == 0:
                    sched.progress("spin made progress")
        return sched.Program({"spin": spin})
    return make


def test_livelock_is_reported_when_no_progress_is_noted() -> None:
    run = sched.run_program(spinner(None), sched.RandomStrategy(0), livelock_steps=40,
                            max_steps=1000)
    assert run.outcome is Outcome.LIVELOCK and run.failed
    assert "no progress in 40 steps" in run.report and "spin: at spin.poll" in run.report
    assert run.steps == 40


def test_noted_progress_is_not_a_livelock() -> None:
    run = sched.run_program(spinner(10), sched.RandomStrategy(0), livelock_steps=40,
                            max_steps=300)
    assert run.outcome is Outcome.BUDGET and not run.failed
    assert run.trace is not None and run.trace.end == 300


def plain_lock_program() -> sched.Program:
    """b blocks on a threading.Lock that a holds while parked at a schedule point."""
    plain = threading.Lock()

    def a() -> None:
        with plain:
            sched.point("a.holding")

    def b() -> None:
        with plain:                                 # invisible to the scheduler
            sched.point("b.holding")
    return sched.Program({"a": a, "b": b})


def test_hang_outside_the_scheduler_is_reported_not_hung_on() -> None:
    run = sched.run_program(plain_lock_program, sched.GuidedStrategy([("a", 1, "b")]),
                            hang_timeout=0.3, intercept=False)
    assert run.outcome is Outcome.HANG
    assert "model thread b ran for more than 0.3 s" in run.report
    assert "with plain:" in run.report and "it ran from 'start'" in run.report
    assert run.trace is not None and run.trace.failure is not None
    assert run.trace.failure["thread"] == "b"
    assert run.stuck == []          # a unwound, released the lock, then b unwound too


def test_free_running_mode_still_runs_code_with_plain_locks() -> None:
    assert sched.run_free(plain_lock_program).outcome is Outcome.OK


def test_budget_ends_an_endless_run() -> None:
    run = sched.run_program(spinner(1), sched.RandomStrategy(3), max_steps=50)
    assert run.outcome is Outcome.BUDGET and run.steps == 50


# -- Event, Mutex, sleep and time under control ------------------------------------------


def test_mutex_excludes_under_every_seed() -> None:
    def make() -> sched.Program:
        m = sched.Mutex("m")
        inside: list[str] = []

        def body() -> None:
            for _ in range(3):
                with m:
                    inside.append(sched.current_name())
                    sched.point("inside")
                    assert inside == [sched.current_name()], f"two holders: {inside}"
                    inside.pop()
                sched.point("outside")
        return sched.Program({f"t{i}": body for i in range(3)})
    swept = sched.sweep(make, "random", range(40))
    assert swept.failures == 0, swept.first.describe() if swept.first else ""


def test_a_mutex_that_does_not_exclude_is_caught() -> None:
    class Leaky(sched.Mutex):
        """Broken: acquire never waits."""
        def acquire(self) -> None:
            self.owner = sched.current_name()

        def release(self) -> None:
            self.owner = None

    def make() -> sched.Program:
        m = Leaky("leaky")
        inside: list[str] = []

        def body() -> None:
            with m:
                inside.append(sched.current_name())
                sched.point("inside")
                assert len(inside) == 1, f"two holders: {inside}"
                inside.pop()
        return sched.Program({"t0": body, "t1": body})
    assert sched.sweep(make, "random", range(40)).failures > 0


def test_event_wait_timeout_and_sleep_count_steps() -> None:
    seen: dict[str, object] = {}

    def make() -> sched.Program:
        ev = sched.Event("ev")

        def waiter() -> None:
            start = sched.now()
            seen["timed_out"] = ev.wait(timeout=3)
            seen["waited"] = sched.now() - start
            seen["woken"] = ev.wait()                  # set later by setter
            seen["woken_at"] = sched.now()

        def setter() -> None:
            before = sched.now()
            sched.sleep(10.5)                           # rounds up to 11 steps
            seen["slept"] = sched.now() - before
            ev.set()
        return sched.Program({"waiter": waiter, "setter": setter})
    run = sched.run_program(make, sched.GuidedStrategy([]))
    assert run.outcome is Outcome.OK, run.describe()
    assert seen["timed_out"] is False and seen["waited"] == 4   # due at +3, then a step
    assert seen["woken"] is True
    assert seen["slept"] == 12                                  # 11 asleep + its own step
    assert isinstance(seen["woken_at"], int) and seen["woken_at"] > 12


def test_time_jumps_when_every_thread_sleeps() -> None:
    def make() -> sched.Program:
        return sched.Program({"sleeper": lambda: sched.sleep(5000)})
    run = sched.run_program(make, sched.RandomStrategy(0), max_steps=10_000)
    assert run.outcome is Outcome.OK and run.steps == 2
    assert run.trace is not None and run.trace.end == 5002


def test_a_condition_with_a_side_effect_runs_in_the_waiter_only() -> None:
    def make() -> sched.Program:
        claimed: list[str] = []
        tokens = [1]

        def claim() -> bool:
            if tokens:
                tokens.pop()
                claimed.append(sched.current_name())
                return True
            return False

        def taker() -> None:
            sched.wait_until(claim, "a token")
            assert claimed[-1] == sched.current_name()

        def giver() -> None:
            sched.point("give")
            tokens.append(1)
        return sched.Program({"t1": taker, "t2": taker, "giver": giver},
                             check=lambda: None)
    for seed in range(30):
        run = sched.run_program(make, sched.RandomStrategy(seed))
        assert run.outcome in (Outcome.OK, Outcome.DEADLOCK), run.describe()


# -- threads, unwinding, misuse ------------------------------------------------------------


def test_model_threads_can_spawn_model_threads() -> None:
    def make() -> sched.Program:
        done = sched.Event("worker.done")

        def work() -> None:
            sched.point("worker.run")
            done.set()

        def parent() -> None:
            worker = sched.spawn(work, "worker")
            worker.start()
            assert done.wait()
        return sched.Program({"parent": parent})
    run = sched.run_program(make, sched.RandomStrategy(1))
    assert run.outcome is Outcome.OK and run.trace is not None
    assert run.trace.threads == ("parent", "worker")
    assert sched.replay(make, run.trace).trace == run.trace


def test_unwinding_runs_finally_blocks_of_every_thread() -> None:
    cleaned: list[str] = []

    def make() -> sched.Program:
        def body() -> None:
            try:
                sched.wait_until(lambda: False, "never")
            finally:
                sched.point("cleanup")                  # a no-op while unwinding
                cleaned.append(sched.current_name())
        return sched.Program({"x": body, "y": body})
    run = sched.run_program(make, sched.RandomStrategy(0))
    assert run.outcome is Outcome.DEADLOCK
    assert sorted(cleaned) == ["x", "y"] and run.stuck == []


def test_a_thread_error_fails_the_run_with_thread_and_step() -> None:
    def boom() -> None:
        sched.point("before")
        raise ValueError("boom")
    run = sched.run_program(lambda: {"t": boom}, sched.RandomStrategy(0))
    assert run.outcome is Outcome.FAILED
    assert run.errors[0].thread == "t" and run.errors[0].step == 1
    assert run.trace is not None and run.trace.failure == {
        "thread": "t", "step": 1, "error": "ValueError: boom"}


def test_thread_errors_reach_threading_excepthook_by_default() -> None:
    seen: list[str] = []
    old = threading.excepthook
    threading.excepthook = lambda args: seen.append(repr(args.exc_value))
    try:
        run = sched.ControlledScheduler(sched.RandomStrategy(0))
        with sched.install(run):
            sched.spawn(lambda: (_ for _ in ()).throw(KeyError("k")), "t").start()
            result = run.wait()
    finally:
        threading.excepthook = old
    assert result.outcome is Outcome.FAILED and seen == ["KeyError('k')"]


def test_threads_the_scheduler_did_not_spawn_run_free() -> None:
    run = sched.ControlledScheduler(sched.RandomStrategy(0))
    with sched.install(run):
        sched.point("driver")                          # no-op, does not block
        assert sched.wait_until(lambda: True, "nothing") is True
        assert sched.now() == 0
        sched.spawn(lambda: sched.point("x"), "t").start()
        assert run.wait().outcome is Outcome.OK
    assert sched.active() is not run


def test_misuse_raises_usage_errors() -> None:
    run = sched.ControlledScheduler(sched.RandomStrategy(0))
    with sched.install(run):
        sched.spawn(lambda: sched.point("x"), "t").start()
        with pytest.raises(UsageError, match="already running"):
            sched.spawn(lambda: None, "t").start()
        with pytest.raises(UsageError, match="non-empty string"):
            sched.spawn(lambda: None, "")
        run.wait()
        with pytest.raises(UsageError, match="runs once"):
            run.wait()


def test_uninstalling_before_wait_stops_parked_threads() -> None:
    ran: list[str] = []
    run = sched.ControlledScheduler(sched.RandomStrategy(0))
    with sched.install(run):
        t = sched.spawn(lambda: ran.append("body"), "t")
        t.start()
    t.join(5)
    assert not t.is_alive() and ran == []


def test_a_strategy_that_picks_a_non_candidate_is_an_error() -> None:
    class Wrong(sched.Strategy):
        def choose(self, d: sched.Decision) -> str:
            return "nobody"
    with pytest.raises(UsageError, match="not a candidate"):
        sched.run_program(lambda: {"t": lambda: None}, Wrong())

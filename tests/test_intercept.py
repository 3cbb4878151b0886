"""Interception: plain threading, queue and time code under the controlled scheduler."""

from __future__ import annotations

import _thread
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from rcu_pgdat import sched
from rcu_pgdat.sched import _real
from rcu_pgdat.sched import Outcome, PCTStrategy, Program, RandomStrategy, intercept, run_program

sys.path.insert(0, str(Path(__file__).parent / "plugins"))

def current() -> dict[str, Any]:
    now = {name: getattr(threading, name) for name in ("Lock", "RLock", "Condition")}
    now.update({f"time.{name}": getattr(time, name) for name in
                ("sleep", "monotonic", "time", "perf_counter")})
    now["queue.SimpleQueue"] = queue.SimpleQueue
    now["Thread.start"] = threading.Thread.start
    now["Thread.join"] = threading.Thread.join
    return now


ORIGINALS = current()


def restored() -> bool:
    return current() == ORIGINALS and not intercept.enabled()


def seeds(make: Callable[[], Program], n: int = 30, **opts: Any) -> list[Outcome]:
    return [run_program(make, RandomStrategy(seed), **opts).outcome for seed in range(n)]


# -- each primitive, from plain code ------------------------------------------------------


def counter_program(locked: bool) -> Callable[[], Program]:
    def make() -> Program:
        lock = threading.Lock()
        box = {"n": 0}

        def inc() -> None:
            for _ in range(2):
                if locked:
                    with lock:
                        value = box["n"]
                        time.sleep(0)        # intercepted: a schedule point, not a wait
                        box["n"] = value + 1
                else:
                    value = box["n"]
                    time.sleep(0)            # intercepted: a schedule point, not a wait
                    box["n"] = value + 1

        def check() -> None:
            assert box["n"] == 4, f"lost update: {box['n']}"
        return Program({"a": inc, "b": inc}, check)
    return make


def test_a_plain_lock_excludes_and_its_absence_is_found() -> None:
    assert set(seeds(counter_program(True))) == {Outcome.OK}
    assert Outcome.FAILED in seeds(counter_program(False))
    assert restored()


def test_without_interception_the_same_bug_is_invisible() -> None:
    assert set(seeds(counter_program(False), intercept=False)) == {Outcome.OK}


def test_rlock_condition_event_semaphores_barrier_and_queues() -> None:
    def make() -> Program:
        rlock = threading.RLock()
        cond = threading.Condition()
        event = threading.Event()
        sem = threading.Semaphore(1)
        bounded = threading.BoundedSemaphore(1)
        barrier = threading.Barrier(2)
        queues = [queue.Queue(), queue.LifoQueue(), queue.PriorityQueue(), queue.SimpleQueue()]
        seen: list[Any] = []

        def producer() -> None:
            with rlock:
                with rlock:                      # re-entrant
                    seen.append("rlock")
            with cond:
                seen.append("ready")
                cond.notify()
            for q in queues:
                q.put(1)
            with sem, bounded:
                seen.append("sem")
            barrier.wait()
            event.set()

        def consumer() -> None:
            with cond:
                cond.wait_for(lambda: "ready" in seen)
            got = [q.get() for q in queues]
            assert got == [1, 1, 1, 1], got
            barrier.wait()
            assert event.wait(timeout=1000)
            with pytest.raises(ValueError):
                bounded.release()                # released more than acquired

        def check() -> None:
            assert seen.count("sem") == 1 and "rlock" in seen
        return Program({"producer": producer, "consumer": consumer}, check)
    assert set(seeds(make, 20)) == {Outcome.OK}
    assert restored()


def test_a_wait_nobody_ends_is_a_deadlock_naming_it() -> None:
    def make() -> Program:
        event = threading.Event()
        return Program({"waiter": lambda: event.wait()})
    run = run_program(make, RandomStrategy(1))
    assert run.outcome is Outcome.DEADLOCK
    assert "waits for wait Event@test_intercept.py" in run.report


def test_sleep_and_clocks_count_steps() -> None:
    times: list[float] = []

    def make() -> Program:
        def body() -> None:
            times.append(time.monotonic())
            time.sleep(5)                    # intercepted: advances the step clock
            times.append(time.monotonic())
            times.append(time.perf_counter() - time.time())
        return Program({"sleeper": body})
    run = run_program(make, RandomStrategy(0))
    assert run.outcome is Outcome.OK
    assert 5 <= times[1] - times[0] <= 6 and times[2] == 0     # the step clock
    assert abs(time.monotonic() - _real.monotonic()) < 1       # the driver's is real


def test_threads_started_by_model_code_are_adopted_with_stable_names() -> None:
    names: list[str] = []

    def make() -> Program:
        box: list[int] = []

        def parent() -> None:
            kids = [threading.Thread(target=lambda: box.append(1)) for _ in range(2)]
            kids.append(threading.Thread(target=lambda: box.append(1), name="named"))
            for kid in kids:
                kid.start()
            for kid in kids:
                kid.join()
                assert not kid.is_alive()
            names.extend(k.name for k in kids)

        def check() -> None:
            assert box == [1, 1, 1]
        return Program({"parent": parent}, check)
    runs = [run_program(make, RandomStrategy(seed)) for seed in range(5)]
    assert all(r.outcome is Outcome.OK for r in runs)
    assert runs[0].trace is not None
    assert runs[0].trace.threads == ("parent", "parent.1", "parent.2", "parent.3:named")
    assert set(names) == {"parent.1", "parent.2", "parent.3:named"}


def test_an_adopted_thread_that_raises_fails_the_run() -> None:
    def make() -> Program:
        def parent() -> None:
            kid = threading.Thread(target=lambda: 1 / 0)
            kid.start()
            kid.join()
        return Program({"parent": parent})
    run = run_program(make, RandomStrategy(0))
    assert run.outcome is Outcome.FAILED and run.errors[0].thread == "parent.1"
    assert isinstance(run.errors[0].exc, ZeroDivisionError)


def executor_program(correct: bool) -> tuple[dict[str, Any], Callable[[], None]]:
    """Threads a library starts (a pool's workers, a Timer) become model threads."""
    from concurrent.futures import ThreadPoolExecutor
    out: list[Any] = []

    def main() -> None:
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(lambda i=i: i * i) for i in range(3)]
            out.extend(f.result() for f in futures)
        timer = threading.Timer(3, lambda: out.append("timer"))
        timer.start()
        timer.join()

    def check() -> None:
        assert out == [0, 1, 4, "timer"], out
    return {"main": main}, check


def test_a_library_that_starts_threads_runs_under_control() -> None:
    """A pool's workers and a Timer are adopted. (Not byte-for-byte repeatable: the pool
    joins its workers from a set, whose order follows object addresses.)"""
    def make() -> Program:
        threads, check = executor_program(True)
        return Program(threads, check)
    runs = [run_program(make, RandomStrategy(s)) for s in range(10)]
    assert {r.outcome for r in runs} == {Outcome.OK}
    assert runs[0].trace is not None
    assert runs[0].trace.threads == ("main", "main.1", "main.2", "main.3")


def test_same_seed_same_run_byte_for_byte() -> None:
    from plain_races import make_aba, make_condition

    for scenario in (make_aba, make_condition):
        def make(scenario: Any = scenario) -> Program:
            threads, check = scenario(False)
            return Program(threads, check)
        first = [run_program(make, RandomStrategy(s)).trace.dumps() for s in range(8)]
        again = [run_program(make, RandomStrategy(s)).trace.dumps() for s in range(8)]
        assert first == again and len(set(first)) > 1


# -- whose threads, whose primitives ----------------------------------------------------------


def test_threads_the_run_does_not_own_keep_real_behaviour() -> None:
    """A helper thread the driver starts waits for real on an intercepted Event."""
    outside: dict[str, Any] = {}

    def make() -> Program:
        event = threading.Event()
        lock = threading.Lock()

        def helper() -> None:                    # not a model thread: real waits
            outside["woke"] = event.wait(timeout=30)
            with lock:
                outside["clock"] = time.monotonic()

        outside["thread"] = helper_thread = threading.Thread(target=helper)
        helper_thread.start()
        return Program({"setter": event.set})
    run = run_program(make, RandomStrategy(0))
    outside["thread"].join(30)
    assert run.outcome is Outcome.OK and outside["woke"] is True
    assert outside["clock"] > 100              # wall clock, not steps
    assert restored()


def test_the_harness_own_code_gets_real_primitives() -> None:
    made: dict[str, Any] = {}

    def make() -> Program:
        made["mutex"] = sched.Mutex("m")           # rcu_pgdat code: a real lock inside
        made["user"] = threading.Lock()
        return Program({"noop": lambda: None})
    run_program(make, RandomStrategy(0))
    assert type(made["mutex"]._lock) is type(_thread.allocate_lock())
    assert type(made["user"]).__name__ == "Lock" and "schedulable" in repr(made["user"])


def test_a_lock_made_before_the_run_stays_real_and_blocking_on_it_is_a_hang() -> None:
    """The documented limit: objects that exist before the run are not intercepted."""
    early = threading.Lock()

    def make() -> Program:
        def holder() -> None:
            with early:
                time.sleep(0)                    # parks while holding the real lock

        def blocker() -> None:
            with early:
                pass
        return Program({"holder": holder, "blocker": blocker})
    run = run_program(make, sched.GuidedStrategy([("holder", 1, "blocker")]),
                      hang_timeout=0.3)
    assert run.outcome is Outcome.HANG and "blocker" in run.report


# -- restored afterwards, whatever happened ------------------------------------------------------


def test_restored_after_a_failing_run_and_an_interrupt() -> None:
    def failing() -> Program:
        return Program({"boom": lambda: 1 / 0})
    assert run_program(failing, RandomStrategy(0)).outcome is Outcome.FAILED
    assert restored()

    def interrupted() -> Program:
        threading.Lock()
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_program(interrupted, RandomStrategy(0))
    assert restored()


def test_the_restore_check_catches_a_run_that_leaves_patches(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Broken variant: a disable() that does nothing leaves threading patched."""
    real_disable = intercept.disable
    monkeypatch.setattr(intercept, "disable", lambda: None)
    run_program(counter_program(True), RandomStrategy(0))
    assert not restored()
    real_disable()
    assert restored()


# -- busy-waits stay schedulable ------------------------------------------------------------------


def test_a_sleep0_busy_wait_is_never_a_false_hang() -> None:
    from plain_races import make_busy_wait

    def make() -> Program:
        threads, check = make_busy_wait(True)
        return Program(threads, check)
    outcomes = seeds(make, 30, hang_timeout=2.0)
    outcomes += [run_program(make, PCTStrategy(s, depth=3, steps=50)).outcome
                 for s in range(30)]
    assert set(outcomes) == {Outcome.OK}


# -- what it costs ------------------------------------------------------------------------------


def test_the_cost_bench_runs_the_same_workload_three_ways() -> None:
    from stress.bench import intercept as cost

    got = cost.measure(rounds=2, runs=2, repeat=1)
    assert set(got) == {"explicit", "intercept", "instrument"}
    assert all(got[m]["outcomes"] == ["ok"] for m in got)
    # interception's points are the lock's acquire and release; instrumentation adds
    # the counter's load and store: strictly more steps for the same program
    assert got["instrument"]["steps"] > got["intercept"]["steps"] > 0
    assert restored()


def test_a_pure_flag_spin_is_rescued_not_a_false_hang() -> None:
    """``while not flag: pass``: no sleep, nothing instrumented. On 3.12+ the driver
    turns the spinning code's lines into yields; below, it stays a hang (the limit)."""
    from rcu_pgdat.sched.rescue import AVAILABLE
    boxes: list[dict[str, bool]] = []

    def make() -> Program:
        box = {"ready": False}
        boxes.append(box)

        def spinner() -> None:
            while not box["ready"]:
                pass

        def setter() -> None:
            box["ready"] = True
        return Program({"spinner": spinner, "setter": setter})
    try:
        run = run_program(make, sched.GuidedStrategy([]), hang_timeout=2.0)
        if AVAILABLE:
            assert run.outcome is Outcome.OK, run.describe()
            again = run_program(make, sched.GuidedStrategy([]), hang_timeout=2.0)
            assert run.trace is not None and again.trace is not None
            assert run.trace.dumps() == again.trace.dumps()
        else:
            assert run.outcome is Outcome.HANG
        off = run_program(make, sched.GuidedStrategy([]), hang_timeout=2.0,
                          intercept=False)
        assert off.outcome is Outcome.HANG             # the rescue belongs to interception
    finally:
        for box in boxes:                              # let a hung spinner end
            box["ready"] = True


def test_a_replay_probes_waiters_before_a_time_jump_as_the_recorded_run_did() -> None:
    """The last step frees no waiter but moves the clock's epoch: the recorded run
    probed the waiters (still blocked) and the clock jumped to the sleeper. The replay
    must probe them too, not report a departure. Common with interception, whose
    Condition and Event waits are such waiters."""
    def make() -> Program:
        flag = threading.Event()

        def sleeper() -> None:
            time.sleep(10)
            flag.set()

        def stepper() -> None:
            for _ in range(3):
                time.sleep(0)

        return Program({"waiter": flag.wait, "sleeper": sleeper, "stepper": stepper})
    for seed in range(10):
        run = run_program(make, RandomStrategy(seed))
        assert run.outcome is Outcome.OK and run.trace is not None
        again = sched.replay(make, run.trace)
        assert again.outcome is Outcome.OK and again.trace is not None
        assert again.trace.steps == run.trace.steps


@pytest.mark.parametrize("use_ready", [False, True])
def test_is_alive_in_a_wait_condition_answers_in_scheduler_terms(
        monkeypatch: pytest.MonkeyPatch, use_ready: bool) -> None:
    # A waiter whose condition (or ready test) asks whether another model thread is
    # alive must get the scheduler's answer: the OS thread of a finished model thread
    # may still be exiting, and a run must not depend on when the OS ends it.
    asked: list[str] = []

    def real(thread: threading.Thread) -> bool:     # who asked the OS, about whom
        asked.append(f"{threading.current_thread().name} -> {thread.name}")
        return bool(_real_is_alive(thread))
    _real_is_alive = intercept._thread_is_alive
    monkeypatch.setattr(intercept, "_thread_is_alive", real)

    def make() -> Program:
        threads: dict[str, threading.Thread] = {}

        def worker() -> None:
            for i in range(5):
                sched.point(f"work {i}")

        def watcher() -> None:
            t = threading.Thread(target=worker, name="worker")
            threads["w"] = t
            t.start()

            def gone() -> bool:
                return not threads["w"].is_alive()
            sched.wait_until(gone, "the worker to finish", ready=gone if use_ready else None)
        return {"watcher": watcher}
    for seed in range(3):
        run = run_program(make, RandomStrategy(seed))
        assert run.outcome is Outcome.OK, run.describe()
    # the driver may ask the OS after the run; a model thread never does
    assert not [a for a in asked if a.startswith("watcher")], asked

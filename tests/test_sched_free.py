"""Free-running scheduling (the default and StressScheduler): Mutex excludes under
contention, Event waits and times out, the switch interval is restored, misuse raises."""

from __future__ import annotations

import sys
import threading

import pytest

from rcu_pgdat import sched

MUST = 5.0          # generous bound for a handshake that must happen


class LeakyMutex(sched.Mutex):
    """Broken on purpose: acquire never waits."""

    def acquire(self) -> None:
        self.owner = sched.current_name()

    def release(self) -> None:
        self.owner = None


@pytest.mark.parametrize("cls, excludes", [(sched.Mutex, True), (LeakyMutex, False)])
def test_second_taker_waits_while_the_mutex_is_held(cls: type, excludes: bool) -> None:
    m = cls("m")
    holding, release, got = threading.Event(), threading.Event(), threading.Event()

    def holder() -> None:
        with m:
            holding.set()
            assert release.wait(MUST)

    def taker() -> None:
        assert holding.wait(MUST)
        with m:
            got.set()
    threads = [threading.Thread(target=holder), threading.Thread(target=taker)]
    for t in threads:
        t.start()
    assert holding.wait(MUST)
    # Correct: taker cannot get in while holder holds m. Leaky: it gets in at once.
    if excludes:
        assert not got.wait(0.05)
    else:
        assert got.wait(MUST)
    release.set()
    for t in threads:
        t.join(MUST)
    assert got.is_set() and not any(t.is_alive() for t in threads)


def test_mutex_counter_is_exact_under_stress_contention() -> None:
    m = sched.Mutex("counter")
    box = {"n": 0}

    def body() -> None:
        for _ in range(300):
            with m:
                sched.point("load")
                value = box["n"]
                sched.point("store")
                box["n"] = value + 1
    with sched.install(sched.StressScheduler(seed=5, yield_probability=0.3)):
        threads = [sched.spawn(body, f"w{i}") for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert box["n"] == 1200


def test_mutex_misuse_raises() -> None:
    m = sched.Mutex("m")
    with m:
        with pytest.raises(RuntimeError, match="not recursive"):
            m.acquire()
        other: list[BaseException] = []

        def release_elsewhere() -> None:
            try:
                m.release()
            except RuntimeError as exc:
                other.append(exc)
        t = threading.Thread(target=release_elsewhere, name="intruder")
        t.start()
        t.join(MUST)
        assert "held by MainThread, not intruder" in str(other[0])
    assert not m.locked() and "unlocked" in repr(m)


def test_event_wait_times_out_then_is_woken() -> None:
    ev = sched.Event("ev")
    assert ev.wait(timeout=0.01) is False and not ev.is_set()
    started = threading.Event()
    result: list[bool] = []

    def waiter() -> None:
        started.set()
        result.append(ev.wait(timeout=MUST))
    t = threading.Thread(target=waiter)
    t.start()
    assert started.wait(MUST)
    ev.set()
    t.join(MUST)
    assert result == [True] and "set" in repr(ev)
    ev.clear()
    assert not ev.is_set()


def test_wait_until_returns_false_on_timeout_and_true_at_once() -> None:
    assert sched.wait_until(lambda: False, "never", timeout=0.01) is False
    assert sched.wait_until(lambda: True, "now") is True


def test_stress_scheduler_sets_and_restores_the_switch_interval() -> None:
    before = sys.getswitchinterval()
    scheduler = sched.StressScheduler(seed=1, switch_interval=1e-5)
    with pytest.raises(KeyError):
        with sched.install(scheduler):
            assert sys.getswitchinterval() == pytest.approx(1e-5)
            assert sched.active() is scheduler
            raise KeyError("leave the block by an exception")
    assert sys.getswitchinterval() == before
    assert sched.active() is not scheduler


def test_stress_scheduler_validates_its_parameters() -> None:
    with pytest.raises(ValueError, match="yield_probability"):
        sched.StressScheduler(yield_probability=2)
    with pytest.raises(ValueError, match="switch_interval"):
        sched.StressScheduler(switch_interval=0)


def test_free_running_points_progress_and_time_are_plain() -> None:
    sched.point("anything")
    sched.progress("nothing to note")
    t0 = sched.now()
    sched.sleep(0)
    assert sched.now() >= t0 and sched.current_name() == threading.current_thread().name


def test_naive_and_stress_sweeps_run_real_threads_and_count_failures() -> None:
    def make(fail: bool) -> sched.ProgramFactory:
        def factory() -> sched.Program:
            def body() -> None:
                sched.point("p")
                assert not fail, "this variant always fails"
            return sched.Program({"t0": body, "t1": body})
        return factory
    for mode in ("naive", "stress"):
        assert sched.sweep(make(False), mode, range(3)).failures == 0
        broken = sched.sweep(make(True), mode, range(3))
        assert broken.failing_seeds == [0, 1, 2] and broken.first is not None
        assert broken.first.trace is None and "always fails" in broken.first.errors[0].summary()

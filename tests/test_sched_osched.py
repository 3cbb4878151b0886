"""A controlled run's model threads run on one CPU as batch threads (``_osched``); the
driver and the process keep theirs, and the schedule is the same either way."""

from __future__ import annotations

import os
import threading

import pytest

from rcu_pgdat import sched
from rcu_pgdat.sched import _osched, install
from rcu_pgdat.sched.controlled import ControlledScheduler

linux_only = pytest.mark.skipif(not hasattr(os, "sched_setaffinity")
                                or _osched.run_cpu() is None,
                                reason="needs thread affinity (Linux) and a free CPU choice")


def _placement() -> tuple[frozenset[int], int]:
    return frozenset(os.sched_getaffinity(0)), os.sched_getscheduler(0)


def _observed(pin: bool, seed: int = 1) -> tuple[dict[str, tuple[frozenset[int], int]], str]:
    """Each model thread's CPUs and OS scheduling class, seen from inside the run, and
    the run's trace."""
    seen: dict[str, tuple[frozenset[int], int]] = {}

    def body(name: str) -> None:
        for _ in range(3):
            sched.point(f"{name}:look")
            seen[name] = _placement()

    run = ControlledScheduler(sched.RandomStrategy(seed), max_steps=200, pin_threads=pin)
    with install(run):
        threads = [run.spawn(lambda n=n: body(n), n) for n in ("a", "b", "c")]  # type: ignore[misc]
        for t in threads:
            t.start()
        result = run.wait()
    assert result.outcome is sched.Outcome.OK and result.trace is not None, result.describe()
    return seen, result.trace.dumps()


@linux_only
def test_model_threads_share_one_cpu_as_batch_threads_and_the_driver_keeps_its_own() -> None:
    before = _placement()
    seen, _ = _observed(pin=True)
    assert set(seen) == {"a", "b", "c"}
    cpus = {placement[0] for placement in seen.values()}
    assert len(cpus) == 1 and len(next(iter(cpus))) == 1, seen
    assert next(iter(cpus)) <= before[0]
    assert {placement[1] for placement in seen.values()} == {os.SCHED_BATCH}
    assert _placement() == before                  # the driver was not pinned


@linux_only
def test_pin_threads_off_leaves_model_threads_as_the_os_runs_them() -> None:
    before = _placement()
    seen, _ = _observed(pin=False)
    assert {placement for placement in seen.values()} == {before}


@linux_only
def test_the_variable_turns_pinning_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_osched.ENV, "0")
    before = _placement()
    seen, _ = _observed(pin=True)
    assert {placement for placement in seen.values()} == {before}


@pytest.mark.parametrize("seed", range(4))
def test_pinned_or_not_a_seed_gives_the_same_schedule(seed: int) -> None:
    assert _observed(True, seed)[1] == _observed(False, seed)[1]


def test_a_thread_started_outside_the_run_is_not_pinned() -> None:
    placement: list[tuple[frozenset[int], int]] = []
    before = _placement()
    _observed(pin=True)
    t = threading.Thread(target=lambda: placement.append(_placement()))
    t.start()
    t.join()
    assert placement == [before]


class _DriverPinning(ControlledScheduler):
    """The broken variant: settles the thread that installs the run (the driver)."""

    def activate(self) -> None:
        super().activate()
        assert self._placement is not None
        _osched.settle(self._placement.cpu)


@linux_only
def test_the_driver_check_catches_a_scheduler_that_pins_the_driver() -> None:
    before = _placement()
    try:
        run = _DriverPinning(sched.RandomStrategy(1), max_steps=50)
        with install(run):
            thread = run.spawn(lambda: sched.point("x"), "x")
            thread.start()
            run.wait()
        assert _placement() != before                # what the first test rules out
    finally:
        os.sched_setaffinity(0, before[0])
        os.sched_setscheduler(0, before[1], os.sched_param(0))
    assert _placement() == before


@pytest.mark.parametrize("share, idle, expected", [
    (0.9, {0: 0.0, 1: 0.95}, 0),             # the run gets its CPU: stay
    (0.4, {0: 0.0, 1: 0.95}, 1),             # taken from it, the other idle: move
    (0.7, {0: 0.0, 1: 0.95}, 1),             # shared with another program: move
    (0.4, {0: 0.0, 1: 0.30}, 0),             # the other as busy: stay
    (0.4, {0: 0.6, 1: 0.55}, 0),             # its own the idlest: stay
    (0.4, {}, 0),                            # nothing known: stay
])
def test_the_run_moves_only_off_a_cpu_taken_from_it_to_an_idle_one(
        share: float, idle: dict[int, float], expected: int) -> None:
    assert _osched.better_cpu(0, share, idle) == expected


two_cpus = pytest.mark.skipif(not hasattr(os, "sched_setaffinity")
                              or len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs")


@two_cpus
def test_a_review_that_moves_moves_every_thread_it_is_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = sorted(os.sched_getaffinity(0))[:2]
    placement = _osched.Placement(first)
    go, ready = threading.Event(), threading.Barrier(4)
    seen: list[frozenset[int]] = []

    def parked() -> None:
        os.sched_setaffinity(0, (first,))
        ready.wait()
        go.wait()
        seen.append(frozenset(os.sched_getaffinity(0)))
    threads = [threading.Thread(target=parked) for _ in range(3)]
    for t in threads:
        t.start()
    ready.wait()
    monkeypatch.setattr(_osched, "REVIEW_SECONDS", 0.0)
    monkeypatch.setattr(_osched, "better_cpu", lambda cpu, share, idle: second)
    placement.review(threads)
    go.set()
    for t in threads:
        t.join()
    assert placement.cpu == second and placement.moves == 1
    assert seen == [frozenset({second})] * 3

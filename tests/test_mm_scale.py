"""The offline path at scale: what the remover waits for must not grow with the threads.

* The remover shares grace periods with the fake writers. Grace periods are shared (a
  caller whose cookie a later grace period covered owes nothing more), but a caller
  that still had to win the grace-period lock before it could notice was waiting one
  grace period per contender. ``Mutex.acquire_unless`` lets it stop queueing once
  covered.
* A grace period that has waited past the boost delay holds readers back at their safe
  points, off CPU (``rcu_pgdat.mm.boost``): a grace period that starts meanwhile does not
  wait for them, and they run again when it ends.
* What the offline path costs per task or per node: the stop-machine zonelist rebuild
  has a schedule point per list (per entry only where readers walk a list while it is
  rewritten), the mempolicy chain one per policy it changes; spin-lock waiters sleep in
  the OS when free-running, and a free-running run starts its threads at once.

(Stop-machine's own per-CPU cost is tested in ``test_mm_topology.py``; the remover's
rate at 16, 64 and 256 threads is measured by ``rcu-pgdat-stress bench --only scale``.)
"""

from __future__ import annotations

import collections
import math
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable

import pytest

from rcu_pgdat import sched
from rcu_pgdat.check.testing import STEP_TIMEOUT, Actors
from rcu_pgdat.mm.boost import BOOST_DELAY, GraceBoost
from rcu_pgdat.mm.locks import SpinLock
from rcu_pgdat.mm.mempolicy import MPOL_BIND, MPOL_PREFERRED, Mempolicy, set_mempolicy
from rcu_pgdat.mm.task import Task
from rcu_pgdat.mm.zonelist import build_all_zonelists
from rcu_pgdat.rcu import QSBR
from rcu_pgdat.sched.stress import YIELD_PROBABILITY
from stress.bench.scale import scale_config
from stress.build import build
from stress.clock import SECONDS, STEPS
from stress.run import run
from stress.config import SCALE_THREADS, RunConfig
from stress.workers import WORKER_KINDS

from test_mm_support import Tasks, built


def test_acquire_unless_stops_queueing_once_the_work_is_done() -> None:
    lock = sched.Mutex("gp")
    done = threading.Event()
    with Actors("holder", "waiter") as actors:
        actors.run("holder", lock.acquire)
        waiter = actors.start("waiter", lock.acquire_unless, done.is_set)
        assert not waiter.done()
        done.set()                                    # covered while the lock is held
        assert waiter.result(STEP_TIMEOUT) is False
        assert lock.owner == "holder"
        actors.run("holder", lock.release)
        assert actors.run("waiter", lock.acquire_unless, lambda: False) is True
        assert lock.owner == "waiter"
        actors.run("waiter", lock.release)


class QueueingLock(sched.Mutex):
    """Waits for the lock even when the caller's grace period was covered meanwhile."""

    def acquire_unless(self, done: Callable[[], bool]) -> bool:
        self.acquire()
        return True


class CountingQSBR(QSBR):
    """QSBR that counts the grace periods it runs (reader waits)."""

    def __init__(self, queueing: bool) -> None:
        super().__init__()
        self.runs = 0
        if queueing:
            self._gp_lock = QueueingLock(self._gp_lock.name)

    def _wait_for_readers(self) -> None:
        self.runs += 1
        super()._wait_for_readers()


def _contended(queueing: bool, seen: list[int]) -> sched.ProgramFactory:
    """A reader, four updaters in a loop, and the remover's one ``synchronize()``:
    ``seen`` gets the grace periods that ran while the remover waited."""
    def make() -> sched.Program:
        rcu = CountingQSBR(queueing)

        def reader() -> None:
            rcu.register_thread()
            for _ in range(30):
                rcu.read_lock()
                sched.point("read")
                rcu.read_unlock()
                rcu.quiescent_state()
            rcu.unregister_thread()

        def updater() -> None:
            for _ in range(4):
                rcu.synchronize()

        def remover() -> None:
            for _ in range(8):
                sched.point("remover: before")
            before = rcu.runs
            rcu.synchronize()
            seen.append(rcu.runs - before)

        threads: dict[str, Callable[[], None]] = {"reader": reader, "remover": remover}
        threads.update({f"fake-writer-{i}": updater for i in range(4)})
        return sched.Program(threads)
    return make


@pytest.mark.parametrize(("queueing", "is_broken"), [(False, False), (True, True)])
def test_a_covered_updater_waits_at_most_two_grace_periods(queueing: bool,
                                                            is_broken: bool) -> None:
    seen: list[int] = []
    results: list[Any] = []
    for seed in range(30):
        results.append(sched.run_program(_contended(queueing, seen),
                                         sched.RandomStrategy(seed), max_steps=20000))
    assert all(r.outcome is sched.Outcome.OK for r in results)
    # The grace period under way at the call, then one that began after it.
    assert (max(seen) > 2) == is_broken, seen


class OnCPUBoost(GraceBoost):
    """Holds readers without taking them off CPU: a QSBR grace period that starts while
    one is held waits for it, and the reader waits for that grace period to end."""

    def hold(self, task: Task) -> None:
        while self.boosting():
            self._ended.wait(0.01)


@pytest.mark.parametrize(("boost_cls", "is_broken"), [(GraceBoost, False), (OnCPUBoost, True)])
def test_a_boosted_grace_period_holds_readers_off_cpu_until_it_ends(
        boost_cls: type[GraceBoost], is_broken: bool) -> None:
    with built() as system, Tasks(system, "reader") as tasks, Actors("updater") as actors:
        system.boost = boost = boost_cls(delay=0.0)     # every grace period is boosted
        boosted, second = threading.Event(), threading.Event()

        def updater() -> None:
            with boost.waiting():
                system.scheme.synchronize_all()
                boosted.set()
                assert second.wait(STEP_TIMEOUT)
                system.scheme.synchronize_all()       # starts while the reader is held

        done = actors.start("updater", updater)
        assert boosted.wait(STEP_TIMEOUT)
        resched = tasks.start("reader", tasks["reader"].cond_resched)
        with pytest.raises(FutureTimeout):
            resched.result(0.2)                       # held at its safe point
        second.set()
        if is_broken:
            with pytest.raises(FutureTimeout):
                done.result(0.5)                      # waits for the held reader
            boost.boost_at = math.inf                 # let the reader go to end the test
        done.result(STEP_TIMEOUT)
        resched.result(STEP_TIMEOUT)                  # released when the boost ends
        assert boost.boost_at == math.inf and not boost.boosting()
    assert system.collector.ok


def test_no_boost_before_the_delay_and_none_in_controlled_runs() -> None:
    boost = GraceBoost(delay=60.0)
    with boost.waiting():
        assert not boost.boosting()                   # a grace period younger than 60 s
    assert boost.boost_at == math.inf
    assert not GraceBoost().boosting()                # default: never
    free, controlled = build(RunConfig()), build(RunConfig(), controlled=True)
    assert free.system.boost.delay == SECONDS.boost_delay == BOOST_DELAY
    assert controlled.system.boost.delay == STEPS.boost_delay == math.inf


class PointCounter(sched.Scheduler):
    """Free-running; counts schedule points by label."""

    def __init__(self) -> None:
        self.labels: collections.Counter[str] = collections.Counter()
        self.waits = 0

    def point(self, label: str) -> None:
        self.labels[label] += 1

    def wait_until(self, cond: Any, what: str, timeout: float | None = None) -> bool:
        self.waits += 1
        return super().wait_until(cond, what, timeout)


class ControlledPointCounter(PointCounter):
    """Counts points as a controlled scheduler would see them (one runs at a time); the
    calling thread is none of its model threads, so it records no accesses."""

    controlled = True

    def model_record(self) -> None:
        return None


@pytest.mark.parametrize("mode, controlled", [("stop-machine", False), ("stop-machine", True),
                                              ("seqcount", False)])
def test_the_zonelist_rebuild_points_per_entry_where_they_are_interleavings(
        mode: str, controlled: bool) -> None:
    with built(nodes=8, cpus=8, zonelist_mode=mode) as system:
        counter = ControlledPointCounter() if controlled else PointCounter()
        with sched.install(counter):
            build_all_zonelists(system)
        entries = sum(len(system.pgdat(nid).node_zonelists.zonerefs) for nid in range(8))
        per_entry = mode == "seqcount" or controlled
        assert counter.labels["build_zonelists:list"] == (0 if per_entry else 8)
        assert counter.labels["build_zonelists:entry"] == (entries if per_entry else 0)
        assert counter.labels["build_zonelists:trim"] == (8 if per_entry else 0)


@pytest.mark.parametrize("controlled", [False, True])
def test_the_mempolicy_chain_points_at_the_policies_it_changes_when_free_running(
        controlled: bool) -> None:
    with built() as system, Tasks(system, "near", "far", "plain") as tasks:
        tasks.run("near", set_mempolicy, system, tasks["near"], Mempolicy(MPOL_PREFERRED, (1,)))
        tasks.run("far", set_mempolicy, system, tasks["far"], Mempolicy(MPOL_BIND, (0, 2)))
        far = tasks["far"].mempolicy
        counter = ControlledPointCounter() if controlled else PointCounter()
        with sched.install(counter):
            for task in (tasks["near"], tasks["far"], tasks["plain"]):
                system.policy_notifier.rebind(task, 1, "veto")
        assert counter.labels["mempolicy:rebind"] == (3 if controlled else 1)
        assert tasks["near"].mempolicy.nodes != (1,)
        assert tasks["far"].mempolicy.nodes == far.nodes


@pytest.mark.parametrize("controlled", [False, True])
def test_a_spin_lock_waiter_sleeps_in_the_os_when_free_running(controlled: bool) -> None:
    lock = SpinLock("zone")
    counter = PointCounter()
    with Actors("holder", "waiter") as actors:
        actors.run("holder", lock.acquire)
        if controlled:
            counter.controlled = True                 # as the controlled scheduler is
        with sched.install(counter):
            waiter = actors.start("waiter", lock.acquire)
            with pytest.raises(FutureTimeout):
                waiter.result(0.1)
            actors.run("holder", lock.release)
            waiter.result(STEP_TIMEOUT)
        assert lock.owner == "waiter"
        # Free-running: no polling through the scheduler's backoff (hundreds of waiters
        # polling every millisecond took the interpreter from the holder).
        assert (counter.waits > 0) == controlled
        actors.run("waiter", lock.release)


def test_a_free_running_run_starts_every_thread_before_any_works(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = RunConfig(duration=0.2, allocators=8, iterators=8, sleepers=4, status_interval=1e9)
    workers = {name for _, name in cfg.thread_plan()}
    began: list[float] = []
    started: list[float] = []
    for kind, body in list(WORKER_KINDS.items()):
        def timed(ctx: Any, task: Any, stats: Any, body: Any = body) -> None:
            began.append(time.monotonic())
            body(ctx, task, stats)
        monkeypatch.setitem(WORKER_KINDS, kind, timed)
    thread_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        thread_start(thread)
        if thread.name in workers:                  # not the flavors' callback workers
            started.append(time.monotonic())
    monkeypatch.setattr(threading.Thread, "start", start)
    result = run(cfg, status=None)
    assert result.ok and len(began) == len(started) == len(workers)
    assert min(began) >= max(started)       # no worker began before the last thread existed



def test_yields_and_the_stall_limit_follow_the_thread_count_beyond_scale_threads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    small, large = RunConfig(), RunConfig(**scale_config(256))
    assert len(small.thread_plan()) <= SCALE_THREADS
    assert small.yield_scale() == 1.0 and small.stall_limit() == small.stall_timeout
    threads = len(large.thread_plan())
    assert large.yield_scale() == pytest.approx(SCALE_THREADS / threads)
    assert large.stall_limit() == pytest.approx(large.stall_timeout * threads / SCALE_THREADS)
    # ... and a free-running run installs the stress scheduler with the scaled chance.
    seen: list[float] = []

    class Spy(sched.StressScheduler):
        def __init__(self, seed: int = 0, yield_probability: float = YIELD_PROBABILITY) -> None:
            seen.append(yield_probability)
            super().__init__(seed, yield_probability)
    monkeypatch.setattr(sched, "StressScheduler", Spy)
    cfg = RunConfig(**scale_config(48), duration=0.1, status_interval=1e9)
    assert run(cfg, status=None).ok
    assert seen == [pytest.approx(YIELD_PROBABILITY * SCALE_THREADS / 48)]

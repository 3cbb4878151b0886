"""The real flavors free-running, readers truly in parallel, the oracles watching.

Four readers and two updaters run real threads with no controlled scheduler: on a
free-threaded interpreter the readers run at the same time on different cores, and no
oracle lock serializes them (``tests/test_check_threads.py`` proves the read side takes
none). Each reader nests read-side sections, dereferences the published nodes and reads
their fields through schedule points (seeded stress yields, which perturb where the
switch interval does nothing); each updater replaces its node and frees the old one
behind ``synchronize()``, ``call_rcu()``/``call_srcu()``, or a polled cookie, with a
barrier now and then. Both run on event budgets (sections, updates), never a clock.

Correct QSBR, memb and SRCU run clean; every broken flavor or domain of the mutant
catalogue is caught within a few seeds, with a kind its entry allows. The same tests
run on GIL builds, where the readers interleave instead.
"""

from __future__ import annotations

import functools
import random
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rcu_pgdat import sched
from rcu_pgdat.check import Collector, Kind, Oracles, Tracked, TrackedAllocator
from rcu_pgdat.check.testing import Actors
from rcu_pgdat.mutants import MUTANTS, Mutant
from rcu_pgdat.rcu import QSBR, SRCU, Memb
from rcu_pgdat.harness.checked import CheckedRCU, CheckedSRCU

READERS = 4
UPDATERS = 2
UPDATES = 400               # per updater: the event budget of a run
READER_SECTIONS = 4000      # per reader, at most (readers also stop when updates end)
LINGER = 6                  # schedule points a reader spends inside a section
YIELD = 0.3                 # chance that a schedule point yields the CPU ...
PREEMPT = 0.01              # ... or is preempted for a while (PREEMPT_SECONDS)
PREEMPT_SECONDS = 1e-3
SEEDS = range(1, 13)        # a mutant must be caught within these
POLLS = 20                  # polls of a cookie before cond_synchronize()
JOIN_TIMEOUT = 60.0         # a bound on a stuck run, never a rate

FREE_THREADED = not getattr(sys, "_is_gil_enabled", lambda: True)()


class Node(Tracked):
    nid: int
    value: int


class PreemptingScheduler(sched.StressScheduler):
    """Stress yields, and now and then a thread preempted for a while at a point.

    A yield gives the CPU up for a moment; the kernel's readers are also preempted
    for whole grace periods (rcutorture's readers delay long now and then for this
    reason). Both are seeded per thread; neither measures time.
    """

    def point(self, label: str) -> None:
        draw = self._rng().random()
        if draw < PREEMPT:
            time.sleep(PREEMPT_SECONDS * (1 + draw / PREEMPT))
        elif draw < YIELD:
            time.sleep(0)


@dataclass
class Outcome:
    collector: Collector
    oracles: Oracles
    updates: int
    stuck: list[str]


def run(make: Callable[[], Any], sleepable: bool, seed: int) -> Outcome:
    """One free-running run against the flavor (or domain) ``make()`` builds."""
    collector = Collector(stop_on_first=True)
    oracles = Oracles(collector)
    memory = TrackedAllocator(oracles, quarantine=8)
    impl = make()
    checked: Any = CheckedSRCU(impl, oracles) if sleepable else CheckedRCU(impl, oracles)
    key = checked.key
    slots = [[memory.alloc(Node, f"node[{u}]", nid=u, value=0)] for u in range(UPDATERS)]
    updates_done = threading.Event()
    updates = [0] * UPDATERS
    start = threading.Barrier(READERS + UPDATERS)

    def rng() -> random.Random:
        name = threading.current_thread().name
        return random.Random((seed << 32) ^ zlib.crc32(name.encode()))

    def read_nodes(linger: int) -> None:
        for slot in slots:
            node = oracles.deref(slot[0], key)
            for _ in range(linger):
                sched.point("reader:linger")
                assert node.value >= 0 and node.nid < UPDATERS

    def section(depth: int, linger: int, nest: float) -> None:
        """One read-side section, nested ``nest`` of the time; unlocks even when a
        checked access raised (the violation is reported), so nobody stalls behind."""
        token = checked.read_lock()
        try:
            if depth < 2 and nest > 0.7:
                section(depth + 1, linger, 0.0)
                if sleepable:
                    sched.sleep(0)                  # blocking is legal in SRCU
            read_nodes(linger)
        finally:
            if sleepable:
                checked.read_unlock(token)
            else:
                checked.read_unlock()

    def reader() -> None:
        r = rng()
        if not sleepable:
            checked.register_thread()
        try:
            start.wait(JOIN_TIMEOUT)
            for _ in range(READER_SECTIONS):
                if updates_done.is_set() or collector.stopped:
                    break
                # Mostly short sections, now and then a long one (as rcutorture's
                # readers): grace periods end quickly, but not always.
                section(0, LINGER if r.random() < 0.1 else 1, r.random())
                if not sleepable:
                    checked.quiescent_state()
                sched.yield_point("reader:loop")
        finally:
            if sleepable:
                oracles.thread_exit()
            else:
                checked.unregister_thread()

    def updater(u: int) -> None:
        r = rng()
        start.wait(JOIN_TIMEOUT)
        try:
            for n in range(1, UPDATES + 1):
                if collector.stopped:
                    break
                old = slots[u][0]
                slots[u][0] = memory.alloc(Node, f"node[{u}]", nid=u, value=n)
                oracles.retire(old, key)
                choice = r.random()
                if choice < 0.3:
                    queue = checked.call_srcu if sleepable else checked.call_rcu
                    queue(functools.partial(memory.free, old))
                elif choice < 0.45 and not sleepable:
                    cookie = checked.get_state()            # poll a while, as
                    for _ in range(POLLS):                  # rcutorture's writer
                        sched.yield_point("updater:poll")   # does, then wait
                        if checked.poll_state(cookie):
                            break
                    else:
                        checked.cond_synchronize(cookie)
                    memory.free(old)
                else:
                    checked.synchronize()
                    memory.free(old)
                if choice > 0.9:
                    checked.barrier()
                updates[u] = n
            checked.barrier()
        finally:
            if all(done == UPDATES for done in updates) or collector.stopped:
                updates_done.set()

    threads = [threading.Thread(target=reader, name=f"reader-{i}") for i in range(READERS)]
    threads += [threading.Thread(target=updater, args=(u,), name=f"updater-{u}")
                for u in range(UPDATERS)]
    with sched.install(PreemptingScheduler(seed=seed)), \
            collector.install_excepthook(), oracles.might_sleep_checks():
        for t in threads:
            t.start()
        for t in threads:
            t.join(JOIN_TIMEOUT)
        stuck = [t.name for t in threads if t.is_alive()]
        if not stuck:
            shut = threading.Thread(target=_quietly, name="shutdown", daemon=True,
                                    args=(checked.cleanup if sleepable else checked.shutdown,
                                          collector))
            shut.start()
            shut.join(JOIN_TIMEOUT)
            if shut.is_alive() and collector.ok:
                stuck.append(shut.name)
    if not stuck and collector.ok:
        oracles.finish()
    return Outcome(collector, oracles, sum(updates), stuck)


def _quietly(shutdown: Callable[[], None], collector: Collector) -> None:
    """Shut the callback workers down; after a violation, a flavor may refuse (a
    reader ended inside a section): the violation already tells the story."""
    try:
        shutdown()
    except Exception:
        if collector.ok:
            raise


CORRECT = {"qsbr": (QSBR, False), "memb": (Memb, False), "srcu": (SRCU, True)}


@pytest.mark.parametrize("name", list(CORRECT))
def test_correct_flavor_with_parallel_readers_runs_clean(name: str) -> None:
    cls, sleepable = CORRECT[name]
    got = run(cls, sleepable, seed=1)
    assert not got.stuck
    assert got.collector.ok, got.collector.format()
    assert got.updates == UPDATERS * UPDATES
    (stats,) = got.oracles.stats().keys
    assert stats.sections >= READERS and stats.grace_periods >= UPDATERS * UPDATES
    assert stats.reader_pipe[0] > 0 and not any(stats.reader_pipe[2:])


def _flavor_mutants() -> list[Mutant]:
    """Every catalogue entry that replaces an RCU flavor or an SRCU domain."""
    return [m for m in MUTANTS.values() if m.flavor_cls is not None or m.srcu_cls is not None]


@pytest.mark.parametrize("mutant", _flavor_mutants(), ids=lambda m: m.name)
def test_catalogue_flavor_mutant_is_caught_free_running(mutant: Mutant) -> None:
    cls = mutant.srcu_cls if mutant.srcu_cls is not None else mutant.flavor_cls
    sleepable = mutant.srcu_cls is not None
    seen = []
    for seed in SEEDS:
        got = run(cls, sleepable, seed)
        assert not got.stuck, f"seed {seed}: {got.stuck} did not end"
        if not got.collector.ok:
            first = got.collector.violations[0]
            # A pipeline report is a reader's view of a too-short grace period: it read
            # a node a whole grace period after its retirement.
            assert mutant.caught_by(first.kind, first.subject) or (
                first.kind == Kind.PIPELINE and Kind.GP_TOO_SHORT in mutant.kinds), \
                first.format()
            return
        seen.append(seed)
    pytest.fail(f"{mutant.name} survived seeds {seen[0]}-{seen[-1]} free-running "
                f"({'free-threaded' if FREE_THREADED else 'GIL'} build)")


class _SlowEnqueueQSBR(QSBR):
    """A correct QSBR whose ``call_rcu`` is held up, at the caller, before it queues."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__("slow-enqueue")
        self.gate = gate

    def call_rcu(self, callback: Callable[[], Any]) -> None:
        self.gate.wait(JOIN_TIMEOUT)
        super().call_rcu(callback)


def test_a_barrier_is_not_blamed_for_a_callback_still_being_queued() -> None:
    """One updater is inside ``call_rcu`` (not yet queued) when another's barrier runs.

    The barrier owes nothing to a callback queued after it began; counting the callback
    before the flavor had queued it reported a false ``gp-too-short`` here (seen on the
    free-threaded interpreter under ``test_correct_flavor_with_parallel_readers_runs_clean``).
    """
    collector = Collector(stop_on_first=False)
    oracles = Oracles(collector)
    gate = threading.Event()
    rcu = CheckedRCU(_SlowEnqueueQSBR(gate), oracles)
    ran = threading.Event()
    with Actors("updater-0", "updater-1") as a:
        queuing = a.start("updater-1", rcu.call_rcu, ran.set)
        a.run("updater-0", rcu.barrier)                 # the callback is not queued yet
        gate.set()
        queuing.result(JOIN_TIMEOUT)
        a.run("updater-0", rcu.barrier)                 # now it is: this one must wait
        assert ran.is_set()
    rcu.shutdown()
    assert collector.ok, collector.format()

"""All oracles under heavy real-thread load: quiet on a correct RCU, loud on broken ones.

Eight threads on event budgets (never a clock): six readers walk an RCU-protected
pointer (and take a sleepable section that blocks, which is legal) until the updates are
done and each has read its share, two updaters replace the object behind it a fixed
number of times, wait a grace period and free the old one. The RCU here is a toy
written for this test (the real flavors live above this layer); its broken variants
are what a user's broken plug-in would look like.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from rcu_pgdat import sched
from rcu_pgdat.check import Collector, Oracles, Tracked, TrackedAllocator
from rcu_pgdat.check.testing import STEP_TIMEOUT

KEY = "rcu:toy"
SLEEPY = "srcu:toy"
READERS = 6
UPDATERS = 2
UPDATES = 40            # per updater
SECTIONS = 40           # per reader, at least (readers go on while updates run)
JOIN_TIMEOUT = 60.0     # a bound on a stuck run, never a rate


class Node(Tracked):
    nid: int
    payload: int


class ToyRCU:
    """A correct RCU: per-reader ``[nesting, snapshot]``, a grace-period counter.

    Why it is correct: a reader stores its snapshot of ``gp_ctr`` before it stores a
    non-zero nesting (pairs with the updater's increment-then-check). A section that
    began before ``synchronize`` incremented the counter has nesting > 0 and an older
    snapshot when checked, so the updater waits for its nesting to drop to 0; a
    section whose snapshot is the new value began after the increment.
    """

    def __init__(self) -> None:
        self.gp_ctr = 0
        self.readers: dict[str, list[int]] = {}     # written before the run starts
        self.gp_lock = sched.Mutex("toy-gp")

    def register(self, name: str) -> None:
        self.readers[name] = [0, 0]

    def read_lock(self) -> None:
        rec = self.readers[sched.current_name()]
        if rec[0] == 0:
            sched.point("toy:read_lock:snapshot")
            rec[1] = self.gp_ctr                    # snapshot first ...
            sched.point("toy:read_lock:nesting")
        rec[0] += 1                                 # ... then nesting: pairs with wait()

    def read_unlock(self) -> None:
        sched.point("toy:read_unlock")
        self.readers[sched.current_name()][0] -= 1

    def synchronize(self) -> None:
        with self.gp_lock:
            self.gp_ctr += 1
            new = self.gp_ctr
            sched.point("toy:synchronize:scan")
            for rec in self.readers.values():
                self.wait(rec, new)

    def wait(self, rec: list[int], new: int) -> None:
        sched.wait_until(lambda: rec[0] == 0 or rec[1] == new, "toy grace period")


class NoWaitRCU(ToyRCU):
    """Broken: the grace period does not wait for anyone."""

    def wait(self, rec: list[int], new: int) -> None:
        pass


class FirstReaderOnlyRCU(ToyRCU):
    """Broken: the scan waits for the first registered reader only."""

    def wait(self, rec: list[int], new: int) -> None:
        if rec is next(iter(self.readers.values())):
            super().wait(rec, new)


def run_load(rcu: ToyRCU, free_before_gp: bool = False) -> tuple[Collector, Oracles]:
    """Run the eight threads against ``rcu``; returns the collector and the oracles."""
    collector = Collector(stop_on_first=True)
    oracles = Oracles(collector)
    memory = TrackedAllocator(oracles, quarantine=16)
    slots = [[memory.alloc(Node, f"node[{i}]", nid=i, payload=0)] for i in range(UPDATERS)]
    start = threading.Barrier(READERS + UPDATERS)
    updaters_left = [UPDATERS]          # updaters still running (under left_lock)
    left_lock = threading.Lock()

    def worker(body: Callable[[], None], budget: Callable[[int], bool],
               updater: bool) -> Callable[[], None]:
        def run() -> None:
            start.wait(STEP_TIMEOUT)
            done = 0
            try:
                while not collector.stopped and budget(done):
                    body()
                    done += 1
            finally:
                if updater:
                    with left_lock:
                        updaters_left[0] -= 1
                oracles.thread_exit()
        return run

    def reader_budget(done: int) -> bool:
        return done < SECTIONS or updaters_left[0] > 0

    def updater_budget(done: int) -> bool:
        return done < UPDATES

    def reader() -> None:
        rcu.read_lock()
        oracles.section_begin(KEY, False)
        try:
            for slot in slots:
                node = oracles.deref(slot[0], KEY)
                for _ in range(3):
                    assert node.payload >= 0 and node.nid in (0, 1)
                    sched.point("reader:walk")
        finally:                    # a caught reader still unlocks: no stall behind it
            oracles.section_end(KEY)
            rcu.read_unlock()
        handle = oracles.section_begin(SLEEPY, True)
        sched.sleep(0)                                  # blocking is fine in SRCU
        oracles.section_end(SLEEPY, handle)

    def updater(i: int) -> Callable[[], None]:
        def update() -> None:
            old = slots[i][0]
            new = memory.alloc(Node, f"node[{i}]", nid=i, payload=old.payload + 1)
            slots[i][0] = new                           # rcu_assign_pointer
            oracles.retire(old, KEY)
            if free_before_gp:
                memory.free(old)                        # broken remover: frees too early
            gp = oracles.gp_begin(KEY)
            rcu.synchronize()
            oracles.gp_end(gp)
            if not free_before_gp:
                memory.free(old)
        return update

    threads = []
    for n in range(READERS):
        rcu.register(f"reader-{n}")
        threads.append(threading.Thread(target=worker(reader, reader_budget, False),
                                        name=f"reader-{n}"))
    for i in range(UPDATERS):
        threads.append(threading.Thread(target=worker(updater(i), updater_budget, True),
                                        name=f"updater-{i}"))
    with sched.install(sched.StressScheduler(seed=1, yield_probability=0.2)), \
            collector.install_excepthook(), oracles.might_sleep_checks():
        for t in threads:
            t.start()
        for t in threads:
            t.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads)
    oracles.finish()
    return collector, oracles


def test_correct_rcu_under_load_is_quiet() -> None:
    collector, oracles = run_load(ToyRCU())
    assert collector.ok, collector.format()
    stats = oracles.stats().key(KEY)
    assert stats.sections >= READERS * SECTIONS
    assert stats.grace_periods == UPDATERS * UPDATES
    assert stats.reader_pipe[0] > 0 and not any(stats.reader_pipe[2:])
    assert oracles.stats().key(SLEEPY).sections == stats.sections


@pytest.mark.parametrize("rcu", [NoWaitRCU(), FirstReaderOnlyRCU()],
                         ids=["no-wait", "first-reader-only"])
def test_broken_rcu_under_load_is_caught(rcu: ToyRCU) -> None:
    collector, _ = run_load(rcu)
    (first,) = collector.violations
    # Whichever report reaches the collector first: the updater's (too short) or a
    # reader's (it used freed memory, or read a node a whole grace period after it was
    # retired: a grace period ended under its load).
    assert first.kind in ("gp-too-short", "use-after-free", "pipeline"), first.format()
    assert collector.stopped


def test_remover_freeing_before_the_grace_period_is_caught() -> None:
    collector, _ = run_load(ToyRCU(), free_before_gp=True)
    (first,) = collector.violations
    assert first.kind == "use-after-free", first.format()
    assert first.thread.startswith("reader-")
    assert "Freed by thread updater-" in first.format()

"""Per-thread oracle state: identity by thread object, and no lock on a reader's path."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from rcu_pgdat.check import Collector, Oracles, TrackedAllocator
from rcu_pgdat.check.testing import STEP_TIMEOUT, Actors
from test_check_gp import QSBR, SRCU, Node, make


# -- names are not identities -------------------------------------------------------------------


def test_a_restarted_worker_with_a_live_namesake_is_no_leak_and_hides_no_reader() -> None:
    """A worker restarted under its old name while the old incarnation still runs.

    Keyed by name, the oracle took the newcomer for the old thread's successor: it
    reported a false ``section-leak ... a new thread took its name``, dropped the old
    thread's open section (so the too-short grace period below went unreported), and
    the old thread's own ``section_end`` then raised ``UnbalancedUnlockError``.
    """
    collector, oracles = make()
    with Actors("worker") as old, Actors("worker") as new, Actors("updater") as up:
        old.run("worker", oracles.section_begin, QSBR, False)
        gp = up.run("updater", oracles.gp_begin, QSBR)
        new.run("worker", oracles.section_begin, QSBR, False)
        new.run("worker", oracles.section_end, QSBR)
        new.run("worker", oracles.thread_exit)
        assert collector.ok, collector.format()
        up.run("updater", oracles.gp_end, gp)          # the old worker is still inside
        old.run("worker", oracles.section_end, QSBR)
        old.run("worker", oracles.thread_exit)
    assert collector.kinds() == ["gp-too-short"]
    assert "while worker still read" in collector.violations[0].title
    assert oracles.stats().key(QSBR).sections == 2


def test_namesakes_keep_their_own_sections_and_handles() -> None:
    collector, oracles = make()
    with Actors("reader") as one, Actors("reader") as two:
        h1 = one.run("reader", oracles.section_begin, SRCU, True)
        h2 = two.run("reader", oracles.section_begin, SRCU, True)
        assert h1 == h2 == 1                            # handles are per thread
        two.run("reader", oracles.section_end, SRCU, h2)
        assert one.run("reader", oracles.reader_context) == (
            "inside read-side section(s) srcu:pgdat (sleepable)")
        assert two.run("reader", oracles.reader_context) == "outside any read-side section"
        one.run("reader", oracles.section_end, SRCU, h1)
    oracles.finish()
    assert collector.ok, collector.format()


def test_counts_of_departed_threads_are_kept() -> None:
    collector, oracles = make()
    memory = TrackedAllocator(oracles)
    node = memory.alloc(Node, "n", nid=0)
    for _ in range(3):                                  # three threads come and go
        with Actors("reader") as a:
            a.run("reader", oracles.section_begin, QSBR, False)
            a.run("reader", oracles.deref, node, QSBR)
            a.run("reader", oracles.section_end, QSBR)
            a.run("reader", oracles.thread_exit)
    with Actors("late") as a:                           # registering prunes the dead
        a.run("late", oracles.on_read, node, QSBR)
    stats = oracles.stats().key(QSBR)
    assert stats.sections == 3 and stats.reader_pipe[0] == 4 and stats.reader_batch[0] == 3
    assert collector.ok


def test_a_thread_that_ended_inside_a_section_stays_until_finish() -> None:
    collector, oracles = make()
    with Actors("crashed") as a:
        a.run("crashed", oracles.section_begin, QSBR, False)
    with Actors("other") as a:                          # prunes only empty dead states
        a.run("other", oracles.section_begin, QSBR, False)
        a.run("other", oracles.section_end, QSBR)
    gp = oracles.gp_begin(QSBR)
    oracles.gp_end(gp)                                  # its section can never end
    oracles.finish()
    assert collector.kinds() == ["gp-too-short", "section-leak"]
    assert "in crashed" in collector.violations[1].title


# -- the read side takes no lock -----------------------------------------------------------------


class _CountingLock:
    """A lock that records which threads took it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.takers: list[str] = []

    def __enter__(self) -> bool:
        self.takers.append(threading.current_thread().name)
        return self._lock.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._lock.__exit__(*exc)


def test_readers_take_no_oracle_lock_once_registered() -> None:
    collector, oracles = make()
    memory = TrackedAllocator(oracles)
    node = memory.alloc(Node, "n", nid=0)
    gone = memory.alloc(Node, "gone", nid=1)            # the retired table is not empty
    with Actors("reader", "updater") as a:
        def read_once() -> None:
            oracles.section_begin(QSBR, False)
            ref = oracles.deref(node, QSBR)
            assert ref.nid == 0
            oracles.on_read(node, QSBR)
            oracles.section_end(QSBR)

        a.run("reader", read_once)                      # first use: registers
        a.run("updater", oracles.retire, gone, QSBR)
        locks = {"oracles": _CountingLock(), "registry": _CountingLock()}
        oracles._lock = locks["oracles"]                # type: ignore[assignment]
        oracles._registry._lock = locks["registry"]     # type: ignore[assignment]
        for _ in range(3):
            a.run("reader", read_once)
            a.run("updater", lambda: oracles.gp_end(oracles.gp_begin(QSBR)))
    assert collector.ok, collector.format()
    assert "updater" in locks["oracles"].takers         # the counting works
    assert all(name != "reader" for lock in locks.values() for name in lock.takers)


# -- a grace period ending under a section is seen while readers run in parallel -----------------

CHURNERS = 3
ROUNDS = 12


def _gp_rounds(oracles: Oracles, collector: Collector) -> None:
    """Scripted rounds against a held reader while churning readers run free.

    The churners open and close sections of both keys (nested, with dereferences) as
    fast as they can, in parallel with the scans on a free-threaded build. The victim
    holds a section of ``QSBR`` with a sleepable one nested inside it (so its innermost
    section is not the one the grace period cares about). Each round is one of:

    * ``under``: the victim's section is open before ``gp_begin`` and after ``gp_end``:
      a too-short grace period that must name the victim;
    * ``after``: the victim enters after ``gp_begin``: legal, must not name it;
    * ``waited``: the victim leaves before ``gp_end``: legal, must not name it.
    """
    memory = TrackedAllocator(oracles)
    node = memory.alloc(Node, "n", nid=0)
    stop = threading.Event()
    running = threading.Barrier(CHURNERS + 1)

    def churn() -> None:
        first = True
        try:
            while not stop.is_set():
                oracles.section_begin(QSBR, False)
                handle = oracles.section_begin(SRCU, True)
                oracles.deref(node, (QSBR, SRCU))
                oracles.section_end(QSBR)
                oracles.deref(node, SRCU)
                oracles.section_end(SRCU, handle)
                if first:
                    first = False
                    running.wait(STEP_TIMEOUT)
                time.sleep(0)           # under a GIL, let the script's threads in
        finally:
            oracles.thread_exit()

    def enter() -> None:
        oracles.section_begin(QSBR, False)
        oracles.section_begin(SRCU, True)

    def leave() -> None:
        oracles.section_end(SRCU)
        oracles.section_end(QSBR)

    churners = [threading.Thread(target=churn, name=f"churner-{i}") for i in range(CHURNERS)]
    for t in churners:
        t.start()
    named = []
    try:
        running.wait(STEP_TIMEOUT)      # every churner is going
        with Actors("victim", "updater") as a:
            for i in range(ROUNDS):
                kind = ("under", "after", "waited")[i % 3]
                before = len(collector.violations)
                if kind == "under":
                    a.run("victim", enter)
                    gp = a.run("updater", oracles.gp_begin, QSBR)
                    a.run("updater", oracles.gp_end, gp)
                    a.run("victim", leave)
                elif kind == "after":
                    gp = a.run("updater", oracles.gp_begin, QSBR)
                    a.run("victim", enter)
                    a.run("updater", oracles.gp_end, gp)
                    a.run("victim", leave)
                else:
                    a.run("victim", enter)
                    gp = a.run("updater", oracles.gp_begin, QSBR)
                    a.run("victim", leave)
                    a.run("updater", oracles.gp_end, gp)
                new = collector.violations[before:]
                named.append((kind, any("victim" in v.title for v in new)))
    finally:
        stop.set()
        for t in churners:
            t.join(STEP_TIMEOUT)
    assert named == [(kind, kind == "under") for kind, _ in named]
    assert all(v.kind == "gp-too-short" for v in collector.violations)


class _LateSnapshot(Oracles):
    """Broken: takes the snapshot when the grace period ends, not when it begins."""

    def gp_end(self, gp: Any) -> None:
        gp.snapshot = [(st, sec) for st in self._registry.states for sec in st.chain()
                       if sec.key == gp.key]
        super().gp_end(gp)


class _InnermostOnly(Oracles):
    """Broken: the scan looks at each thread's innermost section only."""

    def gp_begin(self, key: str, *, blocking: bool = True) -> Any:
        gp = super().gp_begin(key, blocking=blocking)
        gp.snapshot = [(st, sec) for st, sec in gp.snapshot if st.top is sec]
        return gp


def test_grace_period_ending_under_a_section_is_seen_among_parallel_readers() -> None:
    collector, oracles = make()
    _gp_rounds(oracles, collector)
    assert any("victim" in v.title for v in collector.violations)


@pytest.mark.parametrize("broken", [_LateSnapshot, _InnermostOnly])
def test_the_rounds_fail_for_a_broken_scan(broken: type[Oracles]) -> None:
    collector = Collector(stop_on_first=False)
    with pytest.raises(AssertionError):
        _gp_rounds(broken(collector), collector)

"""Lockdep-style checks: suspicious dereference, sleeping in atomic sections, leaks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rcu_pgdat import sched
from rcu_pgdat.check import Collector, Oracles, Tracked, TrackedAllocator
from rcu_pgdat.check.testing import Actors
from rcu_pgdat.sched import _state

QSBR = "rcu:qsbr"
MEMB = "rcu:memb"
SRCU = "srcu:pgdat"
PGDAT_KEYS = (QSBR, SRCU)


class Pgdat(Tracked):
    node_id: int


def make() -> tuple[Collector, Oracles]:
    collector = Collector(stop_on_first=False)
    return collector, Oracles(collector)


# -- rcu_dereference outside a reader ------------------------------------------------------------


def test_deref_outside_every_protecting_section_is_suspicious() -> None:
    collector, oracles = make()
    pgdat = TrackedAllocator(oracles).alloc(Pgdat, "pgdat[0]", node_id=0)
    oracles.deref(pgdat, PGDAT_KEYS)                    # no section at all
    oracles.section_begin(MEMB, False)                  # a section, of the wrong flavor
    assert oracles.deref(pgdat, PGDAT_KEYS).node_id == 0
    oracles.section_end(MEMB)
    assert collector.kinds() == ["rcu-deref-outside-reader"] * 2
    first = collector.violations[0]
    assert first.title == ("BUG: rcu-deref-outside-reader (suspicious RCU usage): pgdat[0] "
                           "dereferenced outside rcu:qsbr or srcu:pgdat")
    assert "outside any read-side section" in first.format()
    assert "inside read-side section(s) rcu:memb" in collector.violations[1].format()


@pytest.mark.parametrize("key", PGDAT_KEYS)
def test_deref_inside_any_protecting_section_is_quiet(key: str) -> None:
    collector, oracles = make()
    oracles.section_begin(key, key.startswith("srcu"))
    assert oracles.deref(None, PGDAT_KEYS) is None
    assert oracles.deref(7, key) == 7                   # untracked objects come back as is
    oracles.section_end(key)
    assert collector.ok


def test_boot_exemption_is_explicit_per_thread_and_counted() -> None:
    collector, oracles = make()
    with Actors("boot", "worker") as a:
        def boot_and_wait() -> None:
            with oracles.boot():
                oracles.deref(1, QSBR)                  # exempt: boot code
                a.run("worker", oracles.deref, 2, QSBR)  # another thread is not
        a.run("boot", boot_and_wait)
        a.run("boot", oracles.deref, 3, QSBR)           # the block ended: not exempt
    oracles.deref(4, QSBR, held=True)                   # rcu_dereference_protected
    assert [v.thread for v in collector.violations] == ["worker", "boot"]
    assert "derefs exempted: 1 in boot code, 1 under an update-side lock" \
        in oracles.stats_text()


# -- blocking inside a non-sleepable section ----------------------------------------------------

BLOCKERS: dict[str, Callable[[], object]] = {
    "sleep": lambda: sched.sleep(0),
    "event": lambda: sched.Event("e").wait(timeout=0),
    "lock": lambda: sched.Mutex("m").acquire(),
}


@pytest.mark.parametrize("blocker", sorted(BLOCKERS))
def test_blocking_in_rcu_section_is_reported_but_not_in_srcu(blocker: str) -> None:
    collector, oracles = make()
    with oracles.might_sleep_checks():
        for key, sleepable in ((SRCU, True), (QSBR, False)):
            oracles.section_begin(key, sleepable)
            BLOCKERS[blocker]()
            oracles.section_end(key)
        BLOCKERS[blocker]()                             # outside any section
    (violation,) = collector.violations
    assert violation.kind == "sleep-in-atomic"
    assert violation.title.startswith("BUG: sleep-in-atomic in MainThread: ")
    assert violation.title.endswith(" inside rcu:qsbr")


def test_might_sleep_hook_is_chained_and_restored() -> None:
    collector, oracles = make()
    seen: list[str] = []
    before = sched.set_might_sleep_hook(seen.append)
    try:
        with oracles.might_sleep_checks():
            oracles.section_begin(QSBR, False)
            sched.sleep(0)
        assert _state.might_sleep == seen.append        # restored on exit
        sched.sleep(0)                                  # no longer checked
        oracles.section_end(QSBR)
    finally:
        sched.set_might_sleep_hook(before)
    assert seen == ["sleep", "sleep"] and collector.kinds() == ["sleep-in-atomic"]


def test_grace_period_wait_inside_sections() -> None:
    collector, oracles = make()
    oracles.section_begin(SRCU, True)
    oracles.gp_end(oracles.gp_begin("srcu:other"))      # other domain, sleepable: fine
    assert collector.ok
    oracles.gp_begin(SRCU, blocking=False)              # call_srcu: nobody waits here
    assert collector.ok
    oracles.gp_begin(SRCU)                              # its own domain: self-deadlock
    oracles.section_begin(MEMB, False)
    oracles.gp_begin(QSBR)                              # inside an RCU section: atomic
    with oracles.might_sleep_checks():
        sched.sleep(0)                                  # the same offence: once per section
    assert collector.kinds() == ["deadlock", "sleep-in-atomic"]
    assert "grace-period wait of rcu:qsbr inside rcu:memb" in collector.violations[1].title


# -- sections left open when a thread ends ------------------------------------------------------


def leave_section_open(oracles: Oracles) -> None:
    oracles.section_begin(QSBR, False)                  # the broken worker forgets to unlock


def test_thread_exit_inside_a_section_is_a_leak() -> None:
    collector, oracles = make()
    with Actors("worker", "tidy") as a:
        a.run("tidy", oracles.section_begin, QSBR, False)
        a.run("tidy", oracles.section_end, QSBR)
        a.run("tidy", oracles.thread_exit)
        a.run("worker", leave_section_open, oracles)
        a.run("worker", oracles.thread_exit)
    (violation,) = collector.violations
    assert violation.kind == "section-leak" and violation.thread == "worker"
    assert violation.title == "BUG: section-leak in worker: read-side section rcu:qsbr left open"
    assert "when it exits" in violation.format()
    gp = oracles.gp_begin(QSBR)
    oracles.gp_end(gp)                                  # the leaked section was closed
    assert len(collector.violations) == 1


def test_leaks_of_ended_threads_are_found_at_finish_whatever_their_names() -> None:
    collector, oracles = make()
    with Actors("worker") as a:
        a.run("worker", leave_section_open, oracles)
    with Actors("worker") as a:                         # a new thread, the same name
        a.run("worker", oracles.section_begin, SRCU, True)
        assert collector.ok                             # a name is not an identity
    oracles.finish()
    assert collector.kinds() == ["section-leak", "section-leak"]
    ended, live = collector.violations
    assert "the run ended" in ended.format() and "rcu:qsbr" in ended.title
    assert "srcu:pgdat (sleepable)" in live.title
    oracles.finish()
    assert len(collector.violations) == 2               # nothing left open

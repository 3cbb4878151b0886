"""SRCU domains with real threads: grace periods, forced interleavings, misuse.

Every concurrency check runs against the real ``SRCU`` and against a mutant from
``rcu_pgdat.mutants.srcu`` that it must catch. Interleavings are forced with
events and a scheduler that parks a named thread at a labelled schedule point; the
only timeouts are the bounded waits that prove a thread has *not* finished yet.
"""

from __future__ import annotations

import time

import functools
import re
import threading
from collections.abc import Callable
from typing import ClassVar

import pytest

from rcu_pgdat import sched
from rcu_pgdat.errors import (
    CleanupBusyError,
    ShutdownError,
    SynchronizeInReaderError,
    UnbalancedUnlockError,
    UsageError,
    WrongIndexError,
)
from rcu_pgdat.mutants import srcu as mutants
from rcu_pgdat.rcu import CHECKED, FAST, MODES, srcu
from rcu_pgdat.rcu.protocol import SRCUDomain
from rcu_pgdat.rcu.srcu import SRCU

#: How long a thread that must stay blocked is watched before we call it blocked.
STILL_BLOCKED = 0.25
#: Bound on waits that must succeed (generous: a slow CI box, never a hang).
MUST_FINISH = 5.0
#: A relay opens sections while a grace period waits (a correct SRCU ends it within a
#: few: a new section uses the other index) until both these many have opened and this
#: long has passed: a loaded machine may keep the updater off CPU for many sections,
#: and a machine at rest would run through the sections alone in a blink. The time
#: stays well inside MUST_FINISH, which the relay's join waits.
RELAY_SECTIONS = 2_000
RELAY_SECONDS = 3.0


# -- helpers -------------------------------------------------------------------------


class Actor:
    """A named thread running ``fn``; its exception is kept and re-raised by finish()."""

    def __init__(self, name: str, fn: Callable[[], object]) -> None:
        self.name = name
        self._fn = fn
        self.exc: BaseException | None = None
        self.done = sched.Event(f"{name}.done")
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self._fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self.exc = exc
        finally:
            self.done.set()

    def start(self) -> Actor:
        self.thread.start()
        return self

    def finished_within(self, seconds: float) -> bool:
        """Whether the actor finished within ``seconds`` (False: still blocked)."""
        return self.done.wait(seconds)

    def finish(self) -> None:
        assert self.done.wait(MUST_FINISH), f"{self.name} did not finish"
        self.thread.join(MUST_FINISH)
        if self.exc is not None:
            raise self.exc


class Spot:
    """A place where one thread is parked: ``reached`` when it arrives, until ``release``."""

    def __init__(self, occurrence: int) -> None:
        self.occurrence = occurrence
        self.seen = 0                     # touched only by the parked thread
        self.reached = sched.Event("spot.reached")
        self.release = sched.Event("spot.release")


class Parker(sched.Scheduler):
    """Free-running scheduler that parks a named thread at its n-th pass of a label."""

    name = "parker"

    def __init__(self) -> None:
        self._spots: dict[tuple[str, str], Spot] = {}

    def park(self, thread_name: str, label: str, occurrence: int = 1) -> Spot:
        spot = Spot(occurrence)
        self._spots[(thread_name, label)] = spot
        return spot

    def point(self, label: str) -> None:
        spot = self._spots.get((threading.current_thread().name, label))
        if spot is None:
            return
        spot.seen += 1
        if spot.seen == spot.occurrence:
            spot.reached.set()
            assert spot.release.wait(MUST_FINISH), f"parked at {label} and never released"


def reader_sleeping_in_section(domain: SRCU, name: str, *, handle: bool = False
                               ) -> tuple[Actor, sched.Event, sched.Event]:
    """Start a reader that enters a section and blocks in it; (actor, entered, release).

    ``handle``: the reader goes through its reader handle (``domain.reader()``)."""
    entered = sched.Event(f"{name}.entered")
    release = sched.Event(f"{name}.release")

    def body() -> None:
        side = domain.reader() if handle else domain
        idx = side.read_lock()
        try:
            entered.set()
            assert release.wait(MUST_FINISH), "reader was never released"
        finally:
            side.read_unlock(idx)

    actor = Actor(name, body).start()
    assert entered.wait(MUST_FINISH)
    return actor, entered, release


def synchronizer(domain: SRCU, name: str = "updater") -> Actor:
    return Actor(name, domain.synchronize).start()


def returned_while_held(updater: Actor, release: sched.Event, reader: Actor,
                        watch: float = STILL_BLOCKED) -> bool:
    """Whether ``updater`` returned within ``watch`` while ``reader`` was held in its
    section; then release the reader and join both."""
    returned = updater.finished_within(watch)
    release.set()
    reader.finish()
    updater.finish()
    return returned


def case(cls: type[SRCU], expect_caught: bool) -> object:
    return pytest.param(cls, expect_caught, id=cls.__name__)


# -- protocol, repr, single-thread behaviour ----------------------------------------------


def test_implements_protocol_and_names_itself() -> None:
    domain = SRCU("pgdat")
    assert isinstance(domain, SRCUDomain)
    assert domain.name == "pgdat"
    with pytest.raises(TypeError):
        SRCU("")


def test_repr_shows_name_index_readers_and_gp_seq() -> None:
    domain = SRCU("pgdat")
    outer = domain.read_lock()
    domain.read_lock()
    assert repr(domain).startswith(
        "<SRCU pgdat checked idle gp_seq=0 completed=0 idx=0 active=[2, 0] readers=[")
    domain.read_unlock(outer)
    domain.read_unlock(outer)
    domain.synchronize()
    idx = domain.read_lock()
    assert "gp_seq=2 completed=1 idx=1 active=[0, 1]" in repr(domain)
    domain.read_unlock(idx)
    domain.cleanup()
    assert repr(domain).startswith("<SRCU pgdat checked shut down")


def test_nesting_and_index_alternation() -> None:
    domain = SRCU("pgdat")
    assert domain.read_lock() == 0
    assert domain.read_lock() == 0
    domain.read_unlock(0)
    domain.read_unlock(0)
    domain.synchronize()
    outer = domain.read_lock()
    assert outer == 1
    domain.read_unlock(outer)
    domain.synchronize()
    assert domain.read_lock() == 0
    domain.read_unlock(0)
    assert domain.completed == 2


def test_sections_of_different_domains_overlap() -> None:
    first, second = SRCU("first"), SRCU("second")
    a = first.read_lock()
    b = second.read_lock()
    first.read_unlock(a)        # not LIFO across domains: allowed
    first.synchronize()         # inside a section of *another* domain: allowed
    second.read_unlock(b)
    second.synchronize()


def test_polled_grace_periods() -> None:
    domain = SRCU("pgdat")
    cookie = domain.get_state()
    assert not domain.poll_state(cookie)
    domain.synchronize()
    assert domain.poll_state(cookie)
    with pytest.raises(UsageError, match="cookie"):
        domain.poll_state("soon")  # type: ignore[arg-type]


def test_cookie_taken_during_a_grace_period_needs_the_next_one() -> None:
    domain = SRCU("pgdat")
    parker = Parker()
    with sched.install(parker):
        spot = parker.park("updater", srcu.LABEL_FLIPPED)
        updater = synchronizer(domain)
        assert spot.reached.wait(MUST_FINISH)
        cookie = domain.get_state()         # the grace period in flight began earlier
        spot.release.set()
        updater.finish()
    assert not domain.poll_state(cookie)
    domain.synchronize()
    assert domain.poll_state(cookie)


class Interrupted(BaseException):
    """Stands for what stops a grace period half way (a controlled run ending, Ctrl-C)."""


class Interrupter(sched.Scheduler):
    """Free-running scheduler that raises ``Interrupted`` once, at one label."""

    name = "interrupter"

    def __init__(self, label: str) -> None:
        self.label = label
        self.fired = False

    def point(self, label: str) -> None:
        if label == self.label and not self.fired:
            self.fired = True
            raise Interrupted(label)


@pytest.mark.parametrize("label", [srcu.LABEL_SUM_LOCKS, srcu.LABEL_FLIPPED])
def test_interrupted_grace_period_is_completed_by_the_next(label: str) -> None:
    """As QSBR and memb do: the next synchronize() completes the interrupted grace
    period (the old SRCU raised "grace period already in progress") and still waits
    for a reader that was inside when it began; no cookie polls done early."""
    domain = SRCU("pgdat")
    reader, _, release = reader_sleeping_in_section(domain, "sleeper")
    cookie = domain.get_state()
    with sched.install(Interrupter(label)), pytest.raises(Interrupted):
        domain.synchronize()
    assert not domain.poll_state(cookie)
    updater = synchronizer(domain)
    assert not returned_while_held(updater, release, reader)
    assert domain.poll_state(cookie) and domain.completed == 1 and domain.gp_seq == 2
    domain.synchronize()
    assert domain.completed == 2


# -- misuse -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["0", True, 2, -1, None, 0.0])
def test_unlock_with_a_non_index_is_rejected(bad: object) -> None:
    domain = SRCU("pgdat")
    domain.read_lock()
    with pytest.raises(WrongIndexError, match=r"srcu_read_unlock\(pgdat"):
        domain.read_unlock(bad)  # type: ignore[arg-type]
    domain.read_unlock(0)       # the section is still open and ends normally


def test_unlock_of_an_index_this_thread_does_not_hold() -> None:
    domain = SRCU("pgdat")
    idx = domain.read_lock()
    with pytest.raises(WrongIndexError, match="none uses 1"):
        domain.read_unlock(idx ^ 1)
    domain.read_unlock(idx)


def test_unbalanced_unlock() -> None:
    domain = SRCU("pgdat")
    with pytest.raises(UnbalancedUnlockError, match="no read_lock"):
        domain.read_unlock(0)
    domain.read_unlock(domain.read_lock())
    with pytest.raises(UnbalancedUnlockError):
        domain.read_unlock(0)


def test_unlock_in_another_thread_is_unbalanced() -> None:
    domain = SRCU("pgdat")
    idx = domain.read_lock()
    other = Actor("other", lambda: domain.read_unlock(idx)).start()
    with pytest.raises(UnbalancedUnlockError, match="thread 'other'"):
        other.finish()
    domain.read_unlock(idx)


@pytest.mark.parametrize("call", ["synchronize", "barrier"])
def test_grace_period_wait_inside_own_section(call: str) -> None:
    domain = SRCU("pgdat")
    idx = domain.read_lock()
    with pytest.raises(SynchronizeInReaderError, match="would wait for\\s+itself"):
        getattr(domain, call)()
    domain.read_unlock(idx)
    getattr(domain, call)()


def test_cleanup_while_readers_are_inside_says_how_many() -> None:
    domain = SRCU("pgdat")
    sleepers = [reader_sleeping_in_section(domain, name) for name in ("s1", "s2")]
    with pytest.raises(CleanupBusyError,
                       match=re.escape("2 read-side section(s) still open in 2 thread(s) "
                                       "(s1, s2)")):
        domain.cleanup()
    for actor, _, release in sleepers:
        release.set()
        actor.finish()
    mine = domain.read_lock()
    with pytest.raises(SynchronizeInReaderError, match="would wait for itself"):
        domain.cleanup()        # inside the caller's own section: as synchronize()
    domain.read_unlock(mine)
    domain.synchronize()        # the failed cleanups changed nothing
    domain.cleanup()


def test_every_call_after_cleanup_raises_shutdown() -> None:
    domain = SRCU("pgdat")
    ran: list[int] = []
    domain.call_srcu(lambda: ran.append(1))
    domain.cleanup()
    assert ran == [1], "cleanup() runs pending callbacks first"
    calls: list[Callable[[], object]] = [
        domain.read_lock, lambda: domain.read_unlock(0), domain.synchronize,
        lambda: domain.call_srcu(print), domain.barrier, domain.get_state,
        lambda: domain.poll_state(0), domain.cleanup]
    for call in calls:
        with pytest.raises(ShutdownError):
            call()


def test_call_srcu_rejects_a_non_callable() -> None:
    with pytest.raises(TypeError):
        SRCU("pgdat").call_srcu(42)  # type: ignore[arg-type]


def test_thread_exiting_inside_a_section_fails_the_grace_period_instead_of_hanging() -> None:
    domain = SRCU("pgdat")
    Actor("leaker", domain.read_lock).start().finish()
    with pytest.raises(UsageError, match="thread 'leaker' exited inside 1 read-side section"):
        domain.synchronize()
    with pytest.raises(UsageError, match="leaker"):
        domain.synchronize()
    with pytest.raises(CleanupBusyError, match="leaker"):
        domain.cleanup()


def test_exited_threads_are_pruned_from_the_registry() -> None:
    domain = SRCU("pgdat")
    for n in range(3):
        Actor(f"short-{n}", lambda: domain.read_unlock(domain.read_lock())).start().finish()
    assert domain.readers() == []        # exited, outside every section: forgotten
    domain.synchronize()


# -- grace periods with real threads ----------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls, expect_caught", [
    case(SRCU, False), case(mutants.SRCUNoWait, True), case(mutants.SRCUSkipOldIndex, True)])
def test_grace_period_waits_for_a_sleeping_reader(cls: type[SRCU], expect_caught: bool,
                                                  mode: str) -> None:
    domain = cls("pgdat", mode=mode)
    reader, _, release = reader_sleeping_in_section(domain, "sleeper")
    updater = synchronizer(domain)
    assert returned_while_held(updater, release, reader) is expect_caught


class _UncountedHandle(srcu.SRCUReader):
    """A fast handle whose ``read_lock`` skips the increment."""

    __slots__ = ()

    def read_lock(self) -> int:
        return self.flavor.index                 # should also count lock[idx]


class UncountedHandleSRCU(SRCU):
    """Fast handles that begin a section without counting it."""

    _reader_types: ClassVar = {**SRCU._reader_types, FAST: _UncountedHandle}


def _private_counters(domain: SRCU) -> srcu.SRCUReader:
    """A bound fast handle that counts on lists other than those it shows the drain."""
    bound = srcu._fast_reader(domain)
    return type(bound)(domain)      # its methods count on bound's lists; fresh ones shown


class PrivateCountersSRCU(SRCU):
    """Fast handles bound to counters the grace period never sees."""

    _reader_types: ClassVar = {**SRCU._reader_types, FAST: _private_counters}


@pytest.mark.parametrize("cls, mode, expect_caught", [
    pytest.param(SRCU, CHECKED, False, id="SRCU-checked"),
    pytest.param(SRCU, FAST, False, id="SRCU-fast"),
    pytest.param(UncountedHandleSRCU, FAST, True, id="uncounted-handle"),
    pytest.param(PrivateCountersSRCU, FAST, True, id="private-counters")])
def test_grace_period_waits_for_a_reader_handle(cls: type[SRCU], mode: str,
                                                expect_caught: bool) -> None:
    domain = cls("pgdat", mode=mode)
    reader, _, release = reader_sleeping_in_section(domain, "sleeper", handle=True)
    updater = synchronizer(domain)
    # A broken handle lets the updater return at once: watch it long enough on a loaded
    # machine; a correct one must still be blocked after the usual watch.
    watch = MUST_FINISH if expect_caught else STILL_BLOCKED
    assert returned_while_held(updater, release, reader, watch) is expect_caught


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls, expect_caught", [
    case(SRCU, False), case(mutants.SRCUNoWait, True)])
def test_call_srcu_runs_after_the_readers(cls: type[SRCU], expect_caught: bool,
                                          mode: str) -> None:
    domain = cls("pgdat", mode=mode)
    ran = sched.Event("callback ran")
    reader, _, release = reader_sleeping_in_section(domain, "sleeper")
    domain.call_srcu(ran.set)
    ran_while_reader_slept = ran.wait(STILL_BLOCKED)
    release.set()
    reader.finish()
    domain.barrier()
    assert ran.is_set()
    domain.cleanup()
    assert ran_while_reader_slept is expect_caught


@pytest.mark.parametrize("cls, expect_caught", [
    case(SRCU, False), case(mutants.shared_counters_family(), True)])
def test_grace_period_ignores_readers_of_another_domain(cls: type[SRCU],
                                                        expect_caught: bool) -> None:
    busy, idle = cls("busy"), cls("idle")
    reader, _, release = reader_sleeping_in_section(busy, "sleeper")
    updater = synchronizer(idle)
    # The real one must return (a generous bound); the mutant only has to stay blocked.
    watch = STILL_BLOCKED if expect_caught else MUST_FINISH
    assert returned_while_held(updater, release, reader, watch) is not expect_caught


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls, expect_caught", [
    case(SRCU, False), case(mutants.SRCUNoFlip, True)])
def test_new_readers_do_not_extend_a_grace_period(cls: type[SRCU], expect_caught: bool,
                                                  mode: str) -> None:
    """A relay of overlapping sections, each begun after the last, must not starve it.

    One thread keeps at least one section open at all times: it opens the next
    section before it closes the previous one. Every section but the first began after
    synchronize() was called, so the grace period must end while the relay runs.
    """
    domain = cls("pgdat", mode=mode)
    started = sched.Event("relay started")
    gp_done = sched.Event("grace period done")
    ended_during_relay: list[bool] = []

    def relay() -> None:
        held = domain.read_lock()
        started.set()
        cap = time.monotonic() + RELAY_SECONDS
        sections = 0
        while not gp_done.is_set() and (sections < RELAY_SECTIONS or time.monotonic() < cap):
            sections += 1
            newer = domain.read_lock()
            domain.read_unlock(held)
            held = newer
            sched.sleep(0)                     # pacing: let the updater run
        ended_during_relay.append(gp_done.is_set())
        domain.read_unlock(held)

    def update() -> None:
        domain.synchronize()
        gp_done.set()

    reader = Actor("relay", relay).start()
    assert started.wait(MUST_FINISH)
    updater = Actor("updater", update).start()
    reader.finish()
    updater.finish()
    assert ended_during_relay == [not expect_caught]


@pytest.mark.parametrize("cls, expect_caught", [
    case(SRCU, False), case(mutants.SRCUFlipOnly, True)])
def test_preempted_late_reader_is_waited_for(cls: type[SRCU], expect_caught: bool) -> None:
    """The module comment's interleaving, forced.

    The reader loads index 0 and is parked before counting itself; a whole grace
    period runs (and rightly ignores it: its section has not begun). Released, it
    counts itself on index 0 while the current index is 1 and stays in its section.
    The next grace period must wait for it.
    """
    domain = cls("pgdat")
    parker = Parker()
    entered = sched.Event("late reader entered")
    release = sched.Event("late reader release")

    def late_reader() -> None:
        idx = domain.read_lock()
        try:
            assert idx == 0
            entered.set()
            assert release.wait(MUST_FINISH)
        finally:
            domain.read_unlock(idx)

    with sched.install(parker):
        window = parker.park("late", srcu.LABEL_INDEX_LOADED)
        reader = Actor("late", late_reader).start()
        assert window.reached.wait(MUST_FINISH)
        first = synchronizer(domain, "updater-1")
        assert first.finished_within(MUST_FINISH), "a reader not yet counted must not be waited for"
        first.finish()
        assert domain.completed == 1
        window.release.set()
        assert entered.wait(MUST_FINISH)
        second = synchronizer(domain, "updater-2")
        returned_while_reader_inside = returned_while_held(second, release, reader)
    assert returned_while_reader_inside is expect_caught


@pytest.mark.parametrize("cls, expect_caught", [
    case(SRCU, False), case(mutants.SRCULocksFirst, True)])
def test_late_reader_between_the_two_sums(cls: type[SRCU], expect_caught: bool) -> None:
    """A late reader locks and unlocks between the updater's two passes.

    Reader A sits in its section on index 0. Reader B loads index 0 and is parked.
    The updater waits for index 1 (empty), flips, and starts checking index 0: it is
    parked between its two passes. B then locks and unlocks index 0. Summing unlocks
    first, the lock pass sees B's lock as well and the check fails, as it must: A is
    inside. Summing locks first, B's unlock cancels A's lock.
    """
    domain = cls("pgdat")
    parker = Parker()
    with sched.install(parker):
        holder, _, release_holder = reader_sleeping_in_section(domain, "A")
        window = parker.park("B", srcu.LABEL_INDEX_LOADED)
        late = Actor("B", lambda: domain.read_unlock(domain.read_lock())).start()
        assert window.reached.wait(MUST_FINISH)
        # Occurrence 1 is step 1's check of index 1, occurrence 2 step 3's of index 0.
        between = parker.park("updater", srcu.LABEL_BETWEEN_SUMS, occurrence=2)
        updater = synchronizer(domain)
        assert between.reached.wait(MUST_FINISH)
        window.release.set()
        late.finish()
        between.release.set()
        returned_while_a_inside = returned_while_held(updater, release_holder, holder)
    assert returned_while_a_inside is expect_caught


# -- many readers and updaters ----------------------------------------------------------


class Node:
    """A stand-in for a pgdat: replaced, then retired after a grace period."""

    __slots__ = ("dead", "gen")

    def __init__(self, gen: int) -> None:
        self.gen = gen
        self.dead = False


def stress_run(cls: type[SRCU], mode: str, readers: int = 4, sections: int = 600,
               updaters: int = 2, updates: int = 60) -> list[str]:
    """Readers hold the published node (sometimes asleep, sometimes nested) and check
    it was not retired; updaters replace it and retire the old one after a grace
    period, half through synchronize(), half through call_srcu(). Returns violations."""
    domain = cls("pgdat", mode=mode)
    cell = [Node(0)]
    swap = sched.Mutex("swap")
    violations: list[str] = []

    def reader(n: int) -> None:
        for k in range(sections):
            idx = domain.read_lock()
            sched.point("test:load")
            node = cell[0]
            if k % 5 == 0:
                sched.sleep(0.0002)               # block inside the section
            if k % 7 == 0:
                inner = domain.read_lock()          # nest
                sched.point("test:inner")
                domain.read_unlock(inner)
            sched.point("test:check")
            if node.dead:
                violations.append(f"reader-{n} section {k}: node gen {node.gen} retired")
            domain.read_unlock(idx)

    def retire(node: Node) -> None:
        node.dead = True

    def updater(n: int) -> None:
        for k in range(updates):
            with swap:
                old, cell[0] = cell[0], Node(n * 1000 + k + 1)
            if n % 2:
                domain.call_srcu(functools.partial(retire, old))
            else:
                domain.synchronize()
                retire(old)
            sched.sleep(0.0005)
        domain.barrier()

    actors = [Actor(f"reader-{n}", functools.partial(reader, n)) for n in range(readers)]
    actors += [Actor(f"updater-{n}", functools.partial(updater, n)) for n in range(updaters)]
    with sched.install(sched.StressScheduler(seed=7, yield_probability=0.1)):
        for actor in actors:
            actor.start()
        for actor in actors:
            actor.finish()
    domain.cleanup()
    return violations


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls, expect_caught", [
    case(SRCU, False), case(mutants.SRCUNoWait, True)])
def test_many_readers_and_updaters(cls: type[SRCU], expect_caught: bool, mode: str) -> None:
    violations = stress_run(cls, mode)
    assert bool(violations) is expect_caught, violations[:5]

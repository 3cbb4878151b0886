"""The protection schemes: the same reader code under rcu, rwlock and reuse."""

from __future__ import annotations

from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable

import pytest
from test_mm_support import GatedRemover, Tasks, built, kinds

from rcu_pgdat import sched
from rcu_pgdat.check import ViolationError
from rcu_pgdat.check.testing import STEP_TIMEOUT, Actors
from rcu_pgdat.errors import UnbalancedUnlockError, UsageError
from rcu_pgdat.mutants.rcu import QSInReaderQSBR
from rcu_pgdat.mutants.mm import NoWriteLockScheme, ReuseEarlyResetRemover
from rcu_pgdat.mm.hotplug import OK
from rcu_pgdat.mm.page_alloc import alloc_pages, free_pages
from rcu_pgdat.mm.locks import RWSem
from rcu_pgdat.mm.scheme import RCUScheme, ReuseScheme, RWLockScheme
from rcu_pgdat.mm.system import System
from rcu_pgdat.mm.task import Task
from rcu_pgdat.rcu import QSBR
from rcu_pgdat.rcu._flavor import CHECKED
from rcu_pgdat.rcu.qsbr import CheckedQSBRReader


def _reader_kinds(system: System, task: Task) -> int:
    """One round of every reader the harness has, written once for all schemes."""
    scheme = system.scheme
    scheme.read_lock(task)
    try:
        scheme.read_lock(task)                               # nested, as call chains do
        try:
            zones = sum(1 for _ in system.for_each_populated_zone())
        finally:
            scheme.read_unlock(task)
    finally:
        scheme.read_unlock(task)
    page = alloc_pages(system, task, 1)
    assert page is not None
    free_pages(system, page)
    token = scheme.read_lock_sleepable(task)
    try:
        # Preemptible: the node may go offline after numa_node_id() named it.
        pgdat = system.NODE_DATA(system.numa_node_id(task))
        task.sleep(0.001)                                    # blocks inside the section
        zones += len(pgdat.node_zonelists.zonerefs) if pgdat is not None else 0
    finally:
        scheme.read_unlock_sleepable(task, token)
    task.cond_resched()
    return zones


@pytest.mark.parametrize("scheme, cls, keys", [
    ("rcu", RCUScheme, ("rcu:qsbr", "srcu:pgdat")),
    ("reuse", ReuseScheme, ("rcu:qsbr", "srcu:pgdat")),
    ("rwlock", RWLockScheme, ("rwlock:pgdat", "rwlock:pgdat-sleepable")),
])
def test_the_same_reader_code_runs_under_every_scheme(scheme: str, cls: type,
                                                      keys: tuple[str, ...]) -> None:
    with built(scheme=scheme) as system, Tasks(system, "a", "b") as tasks, \
            Actors("remover") as actors:
        assert type(system.scheme) is cls and system.scheme.protecting_keys() == keys
        done = actors.start("remover", lambda: [system.remover.offline_node(2),
                                                system.remover.online_node(2)])
        rounds = [tasks.run(name, _reader_kinds, system, tasks[name])
                  for _ in range(5) for name in ("a", "b")]
        assert done.result(STEP_TIMEOUT) == [OK, True] and min(rounds) >= 8
        stats = system.oracles.stats()
        assert all(stats.key(key).sections >= 10 for key in keys)
    assert system.collector.ok


# -- the bound read path (Scheme.bind) -------------------------------------------------


class _SeenReader(CheckedQSBRReader):
    """A QSBR record that notes where the oracles think its thread is, at each call."""

    __slots__ = ("seen",)

    def __init__(self, flavor: QSBR) -> None:
        super().__init__(flavor)
        self.seen: list[str] = []

    def read_lock(self) -> None:
        self.seen.append(self.flavor.oracles.reader_context())
        super().read_lock()

    def read_unlock(self) -> None:
        self.seen.append(self.flavor.oracles.reader_context())
        super().read_unlock()


class _SeenQSBR(QSBR):
    _reader_types = {CHECKED: _SeenReader}
    oracles: Any = None


class _BeginFirstScheme(RCUScheme):
    """Broken: tells the oracles a section began before the flavor's lock returned."""

    def read_lock(self, task: Task) -> None:
        task.preempt_disable()
        self.oracles.begin(task.oracle_state, self.key, False)  # type: ignore[arg-type]
        task.read_handle.read_lock()


@pytest.mark.parametrize("scheme_cls, broken", [(RCUScheme, False), (_BeginFirstScheme, True)])
def test_a_bound_reader_keeps_the_checked_wrappers_order(scheme_cls: type,
                                                         broken: bool) -> None:
    """The oracles see a section begin after the flavor's read_lock returned and end
    before its read_unlock is called, on the bound path as through CheckedRCU."""
    flavor = _SeenQSBR()
    with built(flavor=flavor, scheme_cls=scheme_cls) as system, \
            Tasks(system, "a") as tasks:
        flavor.oracles = system.oracles
        task = tasks["a"]
        assert task.read_handle is tasks.run("a", flavor.reader)     # the record itself
        tasks.run("a", system.scheme.read_lock, task)
        tasks.run("a", system.scheme.read_unlock, task)
        seen = task.read_handle.seen
    outside = "outside any read-side section"
    assert (seen == [outside, outside]) != broken, seen


def test_a_flavor_that_overrides_its_read_side_is_called_through_it() -> None:
    with built(flavor=QSInReaderQSBR()) as system, Tasks(system, "a") as tasks:
        handle = tasks["a"].read_handle
        assert handle.read_unlock.__func__ is QSInReaderQSBR.read_unlock


@pytest.mark.parametrize("bound", [True, False])
def test_misuse_on_the_bound_path_raises_what_the_wrapper_raises(bound: bool) -> None:
    with built() as system, Tasks(system, "a") as tasks:
        task = tasks["a"]

        def unbound() -> None:
            task.read_handle = task.oracle_state = None

        if not bound:
            tasks.run("a", unbound)
        with pytest.raises(UnbalancedUnlockError, match="no open section of rcu:qsbr"):
            tasks.run("a", system.scheme.read_unlock, task)

        def read_offline() -> None:
            system.scheme.thread_offline()
            try:
                system.scheme.read_lock(task)
            finally:
                system.scheme.thread_online()
                task.preempt_enable()                   # the failed lock's region
        with pytest.raises(UsageError, match="which is offline"):
            tasks.run("a", read_offline)
        assert task.atomic_depth == 0 and task.stopper is None


def test_a_scheme_class_must_match_the_configured_scheme() -> None:
    with pytest.raises(UsageError, match="not a subclass of RCUScheme"):
        with built(scheme="rcu", scheme_cls=NoWriteLockScheme):
            pass


# -- rwlock ------------------------------------------------------------------------------


def test_rwsem_writer_waits_for_readers_and_new_readers_wait_for_it() -> None:
    sem = RWSem("t")
    with Actors("r1", "r2", "w") as actors:
        actors.run("r1", sem.down_read)
        writer = actors.start("w", sem.down_write)
        assert sched.wait_until(lambda: sem.writers_waiting, "waiting", timeout=STEP_TIMEOUT)
        late = actors.start("r2", sem.down_read)      # behind the waiting writer
        with pytest.raises(FutureTimeout):
            writer.result(0.1)
        assert not late.done()
        actors.run("r1", sem.up_read)
        writer.result(STEP_TIMEOUT)
        assert sem.writer and not late.done()
        actors.run("w", sem.up_write)
        late.result(STEP_TIMEOUT)
        actors.run("r2", sem.up_read)
    assert repr(sem) == "<RWSem t readers=0 writer=False waiting=0>"


class OneFlagRWSem(RWSem):
    """Writers announce themselves in one flag: the first to get in clears it for all."""

    def _announce_writer(self) -> bool:
        self.writers_waiting = 1
        return True

    def _write_in(self) -> bool:
        if self.writer or self.readers:
            return False
        self.writer = True
        self.writers_waiting = 0
        return True


def _two_writers(cls: type[RWSem]) -> sched.ProgramFactory:
    """Two writers (the remover and a fake writer) and two readers on one semaphore.

    Checked in each reader as it gets in: no writer is between its ``down_write`` call
    and its return (no schedule point separates the ``wanting`` update from the call,
    so in controlled mode a writer in ``wanting`` has announced itself).
    """
    def make() -> sched.Program:
        sem = cls("pgdat_rwsem")
        wanting: set[str] = set()

        def writer(name: str) -> Callable[[], None]:
            def body() -> None:
                for _ in range(3):
                    wanting.add(name)
                    sem.down_write()
                    wanting.discard(name)
                    sched.point("write section")
                    sem.up_write()
            return body

        def reader() -> None:
            for _ in range(6):
                sem.down_read()
                assert not wanting, f"a reader overtook waiting writer(s) {sorted(wanting)}"
                sched.point("read section")
                sem.up_read()
        return sched.Program({"remover": writer("remover"), "fake-writer": writer("fake"),
                              "reader-0": reader, "reader-1": reader})
    return make


@pytest.mark.parametrize(("cls", "is_broken"), [(RWSem, False), (OneFlagRWSem, True)])
def test_a_second_waiting_writer_keeps_readers_out(cls: type[RWSem], is_broken: bool) -> None:
    result = sched.sweep(_two_writers(cls), "random", range(20), max_steps=5000)
    assert bool(result.failing_seeds) == is_broken, result.summary()
    if is_broken:
        assert result.first is not None
        assert "overtook waiting writer" in result.first.errors[0].summary()


def test_a_nested_rwlock_reader_does_not_queue_behind_a_waiting_writer() -> None:
    with built(scheme="rwlock") as system, Tasks(system, "reader") as tasks, \
            Actors("writer") as actors:
        task = tasks["reader"]
        scheme = system.scheme
        tasks.run("reader", scheme.read_lock, task)
        writer = actors.start("writer", scheme.synchronize_all)
        assert sched.wait_until(lambda: scheme.sem.writers_waiting,  # type: ignore[attr-defined]
                                "waiting", timeout=STEP_TIMEOUT)
        tasks.run("reader", scheme.read_lock, task)          # nested: no deadlock
        tasks.run("reader", scheme.read_unlock, task)
        assert not writer.done()
        tasks.run("reader", scheme.read_unlock, task)
        writer.result(STEP_TIMEOUT)
    assert system.collector.ok


@pytest.mark.parametrize("sleepable", [False, True])
def test_an_rwlock_remover_without_the_write_lock_frees_under_a_reader(sleepable: bool) -> None:
    with built(scheme="rwlock", scheme_cls=NoWriteLockScheme) as system, \
            Tasks(system, "reader") as tasks, Actors("remover") as actors:
        task = tasks["reader"]
        scheme: Any = system.scheme

        def enter() -> Any:
            token = scheme.read_lock_sleepable(task) if sleepable else scheme.read_lock(task)
            return token, system.NODE_DATA(1)
        token, pgdat = tasks.run("reader", enter)
        assert actors.run("remover", system.remover.offline_node, 1) == OK   # no wait
        assert kinds(system) == ["gp-too-short"]
        assert system.collector.violations[0].subject.endswith("reader still read")
        with pytest.raises(ViolationError):
            tasks.run("reader", lambda: pgdat.nr_zones)
        assert kinds(system) == ["gp-too-short", "use-after-free"]
        if sleepable:
            tasks.run("reader", scheme.read_unlock_sleepable, task, token)
        else:
            tasks.run("reader", scheme.read_unlock, task)


# -- reuse -------------------------------------------------------------------------------


@pytest.mark.parametrize("early", [False, True])
def test_reuse_resets_the_kept_pgdat_only_after_the_grace_period(early: bool) -> None:
    remover_cls = (type("GatedEarly", (GatedRemover, ReuseEarlyResetRemover), {}) if early
                   else GatedRemover)
    with built(scheme="reuse", remover_cls=remover_cls) as system, \
            Tasks(system, "sleeper") as tasks, Actors("remover") as actors:
        remover = system.remover
        assert isinstance(remover, GatedRemover)
        task = tasks["sleeper"]
        isolate = remover.hold("isolate_zones")
        offline = actors.start("remover", remover.offline_node, 1)
        remover.wait_reached("isolate_zones")

        def enter() -> Any:
            token = system.scheme.read_lock_sleepable(task)
            return token, system.NODE_DATA(1)
        token, pgdat = tasks.run("sleeper", enter)
        isolate.set()
        remover.wait_reached("wait_grace_period")        # held there by the sleeper
        if early:
            with pytest.raises(ViolationError):
                tasks.run("sleeper", lambda: pgdat.node_zones)
            assert kinds(system) == ["stale-generation"]
            assert "taken at generation 1" in system.collector.violations[0].details
        else:
            assert tasks.run("sleeper", lambda: len(pgdat.node_zones)) == 3
        tasks.run("sleeper", system.scheme.read_unlock_sleepable, task, token)
        assert offline.result(STEP_TIMEOUT) == OK
        assert system.node_data[1] is not None                # kept, not freed
        assert actors.run("remover", remover.online_node, 1)
        with pytest.raises(ViolationError):                   # a reference kept past
            pgdat.nr_zones                                    # noqa: B018 - the reset
        assert kinds(system)[-1] == "stale-generation"

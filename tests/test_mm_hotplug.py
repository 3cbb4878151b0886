"""The remover, step by step, with real reader threads; deterministic rollback paths.

Every broken remover of ``rcu_pgdat.mutants.mm`` is driven here into the exact
interleaving that exposes it, next to the corrected remover in the same interleaving.
"""

from __future__ import annotations

from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import pytest
from test_mm_support import (
    SMALL_ZONES,
    GatedRemover,
    Pauser,
    Tasks,
    alloc_on,
    built,
    kinds,
    subjects,
)

from rcu_pgdat import sched
from rcu_pgdat.check import ViolationError, generation, is_live, unwrap
from rcu_pgdat.check.testing import STEP_TIMEOUT, Actors
from rcu_pgdat.mutants.mm import (
    DoubleFreeAllocator,
    FreeBeforeGraceRemover,
    LateUnpublishRemover,
    LosingFreeAllocator,
    NoRebindNotifier,
    NoZonelistRebuildRemover,
    RollbackKeepsIsolationRemover,
    VetoIgnoredRemover,
)
from rcu_pgdat.mm.hotplug import EBUSY, LAST_NODE, NOT_ONLINE, OK, ONLINE, VETO, PostedRemover
from rcu_pgdat.mm.mempolicy import MPOL_BIND, MPOL_PREFERRED, Mempolicy, set_mempolicy
from rcu_pgdat.mm.page_alloc import alloc_pages, free_pages
from rcu_pgdat.mm.pgdat import PglistData
from rcu_pgdat.mm.system import System
from rcu_pgdat.mm.task import Task


def _gated(system: System) -> GatedRemover:
    remover = system.remover
    assert isinstance(remover, GatedRemover)
    return remover


def _with_gates(broken: type) -> type:
    """``broken`` remover with GatedRemover's gates in front of every step."""
    return type(f"Gated{broken.__name__}", (GatedRemover, broken), {})


def _snapshot(system: System, nid: int) -> tuple[Any, ...]:
    """The node's hotplug state plus every zone's free count (no migration here)."""
    return (system.node_state(nid),
            tuple(z.free_pages for z in system.pgdat(nid).node_zones),
            system.node_online.snapshot(), system.node_removing.snapshot(),
            tuple(system.cpu_online))


# -- refusals --------------------------------------------------------------------------


def test_the_last_online_node_is_never_offlined() -> None:
    with built(nodes=2, cpus=2) as system, Actors("remover") as actors:
        remover = system.remover
        assert actors.run("remover", remover.offline_node, 0) == OK
        assert actors.run("remover", remover.offline_node, 1) == LAST_NODE
        assert actors.run("remover", remover.offline_node, 0) == NOT_ONLINE
        assert system.node_online.snapshot() == (False, True)
        assert not actors.run("remover", remover.online_node, 1)    # already online
        assert actors.run("remover", remover.online_node, 0)
    assert system.collector.ok


# -- the rollback paths, deterministically --------------------------------------------


def test_ebusy_after_the_bound_leaves_the_node_exactly_as_it_was() -> None:
    with built(migrate=False, offline_timeout=0.05) as system, Tasks(system, "user") as tasks, \
            Actors("remover") as actors:
        page = alloc_on(tasks, "user", system, 1, order=1)      # a held, unmovable block
        before = _snapshot(system, 1)
        assert actors.run("remover", system.remover.offline_node, 1) == EBUSY
        assert _snapshot(system, 1) == before
        assert not any(z.isolated for z in system.pgdat(1).node_zones)
        tasks.run("user", free_pages, system, page)
        assert actors.run("remover", system.remover.offline_node, 1) == OK
        assert actors.run("remover", system.remover.offline_node, 1) == NOT_ONLINE
        assert actors.run("remover", system.remover.online_node, 1)
    # The remover keeps its own progress: what finished, by result (no-ops not counted).
    remover = system.remover
    assert remover.done == {EBUSY: 1, OK: 1, ONLINE: 1} and remover.phase == "idle"
    assert (system.stats.ebusy, system.stats.offlines, system.stats.onlines) == (1, 1, 1)
    assert remover.progress_report() == ("3 offline/online operation(s) finished (ebusy 1, "
                                         "ok 1, online 1); now in phase 'idle'")
    assert system.collector.ok


def test_the_page_wait_ends_when_the_holder_frees() -> None:
    with built(migrate=False, offline_timeout=STEP_TIMEOUT) as system, \
            Tasks(system, "user") as tasks, Actors("remover") as actors:
        page = alloc_on(tasks, "user", system, 1)
        offline = actors.start("remover", system.remover.offline_node, 1)
        assert sched.wait_until(lambda: system.remover.phase == "offline node1: pages", "waiting",
                                timeout=STEP_TIMEOUT)
        with pytest.raises(FutureTimeout):
            offline.result(0.1)                          # waits for the held block
        tasks.run("user", free_pages, system, page)
        assert offline.result(STEP_TIMEOUT) == OK
    assert system.collector.ok


@pytest.mark.parametrize("remover_cls", [None, RollbackKeepsIsolationRemover])
def test_a_veto_leaves_the_node_exactly_as_it_was(remover_cls: Any) -> None:
    extra = {} if remover_cls is None else {"remover_cls": remover_cls}
    with built(**extra) as system, Tasks(system, "user", "other") as tasks, \
            Actors("remover") as actors:
        page = alloc_on(tasks, "other", system, 1)
        tasks.run("other", free_pages, system, page)            # the zones were in use
        set_mempolicy(system, tasks["user"], Mempolicy(MPOL_BIND, (1,)))
        before = _snapshot(system, 1)
        assert actors.run("remover", system.remover.offline_node, 1) == VETO
        assert str(tasks["user"].mempolicy) == "bind:1"
        if remover_cls is None:
            assert _snapshot(system, 1) == before and system.collector.ok
        else:
            assert _snapshot(system, 1) != before
            assert subjects(system) == [
                "bug in offline of node1: veto rollback left the node changed"]
            assert "zones:" in system.collector.violations[0].what


@pytest.mark.parametrize("allocator_cls, kind, words", [
    (LosingFreeAllocator, "bug", "pages were lost"),
    (DoubleFreeAllocator, "double-free", "not allocated"),
])
def test_page_conservation_catches_a_broken_free(allocator_cls: Any, kind: str,
                                                words: str) -> None:
    with built(migrate=False, offline_timeout=0.05, page_allocator_cls=allocator_cls) \
            as system, Tasks(system, "user") as tasks, Actors("remover") as actors:
        page = alloc_on(tasks, "user", system, 1)
        tasks.run("user", free_pages, system, page)
        actors.run("remover", system.remover.offline_node, 1)
        assert kinds(system)[0] == kind
        assert words in system.collector.violations[0].what


def test_pages_add_up_across_offline_online_cycles() -> None:
    with built(nodes=2, cpus=2, pages=SMALL_ZONES, migrate=True) as system, \
            Tasks(system, "user") as tasks, Actors("remover") as actors:
        held = [alloc_on(tasks, "user", system, 1) for _ in range(3)]
        for _ in range(3):
            assert actors.run("remover", system.remover.offline_node, 1) == OK
            assert all(p.nid == 0 for p in held)            # migrated, never lost
            assert actors.run("remover", system.remover.online_node, 1)
            for page in held:                               # back to node 1
                tasks.run("user", free_pages, system, page)
            held = [alloc_on(tasks, "user", system, 1) for _ in range(3)]
        for page in held:
            tasks.run("user", free_pages, system, page)
        system.check_pages_conserved()
        assert all(z.free_pages == z.present_pages for nid in (0, 1)
                   for z in system.pgdat(nid).node_zones)
    assert system.collector.ok


# -- mempolicy through the whole offline ------------------------------------------------


@pytest.mark.parametrize("remover_cls, notifier_cls, words", [
    (None, None, ""),
    (None, NoRebindNotifier, "names offline node1"),
    (VetoIgnoredRemover, None, "names offline node1"),
])
def test_after_an_offline_no_policy_names_the_node(remover_cls: Any, notifier_cls: Any,
                                                   words: str) -> None:
    extra = {k: v for k, v in (("remover_cls", remover_cls),
                               ("policy_notifier_cls", notifier_cls)) if v is not None}
    policy = Mempolicy(MPOL_BIND if remover_cls else MPOL_PREFERRED, (1,))
    with built(**extra) as system, Tasks(system, "user") as tasks, \
            Actors("remover") as actors:
        set_mempolicy(system, tasks["user"], policy)
        assert actors.run("remover", system.remover.offline_node, 1) == OK
        if not words:
            assert str(tasks["user"].mempolicy) == "preferred:0" and system.collector.ok
        else:
            assert subjects(system)[0] == f"bug in mempolicy of user: {words}"


# -- the grace period: readers of every flavor -------------------------------------------


def _enter_and_deref(system: System, task: Task, nid: int, sleepable: bool) -> Any:
    """Open a section (kept open) and return (token, the node's pgdat reference)."""
    token = None
    if sleepable:
        token = system.scheme.read_lock_sleepable(task)
    else:
        system.scheme.read_lock(task)
    pgdat = system.NODE_DATA(nid)
    assert pgdat is not None
    return token, pgdat


def _read_and_leave(system: System, task: Task, token: Any, pgdat: PglistData,
                    sleepable: bool) -> int:
    """Read through the pgdat (and a zone), then close the section."""
    try:
        return sum(zone.free_pages for zone in pgdat.node_zones)
    finally:
        if sleepable:
            system.scheme.read_unlock_sleepable(task, token)
        else:
            system.scheme.read_unlock(task)


@pytest.mark.parametrize("scheme, zonelist, sleepable, held_in", [
    ("rcu", "seqcount", False, "grace period"),
    ("rcu", "stop-machine", False, "zonelists"),    # the rebuild's stop-machine waits
    ("rcu", "stop-machine", True, "grace period"),
    ("rcu", "seqcount", True, "grace period"),
    ("rwlock", "stop-machine", False, "grace period"),
    ("rwlock", "stop-machine", True, "grace period"),
    ("reuse", "seqcount", True, "grace period"),
])
def test_the_remover_waits_for_a_reader_that_reached_the_pgdat(
        scheme: str, zonelist: str, sleepable: bool, held_in: str) -> None:
    with built(scheme=scheme, zonelist_mode=zonelist, remover_cls=GatedRemover) as system, \
            Tasks(system, "reader") as tasks, Actors("remover") as actors:
        remover, task = _gated(system), tasks["reader"]
        isolate = remover.hold("isolate_zones")      # the node's CPUs are down by then
        offline = actors.start("remover", remover.offline_node, 1)
        remover.wait_reached("isolate_zones")
        token, pgdat = tasks.run("reader", _enter_and_deref, system, task, 1, sleepable)
        isolate.set()
        assert sched.wait_until(lambda: system.remover.phase == f"offline node1: {held_in}",
                                held_in, timeout=STEP_TIMEOUT)
        with pytest.raises(FutureTimeout):
            offline.result(0.2)                      # held up by the reader
        assert is_live(pgdat)
        assert tasks.run("reader", _read_and_leave, system, task, token, pgdat,
                         sleepable) == 576
        assert offline.result(STEP_TIMEOUT) == OK
        assert is_live(pgdat) == (scheme == "reuse")  # freed after the wait, or kept
    assert system.collector.ok


@pytest.mark.parametrize("remover_cls, zonelist, sleepable", [
    (PostedRemover, "stop-machine", True),            # synchronize_sched() only
    (FreeBeforeGraceRemover, "seqcount", False),
    (FreeBeforeGraceRemover, "stop-machine", True),
])
def test_a_broken_remover_frees_under_a_reader(remover_cls: Any, zonelist: str,
                                               sleepable: bool) -> None:
    with built(zonelist_mode=zonelist, remover_cls=_with_gates(remover_cls)) as system, \
            Tasks(system, "reader") as tasks, Actors("remover") as actors:
        remover, task = _gated(system), tasks["reader"]
        isolate = remover.hold("isolate_zones")
        offline = actors.start("remover", remover.offline_node, 1)
        remover.wait_reached("isolate_zones")
        token, pgdat = tasks.run("reader", _enter_and_deref, system, task, 1, sleepable)
        isolate.set()
        remover.wait_reached("release_node")
        assert sched.wait_until(lambda: not is_live(pgdat), "freed", timeout=STEP_TIMEOUT)
        with pytest.raises(ViolationError):
            tasks.run("reader", _read_and_leave, system, task, token, pgdat, sleepable)
        assert offline.result(STEP_TIMEOUT) == OK
        violation = system.collector.violations[0]
        assert violation.kind == "use-after-free" and violation.thread == "reader"
        assert "pgdat[1].node_zones" in violation.subject
        assert "Freed by thread remover" in violation.details


def test_a_remover_that_skips_the_zonelist_rebuild_leaves_freed_zones_reachable() -> None:
    for remover_cls, caught in ((None, False), (NoZonelistRebuildRemover, True)):
        extra: dict[str, Any] = {} if remover_cls is None else {"remover_cls": remover_cls}
        with built(nodes=3, cpus=3, pages=SMALL_ZONES, **extra) as system, \
                Tasks(system, "user") as tasks, Actors("remover") as actors:
            task = tasks["user"]
            held = [tasks.run("user", alloc_pages, system, task, 0) for _ in range(10)]
            assert all(p is not None and p.nid == 0 for p in held)   # node 0 is full
            assert actors.run("remover", system.remover.offline_node, 1) == OK
            if caught:
                with pytest.raises(ViolationError):      # falls back into node 1's zone
                    tasks.run("user", alloc_pages, system, task, 0)
                assert subjects(system)[0] == "use-after-free in zone[1].MOVABLE.lock"
                assert task.atomic_depth == 0            # the walk's section was closed
            else:
                page = tasks.run("user", alloc_pages, system, task, 0)
                assert page is not None and page.nid == 2 and system.collector.ok
                held.append(page)
                for page in held:
                    tasks.run("user", free_pages, system, page)


def test_a_remover_that_unpublishes_after_the_free_lets_a_walker_in() -> None:
    with built(remover_cls=LateUnpublishRemover) as system, Tasks(system, "walker") as tasks, \
            Actors("remover") as actors:
        pauser = Pauser()
        reached, gate = pauser.pause("remover", "node_online_map:clear")
        task = tasks["walker"]

        def walk() -> int:
            system.scheme.read_lock(task)
            try:
                return sum(z.free_pages for z in system.for_each_populated_zone())
            finally:
                system.scheme.read_unlock(task)
        with sched.install(pauser):
            offline = actors.start("remover", system.remover.offline_node, 1)
            assert reached.wait(STEP_TIMEOUT)            # freed, still marked online
            with pytest.raises(ViolationError):
                tasks.run("walker", walk)
            gate.set()
            assert offline.result(STEP_TIMEOUT) == OK
        assert kinds(system)[0] == "use-after-free"
        assert "pgdat[1]" in subjects(system)[0]


# -- online ------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["rcu", "reuse"])
def test_online_publishes_a_fresh_or_reset_pgdat_and_rebuilds(scheme: str) -> None:
    with built(scheme=scheme, remover_cls=GatedRemover) as system, Actors("remover") as actors:
        remover = _gated(system)
        old = system.pgdat(2)
        assert actors.run("remover", remover.offline_node, 2) == OK
        assert (system.node_data[2] is None) == (scheme == "rcu")
        assert actors.run("remover", remover.online_node, 2)
        new = system.pgdat(2)
        assert (unwrap(new) is unwrap(old)) == (scheme == "reuse")
        assert generation(new) == 2 and is_live(new)
        assert not any(z.isolated for z in new.node_zones)
        assert all(z.free_pages == z.present_pages for z in new.node_zones)
        assert [z.zone_pgdat for z in new.node_zonelists.zonerefs][:3] == [2, 2, 2]
        assert any(z.zone_pgdat == 2 for z in system.pgdat(1).node_zonelists.zonerefs)
        assert system.node_online.test(2) and system.cpu_online[2] and system.cpu_online[6]
        assert remover.order[-3:] == ["prepare_pgdat", "publish", "online_cpus"]
    assert system.collector.ok

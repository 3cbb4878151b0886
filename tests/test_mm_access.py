"""The RFC's four access paths, each driven by real threads against a real remover.

1. ``for_each_online_node`` / ``for_each_zone`` / ``for_each_populated_zone`` under
   ``pgdat_remove_read_lock()``; 2. mempolicies and the memory-offline notifier chain;
3. ``alloc_pages`` walking zonelists, ``free_pages``; 4. ``NODE_DATA(numa_node_id())``.
"""

from __future__ import annotations

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
from rcu_pgdat.check.testing import STEP_TIMEOUT, Actors
from rcu_pgdat.errors import UsageError
from rcu_pgdat.mutants.mm import CpusLeftOnlineRemover, IgnoreIsolationAllocator
from rcu_pgdat.mm.hotplug import OK, VETO
from rcu_pgdat.mm.mempolicy import (
    MPOL_BIND,
    MPOL_INTERLEAVE,
    MPOL_PREFERRED,
    Mempolicy,
    set_mempolicy,
)
from rcu_pgdat.mm.notifier import (
    MEM_CANCEL_OFFLINE,
    MEM_GOING_OFFLINE,
    NOTIFY_BAD,
    NOTIFY_OK,
    MemoryNotifier,
)
from rcu_pgdat.mm.page_alloc import Page, alloc_pages, free_pages
from rcu_pgdat.mm.system import System
from rcu_pgdat.mm.task import Task

# -- 1: iterators under the read lock ---------------------------------------------------


def _walk(system: System, task: Task) -> tuple[list[int], list[str], list[str]]:
    system.scheme.read_lock(task)
    try:
        nodes = list(system.for_each_online_node())
        zones = [f"{z.zone_pgdat}/{z.name}" for z in system.for_each_zone()]
        populated = [f"{z.zone_pgdat}/{z.name}" for z in system.for_each_populated_zone()]
        return nodes, zones, populated
    finally:
        system.scheme.read_unlock(task)


def test_iterators_walk_online_nodes_and_their_zones_inside_the_read_lock() -> None:
    with built(nodes=3, cpus=3, pages=(0, 4, 4)) as system, Tasks(system, "it") as tasks, \
            Actors("remover") as actors:
        nodes, zones, populated = tasks.run("it", _walk, system, tasks["it"])
        assert nodes == [0, 1, 2] and len(zones) == 9
        assert populated == [z for z in zones if not z.endswith("DMA32")]
        assert actors.run("remover", system.remover.offline_node, 1) == OK
        nodes, zones, _ = tasks.run("it", _walk, system, tasks["it"])
        assert nodes == [0, 2] and not any(z.startswith("1/") for z in zones)
    assert system.collector.ok


def test_an_iterator_outside_the_read_lock_is_suspicious_rcu_usage() -> None:
    with built() as system, Tasks(system, "it") as tasks:
        zones = tasks.run("it", lambda: list(system.for_each_populated_zone()))
        assert len(zones) == 12
        assert set(kinds(system)) == {"rcu-deref-outside-reader"}
        assert {v.thread for v in system.collector.violations} == {"it"}


def test_iterators_race_with_offline_and_online_cycles_without_a_violation() -> None:
    with built(zonelist_mode="seqcount") as system, Tasks(system, "it", "sleepy") as tasks, \
            Actors("remover") as actors:
        task, sleepy = tasks["it"], tasks["sleepy"]

        def cycles() -> int:
            done = 0
            for nid in (1, 2, 3, 1, 2, 3):
                done += system.remover.offline_node(nid) == OK
                done += system.remover.online_node(nid)
            return done

        def sleepable_walk() -> int:
            token = system.scheme.read_lock_sleepable(sleepy)
            try:
                zones = list(system.for_each_populated_zone())
                sleepy.sleep(0.001)               # off CPU inside the SRCU section
                return sum(z.free_pages for z in zones)
            finally:
                system.scheme.read_unlock_sleepable(sleepy, token)

        remover = actors.start("remover", cycles)
        walks = 0
        while not remover.done():
            walks += len(tasks.run("it", _walk, system, task)[1]) > 0
            tasks.run("sleepy", sleepable_walk)
            tasks.run("it", task.cond_resched)
        assert remover.result(STEP_TIMEOUT) == 12 and walks > 0
    assert system.collector.ok


# -- 2: mempolicy ------------------------------------------------------------------------


def _alloc_nodes(tasks: Tasks, name: str, system: System, n: int) -> list[Page | None]:
    return [tasks.run(name, alloc_pages, system, tasks[name], 0) for _ in range(n)]


def _free_all(tasks: Tasks, name: str, system: System, pages: list[Page | None]) -> None:
    for page in pages:
        if page is not None:
            tasks.run(name, free_pages, system, page)


def test_each_policy_mode_places_pages_as_documented() -> None:
    with built(pages=SMALL_ZONES) as system, Tasks(system, "t") as tasks:
        task = tasks["t"]                                   # cpu0: node 0
        pages = _alloc_nodes(tasks, "t", system, 1)
        assert pages[0] is not None and pages[0].nid == 0   # default: the local node
        set_mempolicy(system, task, Mempolicy(MPOL_PREFERRED, (2,)))
        pages += _alloc_nodes(tasks, "t", system, 12)       # node 2 first, then nearest
        assert [p.nid for p in pages[1:] if p] == [2] * 10 + [1, 1]
        _free_all(tasks, "t", system, pages)
        set_mempolicy(system, task, Mempolicy(MPOL_INTERLEAVE, (1, 3)))
        pages = _alloc_nodes(tasks, "t", system, 4)
        assert [p.nid for p in pages if p] == [3, 1, 3, 1]  # round robin
        _free_all(tasks, "t", system, pages)
        set_mempolicy(system, task, Mempolicy(MPOL_BIND, (3,)))
        pages = _alloc_nodes(tasks, "t", system, 11)        # never outside the binding
        assert [p.nid if p else None for p in pages] == [3] * 10 + [None]
        _free_all(tasks, "t", system, pages)
    assert system.collector.ok


@pytest.mark.parametrize("mode, nodes, words", [
    ("default", (1,), "no nodes"), ("preferred", (1, 2), "exactly one"),
    ("bind", (), "at least one"), ("local", (), "unknown")])
def test_impossible_policies_are_refused(mode: str, nodes: tuple[int, ...],
                                         words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Mempolicy(mode, nodes)


def test_set_mempolicy_refuses_offline_and_unknown_nodes() -> None:
    with built() as system, Actors("remover") as actors:
        task = system.new_task("t")
        assert actors.run("remover", system.remover.offline_node, 2) == OK
        with pytest.raises(UsageError, match="offline or being removed"):
            set_mempolicy(system, task, Mempolicy(MPOL_BIND, (1, 2)))
        with pytest.raises(UsageError, match="no node 9"):
            set_mempolicy(system, task, Mempolicy(MPOL_PREFERRED, (9,)))
        assert str(task.mempolicy) == "default"
        set_mempolicy(system, task, Mempolicy(MPOL_BIND, (3, 1)))
        assert str(task.mempolicy) == "bind:1,3"


@pytest.mark.parametrize("policy_mode, policy, result, after", [
    ("veto", Mempolicy(MPOL_BIND, (1,)), VETO, "bind:1"),
    ("veto", Mempolicy(MPOL_INTERLEAVE, (1,)), VETO, "interleave:1"),
    ("veto", Mempolicy(MPOL_PREFERRED, (1,)), OK, "preferred:0"),
    ("veto", Mempolicy(MPOL_BIND, (1, 2)), OK, "bind:2"),
    ("rebind", Mempolicy(MPOL_BIND, (1,)), OK, "bind:0"),
    ("rebind", Mempolicy(MPOL_INTERLEAVE, (1,)), OK, "interleave:0"),
    ("rebind", Mempolicy(MPOL_PREFERRED, (1,)), OK, "preferred:0"),
    ("rebind", Mempolicy(), OK, "default"),
])
def test_offline_notifier_vetoes_or_rebinds_policies(policy_mode: str, policy: Mempolicy,
                                                      result: str, after: str) -> None:
    with built(policy_mode=policy_mode) as system, Tasks(system, "user") as tasks, \
            Actors("remover") as actors:
        set_mempolicy(system, tasks["user"], policy)
        assert actors.run("remover", system.remover.offline_node, 1) == result
        assert str(tasks["user"].mempolicy) == after       # nearest online: node 0
        assert system.node_online.test(1) == (result == VETO)
        page = tasks.run("user", alloc_pages, system, tasks["user"], 0)
        assert page is not None and page.nid != (1 if result == OK else -1)
        tasks.run("user", free_pages, system, page)
    assert system.collector.ok


def test_the_chain_cancels_subscribers_that_agreed_before_a_veto() -> None:
    heard: list[tuple[str, str, int]] = []

    def subscriber(name: str, answer: str) -> Any:
        def callback(event: str, nid: int) -> str:
            heard.append((name, event, nid))
            return answer
        return callback
    chain = MemoryNotifier()
    chain.register("a", subscriber("a", NOTIFY_OK))
    chain.register("b", subscriber("b", NOTIFY_OK))
    chain.register("veto", subscriber("veto", NOTIFY_BAD))
    chain.register("late", subscriber("late", NOTIFY_OK))
    assert chain.going_offline(3) == "veto"
    assert heard == [("a", MEM_GOING_OFFLINE, 3), ("b", MEM_GOING_OFFLINE, 3),
                     ("veto", MEM_GOING_OFFLINE, 3), ("b", MEM_CANCEL_OFFLINE, 3),
                     ("a", MEM_CANCEL_OFFLINE, 3)]
    assert repr(chain) == "<MemoryNotifier ['a', 'b', 'veto', 'late']>"


@pytest.mark.parametrize("policy, result", [
    (Mempolicy(MPOL_PREFERRED, (1,)), OK), (Mempolicy(MPOL_BIND, (1,)), VETO)])
def test_set_mempolicy_racing_an_offline_is_rebound_or_vetoes(policy: Mempolicy,
                                                              result: str) -> None:
    """The store of a policy checked before the node was marked lands before the chain."""
    with built(remover_cls=GatedRemover) as system, Tasks(system, "user") as tasks, \
            Actors("remover") as actors:
        remover = system.remover
        assert isinstance(remover, GatedRemover)
        pauser = Pauser()
        reached, gate = pauser.pause("user", "set_mempolicy:store")
        with sched.install(pauser):
            task = tasks["user"]
            isolate = remover.hold("isolate_zones")    # CPUs down, node not marked yet
            offline = actors.start("remover", remover.offline_node, 1)
            remover.wait_reached("isolate_zones")
            store = tasks.start("user", set_mempolicy, system, task, policy)
            assert reached.wait(STEP_TIMEOUT)          # node 1 checked, lock held
            isolate.set()
            assert sched.wait_until(lambda: "notifiers" in system.remover.phase, "notifiers",
                                    timeout=STEP_TIMEOUT)
            assert not offline.done()                  # the chain waits for the lock
            gate.set()
            store.result(STEP_TIMEOUT)
            assert offline.result(STEP_TIMEOUT) == result
        assert (1 in task.mempolicy.nodes) == (result == VETO)
    assert system.collector.ok


# -- 3: alloc_pages and free_pages --------------------------------------------------------


@pytest.mark.parametrize("allocator_cls", [None, IgnoreIsolationAllocator])
def test_alloc_pages_skips_the_zones_of_a_node_being_removed(allocator_cls: Any) -> None:
    extra = {} if allocator_cls is None else {"page_allocator_cls": allocator_cls}
    with built(remover_cls=GatedRemover, **extra) as system, Tasks(system, "user") as tasks, \
            Actors("remover") as actors:
        remover = system.remover
        assert isinstance(remover, GatedRemover)
        task = tasks["user"]
        set_mempolicy(system, task, Mempolicy(MPOL_PREFERRED, (1,)))
        gate = remover.hold("offline_pages")
        offline = actors.start("remover", remover.offline_node, 1)
        remover.wait_reached("offline_pages")              # zones isolated, still online
        assert all(z.isolated for z in system.pgdat(1).node_zones)
        page = tasks.run("user", alloc_pages, system, task, 0)
        assert page is not None
        tasks.run("user", free_pages, system, page)
        gate.set()
        offline.result(STEP_TIMEOUT)
        if allocator_cls is None:
            assert page.nid == 0 and system.collector.ok   # nearest node that is not going
        else:
            assert page.nid == 1
            assert subjects(system)[0].startswith(
                "bug in alloc_pages(): allocation on node1 (isolated zone)")


def test_free_pages_returns_a_migrated_block_to_the_zone_that_holds_it_now() -> None:
    with built(migrate=True) as system, Tasks(system, "user") as tasks, \
            Actors("remover") as actors:
        page = alloc_on(tasks, "user", system, 1, order=1)
        assert page.zone.name == "MOVABLE"
        assert actors.run("remover", system.remover.offline_node, 1) == OK
        assert page.nid == 0 and page.zone is system.pgdat(0).node_zones[2]
        assert system.stats.pages_migrated == 1
        assert system.pgdat(0).node_zones[2].free_pages == 254
        tasks.run("user", free_pages, system, page)
        assert system.pgdat(0).node_zones[2].free_pages == 256
        system.check_pages_conserved()
    assert system.collector.ok


def test_a_free_racing_a_migration_follows_the_block() -> None:
    with built(migrate=True) as system, Tasks(system, "user") as tasks, \
            Actors("remover") as actors:
        page = alloc_on(tasks, "user", system, 1)
        source = page.zone
        pauser = Pauser()
        reached, gate = pauser.pause("remover", "migrate:move")
        with sched.install(pauser):
            offline = actors.start("remover", system.remover.offline_node, 1)
            assert reached.wait(STEP_TIMEOUT)           # holds the source zone's lock
            freeing = tasks.start("user", free_pages, system, page)
            assert not freeing.done()
            gate.set()
            freeing.result(STEP_TIMEOUT)
            assert offline.result(STEP_TIMEOUT) == OK
        assert page.zone is not source and page.state == "free"
        system.check_pages_conserved()
    assert system.collector.ok


# -- 4: NODE_DATA(numa_node_id()) ------------------------------------------------------


def test_cpus_go_down_before_their_node_and_tasks_move_off_it() -> None:
    with built(migrate_probability=1.0) as system, Tasks(system, "t0", "t1") as tasks, \
            Actors("remover") as actors:
        task = tasks["t1"]
        assert task.cpu == 1 and system.numa_node_id(task) == 1
        assert actors.run("remover", system.remover.offline_node, 1) == OK
        assert not system.cpu_online[1] and not system.cpu_online[5]
        assert system.topology.cpu_to_node[task.cpu] != 1
        for _ in range(50):                            # load balancing avoids them
            tasks.run("t1", task.cond_resched)
            assert system.cpu_online[task.cpu]
        page = tasks.run("t1", alloc_pages, system, task, 0)
        assert page is not None and page.nid == task.numa_node_id()
        tasks.run("t1", free_pages, system, page)
        assert actors.run("remover", system.remover.online_node, 1)
        assert system.cpu_online[1] and system.cpu_online[5]
        assert system.stats.cpu_downs == 2
    assert system.collector.ok


def test_numa_node_id_naming_an_offline_node_is_a_bug() -> None:
    with built(remover_cls=CpusLeftOnlineRemover) as system, Tasks(system, "t0", "t1") as tasks, \
            Actors("remover") as actors:
        task = tasks["t1"]
        assert actors.run("remover", system.remover.offline_node, 1) == OK
        assert task.cpu == 1                           # never moved
        assert tasks.run("t1", alloc_pages, system, task, 0) is None
        assert subjects(system) == ["bug in numa_node_id(): cpu1 is on offline node1"]
        assert "CPUs must be offlined before their node" in system.collector.violations[0].what

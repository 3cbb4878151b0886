"""Topology and state: nodes, CPUs, SLIT, the online map, NODE_DATA, zones, zonelists."""

from __future__ import annotations

import threading
from concurrent.futures import TimeoutError as FutureTimeout

import pytest
from test_mm_support import SMALL_ZONES, Pauser, Tasks, built, kinds

from rcu_pgdat import sched
from rcu_pgdat.check import ViolationError, generation, unwrap
from rcu_pgdat.check.testing import STEP_TIMEOUT, Actors
from rcu_pgdat.errors import UsageError
from rcu_pgdat.mm.hotplug import OK
from rcu_pgdat.mm.locks import SeqCount
from rcu_pgdat.mm.nodemask import NodeMap
from rcu_pgdat.mm.page_alloc import alloc_pages, free_pages
from rcu_pgdat.mm.stop_machine import Participant, StopMachine
from rcu_pgdat.mm.system import System
from rcu_pgdat.mm.topology import ZONE_NAMES, Topology
from rcu_pgdat.mm.zonelist import build_all_zonelists

# -- topology ---------------------------------------------------------------------------


def test_default_topology_is_a_ring_with_cpus_round_robin() -> None:
    topo = Topology(nr_nodes=4, nr_cpus=8)
    assert topo.distance[0] == (10, 20, 30, 20)
    assert topo.cpu_to_node == (0, 1, 2, 3, 0, 1, 2, 3)
    assert topo.cpus_of(1) == [1, 5]
    assert topo.nodes_by_distance(0) == [0, 1, 3, 2]      # ties broken by node id
    assert topo.pages_per_node == 64 + 256 + 256
    assert ZONE_NAMES == ("DMA32", "NORMAL", "MOVABLE")


def test_a_configured_slit_orders_every_zonelist() -> None:
    far = ((10, 40, 15), (40, 10, 25), (15, 25, 10))
    topo = Topology(nr_nodes=3, nr_cpus=3, distance=far, pages_per_zone=SMALL_ZONES)
    assert topo.nodes_by_distance(0) == [0, 2, 1]
    assert topo.nodes_by_distance(1) == [1, 2, 0]
    with built(nodes=3, cpus=3, pages=SMALL_ZONES) as system:
        assert system.topology.nodes_by_distance(0) == [0, 1, 2]   # the default ring
    from rcu_pgdat.mm.system import SystemConfig
    from rcu_pgdat.rcu import QSBR
    from rcu_pgdat.rcu.srcu import SRCU
    system = System(SystemConfig(topology=topo), QSBR(), SRCU("pgdat"))
    order = [(z.zone_pgdat, z.name) for z in system.pgdat(0).node_zonelists.zonerefs]
    assert order == [(nid, name) for nid in (0, 2, 1) for name in reversed(ZONE_NAMES)]
    system.scheme.shutdown()


@pytest.mark.parametrize("kwargs, words", [
    (dict(nr_nodes=0), "at least one node"),
    (dict(nr_nodes=4, nr_cpus=3), "one CPU per node"),
    (dict(nr_nodes=2, nr_cpus=2, distance=((10, 20), (20, 11))), "bad SLIT"),
    (dict(nr_nodes=2, nr_cpus=2, distance=((10, 5), (20, 10))), "bad SLIT"),
    (dict(nr_nodes=2, nr_cpus=2, distance=((10, 20),)), "2x2"),
    (dict(nr_nodes=2, nr_cpus=2, cpu_to_node=(0, 0)), "every node needs"),
    (dict(nr_nodes=2, nr_cpus=2, cpu_to_node=(0, 5)), "cpu_to_node"),
    (dict(pages_per_zone=(1, 2)), "pages_per_zone"),
])
def test_impossible_topologies_are_refused(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Topology(**kwargs)  # type: ignore[arg-type]


# -- node_online_map -------------------------------------------------------------------


def test_node_map_set_clear_test_walk() -> None:
    nodes = NodeMap(5, "m")
    assert not nodes.test(3) and nodes.weight() == 0 and len(nodes) == 5
    nodes.set(3)
    nodes.set(1)
    assert list(nodes) == [1, 3] and nodes.weight() == 2
    nodes.clear(3)
    assert nodes.snapshot() == (False, True, False, False, False)
    assert repr(nodes) == "<NodeMap m [1]>"


class RMWNodeMap(NodeMap):
    """The obvious int bitmap: load, or, store. Two updaters can lose a bit."""

    __slots__ = ("word",)

    def __init__(self, nr_nodes: int) -> None:
        super().__init__(nr_nodes, "rmw_map")
        self.word = 0

    def set(self, nid: int) -> None:
        word = self.word
        sched.point("rmw_map:loaded")
        self.word = word | 1 << nid

    def test(self, nid: int) -> bool:
        return bool(self.word >> nid & 1)


def _toggle_own_bits(nodes: NodeMap, bits: range, rounds: int,
                     start: threading.Barrier) -> None:
    start.wait()
    for _ in range(rounds):
        for nid in bits:
            nodes.set(nid)
            nodes.clear(nid)
            nodes.set(nid)


def test_concurrent_set_and_clear_of_different_bits_lose_nothing() -> None:
    nodes = NodeMap(64)
    start = threading.Barrier(8)
    with sched.install(sched.StressScheduler(seed=3, yield_probability=0.3)):
        threads = [threading.Thread(target=_toggle_own_bits,
                                    args=(nodes, range(i * 8, i * 8 + 8), 30, start))
                   for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(STEP_TIMEOUT)
    assert nodes.weight() == 64 and all(nodes.test(nid) for nid in range(64))


def test_the_read_modify_write_bitmap_loses_a_bit_when_interleaved() -> None:
    """Why NodeMap stores one list item per bit: the int version loses updates."""
    nodes = RMWNodeMap(4)
    pauser = Pauser()
    reached, gate = pauser.pause("A", "rmw_map:loaded")
    with sched.install(pauser), Actors("A", "B") as actors:
        first = actors.start("A", nodes.set, 1)       # loads 0, stops before storing
        assert reached.wait(STEP_TIMEOUT)
        actors.run("B", nodes.set, 2)                 # stores 0b100
        gate.set()
        first.result(STEP_TIMEOUT)                    # stores 0b010 over it
    assert nodes.test(1) and not nodes.test(2)


# -- NODE_DATA, pgdat and zones --------------------------------------------------------


def test_node_data_is_an_rcu_pointer_checked_at_every_dereference() -> None:
    with built() as system, Tasks(system, "reader") as tasks:
        task = tasks["reader"]

        def inside() -> int:
            system.scheme.read_lock(task)
            try:
                pgdat = system.NODE_DATA(2)
                assert pgdat is not None
                return pgdat.node_id
            finally:
                system.scheme.read_unlock(task)

        def sleepable() -> int:
            token = system.scheme.read_lock_sleepable(task)
            try:
                pgdat = system.NODE_DATA(3)
                assert pgdat is not None
                return pgdat.nr_zones
            finally:
                system.scheme.read_unlock_sleepable(task, token)

        assert tasks.run("reader", inside) == 2
        assert tasks.run("reader", sleepable) == 3
        assert system.collector.ok
        tasks.run("reader", system.NODE_DATA, 1)            # no read lock held
        assert kinds(system) == ["rcu-deref-outside-reader"]
        violation = system.collector.violations[0]
        assert "pgdat[1]" in violation.subject and violation.thread == "reader"
        assert "outside any read-side section" in violation.what


def test_boot_code_is_exempt_explicitly_and_counted() -> None:
    with built() as system:
        with system.oracles.boot():
            assert system.NODE_DATA(0) is not None
            assert [z.name for z in system.for_each_zone()][:3] == list(ZONE_NAMES)
        assert system.collector.ok
        assert system.oracles.stats().boot_derefs >= 4
        system.NODE_DATA(0)                           # the same outside boot code
        assert kinds(system) == ["rcu-deref-outside-reader"]


def test_each_node_has_three_zones_with_free_page_accounting() -> None:
    with built(nodes=2, cpus=2, pages=(3, 5, 7), migrate=False) as system, \
            Tasks(system, "a") as tasks:
        pgdat = system.pgdat(1)
        assert [(z.name, z.present_pages, z.free_pages) for z in pgdat.node_zones] == [
            ("DMA32", 3, 3), ("NORMAL", 5, 5), ("MOVABLE", 7, 7)]
        assert pgdat.node_present_pages == 15 and pgdat.nr_zones == 3
        task = tasks["a"]                              # cpu0: node 0
        page = tasks.run("a", alloc_pages, system, task, 2)
        assert page is not None and page.nr_pages == 4
        assert (page.nid, page.zone.name) == (0, "MOVABLE")    # highest zone first
        assert page.zone.free_pages == 3 and not system.node_pages_free(system.pgdat(0))
        assert system.live_pages() == [page]
        tasks.run("a", free_pages, system, page)
        assert page.zone.free_pages == 7 and page.state == "free"
        assert system.node_pages_free(system.pgdat(0)) and system.live_pages() == []
    assert system.collector.ok


def test_an_offlined_pgdat_is_freed_poisoned_and_comes_back_as_a_new_generation() -> None:
    with built() as system, Actors("remover") as actors:
        old = system.pgdat(1)
        zone = old.node_zones[0]
        assert generation(old) == 1
        assert actors.run("remover", system.remover.offline_node, 1) == OK
        assert system.node_data[1] is None
        with pytest.raises(ViolationError):
            zone.free_pages                            # noqa: B018 - the access is the test
        assert kinds(system) == ["use-after-free"]
        assert actors.run("remover", system.remover.online_node, 1)
        new = system.pgdat(1)
        assert unwrap(new) is not unwrap(old) and generation(new) == 2
        assert all(z.free_pages == z.present_pages for z in new.node_zones)


# -- zonelists and build_all_zonelists ---------------------------------------------------


def _order(system: System, nid: int) -> list[tuple[int, str]]:
    return [(z.zone_pgdat, z.name) for z in system.pgdat(nid).node_zonelists.zonerefs]


def test_zonelists_follow_distance_and_drop_a_removed_node() -> None:
    with built() as system, Actors("remover") as actors:
        expect = [(nid, name) for nid in (0, 1, 3, 2) for name in reversed(ZONE_NAMES)]
        assert _order(system, 0) == expect
        assert _order(system, 2)[:3] == [(2, "MOVABLE"), (2, "NORMAL"), (2, "DMA32")]
        assert actors.run("remover", system.remover.offline_node, 1) == OK
        for nid in (0, 2, 3):
            assert all(zone_nid != 1 for zone_nid, _ in _order(system, nid))
        assert _order(system, 0) == [entry for entry in expect if entry[0] != 1]
        assert actors.run("remover", system.remover.online_node, 1)
        assert _order(system, 0) == expect
        assert system.stats.zonelist_rebuilds == 3      # boot, offline, online


def test_stop_machine_rebuild_waits_for_a_reader_inside_its_section() -> None:
    with built(zonelist_mode="stop-machine") as system, Tasks(system, "reader") as tasks, \
            Actors("remover") as actors:
        task = tasks["reader"]
        tasks.run("reader", system.scheme.read_lock, task)     # on CPU, non-preemptible
        runs = system.stop_machine.runs
        rebuild = actors.start("remover", build_all_zonelists, system)
        with pytest.raises(FutureTimeout):
            rebuild.result(0.2)                          # held up by the reader
        assert system.stop_machine.runs == runs and system.stop_machine.active
        assert system.stop_machine.running_tasks() == ["reader"]
        tasks.run("reader", system.scheme.read_unlock, task)
        rebuild.result(STEP_TIMEOUT)
        assert system.stop_machine.runs == runs + 1 and not system.stop_machine.active
    assert system.collector.ok


def test_stop_machine_holds_tasks_at_safe_points_and_section_entries() -> None:
    with built() as system, Tasks(system, "worker") as tasks, Actors("remover") as actors:
        task = tasks["worker"]
        inside, release = threading.Event(), threading.Event()

        def held() -> str:
            inside.set()
            assert release.wait(STEP_TIMEOUT)
            return "done"
        stopped = actors.start("remover", system.stop_machine.run, held)
        assert inside.wait(STEP_TIMEOUT)                # running with every CPU stopped
        assert tasks.run("worker", lambda: "ran") == "ran"   # preemptible code runs on
        resched = tasks.start("worker", task.cond_resched)
        with pytest.raises(FutureTimeout):
            resched.result(0.1)                         # its CPU runs the stopper
        release.set()
        assert stopped.result(STEP_TIMEOUT) == "done"
        resched.result(STEP_TIMEOUT)
        inside.clear()
        release.clear()
        stopped = actors.start("remover", system.stop_machine.run, held)
        assert inside.wait(STEP_TIMEOUT)
        step = tasks.start("worker", system.scheme.read_lock, task)
        with pytest.raises(FutureTimeout):
            step.result(0.1)                            # waits out the stop
        assert task.atomic_depth == 0 and system.stop_machine.running_tasks() == []
        release.set()
        assert stopped.result(STEP_TIMEOUT) == "done"
        step.result(STEP_TIMEOUT)
        assert task.atomic_depth == 1
        # Safe points are outside sections: asking for one inside is refused.
        with pytest.raises(UsageError, match="non-preemptible"):
            tasks.run("worker", task.cond_resched)
        # A task inside a section cannot stop the machine: it would wait for itself.
        with pytest.raises(UsageError, match="wait for itself"):
            tasks.run("worker", system.stop_machine.run, lambda: None)
        tasks.run("worker", system.scheme.read_unlock, task)


def test_stop_machine_waits_for_each_cpu_not_each_task() -> None:
    with built(nodes=2, cpus=2) as system:
        names = [f"t{i}" for i in range(12)]
        with Tasks(system, *names) as tasks, Actors("remover") as actors:
            for name in names:                          # six tasks on each CPU
                assert tasks[name].cpu == int(name[1:]) % 2
            tasks.run("t0", system.scheme.read_lock, tasks["t0"])
            tasks.run("t1", system.scheme.read_lock, tasks["t1"])
            # The other ten are busy in preemptible code, between safe points: a stop
            # does not wait for them (it would wait for every task to reach one).
            release = threading.Event()
            busy = [tasks.start(name, release.wait, STEP_TIMEOUT) for name in names[2:]]
            stopped = actors.start("remover", system.stop_machine.run, lambda: "ran")
            assert sched.wait_until(lambda: system.stop_machine.active, "active",
                                    timeout=STEP_TIMEOUT)
            assert [repr(cpu) for cpu in system.stop_machine.cpus] == [
                "<cpu0 stopped inside=['t0']>", "<cpu1 stopped inside=['t1']>"]
            tasks.run("t0", system.scheme.read_unlock, tasks["t0"])
            with pytest.raises(FutureTimeout):
                stopped.result(0.1)                     # cpu1 still runs t1's section
            tasks.run("t1", system.scheme.read_unlock, tasks["t1"])
            assert stopped.result(STEP_TIMEOUT) == "ran"
            assert not any(step.done() for step in busy)
            release.set()
            assert all(step.result(STEP_TIMEOUT) for step in busy)
    assert system.collector.ok


class LateRegisteringStopMachine(StopMachine):
    """Tests ``stopped`` before registering the task: the Dekker order the docstring
    forbids."""

    def enter(self, task: Participant) -> None:
        cpu = self.cpus[task.cpu]
        if cpu.stopped:
            sched.wait_until(cpu.running, "stopped")
        sched.point("stop_machine:enter")
        cpu.inside.add(task)
        task.stopper = cpu
        task.atomic_depth = 1           # the test's section does not nest


#: Seconds a stopped machine's fn stays running, waiting for the section under test.
FN_WINDOW = 2.0


@pytest.mark.parametrize("cls", [StopMachine, LateRegisteringStopMachine])
def test_a_task_entering_a_section_never_runs_inside_a_stop_machine(cls: type) -> None:
    with built() as system:
        system.stop_machine = cls(system.topology.nr_cpus)
        with Tasks(system, "worker") as tasks, Actors("remover") as actors:
            task = tasks["worker"]
            in_fn = threading.Event()

            def section() -> bool:
                system.scheme.read_lock(task)
                try:
                    return in_fn.is_set()            # a stopped machine's fn is running
                finally:
                    system.scheme.read_unlock(task)

            def fn() -> None:
                in_fn.set()
                # Long enough for the released worker to get a CPU on a busy machine
                # (the mutant's section runs now); the correct one waits it out.
                sched.wait_until(step.done, "step", FN_WINDOW)
                in_fn.clear()
            pauser = Pauser()
            reached, gate = pauser.pause("worker", "stop_machine:enter")
            with sched.install(pauser):
                step = tasks.start("worker", section)
                assert reached.wait(STEP_TIMEOUT)          # between A and B (or B and A)
                stopper = actors.start("remover", system.stop_machine.run, fn)
                assert sched.wait_until(lambda: system.stop_machine.active, "active",
                                        timeout=STEP_TIMEOUT)
                # Release the worker once fn runs: the mutant's worker has not registered,
                # so the stopper drains and starts fn; released at "active" alone, a
                # free-threaded worker could register before the drain and be waited for.
                # The correct worker registered before its pause, so fn cannot start
                # until it is released: for it this waits the whole window.
                in_fn.wait(FN_WINDOW)
                gate.set()
                ran_inside = step.result(STEP_TIMEOUT)
                stopper.result(STEP_TIMEOUT)
            assert ran_inside == (cls is LateRegisteringStopMachine)


def test_seqcount_rebuild_makes_an_overlapping_allocator_retry() -> None:
    with built(nodes=2, cpus=2, pages=SMALL_ZONES, zonelist_mode="seqcount") as system, \
            Tasks(system, "alloc", "hog") as tasks, Actors("remover") as actors:
        assert actors.run("remover", system.remover.offline_node, 1) == OK
        hog = tasks["hog"]                               # on node 0 too (node 1 is down)
        held = [tasks.run("hog", alloc_pages, system, hog, 0) for _ in range(10)]
        assert all(p is not None and p.nid == 0 for p in held)   # node 0 is now full
        pauser = Pauser()
        reached, gate = pauser.pause("alloc", "alloc:zone")
        with sched.install(pauser):
            task = tasks["alloc"]
            attempt = tasks.start("alloc", alloc_pages, system, task, 0)
            assert reached.wait(STEP_TIMEOUT)     # walking a zonelist without node 1
            assert actors.run("remover", system.remover.online_node, 1)   # no waiting
            gate.set()
            page = attempt.result(STEP_TIMEOUT)
        assert page is not None and page.nid == 1  # found on the retry
        assert system.stats.zonelist_retries == 1
        for p in [*held, page]:
            tasks.run("hog", free_pages, system, p)
    assert system.collector.ok


def test_seqcount_readers_wait_for_a_writer_and_see_its_write() -> None:
    seq = SeqCount("s")
    with Actors("reader", "writer") as actors:
        start = actors.run("reader", seq.begin)
        actors.run("writer", seq.write_begin)
        blocked = actors.start("reader", seq.begin)     # odd: a write is in progress
        with pytest.raises(FutureTimeout):
            blocked.result(0.1)
        actors.run("writer", seq.write_end)
        again = blocked.result(STEP_TIMEOUT)
        assert actors.run("reader", seq.retry, start) and not seq.retry(again)
    assert repr(seq) == "<SeqCount s seq=2>"

"""The actors of a run: allocators, iterators, sleepers, policy users, fake writers, remover.

Each worker is a loop over one kind of access the RFC has to protect, with its own
seeded random generator (``task.rng``), that stops when the run's stop flag is set or a
violation stopped the run. Readers nest their sections at random depth, as kernel call
chains do, quiesce at random safe points outside them, and now and then linger inside
a section (a busy delay through schedule points, as rcutorture's readers do) so that
grace periods are long and uneven.

Every worker body runs inside :func:`run_worker`, which binds the task to the thread,
turns a violation raised at a checked access into a quiet thread end (the violation is
already reported) and any other exception into a ``thread-exception`` report: nothing
is lost inside a thread (docs/design.md, invariant 3).
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

from rcu_pgdat import sched
from rcu_pgdat.check import ViolationError
from rcu_pgdat.errors import UsageError
from rcu_pgdat.mm.mempolicy import (MPOL_BIND, MPOL_DEFAULT, MPOL_INTERLEAVE, MPOL_PREFERRED,
                                    Mempolicy, set_mempolicy)
from rcu_pgdat.mm.page_alloc import Page, alloc_pages, free_pages
from rcu_pgdat.mm.system import System
from rcu_pgdat.mm.task import Task

from .clock import SECONDS

__all__ = ["WorkerStats", "RunContext", "run_worker", "allocator",
           "iterator", "sleeper", "policy_user", "fake_writer", "remover", "WORKER_KINDS"]

#: Deepest nesting of read-side sections a reader uses.
MAX_NESTING = 3
#: Chance that a reader lingers in its section, and for how many schedule points.
LINGER_PROBABILITY = 0.05
LINGER_POINTS = 200


@dataclass
class WorkerStats:
    """Counters of one worker, written by that worker only."""

    kind: str
    #: Upper bounds of the section length histogram, in the run's clock (``Clock``).
    buckets: tuple[float, ...] = SECONDS.section_buckets
    loops: int = 0
    reads: int = 0
    sections: int = 0
    allocations: int = 0
    alloc_failures: int = 0
    frees: int = 0
    sleeps: int = 0
    policy_changes: int = 0
    policy_refusals: int = 0
    grace_periods: int = 0
    callbacks: int = 0
    barriers: int = 0
    results: dict[str, int] = field(default_factory=dict)
    section_hist: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.section_hist:
            self.section_hist = [0] * len(self.buckets)

    def section_length(self, length: float) -> None:
        """Count one read-side section of ``length`` in the histogram."""
        for i, bound in enumerate(self.buckets):
            if length < bound:
                self.section_hist[i] += 1
                return


@dataclass
class RunContext:
    """What every worker shares: the system, the stop flag, and tunables."""

    system: System
    stop: sched.Event
    seed: int
    hold_points: int = 20          # how long an allocator holds its pages (points)
    sleep_time: float = 0.02       # a sleeper's longest sleep inside its section
    remover_pause: float = 0.001   # between two remover steps
    deadline: float = math.inf     # scheduler time at which workers wind down

    def should_stop(self) -> bool:
        """Whether workers must wind down (checked by each worker once per loop)."""
        return (self.stop.is_set() or self.system.collector.stopped
                or sched.now() >= self.deadline)


def _rng(seed: int, name: str) -> random.Random:
    return random.Random((seed << 32) ^ zlib.crc32(name.encode()))


def run_worker(ctx: RunContext, task: Task, stats: WorkerStats,
               body: Callable[[RunContext, Task, WorkerStats], None]) -> None:
    """Run ``body`` as ``task``; report what escapes it (see the module docstring)."""
    collector = ctx.system.collector
    try:
        task.enter()
        try:
            body(ctx, task, stats)
        except sched.RunStopped:
            raise                        # unwound by the scheduler: no exit checks
        except BaseException:
            task.exit()
            raise
        task.exit()
    except ViolationError:
        pass                             # reported where it happened
    except sched.RunStopped:
        raise                            # a controlled run unwinds its threads
    except BaseException as exc:         # noqa: BLE001 - SystemExit in a plug-in too
        collector.report_exception(exc, task.name)


def _linger(task: Task) -> None:
    if task.rng.random() < LINGER_PROBABILITY:
        for _ in range(LINGER_POINTS):
            sched.point("reader:linger")


def _nested_read(ctx: RunContext, task: Task, stats: WorkerStats,
                 inner: Callable[[], None]) -> None:
    """``inner`` inside 1..MAX_NESTING nested ``pgdat_remove_read_lock()`` sections.

    Each level does its own reads after the deeper levels returned, as a kernel call
    chain does: a section must stay protected after a nested one inside it ended.
    """
    start = sched.now()
    stats.sections += 1
    _read_level(ctx, task, inner, task.rng.randint(1, MAX_NESTING))
    stats.section_length(sched.now() - start)


def _read_level(ctx: RunContext, task: Task, inner: Callable[[], None], depth: int) -> None:
    scheme = ctx.system.scheme
    scheme.read_lock(task)
    try:
        if depth > 1:
            _read_level(ctx, task, inner, depth - 1)
        inner()
        _linger(task)
    finally:
        scheme.read_unlock(task)


def _take(ctx: RunContext, task: Task, stats: WorkerStats, held: list[Page],
          order: int) -> None:
    """``alloc_pages()`` one block and keep it in ``held`` (or count the failure)."""
    page = alloc_pages(ctx.system, task, order=order)
    if page is None:
        stats.alloc_failures += 1
    else:
        stats.allocations += 1
        held.append(page)


def _give_back(ctx: RunContext, stats: WorkerStats, held: list[Page], keep: int) -> None:
    """``free_pages()`` the oldest blocks until at most ``keep`` are held."""
    while len(held) > keep:
        free_pages(ctx.system, held.pop(0))
        stats.frees += 1


def allocator(ctx: RunContext, task: Task, stats: WorkerStats) -> None:
    """``alloc_pages()`` a block, hold it across safe points, ``free_pages()`` it."""
    held: list[Page] = []
    try:
        while not ctx.should_stop():
            stats.loops += 1
            _take(ctx, task, stats, held, order=task.rng.randint(0, 2))
            for _ in range(task.rng.randint(1, ctx.hold_points)):
                task.cond_resched()
            _give_back(ctx, stats, held, keep=4 if task.rng.random() < 0.5 else 0)
    finally:
        _give_back(ctx, stats, held, keep=0)


def iterator(ctx: RunContext, task: Task, stats: WorkerStats) -> None:
    """Walk ``for_each_online_node()`` / ``for_each_populated_zone()`` in nested sections."""
    system = ctx.system

    def walk() -> None:
        nodes = 0
        for nid in system.for_each_online_node():
            pgdat = system.NODE_DATA(nid)
            if pgdat is not None:
                nodes += pgdat.nr_zones
        free = 0
        for zone in system.for_each_populated_zone():
            free += zone.free_pages
            stats.reads += 1
        # A NODE_DATA() of a node id that does not come from numa_node_id(): checked
        # for online-ness first, and the caller escapes when it is offline.
        nid = task.rng.randrange(system.topology.nr_nodes)
        if system.node_online.test(nid):
            pgdat = system.NODE_DATA(nid)
            if pgdat is not None:
                stats.reads += len(pgdat.node_zonelists.zonerefs) > 0
    while not ctx.should_stop():
        stats.loops += 1
        _nested_read(ctx, task, stats, walk)
        task.cond_resched()


def sleeper(ctx: RunContext, task: Task, stats: WorkerStats) -> None:
    """Hold a zone across a sleep inside ``pgdat_remove_read_lock_sleepable()``."""
    system = ctx.system
    scheme = system.scheme
    while not ctx.should_stop():
        stats.loops += 1
        token = scheme.read_lock_sleepable(task)
        start = sched.now()
        try:
            stats.sections += 1
            online = list(system.for_each_online_node())
            if online:
                nid = online[task.rng.randrange(len(online))]
                pgdat = system.NODE_DATA(nid)
                if pgdat is not None:
                    zone = system.oracles.deref(
                        pgdat.node_zones[task.rng.randrange(pgdat.nr_zones)],
                        scheme.protecting_keys())
                    task.sleep(ctx.sleep_time * task.rng.random())
                    stats.sleeps += 1
                    stats.reads += zone.free_pages >= 0
                    stats.reads += len(pgdat.node_zonelists.zonerefs) > 0
        finally:
            stats.section_length(sched.now() - start)
            scheme.read_unlock_sleepable(task, token)
        task.cond_resched()


def _random_policy(task: Task, nr_nodes: int) -> Mempolicy:
    mode = task.rng.choice((MPOL_DEFAULT, MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE))
    if mode == MPOL_DEFAULT:
        return Mempolicy()
    if mode == MPOL_PREFERRED:
        return Mempolicy(mode, (task.rng.randrange(nr_nodes),))
    count = task.rng.randint(1, max(1, nr_nodes - 1))
    return Mempolicy(mode, tuple(task.rng.sample(range(nr_nodes), count)))


def policy_user(ctx: RunContext, task: Task, stats: WorkerStats) -> None:
    """Change the task's mempolicy now and then, and allocate under it."""
    system = ctx.system
    held: list[Page] = []
    try:
        while not ctx.should_stop():
            stats.loops += 1
            if task.rng.random() < 0.2:
                try:
                    set_mempolicy(system, task, _random_policy(task, system.topology.nr_nodes))
                    stats.policy_changes += 1
                except UsageError:
                    stats.policy_refusals += 1          # -EINVAL: an offline node
            _take(ctx, task, stats, held, order=0)
            task.cond_resched()
            _give_back(ctx, stats, held, keep=2)
    finally:
        _give_back(ctx, stats, held, keep=0)


def fake_writer(ctx: RunContext, task: Task, stats: WorkerStats) -> None:
    """Grace periods and callbacks concurrent with the remover's (rcutorture's fakewriters)."""
    scheme: Any = ctx.system.scheme
    while not ctx.should_stop():
        stats.loops += 1
        choice = task.rng.random()
        rcu = getattr(scheme, "rcu", None)
        with ctx.system.boost.waiting():    # a long wait holds readers back (mm.boost)
            if rcu is not None and choice < 0.3:
                rcu.call_rcu(lambda: None)
                stats.callbacks += 1
            elif rcu is not None and choice < 0.4:
                cookie = rcu.get_state()
                task.cond_resched()
                rcu.cond_synchronize(cookie)
                stats.grace_periods += 1
            elif rcu is not None and choice < 0.45:
                rcu.barrier()                      # rcu_barrier(): callbacks so far ran
                stats.barriers += 1
            else:
                scheme.synchronize_all()
                stats.grace_periods += 1
        task.cond_resched()
        task.sleep(ctx.remover_pause * task.rng.random())


def remover(ctx: RunContext, task: Task, stats: WorkerStats) -> None:
    """Offline and online nodes, forever: the RFC's writer."""
    system = ctx.system
    rng = task.rng
    nr = system.topology.nr_nodes
    while not ctx.should_stop():
        stats.loops += 1
        online = [nid for nid in range(nr) if system.node_online.test(nid)]
        offline = [nid for nid in range(nr) if not system.node_online.test(nid)]
        if offline and (len(online) <= 1 or rng.random() < 0.5):
            if system.remover.online_node(offline[rng.randrange(len(offline))]):
                stats.results["online"] = stats.results.get("online", 0) + 1
        else:
            result = system.remover.offline_node(online[rng.randrange(len(online))])
            stats.results[result] = stats.results.get(result, 0) + 1
        task.cond_resched()
        task.sleep(ctx.remover_pause)


#: Worker kinds in the order threads are created and named.
WORKER_KINDS: dict[str, Callable[[RunContext, Task, WorkerStats], None]] = {
    "allocator": allocator,
    "iterator": iterator,
    "sleeper": sleeper,
    "policy": policy_user,
    "fake-writer": fake_writer,
    "remover": remover,
}

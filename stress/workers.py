"""The actors of a run: allocators, iterators, sleepers, policy users, fake writers, remover.

Each worker is a loop over one kind of access the RFC has to protect, with its own
seeded random generator (``task.rng``), that stops when the run's stop flag is set or a
violation stopped the run. Readers nest their sections at random depth, as kernel call
chains do, and quiesce at random safe points outside them.

Why the updaters and readers behave as they do
----------------------------------------------
Update-side bugs (grace-period sharing, polled cookies, callbacks, barriers) have one
shape: an updater is satisfied by a grace period that *began before* it asked, i.e.
before some reader entered the section it had to wait for. The oracles see that only
in one interleaving, and every default below exists to make it common:

1. a grace period G is in flight, held open by a reader S that entered earlier;
2. a reader R enters a section after G stopped waiting for it (G need not wait: legal);
3. a second updater asks for a grace period: it calls ``synchronize()`` (or
   ``cond_synchronize()``, ``barrier()``), takes a polled cookie, or queues a
   ``call_rcu()`` callback, while G is still in flight;
4. G ends (S left) while R is still inside; the second updater returns, polls done or
   its callback runs now. A correct flavor makes it wait for a grace period that began
   after step 3, which waits for R; a broken one reports ``gp-too-short`` here.

Step 3 needs two updaters of one flavor or domain at once, and the rcu scheme has two
(QSBR or memb for ordinary readers, SRCU for sleepers): one updater to hold a grace
period in flight and one to arrive during it, on each of the two, is four. That is
rcutorture's default too (``nfakewriters=4``), so ``--fake-writers`` defaults to 4;
the remover is a fifth updater, on both flavors in turn. Each fake writer picks a
flavor or domain and one of its update-side calls uniformly at random (rcutorture's
fake writers pick among the calls a flavor offers), with a short random pause between
calls, so grace periods run back to back and most calls overlap another updater's.
Cookies are taken *during* grace periods: half of them once another fake writer is
inside a grace period of that flavor (a cookie taken between grace periods only
exercises the idle case), and a cookie is then polled or passed to
``cond_synchronize()`` after 0, 1 or 2 grace periods of its flavor have ended (the
boundaries at which an early cookie or a stale one is told "done" wrongly).
Callbacks are queued in bursts spread over a grace period, so that later ones arrive
while the callback worker's grace period, started for the first, is in flight.

Steps 2 and 4 need readers that outlive a grace period they did not hold: two readers
of each kind, because the one that holds G open (S) cannot also be the one that
enters during G (R). The rcu scheme has two iterators (plus allocators and policy
users, whose sections are short) for the RCU flavor, and two sleepers for the SRCU
domain. Now and then a reader *lingers* in its section (as rcutorture's readers delay
inside theirs), up to ``LINGER_POINTS`` voluntary yields, and stops
early once two grace periods of its flavor have ended since the section began: one
ending is step 4 (a lingering R that began during G always outlasts G, since it
started after S and lingers as long), the second lets the updater that arrived in
step 3 see the section still open, whichever of the two returns first. A correct
flavor can end at most the grace periods that began before the section, so against it
a lingerer usually runs to its bound; a broken flavor ends the extra one early, and the
reader is still there when it does. Counting grace periods rather than points keeps
this true whatever grace periods cost in a configuration (free-running, controlled,
sixteen nodes). Lingering is waiting (for grace periods to end), so its loop yields
(``sched.yield_point``) as every wait loop of a plug-in does: a strategy that keeps
one thread running until it yields (PCT, POS) would otherwise run the lingerer alone
for its whole bound, and no grace period could begin or end inside the section.

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
           "iterator", "sleeper", "policy_user", "fake_writer", "remover", "WORKER_KINDS",
           "Updater", "UpdateSide", "update_sides"]

#: Deepest nesting of read-side sections a reader uses.
MAX_NESTING = 3
#: Chance that a reader lingers in a section, the most schedule points it stays, and
#: how many grace periods of its flavor ending let it leave early (module comment).
LINGER_PROBABILITY = 0.05
LINGER_POINTS = 200
LINGER_GRACE_PERIODS = 2


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

    def count_result(self, result: str) -> None:
        """Count one finished remover operation (``in`` and ``[]``, not dict.get:
        docs/design.md, section 6)."""
        results = self.results
        results[result] = results[result] + 1 if result in results else 1

    def section_length(self, length: float) -> None:
        """Count one read-side section of ``length`` in the histogram."""
        for i, bound in enumerate(self.buckets):
            if length < bound:
                self.section_hist[i] += 1
                return


class Updater:
    """What a fake writer shows the others: the flavor or domain it drives (its oracle
    key), its rank among the fake writers of that flavor, and whether it is waiting for
    a grace period now. ``inside`` is written by its owner only."""

    __slots__ = ("key", "rank", "inside")

    def __init__(self) -> None:
        self.key = ""
        self.rank = 0
        self.inside = False


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
    #: One slot per fake writer, appended when it starts (``fake_writer``).
    updaters: list[Updater] = field(default_factory=list)

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


def _linger(ctx: RunContext, task: Task, key: str, begun: int) -> None:
    """Now and then, stay in the section (of ``key``, begun when ``begun`` grace periods
    of it had ended) up to ``LINGER_POINTS`` points, until ``LINGER_GRACE_PERIODS``
    more have ended (module comment, steps 2 and 4)."""
    if task.rng.random() >= LINGER_PROBABILITY:
        return
    completed = ctx.system.oracles.completed
    until = begun + LINGER_GRACE_PERIODS
    for _ in range(LINGER_POINTS):
        if completed(key) >= until:
            return
        sched.yield_point("reader:linger")    # a wait loop: others run meanwhile


def _nested_read(ctx: RunContext, task: Task, stats: WorkerStats,
                 inner: Callable[[], None]) -> None:
    """``inner`` inside 1..MAX_NESTING nested ``pgdat_remove_read_lock()`` sections.

    Each level does its own reads after the deeper levels returned, as a kernel call
    chain does: a section must stay protected after a nested one inside it ended.
    """
    start = sched.now()
    stats.sections += 1
    key = ctx.system.scheme.protecting_keys()[0]       # the non-sleepable sections' key
    _read_level(ctx, task, inner, key, task.rng.randint(1, MAX_NESTING))
    stats.section_length(sched.now() - start)


def _read_level(ctx: RunContext, task: Task, inner: Callable[[], None], key: str,
                depth: int) -> None:
    scheme = ctx.system.scheme
    scheme.read_lock(task)
    try:
        begun = ctx.system.oracles.completed(key)
        if depth > 1:
            _read_level(ctx, task, inner, key, depth - 1)
        inner()
        _linger(ctx, task, key, begun)
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


@dataclass(frozen=True)
class UpdateSide:
    """One flavor or domain as the fake writers drive it: its oracle key, its checked
    wrapper (``rcu_pgdat.harness.checked``), and the calls a fake writer picks among."""

    key: str
    api: Any
    ops: tuple[Callable[["_Writer"], None], ...]


@dataclass
class _Writer:
    """One fake writer: the run, its task and counters, its slot and its flavor."""

    ctx: RunContext
    task: Task
    stats: WorkerStats
    me: Updater
    side: UpdateSide

    def completed(self) -> int:
        """Grace periods of the flavor ended so far, as the oracles count them."""
        return self.ctx.system.oracles.completed(self.side.key)

    def waiting(self, call: Callable[[], None]) -> None:
        """``call()``, shown to the other fake writers as a grace-period wait."""
        self.me.inside = True
        try:
            with self.ctx.system.boost.waiting():   # a long wait holds readers back
                call()
        finally:
            self.me.inside = False

    def wait_for(self, cond: Callable[[], bool], what: str, bound: float) -> None:
        """Block until ``cond()`` (harness state only: one load each, no side effect, so
        it is its own ready test), at most ``bound``."""
        sched.wait_until(cond, f"{self.task.name}: {what}", bound, ready=cond)

    def gps_end(self, count: int, bound: float) -> None:
        """Wait until ``count`` more grace periods of the flavor have ended (bounded)."""
        until = self.completed() + count
        self.wait_for(lambda: self.completed() >= until,
                      f"{count} grace period(s) of {self.side.key} to end", bound)

    def arrive(self) -> None:
        """Half the time, wait (bounded) until a lower-ranked fake writer of the flavor
        is inside a grace period, so that the next call overlaps it. Waits only go
        down the ranks, so two writers never wait for each other."""
        if self.me.rank and self.task.rng.random() < 0.5:
            me = self.me
            self.wait_for(lambda: any(u.inside and u.key == me.key and u.rank < me.rank
                                      for u in self.ctx.updaters),
                          f"another fake writer's grace period of {me.key}",
                          self.ctx.sleep_time * self.task.rng.random())


#: The most callbacks in one burst.
CALLBACK_BURST = 4


def _synchronize(w: _Writer) -> None:
    w.arrive()
    w.waiting(w.side.api.synchronize)
    w.stats.grace_periods += 1


def _barrier(w: _Writer) -> None:
    w.arrive()
    w.waiting(w.side.api.barrier)                  # rcu_barrier() / srcu_barrier()
    w.stats.barriers += 1


def _callbacks(w: _Writer) -> None:
    """A burst of callbacks spread over about one grace period: the first starts the
    callback worker's grace period, the later ones are queued while it is in flight."""
    api = w.side.api
    queue = getattr(api, "call_rcu", None) or api.call_srcu
    for i in range(w.task.rng.randint(1, CALLBACK_BURST)):
        if i:
            w.gps_end(1, w.ctx.sleep_time * w.task.rng.random())
        else:
            w.arrive()
        queue(_noop)
        w.stats.callbacks += 1


def _take_cookie(w: _Writer) -> Any:
    """``get_state()`` (half the time during another's grace period: a cookie taken
    then needs one more to end), then let 0, 1 or 2 grace periods of the flavor end:
    the boundaries at which its answer changes."""
    w.arrive()
    cookie = w.side.api.get_state()
    w.gps_end(w.task.rng.randint(0, 2), w.ctx.sleep_time)
    return cookie


def _poll_cookie(w: _Writer) -> None:
    """A cookie, then ``poll_state()`` each time a grace period of the flavor ends,
    until it says done; ``cond_synchronize()`` if it did not within a few: rcutorture's
    polling writer."""
    cookie = _take_cookie(w)
    for _ in range(3):
        if w.side.api.poll_state(cookie):
            break
        w.gps_end(1, w.ctx.sleep_time)
    else:
        w.arrive()
        w.waiting(lambda: w.side.api.cond_synchronize(cookie))
    w.stats.grace_periods += 1


def _cond_synchronize(w: _Writer) -> None:
    """A cookie, then ``cond_synchronize()`` (half the time during another's grace
    period: the one that would satisfy the cookie may be that one, under way)."""
    cookie = _take_cookie(w)
    w.arrive()
    w.waiting(lambda: w.side.api.cond_synchronize(cookie))
    w.stats.grace_periods += 1


def update_sides(scheme: Any) -> list[UpdateSide]:
    """The flavors and domains of ``scheme`` a fake writer drives, with the calls each
    offers; empty for a scheme without RCU (``rwlock``: its writer lock only)."""
    sides = []
    rcu = getattr(scheme, "rcu", None)
    if rcu is not None:
        sides.append(UpdateSide(rcu.key, rcu, (_synchronize, _cond_synchronize, _poll_cookie,
                                               _callbacks, _barrier)))
    srcu = getattr(scheme, "srcu", None)
    if srcu is not None:
        sides.append(UpdateSide(srcu.key, srcu, (_synchronize, _callbacks, _barrier)))
    return sides


def fake_writer(ctx: RunContext, task: Task, stats: WorkerStats) -> None:
    """Update-side calls concurrent with each other and the remover's (rcutorture's
    fake writers; the module comment says why they do what they do).

    Fake writers take turns over the flavors in the order they start: the first drives
    the RCU flavor, the second the SRCU domain, the third the RCU flavor again (rank 1
    there), and so on.
    """
    scheme: Any = ctx.system.scheme
    sides = update_sides(scheme)
    slot = Updater()
    ctx.updaters.append(slot)
    index = ctx.updaters.index(slot)
    while not sides and not ctx.should_stop():
        stats.loops += 1
        with ctx.system.boost.waiting():
            scheme.synchronize_all()               # rwlock: the writer lock, and back
        stats.grace_periods += 1
        task.cond_resched()
        task.sleep(ctx.remover_pause * task.rng.random())
    if not sides:
        return
    side = sides[index % len(sides)]
    slot.key, slot.rank = side.key, index // len(sides)
    w = _Writer(ctx, task, stats, slot, side)
    while not ctx.should_stop():
        stats.loops += 1
        side.ops[task.rng.randrange(len(side.ops))](w)
        task.cond_resched()
        task.sleep(ctx.remover_pause * task.rng.random())


def _noop() -> None:
    """A callback that frees nothing: the oracles check when it runs, not what it does."""


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
                stats.count_result("online")
        else:
            result = system.remover.offline_node(online[rng.randrange(len(online))])
            stats.count_result(result)
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

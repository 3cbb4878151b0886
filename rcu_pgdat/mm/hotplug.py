"""Node hot-remove and hot-add: the remover's protocol, step by step.

Offline (``Remover.offline_node``), each step a method so that a variant (the RFC as
posted, or a mutant) overrides exactly one:

1. ``offline_cpus``: every CPU of the node goes down under stop-machine; tasks on it
   move to CPUs of other nodes. After this no task's ``numa_node_id()`` names the node.
2. ``isolate_zones``: mark the node "being removed" and isolate its zones under their
   locks: no allocation lands there any more (``alloc_pages`` skips isolated zones).
3. ``offline_pages``: migrate allocated blocks to other nodes (optional), then wait, for
   a bounded time, until every page of the node is free; else roll back: ``EBUSY``.
4. ``notify_going_offline``: the memory notifier chain; a veto rolls back: ``VETO``.
   Then ``MEM_OFFLINE``: policies rebind.
5. ``unpublish``: ``node_set_offline()`` (clear the online bit) and clear
   ``NODE_DATA(nid)`` (``rcu_assign_pointer(..., NULL)``): new readers cannot reach it.
6. ``build_all_zonelists()``: no zonelist leads to the node's zones any more.
7. ``wait_grace_period``: every reader that could have reached the pgdat before 5 and
   6 has finished. **Corrected**: a grace period of every flavor and domain readers use
   (RCU *and* SRCU). **Posted** (``PostedRemover``): ``synchronize_sched()`` only, as
   the RFC was posted, which does not wait for sleepable (SRCU) readers.
8. ``release_node``: free the pgdat, its zones and zonelist (poisoned, quarantined) or,
   under ``reuse``, keep them for the next online.

Why 5-6-7-8 in that order: a reader reaches a pgdat either through the online map and
``NODE_DATA()`` (closed by 5) or through a zonelist entry (closed by 6); a reader that
got in before can only be inside a section that began before 7 started, so 7 waits for
it; only then is 8 safe. Moving 5 after 8, skipping 6, or waiting on a flavor the
reader does not use each lets a reader touch freed memory: the mutants of these steps.

Online (``Remover.online_node``): a fresh pgdat (new generation) or, under ``reuse``,
the kept one reset in place (safe: step 7 of its offline already waited out every
reader that could hold it); publish it with ``NODE_DATA()``, notifiers, set the online
bit, rebuild zonelists, bring its CPUs up.

A rolled-back offline leaves the node as it was: same online bit, not "being removed",
zones not isolated, same pgdat and generation, same zonelists, its CPUs online.
``offline_node`` takes ``System.node_state`` before step 1 and compares it after every
rollback (a ``bug`` report otherwise), and checks each zone's page accounting after
step 3, so these invariants do not depend on the step methods a variant overrides.
The last online node is never offlined. ``hotplug_lock`` (a Mutex) serializes removers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import sched
from .notifier import MEM_GOING_ONLINE, MEM_OFFLINE, MEM_ONLINE
from .pgdat import PglistData, alloc_node_data, free_node_data, reset_node_data
from .zonelist import build_all_zonelists

if TYPE_CHECKING:
    from .system import System

__all__ = ["Remover", "PostedRemover", "REMOVERS", "OFFLINE_RESULTS", "OK", "EBUSY", "VETO",
           "LAST_NODE", "NOT_ONLINE", "ONLINE", "PROGRESS"]

OK = "ok"
EBUSY = "ebusy"
VETO = "veto"
LAST_NODE = "last-node"
NOT_ONLINE = "not-online"
OFFLINE_RESULTS = (OK, EBUSY, VETO, LAST_NODE, NOT_ONLINE)
#: What ``Remover.finish`` counts for a node brought (back) online.
ONLINE = "online"
#: The progress label of a finished offline or online operation (``sched.progress``).
PROGRESS = "remover cycle"


class Remover:
    """The corrected remover: waits for every flavor and domain readers use."""

    variant = "corrected"

    def __init__(self, system: "System") -> None:
        self.system = system
        self.lock = sched.Mutex("hotplug_lock")
        #: What the remover is doing now (for stall reports); written under ``lock``.
        self.phase = "idle"
        #: Steps begun and operations finished so far (a watchdog's sign of life), and
        #: the scheduler's clock when the current phase began.
        self.steps = 0
        self.phase_since = 0.0
        #: Offline and online operations finished, by result (``OFFLINE_RESULTS`` that
        #: did work, and ``ONLINE``): the remover's progress.
        self.done: dict[str, int] = {}

    # -- progress ----------------------------------------------------------------------

    def enter(self, phase: str) -> None:
        """The remover starts a step (``offline node3: pages``)."""
        self.phase = phase
        self.phase_since = sched.now()
        self.steps += 1

    def advance(self, label: str) -> None:
        """A bounded piece of a long step is done (``label``, e.g. one node's zonelist
        rewritten): a sign of life for the watchdog and progress for the livelock bound.
        Steps whose length grows with the machine stay distinguishable from a stall."""
        self.steps += 1
        sched.progress(label)

    def finish(self, result: str) -> str:
        """An offline or online operation ended with ``result``: count it, as progress."""
        done = self.done        # ``in`` and ``[]``, not dict.get: docs/design.md, section 6
        done[result] = done[result] + 1 if result in done else 1
        self.system.stats.count_hotplug(result)
        self.enter("idle")
        sched.progress(PROGRESS)
        return result

    @property
    def cycles(self) -> int:
        """Offline and online operations finished, whatever their result."""
        return sum(self.done.values())

    def progress_report(self) -> str:
        """The remover's progress so far, in one line (for stall reports)."""
        counts = ", ".join(f"{result} {n}" for result, n in sorted(self.done.items()))
        return (f"{self.cycles} offline/online operation(s) finished"
                f"{' (' + counts + ')' if counts else ''}; now in phase {self.phase!r}")

    # -- offline ---------------------------------------------------------------------

    def offline_node(self, nid: int) -> str:
        """Take node ``nid`` offline; returns one of ``OFFLINE_RESULTS``."""
        s = self.system
        with self.lock:
            if not s.node_online.test(nid):
                return NOT_ONLINE
            if s.node_online.weight() <= 1:
                return LAST_NODE
            before = s.node_state(nid)      # what a rollback must restore exactly
            self.enter(f"offline node{nid}: cpus")
            self.offline_cpus(nid)
            self.enter(f"offline node{nid}: isolate")
            self.isolate_zones(nid)
            self.enter(f"offline node{nid}: pages")
            pages_off = self.offline_pages(nid)
            for zone in s.pgdat(nid).node_zones:
                s.check_zone_accounting(zone, f"in offline of node{nid}")
            if not pages_off:
                self.rollback(nid)
                s.check_rolled_back(before, EBUSY)
                return self.finish(EBUSY)
            self.enter(f"offline node{nid}: notifiers")
            if self.notify_going_offline(nid) is not None:
                self.rollback(nid)
                s.check_rolled_back(before, VETO)
                return self.finish(VETO)
            s.notifier.notify(MEM_OFFLINE, nid)
            s.check_policies(nid)           # from here on no policy may name the node
            self.enter(f"offline node{nid}: unpublish")
            pgdat = self.unpublish(nid)
            self.enter(f"offline node{nid}: zonelists")
            self.build_zonelists()
            self.enter(f"offline node{nid}: grace period")
            with s.boost.waiting():     # a long wait holds readers back (``boost``)
                self.wait_grace_period()
            self.enter(f"offline node{nid}: release")
            s.check_node_pages_returned(pgdat)  # freed or kept (reuse): every page back
            self.release_node(nid, pgdat)
            s.node_removing.clear(nid)
            s.check_policies(nid)
            return self.finish(OK)

    def offline_cpus(self, nid: int) -> None:
        """Step 1: every CPU of the node down, its tasks moved off the node."""
        for cpu in self.system.topology.cpus_of(nid):
            self.system.cpu_down(cpu)

    def isolate_zones(self, nid: int) -> None:
        """Step 2: mark the node being removed, then isolate each zone under its lock."""
        s = self.system
        s.node_removing.set(nid)
        pgdat = s.pgdat(nid)
        for zone in pgdat.node_zones:
            with zone.lock:
                zone.isolated = True

    def offline_pages(self, nid: int) -> bool:
        """Step 3: migrate (optionally) and wait until every page of the node is free."""
        s = self.system
        pgdat = s.pgdat(nid)
        if s.config.migrate:
            targets = [zone for other in s.topology.nodes_by_distance(nid)
                       if other != nid and s.node_online.test(other)
                       and not s.node_removing.test(other)
                       for zone in reversed(s.pgdat(other).node_zones)]
            for zone in pgdat.node_zones:
                s.stats.pages_migrated += s.migrate_zone(zone, targets)
        return sched.wait_until(lambda: s.node_pages_free(pgdat),
                                f"offline node{nid}: pages still in use",
                                timeout=s.config.offline_timeout)

    def notify_going_offline(self, nid: int) -> str | None:
        """Step 4: the notifier chain; returns the vetoing subscriber, or ``None``."""
        return self.system.notifier.going_offline(nid)

    def unpublish(self, nid: int) -> PglistData:
        """Step 5: clear the online bit and ``NODE_DATA(nid)``; returns the old pgdat."""
        s = self.system
        pgdat = s.pgdat(nid)
        s.node_online.clear(nid)                       # node_set_offline()
        if s.scheme.frees_pgdat:
            sched.point("unpublish:node_data")
            s.node_data[nid] = None                    # rcu_assign_pointer(NODE_DATA, NULL)
            s.retire(pgdat)
        return pgdat

    def build_zonelists(self) -> None:
        """Step 6: rebuild every online node's zonelist without the removed node."""
        build_all_zonelists(self.system)

    def wait_grace_period(self) -> None:
        """Step 7 (corrected): wait for readers of every flavor and domain."""
        self.system.scheme.synchronize_all()

    def release_node(self, nid: int, pgdat: PglistData) -> None:
        """Step 8: free the pgdat and its zones, or keep them (``reuse``)."""
        s = self.system
        if s.scheme.frees_pgdat:
            free_node_data(s.allocator, pgdat)
        s.stats.pgdats_released += 1

    def rollback(self, nid: int) -> None:
        """Undo steps 1-2 after EBUSY or a veto: the node is exactly as it was."""
        s = self.system
        for zone in s.pgdat(nid).node_zones:
            with zone.lock:
                zone.isolated = False
        s.node_removing.clear(nid)
        self.online_cpus(nid)

    # -- online ----------------------------------------------------------------------

    def online_node(self, nid: int) -> bool:
        """Bring node ``nid`` (back) online; ``False`` if it already is."""
        s = self.system
        with self.lock:
            if s.node_online.test(nid):
                return False
            self.enter(f"online node{nid}")
            s.notifier.notify(MEM_GOING_ONLINE, nid)
            self.publish(nid, self.prepare_pgdat(nid))
            s.node_online.set(nid)                      # node_set_online()
            build_all_zonelists(s)
            s.notifier.notify(MEM_ONLINE, nid)
            self.online_cpus(nid)
            self.finish(ONLINE)
            return True

    def prepare_pgdat(self, nid: int) -> PglistData:
        """A fresh pgdat, or under ``reuse`` the kept one reset in place."""
        s = self.system
        kept = s.node_data[nid]
        if kept is not None and not s.scheme.frees_pgdat:
            reset_node_data(s.allocator, kept, s.topology)
            return kept
        return alloc_node_data(s.allocator, nid, s.topology)

    def publish(self, nid: int, pgdat: PglistData) -> None:
        """``rcu_assign_pointer(NODE_DATA(nid), pgdat)``, after it is fully built."""
        sched.point("publish:node_data")
        self.system.node_data[nid] = pgdat

    def online_cpus(self, nid: int) -> None:
        """Bring the node's CPUs up (tasks move there by load balancing)."""
        for cpu in self.system.topology.cpus_of(nid):
            self.system.cpu_up(cpu)


class PostedRemover(Remover):
    """The RFC exactly as posted: ``synchronize_sched()`` only, SRCU readers not waited."""

    variant = "posted"

    def wait_grace_period(self) -> None:
        self.system.scheme.synchronize_sched()


#: Remover variants selectable per run.
REMOVERS: dict[str, type[Remover]] = {"corrected": Remover, "posted": PostedRemover}

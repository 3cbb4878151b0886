"""The page allocator: ``alloc_pages()``, ``free_pages()`` and page migration.

``alloc_pages(task, order)`` is the RFC's access path 3: inside
``pgdat_remove_read_lock()`` it picks a start node from the task's policy, loads that
node's pgdat through ``NODE_DATA()`` and walks its zonelist, skipping isolated zones and
zones outside a bind policy, and claims pages from the first zone that has them.

Why the walk is safe: every zone it can reach was reachable when the read-side section
began, or was published later; the remover unlinks a node's zones (``node_set_offline``,
zonelist rebuild) and frees them only after a grace period of the flavor this section
belongs to, so nothing reached here is freed before the section ends. The claim itself
happens under the zone's spin lock, and the remover isolates a zone under that same
lock: a claim either sees the zone isolated and moves on, or completes before isolation
and is counted by the remover as a page it must wait for.

``free_pages(page)`` returns the block to the zone it lives in *now*: migration may have
moved it, so it takes the zone lock and re-checks ``page.zone`` under it.

The steps are methods of :class:`PageAllocator` (one per system, chosen with
``System(page_allocator_cls=...)``); the module functions are the kernel-named entry
points and delegate to it.

Page records are plain objects (not tracked memory): a block's identity is its
``pfn``; ``state`` is written under the lock of the zone that holds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import sched
from .mempolicy import MPOL_BIND, MPOL_INTERLEAVE, MPOL_PREFERRED, Mempolicy
from .pgdat import Zone

if TYPE_CHECKING:
    from .system import System
    from .task import Task

__all__ = ["Page", "PageAllocator", "alloc_pages", "free_pages", "migrate_zone_pages",
           "policy_node"]


class Page:
    """A block of ``2**order`` pages handed out by ``alloc_pages``."""

    __slots__ = ("pfn", "order", "zone", "nid", "owner", "state")

    def __init__(self, pfn: int, zone: Zone, nid: int, order: int, owner: str) -> None:
        self.pfn = pfn
        self.order = order
        self.zone = zone          # the zone holding the block now (migration moves it)
        self.nid = nid
        self.owner = owner
        self.state = "allocated"

    @property
    def nr_pages(self) -> int:
        """Pages in the block."""
        return 1 << self.order

    def __repr__(self) -> str:
        return (f"<Page pfn={self.pfn} order={self.order} node{self.nid} {self.state} "
                f"by {self.owner}>")


def policy_node(system: "System", task: "Task", policy: Mempolicy) -> int:
    """The node an allocation starts from, by policy (access path 4 for the local node).

    A policy node that is offline is checked and escaped (the task's local node is used
    instead), as the RFC asks of every node id that does not come from
    ``numa_node_id()``; the local node itself must be online (a BUG otherwise).
    """
    local = system.numa_node_id(task)
    if policy.mode == MPOL_PREFERRED:
        nid = policy.nodes[0]
    elif policy.mode == MPOL_INTERLEAVE:
        task.interleave_next = (task.interleave_next + 1) % len(policy.nodes)
        nid = policy.nodes[task.interleave_next]
    elif policy.mode == MPOL_BIND:
        nid = local if local in policy.nodes else policy.nodes[0]
    else:
        return local
    sched.point("policy_node:check-online")
    return nid if system.node_online.test(nid) else local


class PageAllocator:
    """The page allocator of one :class:`~rcu_pgdat.mm.system.System` (one per system).

    Each step is a method so that a broken variant (``rcu_pgdat.mutants.mm``) overrides
    exactly one, passed as ``System(page_allocator_cls=...)``; the checks that catch it
    (``System.ledger_alloc``/``ledger_free``, the remover's accounting checks) live
    outside this class.
    """

    def __init__(self, system: "System") -> None:
        self.system = system

    def claim(self, zone: Zone, order: int, owner: str) -> Page | None:
        """Take ``2**order`` pages from ``zone`` under its lock, or ``None``.

        The isolation test and the claim are one step under the zone lock, the lock the
        remover isolates under: a claim either sees the zone isolated or is counted by
        the remover's page wait (module docstring).
        """
        want = 1 << order
        with zone.lock:
            if zone.isolated or zone.free_pages < want:
                return None
            sched.point("alloc:claim")
            zone.free_pages -= want
            page = Page(self.system.next_pfn(), zone, zone.zone_pgdat, order, owner)
            self.system.ledger_alloc(page)
            return page

    def alloc_pages(self, task: "Task", order: int = 0) -> Page | None:
        """Allocate a block for ``task`` by its policy; ``None`` when nothing is free.

        Inside ``pgdat_remove_read_lock()`` (see the module docstring for why it is safe).
        """
        system = self.system
        policy = task.mempolicy                    # one load: a consistent snapshot
        bind = policy.nodes if policy.mode == MPOL_BIND else None
        system.scheme.read_lock(task)
        try:
            while True:
                seq = system.zonelist_seq.begin()
                nid = policy_node(system, task, policy)
                pgdat = system.NODE_DATA(nid)
                if pgdat is None:
                    return None      # the node went offline since policy_node() chose it
                                     # (a preemptible rwlock section), or a broken remover
                for zone in list(pgdat.node_zonelists.zonerefs):
                    sched.point("alloc:zone")
                    if bind is not None and zone.zone_pgdat not in bind:
                        continue
                    page = self.claim(zone, order, task.name)
                    if page is not None:
                        return page
                if not system.zonelist_seq.retry(seq):
                    return None
                system.stats.zonelist_retries += 1
        finally:
            system.scheme.read_unlock(task)

    def free_pages(self, page: Page) -> None:
        """Return ``page`` to the zone that holds it now (it may have been migrated)."""
        while True:
            zone = page.zone
            with zone.lock:
                if page.zone is not zone:
                    continue                         # migrated meanwhile: follow it
                sched.point("free:return")
                self.system.ledger_free(page)
                zone.free_pages += page.nr_pages
                page.state = "free"
                return

    def migrate_zone_pages(self, zone: Zone, live: list[Page], targets: list[Zone]) -> int:
        """Move every allocated block of ``zone`` to one of ``targets``; returns blocks moved.

        Called by the remover with ``zone`` isolated. Lock order: the source zone, then
        the target (targets are never isolated, sources always are, so no cycle).
        """
        moved = 0
        for page in live:
            with zone.lock:
                if page.zone is not zone or page.state != "allocated":
                    continue
                for target in targets:
                    with target.lock:
                        if target.isolated or target.free_pages < page.nr_pages:
                            continue
                        sched.point("migrate:move")
                        target.free_pages -= page.nr_pages
                        zone.free_pages += page.nr_pages
                        page.zone = target
                        page.nid = target.zone_pgdat
                        moved += 1
                        break
        return moved


def alloc_pages(system: "System", task: "Task", order: int = 0) -> Page | None:
    """``alloc_pages()``: the system's page allocator allocates for ``task``."""
    return system.page_allocator.alloc_pages(task, order)


def free_pages(system: "System", page: Page) -> None:
    """``free_pages()``: the system's page allocator takes ``page`` back."""
    system.page_allocator.free_pages(page)


def migrate_zone_pages(system: "System", zone: Zone, live: list[Page],
                       targets: list[Zone]) -> int:
    """Move ``zone``'s blocks in ``live`` to ``targets`` (see ``PageAllocator``)."""
    return system.page_allocator.migrate_zone_pages(zone, live, targets)

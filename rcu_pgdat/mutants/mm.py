"""Broken variants of the NUMA model: one bug each, and the check that must catch it.

Each variant is a subclass of one model component (the remover, the page allocator,
the mempolicy notifier, a protection scheme) that overrides exactly one step, the way
a wrong patch to the kernel would; the model's own code has no "if broken" branch.
They are passed to the model as ``System(remover_cls=..., page_allocator_cls=...,
policy_notifier_cls=..., scheme_cls=...)``, or by name through the catalogue
(``rcu_pgdat.mutants.MUTANTS``, ``--inject NAME``), whose entries say which violation
kind (and which words of its subject) the harness must report for each.

Why each one is wrong, in the terms of ``hotplug``'s step list:

* a pgdat may be freed (or reset) only after a grace period that began after the last
  way to reach it was closed (steps 5 and 6) and that covers every flavor its readers
  use (step 7): ``free-before-gp``, ``no-zonelist-rebuild``, ``late-unpublish``,
  ``posted``, ``reuse-early-reset``, ``rwlock-no-write-lock`` each break one link of
  that chain, and a reader touches freed or re-initialized memory;
* the other invariants are the model's own checks (``System``): ``cpus-left-online``
  (numa_node_id BUG), ``alloc-ignores-isolation`` (allocation on an isolated node),
  ``free-loses-pages`` and ``free-twice`` (page conservation), ``no-rebind`` and
  ``veto-ignored`` (no policy names an offline node), ``rollback-keeps-isolation`` (a
  failed offline leaves the node exactly as it was).

Nothing in the model imports this module: tests and the catalogue do.
"""

from __future__ import annotations

from ..mm.hotplug import Remover
from ..mm.mempolicy import MempolicyNotifier
from ..mm.notifier import MEM_OFFLINE, NOTIFY_OK
from ..mm.page_alloc import Page, PageAllocator
from ..mm.pgdat import PglistData, Zone, reset_node_data
from ..mm.scheme import RWLockScheme

__all__ = [
    "FreeBeforeGraceRemover",
    "NoZonelistRebuildRemover",
    "LateUnpublishRemover",
    "CpusLeftOnlineRemover",
    "ReuseEarlyResetRemover",
    "RollbackKeepsIsolationRemover",
    "VetoIgnoredRemover",
    "IgnoreIsolationAllocator",
    "LosingFreeAllocator",
    "DoubleFreeAllocator",
    "NoRebindNotifier",
    "NoWriteLockScheme",
]


# -- removers ---------------------------------------------------------------------------


class FreeBeforeGraceRemover(Remover):
    """Frees the pgdat first and waits for the grace period after. -> use-after-free."""

    variant = "free-before-gp"

    def wait_grace_period(self) -> None:
        """Moved after the free (see ``release_node``)."""

    def release_node(self, nid: int, pgdat: PglistData) -> None:
        super().release_node(nid, pgdat)
        super().wait_grace_period()


class NoZonelistRebuildRemover(Remover):
    """Skips step 6: other nodes' zonelists still lead to the freed zones. -> use-after-free."""

    variant = "no-zonelist-rebuild"

    def build_zonelists(self) -> None:
        """Nothing: the removed node's zones stay in every fallback list."""


class LateUnpublishRemover(Remover):
    """Clears the online bit and NODE_DATA only after the free. -> use-after-free."""

    variant = "late-unpublish"

    def unpublish(self, nid: int) -> PglistData:
        return self.system.pgdat(nid)          # nothing unpublished yet

    def release_node(self, nid: int, pgdat: PglistData) -> None:
        super().release_node(nid, pgdat)
        super().unpublish(nid)                 # node_set_offline() after the free


class CpusLeftOnlineRemover(Remover):
    """Skips step 1: the node's CPUs stay up, tasks keep running there. -> bug (numa_node_id)."""

    variant = "cpus-left-online"

    def offline_cpus(self, nid: int) -> None:
        """Nothing: tasks on the node's CPUs will name an offline node."""


class ReuseEarlyResetRemover(Remover):
    """(reuse) Resets the kept pgdat right after unpublishing it, before the grace period.

    -> stale-generation (a walker's reference to the old generation), or use-after-free /
    bug (an allocation on the reset, no longer isolated, zones of an offline node).
    """

    variant = "reuse-early-reset"

    def unpublish(self, nid: int) -> PglistData:
        pgdat = super().unpublish(nid)
        reset_node_data(self.system.allocator, pgdat, self.system.topology)
        return pgdat


class RollbackKeepsIsolationRemover(Remover):
    """A failed offline forgets to un-isolate the zones. -> bug (rollback left node changed)."""

    variant = "rollback-keeps-isolation"

    def rollback(self, nid: int) -> None:
        s = self.system
        s.node_removing.clear(nid)
        self.online_cpus(nid)


class VetoIgnoredRemover(Remover):
    """Ignores a mempolicy veto and offlines anyway. -> bug (a policy names the offline node)."""

    variant = "veto-ignored"

    def notify_going_offline(self, nid: int) -> str | None:
        super().notify_going_offline(nid)
        return None


# -- the page allocator -------------------------------------------------------------------


class IgnoreIsolationAllocator(PageAllocator):
    """Claims pages without testing ``zone.isolated``. -> bug (allocation on isolated node)."""

    def claim(self, zone: Zone, order: int, owner: str) -> Page | None:
        want = 1 << order
        with zone.lock:
            if zone.free_pages < want:
                return None
            zone.free_pages -= want
            page = Page(self.system.next_pfn(), zone, zone.zone_pgdat, order, owner)
            self.system.ledger_alloc(page)
            return page


class LosingFreeAllocator(PageAllocator):
    """``free_pages`` forgets the block but never gives its pages back. -> bug (not conserved)."""

    def free_pages(self, page: Page) -> None:
        zone = page.zone
        with zone.lock:
            self.system.ledger_free(page)
            page.state = "free"


class DoubleFreeAllocator(PageAllocator):
    """``free_pages`` returns every block twice. -> double-free."""

    def free_pages(self, page: Page) -> None:
        super().free_pages(page)
        super().free_pages(page)


# -- the mempolicy notifier -------------------------------------------------------------


class NoRebindNotifier(MempolicyNotifier):
    """Ignores ``MEM_OFFLINE``: policies keep naming the removed node. -> bug (mempolicy)."""

    def __call__(self, event: str, nid: int) -> str:
        if event == MEM_OFFLINE:
            return NOTIFY_OK
        return super().__call__(event, nid)


# -- schemes ----------------------------------------------------------------------------


class NoWriteLockScheme(RWLockScheme):
    """(rwlock) The remover's "grace period" skips ``down_write``. -> gp-too-short / UAF."""

    def synchronize_all(self) -> None:
        tokens = [self.oracles.gp_begin(key) for key in self.protecting_keys()]
        for token in tokens:
            self.oracles.gp_end(token)

    synchronize_sched = synchronize_all

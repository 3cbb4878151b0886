"""The modelled kernel: one object that owns the NUMA state and the RFC's access paths.

``System`` holds the topology, ``node_online_map``, the "being removed" map,
``NODE_DATA()``, the CPU online map, stop-machine, the memory notifier chain, the
protection scheme, the remover and the page ledger. Readers use the kernel-named
methods (``NODE_DATA``, ``for_each_online_node``, ``for_each_zone``,
``for_each_populated_zone``, ``numa_node_id``); the remover changes the state.

Everything a reader dereferences goes through the oracles (``deref``): outside a
read-side section that protects it, that is a "suspicious RCU usage" report, and what
comes back is a generation-checked reference, so a pgdat freed or reset under a reader
is caught at the reader's next field access.

The invariants the model checks itself, independent of the code paths that keep them:

* no allocation lands on an offline or isolated node (``ledger_alloc``);
* pages are conserved: a block is freed once (``ledger_free``), each zone of a node
  being offlined satisfies free + held == present under its lock
  (``check_zone_accounting``: a lost or doubly returned page is caught at the next
  offline of its node, not only at the end), a node's pages are all back before its
  zones are freed or kept, and at the end of a run every online zone is whole again;
* ``numa_node_id()`` never names an offline node (the RFC's ``BUG_ON``);
* once ``MEM_OFFLINE`` has been sent, and again when the offline completes, no task's
  policy names the node (checked right after the chain: later, a policy user may
  have replaced the offending policy and the bug would go unseen);
* a vetoed or failed offline leaves the node exactly as it was (``node_state`` before,
  ``check_rolled_back`` after).

These checks are called by ``Remover.offline_node`` and the page allocator's claim and
free, never by the step methods a broken variant overrides (``rcu_pgdat.mutants.mm``).

The ledger's ``_ledger_lock`` is a private ``threading.Lock`` held for dict updates only;
it is taken under a zone lock (claim, free, ``check_zone_accounting``), never the reverse.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

from .. import sched
from ..check import Collector, Kind, Oracles, TrackedAllocator, Violation
from ..errors import UsageError
from ..harness.checked import CheckedRCU, CheckedSRCU
from .boost import GraceBoost
from .hotplug import EBUSY, OK, ONLINE, REMOVERS, VETO, Remover
from .hotplug import PROGRESS as REMOVER_PROGRESS
from .locks import SeqCount
from .mempolicy import POLICY_MODES, MempolicyNotifier
from .nodemask import NodeMap
from .notifier import MemoryNotifier
from .page_alloc import Page, PageAllocator
from .pgdat import PglistData, Zone, alloc_node_data
from .scheme import SCHEMES, RCUScheme, RWLockScheme, Scheme
from .stop_machine import StopMachine
from .task import Task
from .topology import Topology
from .zonelist import REBUILD_PROGRESS, ZONELIST_MODES, build_all_zonelists

__all__ = ["NodeState", "System", "SystemConfig", "SystemStats"]


@dataclass
class SystemConfig:
    """How the modelled kernel is built and behaves. Times are scheduler time."""

    topology: Topology = field(default_factory=Topology)
    scheme: str = "rcu"                    # a name in SCHEMES
    remover: str = "corrected"             # a name in REMOVERS
    zonelist_mode: str = "stop-machine"    # a name in ZONELIST_MODES
    policy_mode: str = "veto"              # a name in POLICY_MODES
    migrate: bool = True                   # offline migrates pages before waiting
    migrate_probability: float = 0.05      # tasks load-balance at cond_resched
    offline_timeout: float = 0.5           # EBUSY after this long waiting for pages
    boost_delay: float = math.inf          # grace periods longer hold readers (boost)
    quarantine: int = 64
    seed: int = 0

    def validate(self) -> None:
        """Raise ``ValueError`` with a plain message for an impossible configuration."""
        for what, name, names in (("scheme", self.scheme, SCHEMES),
                                  ("remover", self.remover, REMOVERS),
                                  ("zonelist mode", self.zonelist_mode, ZONELIST_MODES),
                                  ("policy mode", self.policy_mode, POLICY_MODES)):
            if name not in names:
                raise ValueError(f"unknown {what} {name!r}: {', '.join(names)}")
        if self.offline_timeout <= 0:
            raise ValueError("offline_timeout must be positive")
        if not self.boost_delay >= 0:
            raise ValueError("boost_delay must be non-negative (math.inf: no boosting)")


@dataclass(frozen=True)
class NodeState:
    """A node's hotplug state (``System.node_state``), compared across a rollback.

    ``listed_by``: online nodes whose zonelist leads to this node's zones.
    """

    nid: int
    online: bool
    removing: bool
    pgdat: str
    zones: tuple[tuple[str, bool], ...]
    zonelist: tuple[str, ...]
    listed_by: tuple[int, ...]
    cpus: tuple[tuple[int, bool], ...]


@dataclass
class SystemStats:
    """Counters of the model (written by the remover, or atomically by one owner)."""

    offlines: int = 0
    onlines: int = 0
    vetoes: int = 0
    ebusy: int = 0
    pgdats_released: int = 0
    pages_migrated: int = 0
    zonelist_rebuilds: int = 0
    zonelist_retries: int = 0
    cpu_downs: int = 0

    def count_hotplug(self, result: str) -> None:
        """Count a finished offline (``ok``, ``ebusy``, ``veto``) or an ``online``."""
        field_name = {OK: "offlines", ONLINE: "onlines", VETO: "vetoes",
                      EBUSY: "ebusy"}.get(result)
        if field_name is not None:
            setattr(self, field_name, getattr(self, field_name) + 1)


class System:
    """The modelled kernel (see the module docstring)."""

    def __init__(self, config: SystemConfig, rcu: Any, srcu: Any,
                 collector: Collector | None = None, *,
                 remover_cls: type[Remover] | None = None,
                 policy_notifier_cls: type[MempolicyNotifier] = MempolicyNotifier,
                 scheme_cls: type[Scheme] | None = None,
                 page_allocator_cls: type[PageAllocator] = PageAllocator) -> None:
        config.validate()
        self.config = config
        self.topology = config.topology
        self.collector = collector if collector is not None else Collector()
        self.oracles = Oracles(self.collector)
        self.allocator = TrackedAllocator(self.oracles, quarantine=config.quarantine)
        self.scheme: Scheme = self._make_scheme(rcu, srcu, scheme_cls)
        n = self.topology.nr_nodes
        self.node_online = NodeMap(n, "node_online_map")
        self.node_removing = NodeMap(n, "node_removing_map")
        self.node_data: list[PglistData | None] = [None] * n
        self.cpu_online = [True] * self.topology.nr_cpus
        self.stop_machine = StopMachine(self.topology.nr_cpus)
        self.boost = GraceBoost(config.boost_delay)
        self.zonelist_seq = SeqCount("zonelist_update_seq")
        self.notifier = MemoryNotifier()
        self.tasks: list[Task] = []
        self.stats = SystemStats()
        self._ledger: dict[int, Page] = {}
        self._ledger_lock = threading.Lock()
        self._pfn = 0
        self.page_allocator = page_allocator_cls(self)
        self.remover = (remover_cls or REMOVERS[config.remover])(self)
        self.policy_notifier = policy_notifier_cls(self)
        self.notifier.register("mempolicy", self.policy_notifier)
        self._boot()

    def _make_scheme(self, rcu: Any, srcu: Any, scheme_cls: type[Scheme] | None) -> Scheme:
        """The configured scheme; ``scheme_cls`` (a subclass of it) replaces its class."""
        cls: type[Scheme] = SCHEMES[self.config.scheme]
        if scheme_cls is not None:
            if not issubclass(scheme_cls, cls):
                raise UsageError(f"scheme_cls {scheme_cls.__name__} is not a subclass of "
                                 f"{cls.__name__}, the class of scheme "
                                 f"{self.config.scheme!r}; configure the matching scheme")
            cls = scheme_cls
        if issubclass(cls, RWLockScheme):
            return cls(self.oracles)
        assert issubclass(cls, RCUScheme)
        return cls(self.oracles, CheckedRCU(rcu, self.oracles),
                   CheckedSRCU(srcu, self.oracles))

    def _boot(self) -> None:
        """Boot code: every node online with a fresh pgdat, zonelists built."""
        with self.oracles.boot():
            for nid in range(self.topology.nr_nodes):
                self.node_data[nid] = alloc_node_data(self.allocator, nid, self.topology)
                self.node_online.set(nid)
            build_all_zonelists(self)

    # -- tasks ------------------------------------------------------------------------

    def new_task(self, name: str, reader: bool = True) -> Task:
        """A task for a worker, on an online CPU picked round-robin (before it starts).

        Only online CPUs: a task placed on a CPU of an offline node would trip the
        ``numa_node_id()`` check at its first allocation.
        """
        online = self.cpus_online()
        cpu = online[len(self.tasks) % len(online)]
        task = Task(self, name, cpu, self.config.seed, reader=reader)
        self.tasks.append(task)
        return task

    # -- the read side: kernel names -------------------------------------------------

    def NODE_DATA(self, nid: int) -> PglistData | None:  # noqa: N802 - kernel name
        """``NODE_DATA(nid)``: an ``rcu_dereference`` of the node's pgdat pointer."""
        sched.point("NODE_DATA")
        return self.oracles.deref(self.node_data[nid], self.scheme.keys)

    def for_each_online_node(self) -> Iterator[int]:
        """``for_each_online_node()``: node ids whose online bit is set, as read now."""
        return iter(self.node_online)

    def for_each_zone(self) -> Iterator[Zone]:
        """``for_each_zone()``: every zone of every online node, through ``NODE_DATA``."""
        keys = self.scheme.protecting_keys()
        for nid in self.for_each_online_node():
            pgdat = self.NODE_DATA(nid)
            if pgdat is None:
                continue
            for zone in pgdat.node_zones:
                sched.point("for_each_zone")
                yield self.oracles.deref(zone, keys)

    def for_each_populated_zone(self) -> Iterator[Zone]:
        """``for_each_populated_zone()``: zones with pages present."""
        for zone in self.for_each_zone():
            if zone.present_pages:
                yield zone

    def numa_node_id(self, task: Task) -> int:
        """The task's node; naming an offline node is the RFC's ``BUG_ON``.

        Read and checked in a non-preemptible region (as ``get_cpu()`` would), where the
        task's CPU cannot change: the check sees where the task runs, never a CPU it was
        moved off meanwhile. A caller in preemptible code (a sleepable or ``rwlock``
        section) gets a node that may go offline after the return, as in the kernel.
        """
        task.preempt_disable()
        try:
            nid = task.numa_node_id()
            sched.point("numa_node_id")
            if not self.node_online.test(nid):
                self.report(Kind.BUG, f"in numa_node_id(): cpu{task.cpu} is on offline "
                            f"node{nid}", f"{task.name} runs on cpu{task.cpu} of node{nid}, "
                            "which is offline: CPUs must be offlined before their node")
        finally:
            task.preempt_enable()
        return nid

    # -- CPUs -------------------------------------------------------------------------

    def cpus_online(self) -> list[int]:
        """Online CPUs, lowest first."""
        return [cpu for cpu, on in enumerate(self.cpu_online) if on]

    def cpu_down(self, cpu: int) -> None:
        """Offline ``cpu`` under stop-machine; its tasks move to other nodes' CPUs."""
        nid = self.topology.cpu_to_node[cpu]

        def take_cpu_down() -> None:
            self.cpu_online[cpu] = False
            targets = [c for c in self.cpus_online()
                       if self.topology.cpu_to_node[c] != nid
                       and self.node_online.test(self.topology.cpu_to_node[c])
                       and not self.node_removing.test(self.topology.cpu_to_node[c])]
            for i, task in enumerate(self.tasks):
                if task.cpu == cpu:
                    task.cpu = targets[i % len(targets)]
        if self.cpu_online[cpu]:
            self.stop_machine.run(take_cpu_down, f"cpu_down({cpu})")
            self.stats.cpu_downs += 1

    def cpu_up(self, cpu: int) -> None:
        """Online ``cpu``; tasks move there by load balancing."""
        sched.point("cpu_up")
        self.cpu_online[cpu] = True

    # -- pages --------------------------------------------------------------------------

    def next_pfn(self) -> int:
        """A fresh block number (per system: deterministic in controlled mode)."""
        with self._ledger_lock:
            self._pfn += 1
            return self._pfn

    def ledger_alloc(self, page: Page) -> None:
        """Record a new block; called under its zone's lock. Checks the target node."""
        zone = page.zone
        nid = zone.zone_pgdat
        if zone.isolated or not self.node_online.test(nid):
            self.report(Kind.BUG, f"in alloc_pages(): allocation on node{nid} "
                        f"{'(isolated zone)' if zone.isolated else '(offline)'}",
                        f"{page.owner} got pfn {page.pfn} from zone {zone.name} of node{nid}, "
                        "which is isolated or offline")
        with self._ledger_lock:
            self._ledger[page.pfn] = page

    def ledger_free(self, page: Page) -> None:
        """Forget a block being freed; a second free is a BUG."""
        with self._ledger_lock:
            known = self._ledger.pop(page.pfn, None)
        if known is None:
            self.report(Kind.DOUBLE_FREE, f"of page pfn {page.pfn}",
                        f"free_pages() of pfn {page.pfn} ({page!r}), which is not allocated")

    def live_pages(self) -> list[Page]:
        """Blocks allocated and not freed (a snapshot, in pfn order)."""
        with self._ledger_lock:
            return [self._ledger[pfn] for pfn in sorted(self._ledger)]

    def node_pages_free(self, pgdat: PglistData) -> bool:
        """Whether every page of ``pgdat``'s zones is back (the remover's wait)."""
        return all(zone.free_pages == zone.present_pages for zone in pgdat.node_zones)

    def migrate_zone(self, zone: Zone, targets: list[Zone]) -> int:
        """Move ``zone``'s live blocks to ``targets``; returns how many moved."""
        live = [page for page in self.live_pages() if page.zone is zone]
        return self.page_allocator.migrate_zone_pages(zone, live, targets)

    def check_node_pages_returned(self, pgdat: PglistData) -> None:
        """Before a node's zones are freed: every page is back, none is still held."""
        held = [page for page in self.live_pages() if page.nid == pgdat.node_id]
        lost = [zone.name for zone in pgdat.node_zones
                if zone.free_pages != zone.present_pages]
        if held or lost:
            self.report(Kind.BUG, f"in offline of node{pgdat.node_id}: pages not conserved",
                        f"zones not whole: {lost}; blocks still held: "
                        f"{[repr(p) for p in held[:5]]}")

    def check_zone_accounting(self, zone: Zone, when: str) -> None:
        """Pages conserved in one zone: free pages plus held blocks make what is present.

        Checked under the zone's lock, which every claim, free and migration of a block
        of this zone holds while it changes ``free_pages`` and the ledger together, so
        the sum is exact at that moment, whatever other threads do.
        """
        with zone.lock:
            held = sum(page.nr_pages for page in self.live_pages() if page.zone is zone)
            free, present = zone.free_pages, zone.present_pages
        if free + held != present:
            why = "pages were lost" if free + held < present else "pages were freed twice"
            self.report(Kind.BUG, f"{when}: node{zone.zone_pgdat} {zone.name} pages not "
                        "conserved",
                        f"{free} free + {held} in allocated blocks != {present} present: "
                        f"{why}")

    def node_state(self, nid: int) -> NodeState:
        """What a rolled-back offline must leave exactly as it found (remover only).

        Everything here changes only under the hotplug lock; free-page counts are left
        out (allocators change them all the time, and migration moves blocks for good).
        """
        pgdat = self.node_data[nid]
        zones: tuple[tuple[str, bool], ...] = ()
        zonelist: tuple[str, ...] = ()
        if pgdat is not None:
            zones = tuple((repr(zone), zone.isolated) for zone in pgdat.node_zones)
            zonelist = tuple(repr(zone) for zone in pgdat.node_zonelists.zonerefs)
        listed_by = tuple(
            other for other in range(self.topology.nr_nodes)
            if (other_pgdat := self.node_data[other]) is not None
            and self.node_online.test(other)
            and any(zone.zone_pgdat == nid for zone in other_pgdat.node_zonelists.zonerefs))
        return NodeState(nid, self.node_online.test(nid), self.node_removing.test(nid),
                         repr(pgdat), zones, zonelist, listed_by,
                         tuple((cpu, self.cpu_online[cpu])
                               for cpu in self.topology.cpus_of(nid)))

    def check_rolled_back(self, before: NodeState, result: str) -> None:
        """After a failed offline (``result``): the node is exactly as ``before``."""
        after = self.node_state(before.nid)
        if after != before:
            diff = [f"{name}: {getattr(before, name)!r} -> {getattr(after, name)!r}"
                    for name in NodeState.__dataclass_fields__
                    if getattr(before, name) != getattr(after, name)]
            self.report(Kind.BUG, f"in offline of node{before.nid}: {result} rollback "
                        "left the node changed", "; ".join(diff))

    def check_pages_conserved(self) -> None:
        """End of run (every worker has freed its blocks): every online zone is whole."""
        held = self.live_pages()
        if held:
            self.report(Kind.BUG, "at end of run: blocks never freed",
                        f"{len(held)} block(s) still allocated: {[repr(p) for p in held[:5]]}")
        for nid in range(self.topology.nr_nodes):
            pgdat = self.node_data[nid]
            if pgdat is None or not self.node_online.test(nid):
                continue
            for zone in pgdat.node_zones:
                if zone.free_pages != zone.present_pages:
                    self.report(Kind.BUG, f"at end of run: node{nid} {zone.name} pages "
                                "not conserved",
                                f"free {zone.free_pages} of {zone.present_pages} pages")

    def progress_kinds(self) -> tuple[str, ...]:
        """What this configuration notes as progress (``sched.progress``): finished
        remover operations, the grace periods, callbacks or write-side sections of its
        scheme, and each node's zonelist rewritten by a rebuild (long on a large
        machine). A controlled run that notes none of them for its livelock bound is a
        livelock; the report names them."""
        return (REMOVER_PROGRESS,) + self.scheme.progress_kinds() + (REBUILD_PROGRESS,)

    # -- the remover's helpers -------------------------------------------------------

    def pgdat(self, nid: int) -> PglistData:
        """The updater's view of ``NODE_DATA(nid)`` (``rcu_dereference_protected``).

        Only for code that holds the hotplug lock and knows the node has a pgdat.
        """
        pgdat = self.node_data[nid]
        if pgdat is None:
            raise RuntimeError(f"node{nid} has no pgdat (offline and freed)")
        return pgdat

    def retire(self, pgdat: Any) -> None:
        """The pgdat is unpublished: the pipeline statistic starts for it."""
        for key in self.scheme.protecting_keys()[:1]:
            self.oracles.retire(pgdat, key)

    def check_policies(self, nid: int) -> None:
        """After node ``nid`` went offline: no task's policy may still name it."""
        for task in self.tasks:
            if nid in task.mempolicy.nodes:
                self.report(Kind.BUG, f"in mempolicy of {task.name}: names offline node{nid}",
                            f"{task.name} has policy {task.mempolicy} after node{nid} went "
                            "offline: the policy was not rebound")

    def report(self, kind: Kind, subject: str, what: str) -> None:
        """Report a model invariant break from the calling thread."""
        self.collector.report(Violation.capture(kind, subject, sched.current_name(),
                                                what=what))

    def __repr__(self) -> str:
        return (f"<System scheme={self.scheme.name} remover={self.remover.variant} "
                f"online={[n for n in range(len(self.node_online)) if self.node_online.test(n)]} "
                f"remover phase={self.remover.phase!r}>")
